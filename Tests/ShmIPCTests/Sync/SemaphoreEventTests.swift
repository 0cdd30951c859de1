import Foundation
import Glibc
@testable import ShmIPC
import Testing

extension ShmIPCTests {
    @Suite struct SemaphoreTests {
        @Test func acquireDecrementsAndReleaseIncrements() throws {
            let sut = try Semaphore(value: 2)
            try sut.acquire()
            #expect(sut.currentValue == 1)
            #expect(sut.tryAcquire())
            #expect(sut.tryAcquire() == false)
            try sut.release(2)
            #expect(sut.currentValue == 2)
        }

        @Test func anAcquireOnZeroTimesOutNoEarlierThanItsDeadline() throws {
            let sut = try Semaphore(value: 0)
            let deadline = Deadline.after(.milliseconds(40))
            #expect(throws: SyncError.timedOut) { try sut.acquire(timeout: .milliseconds(40)) }
            #expect(Deadline.now >= deadline)
        }

        @Test func overReleasingABoundedSemaphoreIsATypedErrorAndChangesNothing() throws {
            let sut = try Semaphore(value: 1, maximum: 2)
            try sut.release()
            #expect(throws: SyncError.overReleased(maximum: 2)) { try sut.release() }
            #expect(sut.currentValue == 2)
        }

        @Test func attachingWithAnotherBoundFails() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try Semaphore(name: name, mode: .createExclusive, value: 0, maximum: 3)
            #expect(throws: SharedObjectError.capacityMismatch(expected: 5, found: 3)) {
                _ = try Semaphore(name: name, mode: .openExisting, maximum: 5)
            }
            #expect(throws: SharedObjectError.kindMismatch(expected: .semaphore, found: .boundedSemaphore)) {
                _ = try Semaphore(name: name, mode: .openExisting)
            }
            try owner.unlink()
        }

        @Test func aReleaseWakesAWaiterInAnotherProcess() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Semaphore(name: name, mode: .createExclusive, value: 0, waitStrategy: .park)
            let waiter = try Helper.start("semaphore-acquire", [name.rawValue, "30000"])
            try #require(Helper.waitForOutput(waiter, containing: "waiting"))
            Sys.sleep(.milliseconds(20))
            try sut.release()
            #expect(Helper.finish(waiter) == .exited(0))
            #expect(waiter.output.contains("acquired"), "\(waiter.output)")
            #expect(sut.currentValue == 0)
            try sut.unlink()
        }

        @Test func aSemaphoreAcquireHonoursItsDeadlineAcrossSignals() throws {
            let sut = try Semaphore(value: 0, waitStrategy: .park)
            let outcome = try interruptedBySignals { () -> SyncError? in
                do throws(SyncError) { try sut.acquire(timeout: .milliseconds(150)); return nil } catch { return error }
            }
            #expect(outcome.result == .timedOut)
            #expect(outcome.elapsed >= .milliseconds(150))
            #expect(outcome.signals > 0)
        }
    }

    @Suite struct EventTests {
        @Test func setClearAndIsSet() throws {
            let sut = try Event()
            #expect(sut.isSet == false)
            sut.set()
            #expect(sut.isSet)
            #expect(sut.wait(timeout: .zero))
            sut.clear()
            #expect(sut.isSet == false)
        }

        @Test func aWaitOnAClearEventTimesOutNoEarlierThanItsDeadline() throws {
            let sut = try Event(waitStrategy: .park)
            let deadline = Deadline.after(.milliseconds(40))
            #expect(sut.wait(timeout: .milliseconds(40)) == false)
            #expect(Deadline.now >= deadline)
        }

        @Test func anEventWaitHonoursItsDeadlineAcrossSignals() throws {
            let sut = try Event(waitStrategy: .park)
            let outcome = try interruptedBySignals { sut.wait(timeout: .milliseconds(150)) }
            #expect(outcome.result == false)
            #expect(outcome.elapsed >= .milliseconds(150))
            #expect(outcome.signals > 0)
        }

        @Test func setWakesEveryWaiterInOtherProcesses() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Event(name: name, mode: .createExclusive)
            let waiters = try (0..<3).map { _ in try Helper.start("event-wait", [name.rawValue, "30000"]) }
            for waiter in waiters { try #require(Helper.waitForOutput(waiter, containing: "waiting")) }
            Sys.sleep(.milliseconds(20))
            sut.set()
            for waiter in waiters {
                #expect(Helper.finish(waiter) == .exited(0))
                #expect(waiter.output.contains("\nset"), "\(waiter.output)")
            }
            try sut.unlink()
        }
    }
}
