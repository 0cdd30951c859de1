import Foundation
import Glibc
@testable import ShmIPC
import Testing

extension ShmIPCTests {
    @Suite struct LockCrossProcessTests {
        /// 50 times: a helper holds the lock (an RLock at depth 2 every other time) and is
        /// SIGKILLed. Even rounds: this process acquires afterwards; odd rounds: a thread of this
        /// process is already parked on the lock when the holder dies. Either way the lock comes
        /// with `.previousOwnerDied` within the 1 s timeout, and is usable afterwards.
        @Test func aKilledHolderHandsTheLockOnWithTheOwnerDiedResult() throws {
            for round in 0..<50 {
                let name = TestNames.unique("lock\(round)")
                defer { TestNames.cleanUp(name) }
                if round % 2 == 0 {
                    let sut = try Lock(name: name, mode: .createExclusive)
                    let holder = try Helper.start("lock-hold", ["lock", name.rawValue])
                    try #require(Helper.waitForOutput(holder, containing: "holding"), "\(holder.output)")
                    #expect(holder.kill() == .signaled(SIGKILL))
                    #expect(try sut.acquire(timeout: .seconds(1)) == .previousOwnerDied)
                    try sut.markConsistent()
                    try sut.release()
                    #expect(try sut.acquire(timeout: .seconds(1)) == .acquired)
                    try sut.release()
                    try sut.unlink()
                } else {
                    let sut = try RLock(name: name, mode: .createExclusive)
                    let holder = try Helper.start("lock-hold", ["rlock", name.rawValue])
                    try #require(Helper.waitForOutput(holder, containing: "holding"), "\(holder.output)")
                    let parked = DispatchSemaphore(value: 0)
                    let result = ResultBox<Result<LockAcquisition, SyncError>>()
                    Thread {
                        parked.signal()
                        let outcome = Result { () throws(SyncError) in try sut.acquire(timeout: .seconds(30)) }
                        if case .success = outcome {
                            #expect(sut.recursionDepth == 1)
                            try? sut.markConsistent()
                            try? sut.release()
                        }
                        result.set(outcome)
                    }.start()
                    try #require(parked.wait(timeout: .now() + 30) == .success)
                    Sys.sleep(.milliseconds(5))  // let it spin out and park
                    let killedAt = ContinuousClock.now
                    #expect(holder.kill() == .signaled(SIGKILL))
                    let outcome = try #require(result.wait(timeout: .seconds(30)))
                    #expect(outcome == .success(.previousOwnerDied))
                    #expect(ContinuousClock.now - killedAt < .seconds(1), "the parked waiter took over late")
                    #expect(try sut.acquire(timeout: .seconds(1)) == .acquired)
                    try sut.release()
                    try sut.unlink()
                }
            }
        }

        /// A named lock whose holder (a helper process) was SIGKILLed while holding it.
        private func lockWithDeadHolder(_ name: SegmentName) throws -> Lock {
            let lock = try Lock(name: name, mode: .createExclusive)
            let holder = try Helper.start("lock-hold", ["lock", name.rawValue])
            try #require(Helper.waitForOutput(holder, containing: "holding"), "\(holder.output)")
            #expect(holder.kill() == .signaled(SIGKILL))
            return lock
        }

        @Test func withLockRunsTheRecoveryWhenTheHolderDied() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try lockWithDeadHolder(name)
            var recovered = false
            let value = try sut.withLock(timeout: .seconds(1), recovering: { recovered = true }) { 42 }
            #expect(recovered)
            #expect(value == 42)
            #expect(try sut.acquire(timeout: .seconds(1)) == .acquired)  // consistent again
            try sut.release()
            try sut.unlink()
        }

        @Test func withLockWithoutRecoveryThrowsAndLeavesTheLockInconsistent() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try lockWithDeadHolder(name)
            #expect(throws: SyncError.previousOwnerDied) { try sut.withLock(timeout: .seconds(1)) {} }
            #expect(sut.isLocked == false)
            #expect(try sut.acquire(timeout: .seconds(1)) == .previousOwnerDied)
            try sut.release()
            try sut.unlink()
        }

        @Test(arguments: ["lock", "rlock"])
        func twoProcessesIncrementingUnderTheLockGetAnExactTotal(kind: String) throws {
            let lockName = TestNames.unique("lock"), dataName = TestNames.unique("data"), startName = TestNames.unique("start")
            defer { [lockName, dataName, startName].forEach(TestNames.cleanUp) }
            let lock: AnyObject = kind == "lock"
                ? try Lock(name: lockName, mode: .createExclusive) : try RLock(name: lockName, mode: .createExclusive)
            let data = try SharedMemory.create(name: dataName, size: 64)
            let start = try Barrier(name: startName, mode: .createExclusive, parties: 2)
            let iterations = 100_000
            let arguments = [kind, lockName.rawValue, dataName.rawValue, startName.rawValue, "2", "\(iterations)"]
            let first = try Helper.start("lock-count", arguments)
            let second = try Helper.start("lock-count", arguments)
            let statuses = [Helper.finish(first, timeout: .seconds(300)), Helper.finish(second, timeout: .seconds(300))]
            #expect(statuses == [.exited(0), .exited(0)], "\(first.output) \(second.output)")
            #expect(data.withUnsafeMutableBytes { $0.load(as: UInt64.self) } == UInt64(2 * iterations))
            withExtendedLifetime(lock) {}
            try start.unlink()
            try data.unlink()
            try (lock as? Lock)?.unlink()
            try (lock as? RLock)?.unlink()
        }
    }
}

/// A value handed from a thread to the test, with a watchdog on the wait.
final class ResultBox<T: Sendable>: @unchecked Sendable {
    /// `@unchecked Sendable`: `value` is guarded by `lock`; `ready` orders the hand-over.
    private let lock = NSLock()
    private var value: T?
    private let ready = DispatchSemaphore(value: 0)

    func set(_ newValue: T) {
        lock.withLock { value = newValue }
        ready.signal()
    }

    /// Whether a value was set (without waiting).
    var isSet: Bool { lock.withLock { value != nil } }

    func wait(timeout: Duration) -> T? {
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        guard ready.wait(timeout: .now() + seconds) == .success else { return nil }
        return lock.withLock { value }
    }
}
