import Foundation
import Glibc
@testable import ShmIPC
import Testing

extension ShmIPCTests {
    @Suite struct ConditionTests {
        @Test func waitAndNotifyWithoutTheLockAreTypedErrors() throws {
            let sut = try Condition()
            #expect(throws: SyncError.notLocked) { _ = try sut.wait(timeout: .zero) }
            #expect(throws: SyncError.notLocked) { try sut.notify() }
            try holdOnAnotherThread(acquire: { _ = try? sut.acquire() }, release: { try? sut.release() }) {
                #expect(throws: SyncError.notOwner) { try sut.notifyAll() }
            }
        }

        @Test func aWaitTimesOutNoEarlierThanItsDeadlineAndHoldsTheLockAgain() throws {
            let sut = try Condition()
            _ = try sut.acquire()
            _ = try sut.acquire()  // depth 2 is restored after the wait
            let deadline = Deadline.after(.milliseconds(40))
            #expect(try sut.wait(timeout: .milliseconds(40)) == false)
            #expect(Deadline.now >= deadline)
            try sut.release()
            try sut.release()
            #expect(throws: SyncError.notLocked) { try sut.release() }
        }

        @Test func aConditionWaitHonoursItsDeadlineAcrossSignals() throws {
            let sut = try Condition(waitStrategy: .park)
            let outcome = try interruptedBySignals { () -> Bool? in
                guard (try? sut.acquire()) != nil else { return nil }
                defer { try? sut.release() }
                return try? sut.wait(timeout: .milliseconds(150))
            }
            #expect(outcome.result == false)
            #expect(outcome.elapsed >= .milliseconds(150))
            #expect(outcome.signals > 0)
        }

        @Test func notifyNWakesExactlyNWaitersInOtherProcesses() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Condition(name: name, mode: .createExclusive)
            let waiters = try (0..<3).map { _ in try Helper.start("condition-wait", [name.rawValue, "1500"]) }
            for waiter in waiters { try #require(Helper.waitForOutput(waiter, containing: "waiting")) }
            // "waiting" is printed holding the lock; once we get the lock, all three are registered.
            try sut.withLock { try sut.notify(2) }
            let statuses = waiters.map { Helper.finish($0) }
            #expect(statuses == [.exited(0), .exited(0), .exited(0)])
            let outputs = waiters.map(\.output)
            #expect(outputs.filter { $0.contains("notified") }.count == 2, "\(outputs)")
            #expect(outputs.filter { $0.contains("timed out") }.count == 1, "\(outputs)")
            try sut.unlink()
        }

        @Test func producerAndConsumerProcessesHandOverEveryItem() throws {
            let name = TestNames.unique(), dataName = TestNames.unique("data")
            defer { [name, dataName].forEach(TestNames.cleanUp) }
            let sut = try Condition(name: name, mode: .createExclusive)
            let data = try SharedMemory.create(name: dataName, size: 64)
            let items = 2_000
            let consumer = try Helper.start("condition-consume", [name.rawValue, dataName.rawValue, "\(items)"])
            let producer = try Helper.start("condition-produce", [name.rawValue, dataName.rawValue, "\(items)"])
            #expect(Helper.finish(producer, timeout: .seconds(120)) == .exited(0), "\(producer.output)")
            #expect(Helper.finish(consumer, timeout: .seconds(120)) == .exited(0), "\(consumer.output)")
            #expect(consumer.output.contains("consumed \(items)"))
            #expect(data.withUnsafeMutableBytes { $0.load(as: UInt64.self) } == 0)
            try data.unlink()
            try sut.unlink()
        }

