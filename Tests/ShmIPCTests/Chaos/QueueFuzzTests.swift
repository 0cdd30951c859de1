import CShim
import Glibc
@testable import ShmIPC
import Testing

extension ShmIPCTests {
    /// Random words written over a queue's control block and slots (what a hostile peer can
    /// write), then every API called with short timeouts: each call returns or throws a typed
    /// error in bounded time; none crashes or reads outside the mapping.
    @Suite struct QueueFuzzTests {
        static func scribble(_ base: UnsafeMutableRawPointer, bytes: Int, _ random: inout Xorshift) {
            for _ in 0..<(1 + Int(random.next() % 8)) {
                let offset = Int(random.next() % UInt64(bytes / 8)) * 8
                var word = random.next()
                if random.next() % 2 == 0 { word %= 64 }   // plausible indices and lengths
                base.storeBytes(of: word, toByteOffset: offset, as: UInt64.self)
            }
        }

        @Test(.timeLimit(ShmIPCTests.hangWatchdog)) func scribbledMPMCQueuesGiveTypedErrorsOrValuesNeverAHang() throws {
            var random = Xorshift(seed: 11)
            var outcomes: [String: Int] = [:]
            for _ in 0..<300 {
                let sut = try Queue<UInt64>(capacity: 8, waitStrategy: .spin)
                for i in 0..<5 as Range<UInt64> { try sut.put(i) }
                let bytes = MemoryLayout<shmipc_queue_state>.stride + 8 * sut.control.stride
                Self.scribble(UnsafeMutableRawPointer(sut.control.state), bytes: bytes, &random)
                for i in 0..<20 {
                    do {
                        switch i % 4 {
                        case 0: _ = try sut.tryPut(UInt64(i))
                        case 1: _ = try sut.tryGet()
                        case 2: try sut.put(UInt64(i), timeout: .milliseconds(2))
                        default: _ = try sut.get(timeout: .milliseconds(2))
                        }
                        outcomes["ok", default: 0] += 1
                    } catch {
                        outcomes["\(error)", default: 0] += 1
                    }
                    _ = (sut.count, sut.abandoned)
                }
            }
            print("scribbled MPMC queues: \(outcomes)")
            #expect(Set(outcomes.keys).isSubset(of: ["ok", "timed out", "the queue is closed"]), "\(outcomes)")
        }

        @Test(.timeLimit(ShmIPCTests.hangWatchdog)) func scribbledMessageQueuesGiveTypedErrorsOrMessagesNeverAHang() throws {
            var random = Xorshift(seed: 12)
            var outcomes: [String: Int] = [:]
            for _ in 0..<300 {
                let sut = try MessageQueue(maxMessageSize: 64, capacity: 8, waitStrategy: .spin)
                for i in 0..<5 { try sut.put(bytes: [UInt8](repeating: UInt8(i), count: i * 10)) }
                let bytes = MemoryLayout<shmipc_queue_state>.stride + 8 * sut.control.stride
                Self.scribble(UnsafeMutableRawPointer(sut.control.state), bytes: bytes, &random)
                for i in 0..<20 {
                    do {
                        switch i % 4 {
                        case 0: _ = try sut.tryPut(bytes: UnsafeRawBufferPointer(start: nil, count: 0))
                        case 1: #expect((try sut.tryGet()?.count ?? 0) <= 64)
                        case 2: try sut.put(bytes: [1, 2, 3], timeout: .milliseconds(2))
                        default: #expect(try sut.get(timeout: .milliseconds(2)).count <= 64)
                        }
                        outcomes["ok", default: 0] += 1
                    } catch {  // typed: ChannelError
                        outcomes[String("\(error)".prefix(12)), default: 0] += 1
                    }
                }
            }
            print("scribbled message queues: \(outcomes)")
            #expect(outcomes["ok", default: 0] > 0)
        }

        @Test(.timeLimit(ShmIPCTests.hangWatchdog)) func scribbledSPSCQueuesGiveTypedErrorsOrValuesNeverAHang() throws {
            var random = Xorshift(seed: 13)
            var outcomes: [String: Int] = [:]
            for _ in 0..<300 {
                let sut = try SPSCQueue<UInt64>(capacity: 8)
                var producer = try sut.makeProducer(waitStrategy: .spin)
                var consumer = try sut.makeConsumer(waitStrategy: .spin)
                for i in 0..<5 as Range<UInt64> { try producer.put(i) }
                let bytes = MemoryLayout<shmipc_queue_state>.stride + 8 * sut.control.stride
                // Not the role words (a forged live pid there is a role taken, by design).
                Self.scribble(UnsafeMutableRawPointer(sut.control.state), bytes: 384, &random)
                Self.scribble(UnsafeMutableRawPointer(sut.control.state) + 640, bytes: bytes - 640, &random)
                for i in 0..<20 {
                    do {
                        switch i % 4 {
                        case 0: _ = try producer.tryPut(UInt64(i))
                        case 1: _ = try consumer.tryGet()
                        case 2: try producer.put(UInt64(i), timeout: .milliseconds(2))
                        default: _ = try consumer.get(timeout: .milliseconds(2))
                        }
                        outcomes["ok", default: 0] += 1
                    } catch {
                        outcomes["\(error)", default: 0] += 1
                    }
                }
            }
            print("scribbled SPSC queues: \(outcomes)")
            #expect(Set(outcomes.keys).isSubset(of: ["ok", "timed out", "the queue is closed"]), "\(outcomes)")
        }
    }
}
