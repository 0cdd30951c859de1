import Glibc
import ShmIPC
import ShmIPCTestSupport
import SystemPackage

/// Scenarios for the byte-channel tests. Pipes come inherited: `<fd> <limit> <capacity>` name
/// the descriptor and the configuration to attach with; the helper takes the second end.
extension Helper {
    static let channelScenarios: [String: @Sendable ([String]) -> Void] = [
        // pipe-echo <fd> <limit> <capacity>: sends every message back until end of stream.
        "pipe-echo": { args in
            let connection = secondEnd(args)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, connection.maxMessageSize), alignment: 16)
            var echoed = 0
            while true {
                let length: Int
                do throws(ChannelError) { length = try connection.receive(into: buffer, timeout: .seconds(60)) }
                catch .endOfStream { break } catch { fail("receive: \(error)") }
                attempt { () throws(ChannelError) in
                    try connection.send(bytes: UnsafeRawBufferPointer(rebasing: buffer[..<length]), timeout: .seconds(60))
                }
                echoed += 1
            }
            say("echoed \(echoed)")
        },
        // pipe-stream <fd> <limit> <capacity> <count> <seed> <min> <max>: sends MessageStream
        // messages 0..<count, then closes.
        "pipe-stream": { args in
            let connection = secondEnd(args)
            let stream = MessageStream(seed: UInt64(args[4])!, sizes: Int(args[5])!...Int(args[6])!)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, stream.sizes.upperBound), alignment: 16)
            for index in 0..<Int(args[3])! {
                let length = stream.write(index, into: buffer)
                attempt { () throws(ChannelError) in
                    try connection.send(bytes: UnsafeRawBufferPointer(rebasing: buffer[..<length]), timeout: .seconds(60))
                }
            }
            connection.close()
            say("sent")
        },
        // pipe-verify <fd> <limit> <capacity> <count> <seed> <min> <max>: receives count
        // messages in place, checking each byte, then expects end of stream.
        "pipe-verify": { args in
            let connection = secondEnd(args)
            let stream = MessageStream(seed: UInt64(args[4])!, sizes: Int(args[5])!...Int(args[6])!)
            for index in 0..<Int(args[3])! {
                let ok: Bool
                do { ok = try connection.receiveInPlace(timeout: .seconds(60)) { stream.matches(index, $0) } }
                catch { fail("receive \(index): \(error)") }
                if !ok { fail("message \(index) differs") }
            }
            do throws(ChannelError) { _ = try connection.receive(timeout: .seconds(60)); fail("a message past the end") }
            catch .endOfStream {} catch { fail("after the last message: \(error)") }
            say("verified \(args[3])")
        },
        // pipe-chaos-send <fd> <limit> <capacity> <start> <seed> <min> <max>: sends MessageStream
        // messages start, start + 1, ... until killed; every other one written in place in
        // the ring (a loan), so kills land inside a half-written record.
        "pipe-chaos-send": { args in
            let connection = secondEnd(args)
            let stream = MessageStream(seed: UInt64(args[4])!, sizes: Int(args[5])!...Int(args[6])!)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, stream.sizes.upperBound), alignment: 16)
            var index = Int(args[3])!
            while true {
                if index & 1 == 0 {
                    let loan = attempt { () throws(ChannelError) in try connection.loan(capacity: stream.length(index), timeout: .seconds(60)) }
                    loan.withUnsafeMutableBytes { _ = stream.write(index, into: $0) }
                    do { try connection.send(loan) } catch { fail("send: \(error)") }
                } else {
                    let length = stream.write(index, into: buffer)
                    attempt { () throws(ChannelError) in
                        try connection.send(bytes: UnsafeRawBufferPointer(rebasing: buffer[..<length]), timeout: .seconds(60))
                    }
                }
                if index == Int(args[3])! { say("running") }
                index += 1
            }
        },
        // pipe-chaos-receive <fd> <limit> <capacity> <seed> <min> <max> <state fd>: receives
        // MessageStream messages in place until killed. state[0] is the next index expected
        // (after each message); state[3] counts the receivers since the last message was
        // recorded, the recorder included: each may have died having taken one more, so the
        // first message may skip that many (counted in state[2]); each later one must be the
        // next. A violation counts in state[1] and ends the helper.
        "pipe-chaos-receive": { args in
            let connection = secondEnd(args)
            let stream = MessageStream(seed: UInt64(args[3])!, sizes: Int(args[4])!...Int(args[5])!)
            let state = attempt { () throws(SharedObjectError) in
                try SharedArray<UInt64>(inheriting: FileDescriptor(rawValue: Int32(args[6])!), count: 4)
            }
            var expected = Int(state[0])
            let mayHaveLost = Int(state.add(1, at: 3))
            var first = true
            say("running")
            while true {
                let index: Int?
                do {
                    index = try connection.receiveInPlace(timeout: .seconds(60)) { bytes -> Int? in
                        if stream.matches(expected, bytes) { return expected }
                        guard first else { return nil }
                        return (1...max(1, mayHaveLost)).lazy.map { expected + $0 }.first { mayHaveLost > 0 && stream.matches($0, bytes) }
                    }
                } catch { fail("receive: \(error)") }
                guard let index else {
                    _ = state.add(1, at: 1)
                    fail("expected message \(expected)\(first ? " or the next" : ""), received another")
                }
                if index != expected { _ = state.add(UInt64(index - expected), at: 2) }
                first = false
                expected = index + 1
                state[0] = UInt64(expected)
                state[3] = 1
            }
        },
        // pipe-send-and-hold <fd> <limit> <capacity>: sends "hello", then waits to be killed.
        "pipe-send-and-hold": { args in
            let connection = secondEnd(args)
            attempt { () throws(ChannelError) in try connection.send(bytes: Array("hello".utf8)) }
            say("holding")
            while true { Sys.sleep(.seconds(1)); withExtendedLifetime(connection) {} }
        },
        // pipe-scribble <fd> <limit> <capacity> <milliseconds> <seed>: a hostile peer. Maps the
        // pipe's segment and, until the time is up, writes random words anywhere in the rings'
        // bytes, and forged record heads (random length and kind) where the first end reads.
        // (Control-block attacks, which break the pipe for good, have their own test.)
        "pipe-scribble": { args in
            let memory = attempt { () throws(SharedMemoryError) in try SharedMemory(inheriting: FileDescriptor(rawValue: Int32(args[0])!)) }
            let capacity = Int(args[2])!
            let until = Deadline.after(.milliseconds(Int(args[3])!))
            var random = UInt64(args[4])!
            func next() -> UInt64 { random = MessageStream.mix(random); return random }
            var writes = 0
            memory.withUnsafeMutableBytes { bytes in
                let ring0 = 128, data0 = ring0 + 640  // after the segment header: ring 0's control, then its bytes
                while !until.hasPassed {
                    let r = next()
                    switch r & 63 {
                    case 0...7:  // random words anywhere in either ring's bytes
                        let ring = Int(next() & 1), offset = Int(next() % UInt64(capacity / 8)) * 8
                        bytes.storeBytes(of: next(), toByteOffset: data0 + ring * (640 + capacity) + offset, as: UInt64.self)
                    default:  // a forged record head where the reader looks next
                        let head = bytes.load(fromByteOffset: ring0 + 128, as: UInt64.self)
                        let offset = Int(head & UInt64(capacity - 1) & ~15)
                        let lengths: [UInt32] = [0, 1, UInt32(truncatingIfNeeded: next()), UInt32(capacity), UInt32(capacity - offset - 15), 0xFFFF_FFFF, 17]
                        bytes.storeBytes(of: lengths[Int(next() % UInt64(lengths.count))], toByteOffset: data0 + offset + 8, as: UInt32.self)
                        bytes.storeBytes(of: UInt32(truncatingIfNeeded: next() % 4), toByteOffset: data0 + offset + 12, as: UInt32.self)
                        bytes.storeBytes(of: head &+ 1, toByteOffset: data0 + offset, as: UInt64.self)
                    }
                    writes += 1
                }
            }
            say("scribbled \(writes)")
        },
        // mq-chaos-put <fd> <limit> <capacity> <producer> <min> <max>: puts MessageStream
        // messages (seed: producer) 0, 1, 2, ... until killed, the first 8 bytes replaced by
        // producer << 48 | index; says "running" after the first.
        "mq-chaos-put": { args in
            let queue = attempt { () throws(SharedObjectError) in
                try MessageQueue(inheriting: FileDescriptor(rawValue: Int32(args[0])!), maxMessageSize: Int(args[1])!, capacity: Int(args[2])!, waitStrategy: .spin)
            }
            let producer = UInt64(args[3])!
            let stream = MessageStream(seed: producer, sizes: Int(args[4])!...Int(args[5])!)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(8, stream.sizes.upperBound), alignment: 16)
            var index = 0
            while true {
                let length = stream.write(index, into: buffer)
                buffer.storeBytes(of: producer << 48 | UInt64(index), as: UInt64.self)
                attempt { () throws(ChannelError) in
                    try queue.put(bytes: UnsafeRawBufferPointer(rebasing: buffer[..<length]), timeout: .seconds(60))
                }
                if index == 0 { say("running") }
                index += 1
            }
        },
        // mq-produce <name> <limit> <capacity> <count> <seed> <min> <max>: puts MessageStream
        // messages 0..<count into a named MessageQueue.
        "mq-produce": { args in
            let queue = attempt { () throws(SharedObjectError) in
                try MessageQueue(name: segmentName(args[0]), mode: .openExisting, maxMessageSize: Int(args[1])!, capacity: Int(args[2])!)
            }
            let seed = UInt64(args[4])!
            let stream = MessageStream(seed: seed, sizes: Int(args[5])!...Int(args[6])!)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, stream.sizes.upperBound), alignment: 16)
            for index in 0..<Int(args[3])! {
                let length = stream.write(index, into: buffer)
                // The first 8 bytes carry the seed (top 16 bits) and the index, so the consumer
                // knows whose message it got even when two producers' messages look alike.
                buffer.storeBytes(of: seed << 48 | UInt64(index), as: UInt64.self)
                attempt { () throws(ChannelError) in
                    try queue.put(bytes: UnsafeRawBufferPointer(rebasing: buffer[..<length]), timeout: .seconds(60))
                }
            }
            say("produced")
        },
    ]

    /// Attaches the inherited pipe named by `<fd> <limit> <capacity>` and takes its second end.
    static func secondEnd(_ args: [String]) -> Connection {
        let pipe = attempt { () throws(SharedObjectError) in
            try Pipe(inheriting: FileDescriptor(rawValue: Int32(args[0])!), maxMessageSize: Int(args[1])!, capacity: Int(args[2])!)
        }
        return attempt { () throws(ChannelError) in try pipe.connection(.second) }
    }
}
