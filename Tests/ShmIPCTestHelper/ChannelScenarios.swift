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
