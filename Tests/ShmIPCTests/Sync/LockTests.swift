import Foundation
import Glibc
@testable import ShmIPC
import Synchronization
import Testing

extension ShmIPCTests {
    @Suite struct LockTests {
        @Test func anUncontendedLockIsAcquiredAndReleased() throws {
            let sut = try Lock()
            #expect(try sut.acquire() == .acquired)
            #expect(sut.isLocked)
            try sut.release()
            #expect(sut.isLocked == false)
            #expect(sut.tryAcquire() == .acquired)
            try sut.release()
        }

        @Test func releaseWithoutAcquireIsATypedError() throws {
            let sut = try Lock()
            #expect(throws: SyncError.notLocked) { try sut.release() }
        }

        @Test func releaseByAnotherThreadIsATypedError() throws {
            let sut = try Lock()
            _ = try sut.acquire()
            let error = onAnotherThread { () -> SyncError? in
                do throws(SyncError) { try sut.release(); return nil } catch { return error }
            }
            #expect(error == .notOwner)
            try sut.release()
        }

        @Test func reacquiringANonRecursiveLockIsReportedNotDeadlocked() throws {
            let sut = try Lock()
            _ = try sut.acquire()
            #expect(throws: SyncError.wouldDeadlock) { _ = try sut.acquire(timeout: .seconds(30)) }
            try sut.release()
        }

        @Test func anAcquireTimesOutNoEarlierThanItsDeadline() throws {
            let sut = try Lock()
            try holdOnAnotherThread(sut) {
                let deadline = Deadline.after(.milliseconds(60))
                #expect(throws: SyncError.timedOut) { _ = try sut.acquire(timeout: .milliseconds(60)) }
                #expect(Deadline.now >= deadline)
                #expect(sut.tryAcquire() == nil)
            }
        }

        @Test(arguments: [WaitStrategy.spin, .park, .default])
        func aWaiterGetsTheLockWhenItIsReleased(strategy: WaitStrategy) throws {
            let sut = try Lock(waitStrategy: strategy)
            let counter = Mutex(0)
            let threads = 4, rounds = 2_000
            let done = DispatchGroup()
            for _ in 0..<threads {
                done.enter()
                Thread {
                    for _ in 0..<rounds {
                        _ = try? sut.acquire(timeout: .seconds(30))
                        counter.withLock { $0 += 1 }
                        try? sut.release()
                    }
                    done.leave()
                }.start()
            }
            #expect(done.wait(timeout: .now() + 60) == .success)
            #expect(counter.withLock { $0 } == threads * rounds)
        }

        @Test func attachingALockToAnotherKindOfObjectFails() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let rlock = try RLock(name: name, mode: .createExclusive)
            #expect(throws: SharedObjectError.kindMismatch(expected: .lock, found: .recursiveLock)) {
                _ = try Lock(name: name, mode: .openExisting)
            }
            try rlock.unlink()
        }

        @Test func aNamedLockIsSharedByName() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try Lock(name: name, mode: .createExclusive)
            let other = try Lock(name: name, mode: .openExisting)
            _ = try owner.acquire()
            #expect(other.isLocked)
            #expect(throws: SharedMemoryError.notOwner(name)) { try other.unlink() }
            try owner.release()
            try owner.unlink()
        }

        @Test func theTimeoutHonoursItsDeadlineAcrossSignals() throws {
            let sut = try Lock(waitStrategy: .park)
            try holdOnAnotherThread(sut) {
                let outcome = try interruptedBySignals { () -> SyncError? in
                    do throws(SyncError) { _ = try sut.acquire(timeout: .milliseconds(150)); return nil } catch { return error }
                }
                #expect(outcome.result == .timedOut)
                #expect(outcome.elapsed >= .milliseconds(150))
                #expect(outcome.signals > 0)
            }
        }

        // MARK: recursive

        @Test func aRecursiveLockIsReleasedOnlyByTheLastRelease() throws {
            let sut = try RLock()
            for depth in 1...3 {
                #expect(try sut.acquire() == .acquired)
                #expect(sut.recursionDepth == depth)
            }
            try sut.release()
            try sut.release()
            #expect(sut.isOwnedByCurrentThread)
            let otherGotIt = onAnotherThread { sut.tryAcquire() != nil }
            #expect(otherGotIt == false)
            try sut.release()
            #expect(sut.isOwnedByCurrentThread == false)
            #expect(throws: SyncError.notLocked) { try sut.release() }
        }

        @Test func anRLockHeldByAnotherThreadCannotBeReleasedHere() throws {
            let sut = try RLock()
            try holdOnAnotherThread(sut) {
                #expect(throws: SyncError.notOwner) { try sut.release() }
            }
        }
    }
}

