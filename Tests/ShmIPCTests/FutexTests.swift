import Foundation
import Glibc
@testable import ShmIPC
import Synchronization
import Testing

/// Counts SIGUSR2 deliveries; touched only through atomics (async-signal-safe).
private let signalsHandled = Atomic<Int>(0)

extension ShmIPCTests {
    @Suite struct FutexTests {
        @Test func aWaitOnAChangedValueReturnsAtOnce() {
            withWord(5) { word in
                #expect(Futex(word).wait(expected: 4, deadline: .after(.seconds(30))) == .valueChanged)
            }
        }

        @Test func aWaitTimesOutNoEarlierThanItsDeadline() {
            withWord(0) { word in
                let start = Deadline.now
                let deadline = Deadline.after(.milliseconds(50))
                #expect(Futex(word).wait(expected: 0, deadline: deadline) == .timedOut)
                #expect(Deadline.now >= deadline)
                #expect(Deadline.now.uptimeNanoseconds - start.uptimeNanoseconds >= 50_000_000)
            }
        }

        @Test func aDeadlineInThePastTimesOutWithoutSleeping() {
            withWord(0) { word in
                #expect(Futex(word).wait(expected: 0, deadline: .after(.seconds(-1))) == .timedOut)
            }
        }

        @Test func aWakeWakesAParkedThread() throws {
            try withWord(0) { word in
                let sut = Futex(word)
                let shared = SharedWord(word)
                let result = Mutex<Futex.WaitResult?>(nil)
                let thread = Thread {
                    let deadline = Deadline.after(.seconds(30))
                    var outcome = Futex.WaitResult.valueChanged
                    while shared.loadAcquiring() == 0 {
                        outcome = sut.wait(expected: 0, deadline: deadline)
                        if outcome == .timedOut { break }
                    }
                    result.withLock { $0 = outcome }
                }
                thread.start()
                // Give the thread time to park, then publish and wake until it reports.
                let watchdog = Deadline.after(.seconds(30))
                Sys.sleep(.milliseconds(20))
                shared.storeReleasing(1)  // pairs with the thread's acquire load
                while result.withLock({ $0 }) == nil && !watchdog.hasPassed {
                    sut.wakeAll()
                    Sys.sleep(.milliseconds(1))
                }
                let outcome = try #require(result.withLock { $0 })
                #expect(outcome != .timedOut)
            }
        }

        @Test func aWakeWithNoWaitersWakesNobody() {
            withWord(0) { word in
                #expect(Futex(word).wake(count: 3) == 0)
            }
        }

        @Test func theTimeoutHonoursItsDeadlineAcrossSignals() throws {
            // The waiting thread is interrupted by SIGUSR2 every 5 ms. Were the timeout relative
            // and re-armed after each EINTR, the wait would not end while the signals go on;
            // with an absolute deadline it ends at the deadline, while they still go on.
            signal(SIGUSR2) { _ in signalsHandled.add(1, ordering: .relaxed) }
            try withWord(0) { word in
                struct Outcome: Sendable { var result: Futex.WaitResult; var handledDuringWait: Int }
                let target = Mutex<pthread_t?>(nil)
                let outcome = Mutex<Outcome?>(nil)
                let futex = Futex(word)
                let thread = Thread {
                    // Threads inherit the spawning (Dispatch worker) thread's mask, which blocks signals.
                    var unblock = sigset_t()
                    sigemptyset(&unblock)
                    sigaddset(&unblock, SIGUSR2)
                    pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
                    target.withLock { $0 = pthread_self() }
                    let before = signalsHandled.load(ordering: .relaxed)
                    let result = futex.wait(expected: 0, deadline: .after(.milliseconds(200)))
                    let handled = signalsHandled.load(ordering: .relaxed) - before
                    outcome.withLock { $0 = Outcome(result: result, handledDuringWait: handled) }
                }
                thread.start()
                let giveUp = Deadline.after(.seconds(20))  // watchdog for the signalling loop
                var thread_t: pthread_t?
                while thread_t == nil && !giveUp.hasPassed { thread_t = target.withLock { $0 } }
                let waiter = try #require(thread_t)
                while outcome.withLock({ $0 }) == nil && !giveUp.hasPassed {
                    pthread_kill(waiter, SIGUSR2)
                    Sys.sleep(.milliseconds(5))
                }
                let sut = try #require(outcome.withLock { $0 }, "the wait did not end while signals kept coming")
                #expect(sut.result == .timedOut)
                #expect(sut.handledDuringWait > 0)
            }
        }

        private func withWord<R>(_ initial: UInt32, _ body: (UnsafeMutablePointer<UInt32>) throws -> R) rethrows -> R {
            let word = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
            word.initialize(to: initial)
            defer { word.deallocate() }
            return try body(word)
        }
    }
}
