import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import SystemPackage
import Testing

extension ShmIPCTests {
    @Suite struct PipeTests {
        /// The helper's arguments for attaching `pipe` inherited at descriptor 3.
        static func attach(_ pipe: Pipe) -> [String] { ["3", "\(pipe.maxMessageSize)", "\(pipe.capacity)"] }
        static func handOver(_ pipe: Pipe) -> [(source: FileDescriptor, target: Int32)] { [(pipe.inheritableDescriptor!, 3)] }

        @Test func theRingHoldsALargestMessageAndRoundsToAPowerOfTwo() throws {
            #expect(try Pipe(maxMessageSize: 4080, capacity: 4096).capacity == 4096)
            #expect(try Pipe(maxMessageSize: 4081, capacity: 4096).capacity == 8192)
            #expect(try Pipe(maxMessageSize: 100, capacity: 1000).capacity == 1024)
            #expect(try Pipe(maxMessageSize: 0).capacity == 64 * 1024)
        }

        /// A ring of 4096 bytes whose limit (4080) fills it with one record: sizes 0, 1, the
        /// limit − 1 and the limit each wrap the ring differently; one byte more fails at once.
        @Test func messagesOfEdgeSizesCrossProcessesIntact() throws {
            let pipe = try Pipe(maxMessageSize: 4080, capacity: 4096)
            let connection = try pipe.connection(.first)
            let echo = try Helper.start("pipe-echo", Self.attach(pipe), descriptors: Self.handOver(pipe))
            let stream = MessageStream(seed: 7, sizes: 0...4080)
            let sizes = [0, 1, 4079, 4080, 0, 4080, 1, 4079, 17, 4080, 2048, 2049, 0]
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4081, alignment: 16)
            defer { buffer.deallocate() }
            for (index, size) in sizes.enumerated() {
                for position in 0..<size { buffer[position] = stream.byte(index, position) }
                try connection.send(bytes: UnsafeRawBufferPointer(rebasing: buffer[..<size]), timeout: .seconds(30))
                let back = try connection.receive(timeout: .seconds(30))
                #expect(back.count == size)
                #expect(back.elementsEqual((0..<size).map { stream.byte(index, $0) }), "message \(index) of \(size) bytes")
            }
            #expect(throws: ChannelError.messageTooLarge(size: 4081, limit: 4080)) {
                try connection.send(bytes: UnsafeRawBufferPointer(buffer), timeout: .seconds(1))
            }
            connection.close()
            #expect(Helper.finish(echo) == .exited(0), "\(echo.output)")
            #expect(echo.output.contains("echoed \(sizes.count)"), "\(echo.output)")
        }

        /// A million messages of mixed sizes (0 to 3000 bytes) through a 16 KiB ring, so it
        /// wraps every few messages; the receiver checks every byte of every message.
        @Test func aMillionMixedSizeMessagesArriveInOrderAndIntact() throws {
            let pipe = try Pipe(maxMessageSize: 3000, capacity: 16 * 1024)
            let connection = try pipe.connection(.first)
            let count = 1_000_000, stream = MessageStream(seed: 42, sizes: 0...3000)
            let sender = try Helper.start(
                "pipe-stream", Self.attach(pipe) + ["\(count)", "42", "0", "3000"], descriptors: Self.handOver(pipe))
            var received = 0, mismatches = 0
            while received < count {
                do {
                    let ok = try connection.receiveInPlace(timeout: .seconds(60)) { stream.matches(received, $0) }
                    if !ok { mismatches += 1 }
                    received += 1
                } catch {
                    Issue.record("after \(received) messages: \(error); sender: \(sender.output)")
                    break
                }
            }
            #expect(throws: ChannelError.endOfStream) { _ = try connection.receive(timeout: .seconds(60)) }
            #expect(Helper.finish(sender, timeout: .seconds(300)) == .exited(0), "\(sender.output)")
            #expect(received == count)
            #expect(mismatches == 0)
        }

        @Test func theOtherDirectionIsCheckedByTheHelper() throws {
            let pipe = try Pipe(maxMessageSize: 1000, capacity: 4096)
            let connection = try pipe.connection(.first)
            let count = 50_000, stream = MessageStream(seed: 9, sizes: 0...1000)
            let verifier = try Helper.start(
                "pipe-verify", Self.attach(pipe) + ["\(count)", "9", "0", "1000"], descriptors: Self.handOver(pipe))
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1000, alignment: 16)
            defer { buffer.deallocate() }
            for index in 0..<count {
                // Alternate the copying and the loan paths.
                if index.isMultiple(of: 2) {
                    let length = stream.write(index, into: buffer)
                    try connection.send(bytes: UnsafeRawBufferPointer(rebasing: buffer[..<length]), timeout: .seconds(60))
                } else {
                    let loan = try connection.loan(capacity: 1000, timeout: .seconds(60))
                    let length = loan.withUnsafeMutableBytes { stream.write(index, into: $0) }
                    try connection.send(loan, count: length)
                }
            }
            connection.close()
            #expect(Helper.finish(verifier, timeout: .seconds(300)) == .exited(0), "\(verifier.output)")
            #expect(verifier.output.contains("verified \(count)"), "\(verifier.output)")
        }

        @Test func pollWaitsAtMostItsTimeoutAndSeesMessagesAndTheEnd() throws {
            let pipe = try Pipe(maxMessageSize: 64)
            let first = try pipe.connection(.first), second = try pipe.connection(.second, waitStrategy: .park)
            #expect(try first.poll() == false)
            let deadline = Deadline.after(.milliseconds(30))
            #expect(try first.poll(timeout: .milliseconds(30)) == false)
            #expect(Deadline.now >= deadline)
            try second.send(bytes: [1, 2, 3])
            #expect(try first.poll())
            #expect(try first.poll(timeout: nil))
            #expect(try first.receive() == [1, 2, 3])
            #expect(throws: ChannelError.timedOut) { _ = try second.receive(timeout: .milliseconds(10)) }
            second.close()
            #expect(try first.poll())  // the end of the stream is ready to be received
            #expect(throws: ChannelError.endOfStream) { _ = try first.receive(timeout: .seconds(1)) }
        }

        @Test func closingEndsTheStreamAfterWhatWasSent() throws {
            let pipe = try Pipe(maxMessageSize: 64)
            let first = try pipe.connection(.first), second = try pipe.connection(.second)
            try second.send(bytes: [1])
            try second.send(bytes: [2])
            second.close()
            #expect(second.isClosed)
            #expect(throws: ChannelError.closed) { try second.send(bytes: [3]) }
            #expect(throws: ChannelError.closed) { _ = try second.receive() }
            #expect(try first.receive(timeout: .seconds(1)) == [1])
            #expect(try first.receive(timeout: .seconds(1)) == [2])
            #expect(throws: ChannelError.endOfStream) { _ = try first.receive(timeout: .seconds(1)) }
            #expect(throws: ChannelError.brokenPipe) { try first.send(bytes: [4]) }
        }

        @Test func aKilledPeerEndsTheStream() throws {
            let pipe = try Pipe(maxMessageSize: 64)
            let connection = try pipe.connection(.first)
            let peer = try Helper.start("pipe-send-and-hold", Self.attach(pipe), descriptors: Self.handOver(pipe))
            try #require(Helper.waitForOutput(peer, containing: "holding"), "\(peer.output)")
            #expect(throws: ChannelError.endTaken(pid: peer.pid)) { _ = try pipe.connection(.second) }
            #expect(try connection.receive(timeout: .seconds(30)) == Array("hello".utf8))
            peer.kill()
            #expect(throws: ChannelError.endOfStream) { _ = try connection.receive(timeout: .seconds(30)) }
            // Sends go into the ring while it has room (no syscall on the way to notice the
            // death); the one that has to wait for room sees the peer is gone.
            #expect(throws: ChannelError.brokenPipe) {
                for _ in 0..<(pipe.capacity / 16 + 1) { try connection.send(bytes: [1], timeout: .seconds(30)) }
            }
        }

        @Test func oneWayPipesHaveAReceivingFirstAndASendingSecondEnd() throws {
            let pipe = try Pipe(duplex: false, maxMessageSize: 64)
            let reader = try pipe.connection(.first), writer = try pipe.connection(.second)
            #expect(reader.isReadable && !reader.isWritable)
            #expect(writer.isWritable && !writer.isReadable)
            #expect(throws: ChannelError.wrongDirection) { try reader.send(bytes: [1]) }
            #expect(throws: ChannelError.wrongDirection) { _ = try writer.receive() }
            try writer.send(bytes: [5])
            #expect(try reader.receive() == [5])
            #expect(throws: SharedObjectError.self) {
                // Attaching owns (and closes) the descriptor it is given: hand it a duplicate.
                _ = try Pipe(inheriting: FileDescriptor(rawValue: dup(pipe.inheritableDescriptor!.rawValue)), duplex: true, maxMessageSize: 64)
            }
        }

        @Test func aFullRingBlocksUntilItsTimeoutOrFailsATrySend() throws {
            let pipe = try Pipe(maxMessageSize: 100, capacity: 256)
            let first = try pipe.connection(.first), second = try pipe.connection(.second)
            let message = [UInt8](repeating: 9, count: 100)  // a 128-byte record: two fill the ring
            try second.send(bytes: message)
            try second.send(bytes: message)
            #expect(try message.withUnsafeBytes { try second.trySend(bytes: $0) } == false)
            let deadline = Deadline.after(.milliseconds(30))
            #expect(throws: ChannelError.timedOut) { try second.send(bytes: message, timeout: .milliseconds(30)) }
            #expect(Deadline.now >= deadline)
            #expect(try first.receive() == message)
            try second.send(bytes: message, timeout: .seconds(1))
        }

        @Test func aTooSmallBufferLeavesTheMessageInPlace() throws {
            let pipe = try Pipe(maxMessageSize: 64)
            let first = try pipe.connection(.first), second = try pipe.connection(.second)
            try second.send(bytes: Array(0..<10))
            let small = UnsafeMutableRawBufferPointer.allocate(byteCount: 4, alignment: 1)
            defer { small.deallocate() }
            #expect(throws: ChannelError.bufferTooSmall(needed: 10)) { _ = try first.receive(into: small) }
            #expect(try first.receive() == Array(0..<10))
        }

        @Test func loansAreSentGivenBackOrDroppedWithoutLeakingSpace() throws {
            let pipe = try Pipe(maxMessageSize: 1000, capacity: 2048)
            let first = try pipe.connection(.first), second = try pipe.connection(.second)
            #expect(throws: ChannelError.messageTooLarge(size: 1001, limit: 1000)) { _ = try second.loan(capacity: 1001) }
            // Many more loans than the ring holds: neither giving back nor dropping uses space.
            for round in 0..<100 {
                let loan = try second.loan(capacity: 1000, timeout: .seconds(1))
                #expect(throws: ChannelError.loanOutstanding) { try second.send(bytes: [1]) }
                #expect(throws: ChannelError.loanOutstanding) { _ = try second.tryLoan(capacity: 1) }
                if round.isMultiple(of: 2) { loan.giveBack() } else { _ = consume loan }
            }
            #expect(try first.poll() == false)
            for round in 0..<100 {
                let loan = try second.loan(capacity: 1000, timeout: .seconds(1))
                loan.withUnsafeMutableBytes { bytes in
                    for index in 0..<8 { bytes[index] = UInt8(truncatingIfNeeded: round + index) }
                }
                if round == 0 {
                    var failure: ChannelError?
                    do { try second.send(loan, count: 1001) } catch { failure = error }
                    #expect(failure == .messageTooLarge(size: 1001, limit: 1000))
                    continue
                }
                try second.send(loan, count: 8)
                #expect(try first.receive(timeout: .seconds(1)) == (0..<8).map { UInt8(truncatingIfNeeded: round + $0) })
            }
        }

        @Test func messagesAreReadInPlaceAndFreedAlsoWhenTheReaderThrows() throws {
            struct Refused: Error {}
            let pipe = try Pipe(maxMessageSize: 64)
            let first = try pipe.connection(.first), second = try pipe.connection(.second)
            try second.send(bytes: [1, 2, 3])
            try second.send(bytes: [4])
            #expect(throws: Refused.self) { try first.receiveInPlace { _ in throw Refused() } }
            #expect(try first.receiveInPlace { Array($0) } == [4])
        }

        /// Batches: `send(contentsOf:)` of more than the ring holds (a 1 KiB ring, records of
        /// 64–128 bytes) crosses the ring's end several times while the receiver takes batches
        /// in place and as arrays; everything arrives once, in order, intact. A batch that
        /// cannot finish times out having sent a prefix.
        @Test func batchesCrossTheRingsEndInOrderAndAPartialBatchIsAPrefix() throws {
            let pipe = try Pipe(maxMessageSize: 100, capacity: 1024)
            let first = try pipe.connection(.first), second = try pipe.connection(.second)
            let messages = (0..<200).map { index in [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 1 + index % 100) }
            var received: [[UInt8]] = []
            var sent = 0
            while sent < messages.count {
                let batch = messages[sent..<min(sent + 7, messages.count)]
                // Enough room for this batch? Seven records of at most 128 bytes fit an empty ring.
                try second.send(contentsOf: batch, timeout: .seconds(10))
                sent += batch.count
                if sent % 2 == 0 {
                    _ = try first.receiveInPlace(upTo: 3, timeout: .seconds(10)) { received.append(Array($0)) }
                }
                while try first.poll() { received += try first.receive(upTo: 5, timeout: .seconds(10)) }
            }
            #expect(received == messages)
            // A batch that does not fit (a fresh ring, so no padding): a prefix is sent, then the
            // timeout.
            let fresh = try Pipe(maxMessageSize: 100, capacity: 1024)
            let reader = try fresh.connection(.first), writer = try fresh.connection(.second)
            let big = [UInt8](repeating: 7, count: 100)  // a 128-byte record: eight fill the ring
            #expect(throws: ChannelError.timedOut) { try writer.send(contentsOf: Array(repeating: big, count: 10), timeout: .milliseconds(20)) }
            var prefix = 0
            while try reader.poll() { prefix += try reader.receive(upTo: 100, timeout: .seconds(1)).count }
            #expect(prefix == 8)
            // The buffer variant, and a reader that throws: what it was given is consumed.
            struct Refused: Error {}
            let words: [[UInt8]] = [[1], [2, 2], [3, 3, 3]]
            try words[0].withUnsafeBytes { a in
                try words[1].withUnsafeBytes { b in
                    try words[2].withUnsafeBytes { c in try second.send(contentsOf: [a, b, c], timeout: .seconds(1)) }
                }
            }
            var seen = 0
            #expect(throws: Refused.self) {
                _ = try first.receiveInPlace(upTo: 3, timeout: .seconds(1)) { _ in
                    seen += 1
                    if seen == 2 { throw Refused() }
                }
            }
            #expect(seen == 2)
            #expect(try first.receive(upTo: 3, timeout: .seconds(1)) == [[3, 3, 3]])
        }

        @Test func eachEndIsHeldByOneConnectionAtATime() throws {
            let pipe = try Pipe(maxMessageSize: 64)
            var first: Connection? = try pipe.connection(.first)
            #expect(throws: ChannelError.endTaken(pid: getpid())) { _ = try pipe.connection(.first) }
            first = nil
            _ = first
            // Released, but closed with its connection: the new holder sees the end of the stream.
            let again = try pipe.connection(.first)
            #expect(throws: ChannelError.endOfStream) { _ = try again.receive(timeout: .seconds(1)) }
        }

        @Test func namedPipesAttachWithTheSameConfigurationOnly() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try Pipe(name: name, mode: .createExclusive, maxMessageSize: 128, capacity: 4096)
            #expect(throws: SharedObjectError.self) { _ = try Pipe(name: name, mode: .openExisting, maxMessageSize: 256, capacity: 4096) }
            let other = try Pipe(name: name, mode: .openExisting, maxMessageSize: 128, capacity: 4096)
            let a = try owner.connection(.first), b = try other.connection(.second)
            try b.send(bytes: [42])
            #expect(try a.receive() == [42])
            try owner.unlink()
        }
    }
}