// MARK: helpers shared by the sync tests

/// Runs `body` on a new thread and returns its result (with a watchdog).
func onAnotherThread<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T? {
    let result = Mutex<T?>(nil)
    let done = DispatchSemaphore(value: 0)
    Thread {
        let value = body()
        result.withLock { $0 = value }
        done.signal()
    }.start()
    guard done.wait(timeout: .now() + 60) == .success else {
        Issue.record("watchdog: the thread did not finish in 60 s")
        return nil
    }
    return result.withLock { $0 }
}

/// Holds a lock on another thread (between `acquire` and `release`) while `body` runs.
func holdOnAnotherThread(
    acquire: @escaping @Sendable () -> Void, release: @escaping @Sendable () -> Void, _ body: () throws -> Void
) throws {
    let held = DispatchSemaphore(value: 0)
    let letGo = DispatchSemaphore(value: 0)
    let finished = DispatchSemaphore(value: 0)
    Thread {
        acquire()
        held.signal()
        _ = letGo.wait(timeout: .now() + 60)
        release()
        finished.signal()
    }.start()
    try #require(held.wait(timeout: .now() + 30) == .success)
    defer {
        letGo.signal()
        _ = finished.wait(timeout: .now() + 30)
    }
    try body()
}

func holdOnAnotherThread(_ lock: Lock, _ body: () throws -> Void) throws {
    try holdOnAnotherThread(acquire: { _ = try? lock.acquire() }, release: { try? lock.release() }, body)
}

func holdOnAnotherThread(_ lock: RLock, _ body: () throws -> Void) throws {
    try holdOnAnotherThread(acquire: { _ = try? lock.acquire() }, release: { try? lock.release() }, body)
}

/// Counts SIGUSR1 deliveries (atomics only: async-signal-safe).
private let syncSignalsHandled = Atomic<Int>(0)

struct InterruptedOutcome<T: Sendable>: Sendable {
    var result: T
    var elapsed: Duration
    var signals: Int
}

/// Runs `body` on a thread that receives SIGUSR1 every 5 ms until `body` returns (watchdog
/// 20 s). Were a timeout re-armed after each interruption, `body` would not return while the
/// signals go on.
func interruptedBySignals<T: Sendable>(_ body: @escaping @Sendable () -> T) throws -> InterruptedOutcome<T> {
    signal(SIGUSR1) { _ in syncSignalsHandled.add(1, ordering: .relaxed) }
    let target = Mutex<pthread_t?>(nil)
    let outcome = Mutex<InterruptedOutcome<T>?>(nil)
    Thread {
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGUSR1)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)  // Dispatch-spawned threads block signals
        target.withLock { $0 = pthread_self() }
        let before = syncSignalsHandled.load(ordering: .relaxed)
        let start = ContinuousClock.now
        let value = body()
        let elapsed = ContinuousClock.now - start
        let handled = syncSignalsHandled.load(ordering: .relaxed) - before
        outcome.withLock { $0 = InterruptedOutcome(result: value, elapsed: elapsed, signals: handled) }
    }.start()
    let giveUp = Deadline.after(.seconds(20))
    var thread: pthread_t?
    while thread == nil && !giveUp.hasPassed { thread = target.withLock { $0 } }
    let waiter = try #require(thread)
    while outcome.withLock({ $0 }) == nil && !giveUp.hasPassed {
        pthread_kill(waiter, SIGUSR1)
        Sys.sleep(.milliseconds(5))
    }
    return try #require(outcome.withLock { $0 }, "the wait did not end while signals kept coming")
}
