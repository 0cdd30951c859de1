import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import SystemPackage
import Testing

extension ShmIPCTests {
    @Suite struct ChannelSafetyTests {
        /// A hostile peer scribbles on the pipe's shared memory (random words anywhere, random
        /// heads and tails, forged record heads exactly where this end reads next) while this
        /// end receives, polls and sends through every API. Every call must return a message
        /// within the limit or a typed error; the process must not crash. After a corruption,
        /// the end is dropped and taken again.
        @Test func aHostileWriterGetsTypedErrorsNeverACrash() throws {
            let pipe = try Pipe(maxMessageSize: 1000, capacity: 4096)
            let scribbler = try Helper.start(
                "pipe-scribble", PipeTests.attach(pipe) + ["3000", "\(UInt64(getpid()))"], descriptors: PipeTests.handOver(pipe))
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1000, alignment: 16)
            defer { buffer.deallocate() }
            var outcomes: [String: Int] = [:]
            var rounds = 0
            let until = Deadline.after(.milliseconds(2500))
            while !until.hasPassed {
                rounds += 1
                let connection: Connection
                do { connection = try pipe.connection(.first, waitStrategy: .spin) } catch {
                    outcomes["take: \(kind(error))", default: 0] += 1
                    continue
                }
                for call in 0..<200 {
                    do {
                        switch call % 5 {
                        case 0: #expect(try connection.receive(into: buffer, timeout: .milliseconds(1)) <= 1000)
                        case 1: #expect(try connection.receive(timeout: .milliseconds(1)).count <= 1000)
                        case 2: #expect(try connection.receiveInPlace(timeout: .milliseconds(1)) { $0.count } <= 1000)
                        case 3: _ = try connection.poll(timeout: .milliseconds(1))
                        default: _ = try connection.trySend(bytes: UnsafeRawBufferPointer(rebasing: buffer[..<(call % 700)]))
                        }
                        outcomes["ok", default: 0] += 1
                    } catch let error as ChannelError {
                        outcomes[kind(error), default: 0] += 1
                        if case .corrupted = error { break }
                    } catch {
                        Issue.record("an untyped error: \(error)")
                    }
                }
            }
            #expect(Helper.finish(scribbler) == .exited(0), "\(scribbler.output)")
            let allowed: Set = ["ok", "corrupted", "timedOut", "endOfStream", "brokenPipe", "take: endTaken", "take: corrupted"]
            #expect(Set(outcomes.keys).isSubset(of: allowed), "\(outcomes)")
            #expect(outcomes["corrupted", default: 0] > 0, "the fuzzer never got through: \(outcomes)")
            #expect(outcomes["ok", default: 0] > 0, "\(outcomes)")
            print("hostile writer: \(rounds) rounds, \(outcomes)")
        }

        /// A sender killed after publishing a record and before storing its tail (the long
        /// chaos run found it: the next sender started at the stale tail, behind what the
        /// receiver had taken, and reported corruption): the next sender moves the tail past
        /// the published records, and the stream goes on.
        @Test func aSenderKilledBetweenCommitAndTailIsRecoveredByTheNext() throws {
            let pipe = try Pipe(maxMessageSize: 200, capacity: 4096)
            let receiver = try pipe.connection(.first)
            let ring = pipe.ring(0)
            let message = [UInt8](repeating: 7, count: 200)   // a 256-byte record
            do {
                let sender = try pipe.connection(.second)
                try sender.send(bytes: [0], timeout: .seconds(1))   // a 64-byte record: 256-byte ones no longer end the lap
                #expect(try receiver.receive(timeout: .seconds(1)) == [0])
                // Up to the end of a lap, so the next record needs a wrap marker first.
                while ring.tail.load(ordering: .relaxed) % 4096 + 256 <= 4096 {
                    try sender.send(bytes: message, timeout: .seconds(1))
                    #expect(try receiver.receive(timeout: .seconds(1)) == message)
                }
                let stale = ring.tail.load(ordering: .relaxed)
                try sender.send(bytes: [UInt8](repeating: 9, count: 200), timeout: .seconds(1))   // a wrap marker, then the record
                ring.tail.store(stale, ordering: .relaxed)   // as if it died before storing the tail
            }
            // A killed sender closes nothing: undo what this one's deinit closed.
            for k in 0..<2 { pipe.ring(k).closedFlag.store(0, ordering: .relaxed) }
            #expect(try receiver.receive(timeout: .seconds(1)) == [UInt8](repeating: 9, count: 200))
            let next = try pipe.connection(.second)
            try next.send(bytes: [4, 4, 4], timeout: .seconds(1))
            #expect(try receiver.receive(timeout: .seconds(1)) == [4, 4, 4])
        }

        /// Heads and tails a well-behaved peer never writes: the end that reads them reports
        /// corruption (for good) instead of computing an offset from them.
        @Test func inconsistentIndicesAreReportedAsCorruption() throws {
            for value in [UInt64(7), UInt64(1) << 40] {
                let pipe = try Pipe(maxMessageSize: 64, capacity: 256)
                let first = try pipe.connection(.first), second = try pipe.connection(.second)
                // Ring 1 carries first → second: scribble on its head (the consumer's index).
                let ring = UnsafeMutableRawPointer(pipe.storage.state) + pipe.geometry.stateSize
                ring.storeBytes(of: value, toByteOffset: 128, as: UInt64.self)
                var failure: ChannelError?
                do {
                    for _ in 0..<32 { try first.send(bytes: [1, 2, 3], timeout: .milliseconds(10)) }
                } catch { failure = error }
                if case .corrupted = failure {} else { Issue.record("head \(value): \(String(describing: failure))") }
                if case .corrupted = Result(catching: { () throws(ChannelError) in try first.send(bytes: [1]) }).failure {} else {
                    Issue.record("head \(value): the corruption did not stick")
                }
                _ = second
            }
            // A scribbled tail is read only by a producer taking the end: it refuses it.
            let pipe = try Pipe(maxMessageSize: 64, capacity: 256)
            let ring = UnsafeMutableRawPointer(pipe.storage.state) + pipe.geometry.stateSize
            ring.storeBytes(of: UInt64(1) << 40, toByteOffset: 0, as: UInt64.self)
            if case .corrupted = Result(catching: { () throws(ChannelError) in try pipe.connection(.first) }).failure {} else {
                Issue.record("a tail of 2^40 was accepted")
            }
        }

        func kind(_ error: any Error) -> String {
            guard let error = error as? ChannelError else { return "\(type(of: error))" }
            switch error {
            case .corrupted: return "corrupted"
            case .endTaken: return "endTaken"
            case .timedOut: return "timedOut"
            case .endOfStream: return "endOfStream"
            case .brokenPipe: return "brokenPipe"
            default: return "\(error)"
            }
        }
    }
}