        @Test func aDeadLockHolderIsReportedToTheNextHolder() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Condition(name: name, mode: .createExclusive)
            let holder = try Helper.start("lock-hold", ["condition", name.rawValue])
            try #require(Helper.waitForOutput(holder, containing: "holding"))
            holder.kill()
            #expect(try sut.acquire(timeout: .seconds(1)) == .previousOwnerDied)
            try sut.markConsistent()
            try sut.release()
            try sut.unlink()
        }
    }

    @Suite struct BarrierTests {
        @Test func aSinglePartyBarrierReturnsAtOnce() throws {
            let sut = try Barrier(parties: 1)
            #expect(try sut.wait() == 0)
            #expect(try sut.wait() == 0)
        }

        @Test func threeProcessesPassAThousandGenerations() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Barrier(name: name, mode: .createExclusive, parties: 3)
            let generations = 1_000
            let parties = try (0..<3).map { _ in try Helper.start("barrier-loop", [name.rawValue, "3", "\(generations)"]) }
            let statuses = parties.map { Helper.finish($0, timeout: .seconds(300)) }
            #expect(statuses == [.exited(0), .exited(0), .exited(0)], "\(parties.map(\.output))")
            // Each generation hands out indexes 0, 1 and 2 once: the sums add up to 3 per generation.
            let sums = parties.compactMap { $0.output.split(separator: " ").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } }
            #expect(sums.count == 3)
            #expect(sums.reduce(0, +) == generations * 3)
            #expect(sut.isBroken == false)
            try sut.unlink()
        }

        /// A waiter stopped (SIGSTOP) through its generation's break, a reset and the break of
        /// a later generation still learns that its own generation broke. (Before the outcome
        /// history, it read the later break's record and returned as if all had met.)
        @Test func aWaiterStoppedThroughABreakAResetAndAnotherBreakStillSeesItsBreak() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Barrier(name: name, mode: .createExclusive, parties: 2, waitStrategy: .park)
            let waiter = try Self.stoppedWaiter(sut, name)
            sut.abort()                          // generation g breaks: the stopped waiter's
            sut.reset()
            #expect(throws: SyncError.brokenBarrier) { try sut.wait(timeout: .milliseconds(20)) }  // g + 1 breaks
            sut.reset()
            _ = Sys.sendSignal(SIGCONT, to: waiter.pid)
            #expect(Helper.finish(waiter, timeout: .seconds(30)) == .exited(0))
            #expect(waiter.output.contains("wait: the barrier is broken"), "\(waiter.output)")
            try sut.unlink()
        }

        /// The same stopped waiter, whose generation tripped, returns its index though later
        /// generations broke.
        @Test func aWaiterStoppedAfterItsGenerationTrippedReturnsNormally() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Barrier(name: name, mode: .createExclusive, parties: 2, waitStrategy: .park)
            let waiter = try Self.stoppedWaiter(sut, name)
            #expect(try sut.wait(timeout: .seconds(10)) == 1)   // generation g trips
            #expect(throws: SyncError.brokenBarrier) { try sut.wait(timeout: .milliseconds(20)) }  // g + 1 breaks
            sut.reset()
            _ = Sys.sendSignal(SIGCONT, to: waiter.pid)
            #expect(Helper.finish(waiter, timeout: .seconds(30)) == .exited(0))
            #expect(waiter.output.contains("index 0"), "\(waiter.output)")
            try sut.unlink()
        }

        /// A helper process waiting at `sut` (2 parties), then stopped (SIGSTOP).
        static func stoppedWaiter(_ sut: Barrier, _ name: SegmentName) throws -> ChildProcess {
            let waiter = try Helper.start("barrier-wait", [name.rawValue, "2", "60000"])
            try #require(Helper.waitForOutput(waiter, containing: "waiting"))
            let arrived = Deadline.after(.seconds(30))
            while sut.waitingCount < 1 && !arrived.hasPassed { Sys.sleep(.milliseconds(1)) }
            try #require(sut.waitingCount == 1)
            _ = Sys.sendSignal(SIGSTOP, to: waiter.pid)
            return waiter
        }

        @Test func aPartyKilledMidWaitBreaksTheBarrierForTheOthers() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Barrier(name: name, mode: .createExclusive, parties: 3)
            let victim = try Helper.start("barrier-wait", [name.rawValue, "3", "60000"])
            try #require(Helper.waitForOutput(victim, containing: "waiting"))
            let survivor = try Helper.start("barrier-wait", [name.rawValue, "3", "60000"])
            try #require(Helper.waitForOutput(survivor, containing: "waiting"))
            let arrived = Deadline.after(.seconds(30))
            while sut.waitingCount < 2 && !arrived.hasPassed { Sys.sleep(.milliseconds(1)) }
            #expect(sut.waitingCount == 2)
            victim.kill()
            #expect(Helper.finish(survivor, timeout: .seconds(30)) == .exited(0))
            #expect(survivor.output.contains("wait: the barrier is broken"), "\(survivor.output)")
            #expect(sut.isBroken)
            #expect(throws: SyncError.brokenBarrier) { try sut.wait(timeout: .seconds(1)) }
            sut.reset()
            #expect(sut.isBroken == false)
            try sut.unlink()
        }

        @Test func aTimeoutBreaksTheBarrierAndResetRepairsIt() throws {
            let sut = try Barrier(parties: 2, waitStrategy: .park)
            let deadline = Deadline.after(.milliseconds(30))
            #expect(throws: SyncError.brokenBarrier) { try sut.wait(timeout: .milliseconds(30)) }
            #expect(Deadline.now >= deadline)
            #expect(sut.isBroken)
            sut.reset()
            #expect(sut.isBroken == false)
            let other = ResultBox<Int>()
            Thread { other.set((try? sut.wait(timeout: .seconds(30))) ?? -1) }.start()
            let mine = try sut.wait(timeout: .seconds(30))
            #expect(Set([mine, try #require(other.wait(timeout: .seconds(30)))]) == [0, 1])
        }

        @Test func abortBreaksWaitersAndLaterCallers() throws {
            let sut = try Barrier(parties: 2, waitStrategy: .park)
            let result = ResultBox<SyncError?>()
            Thread {
                do throws(SyncError) { _ = try sut.wait(timeout: .seconds(30)); result.set(nil) } catch { result.set(error) }
            }.start()
            let arrived = Deadline.after(.seconds(30))
            while sut.waitingCount < 1 && !arrived.hasPassed { Sys.sleep(.milliseconds(1)) }
            sut.abort()
            #expect(result.wait(timeout: .seconds(30)) == .some(.brokenBarrier))
            #expect(throws: SyncError.brokenBarrier) { try sut.wait(timeout: .seconds(1)) }
        }

        @Test func twoThreadsPassTogetherAndGetDistinctIndexes() throws {
            let sut = try Barrier(parties: 2)
            let other = ResultBox<Int>()
            Thread { other.set((try? sut.wait(timeout: .seconds(30))) ?? -1) }.start()
            let mine = try sut.wait(timeout: .seconds(30))
            let theirs = try #require(other.wait(timeout: .seconds(30)))
            #expect(Set([mine, theirs]) == [0, 1])
        }
    }
}
