import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import SystemPackage
import Testing

extension ShmIPCTests {
    /// A hostile peer (a helper process) writes forged words over an object's shared state —
    /// random words, small numbers, live thread ids, sequences and indices a step or a lap off —
    /// while this process calls every API with short timeouts. Every call must return (a value
    /// in bounds) or throw a typed error within its time; the process must not crash or hang.
    @Suite struct HostileFuzzTests {
        /// Runs `calls` (the round number given) until the scribbler, started on `descriptor`,
        /// is done; returns the outcomes: "ok", or the error's type and case.
        static func underAttack(
            _ descriptor: FileDescriptor, skip: Int = 0, seed: UInt64, _ calls: (Int) throws -> Void
        ) throws -> [String: Int] {
            let scribbler = try Helper.start(
                "segment-scribble", ["10", "\(skip)", "1500", "\(seed)"], descriptors: [(descriptor, 10)])
            var outcomes: [String: Int] = [:]
            var round = 0
            while scribbler.wait(deadline: .now) == nil {
                do {
                    try calls(round)
                    outcomes["ok", default: 0] += 1
                } catch {
                    let name = "\(error)".prefix { $0 != ":" && $0 != "(" }
                    outcomes["\(type(of: error)): \(name)", default: 0] += 1
                }
                round += 1
            }
            #expect(Helper.finish(scribbler) == .exited(0), "\(scribbler.output)")
            #expect(outcomes["ok", default: 0] > 0, "\(outcomes)")
            return outcomes
        }

        @Test(.timeLimit(ShmIPCTests.hangWatchdog)) func anMPMCQueueUnderAttackGivesValuesOrTypedErrors() throws {
            let sut = try Queue<UInt64>(capacity: 8, waitStrategy: .spin)
            let outcomes = try Self.underAttack(sut.inheritableDescriptor!, seed: 21) { round in
                if round % 64 == 0 { sut.control.closedFlag.store(0, ordering: .relaxed) }  // a forged close ends most calls at once
                switch round % 6 {
                case 0: _ = try sut.tryPut(UInt64(round))
                case 1: _ = try sut.tryGet()
                case 2: try sut.put(UInt64(round), timeout: .milliseconds(1))
                case 3: _ = try sut.get(timeout: .milliseconds(1))
                case 4: try sut.put(contentsOf: [1, 2, 3], timeout: .milliseconds(1))
                default: _ = (sut.count, sut.abandoned, sut.isFull)
                }
            }
            print("hostile MPMC queue: \(outcomes)")
            #expect(Set(outcomes.keys).isSubset(of: ["ok", "QueueError: timed out", "QueueError: the queue is closed"]), "\(outcomes)")
        }

        @Test(.timeLimit(ShmIPCTests.hangWatchdog)) func aMessageQueueUnderAttackGivesMessagesInBoundsOrTypedErrors() throws {
            let sut = try MessageQueue(maxMessageSize: 64, capacity: 8, waitStrategy: .spin)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)
            defer { buffer.deallocate() }
            let outcomes = try Self.underAttack(sut.inheritableDescriptor!, seed: 22) { round in
                if round % 64 == 0 { sut.control.closedFlag.store(0, ordering: .relaxed) }  // as above
                switch round % 5 {
                case 0: _ = try sut.tryPut(bytes: UnsafeRawBufferPointer(rebasing: buffer[..<(round % 65)]))
                case 1: #expect((try sut.tryGet()?.count ?? 0) <= 64)
                case 2: try sut.put(bytes: [1, 2, 3], timeout: .milliseconds(1))
                case 3: #expect(try sut.get(into: buffer, timeout: .milliseconds(1)) <= 64)
                default: _ = (sut.count, sut.abandoned)
                }
            }
            print("hostile message queue: \(outcomes)")
            #expect(outcomes.keys.allSatisfy { $0 == "ok" || $0.hasPrefix("ChannelError: ") }, "\(outcomes)")
        }

        @Test(.timeLimit(ShmIPCTests.hangWatchdog)) func anSPSCQueueUnderAttackGivesValuesOrTypedErrors() throws {
            let sut = try SPSCQueue<UInt64>(capacity: 8)
            var producer = try sut.makeProducer(waitStrategy: .spin)
            var consumer = try sut.makeConsumer(waitStrategy: .spin)
            let outcomes = try Self.underAttack(sut.inheritableDescriptor!, seed: 23) { round in
                if round % 64 == 0 { sut.control.closedFlag.store(0, ordering: .relaxed) }  // as above
                switch round % 5 {
                case 0: _ = try producer.tryPut(UInt64(round))
                case 1: _ = try consumer.tryGet()
                case 2: try producer.put(UInt64(round), timeout: .milliseconds(1))
                case 3: _ = try consumer.get(timeout: .milliseconds(1))
                default: _ = (sut.count, sut.isEmpty)
                }
            }
            print("hostile SPSC queue: \(outcomes)")
            #expect(Set(outcomes.keys).isSubset(of: ["ok", "QueueError: timed out", "QueueError: the queue is closed"]), "\(outcomes)")
        }

        /// The value's buffers, index and sequences (not its lock: a peer holding the lock is
        /// a peer holding the lock, not a corruption).
        @Test(.timeLimit(ShmIPCTests.hangWatchdog)) func aValueUnderAttackGivesValuesNeverAHang() throws {
            let sut = try Value<Pattern64>(Pattern64(1))
            let outcomes = try Self.underAttack(sut.inheritableDescriptor!, skip: MemoryLayout<shmipc_lock_state_view>.size, seed: 24) { round in
                if round % 2 == 0 { _ = sut.load() } else { sut.store(Pattern64(UInt64(round))) }
            }
            print("hostile value: \(outcomes)")
            #expect(Set(outcomes.keys) == ["ok"], "\(outcomes)")
        }

        @Test(.timeLimit(ShmIPCTests.hangWatchdog)) func aLockUnderAttackGivesTypedErrorsNeverAHang() throws {
            let sut = try Lock(waitStrategy: .spin)
            let outcomes = try Self.underAttack(sut.inheritableDescriptor!, seed: 25) { round in
                switch round % 3 {
                case 0: _ = try sut.acquire(timeout: .milliseconds(1)); try sut.release()
                case 1: if sut.tryAcquire() != nil { try sut.release() }
                default: try sut.markConsistent()
                }
            }
            print("hostile lock: \(outcomes)")
            #expect(outcomes.keys.allSatisfy { $0 == "ok" || $0.hasPrefix("SyncError: ") }, "\(outcomes)")
        }
    }
}

/// The size of a lock's state, as the value's state starts with one.
typealias shmipc_lock_state_view = (UInt32, UInt32, UInt32, UInt32)
