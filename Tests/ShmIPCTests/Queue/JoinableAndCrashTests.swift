import Foundation
import Glibc
@testable import ShmIPC
import Testing

extension ShmIPCTests {
    @Suite struct JoinableQueueTests {
        @Test func joinReturnsOnceEveryTaskIsDone() throws {
            let sut = try JoinableQueue<Int>(capacity: 8)
            try sut.put(1)
            try sut.put(2)
            #expect(sut.unfinishedTasks == 2)
            #expect(throws: QueueError.timedOut) { try sut.join(timeout: .milliseconds(20)) }
            _ = try sut.get()
            try sut.taskDone()
            _ = try sut.get()
            try sut.taskDone()
            try sut.join(timeout: .zero)
            #expect(throws: QueueError.taskDoneTooManyTimes) { try sut.taskDone() }
        }

        @Test func aFailedPutDoesNotCountATask() throws {
            let sut = try JoinableQueue<Int>(capacity: 2)
            #expect(try sut.tryPut(1))
            #expect(try sut.tryPut(2))
            #expect(try sut.tryPut(3) == false)
            #expect(sut.unfinishedTasks == 2)
        }

        @Test func aJoinableQueueIsNotAPlainQueue() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try JoinableQueue<UInt64>(name: name, mode: .createExclusive, capacity: 8)
            #expect(throws: SharedObjectError.kindMismatch(expected: .queue, found: .joinableQueue)) {
                _ = try Queue<UInt64>(name: name, mode: .openExisting, capacity: 8)
            }
            try owner.unlink()
        }

        @Test func joinWaitsForAWorkerInAnotherProcess() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try JoinableQueue<UInt64>(name: name, mode: .createExclusive, capacity: 64, waitStrategy: .park)
            let items = 1_000
            let worker = try Helper.start("jq-work", [name.rawValue, "64", "\(items)"])
            for value in 0..<UInt64(items) { try sut.put(value, timeout: .seconds(60)) }
            try sut.join(timeout: .seconds(60))
            #expect(sut.unfinishedTasks == 0)
            #expect(Helper.finish(worker) == .exited(0), "\(worker.output)")
            try sut.unlink()
        }
    }

    @Suite struct QueueCrashTests {
        @Test func aConsumerKilledWhileParkedLeavesTheQueueUsable() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Queue<UInt64>(name: name, mode: .createExclusive, capacity: 8)
            let victim = try Helper.start("queue-get", [name.rawValue, "8", "60000"])
            try #require(Helper.waitForOutput(victim, containing: "waiting"))
            Sys.sleep(.milliseconds(50))  // let it park
            victim.kill()
            try sut.put(5, timeout: .seconds(1))
            let survivor = try Helper.start("queue-get", [name.rawValue, "8", "30000"])
            #expect(Helper.finish(survivor) == .exited(0))
            #expect(survivor.output.contains("got 5"), "\(survivor.output)")
            try sut.put(6, timeout: .seconds(1))
            #expect(try sut.get(timeout: .seconds(1)) == 6)
            try sut.unlink()
        }

        @Test func aProducerKilledBetweenPutsLeavesEveryPutItemAndAUsableQueue() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Queue<UInt64>(name: name, mode: .createExclusive, capacity: 16)
            let victim = try Helper.start("queue-put-then-hang", [name.rawValue, "16", "10"])
            try #require(Helper.waitForOutput(victim, containing: "put"))
            victim.kill()
            for expected in 0..<UInt64(10) { #expect(try sut.get(timeout: .seconds(1)) == expected) }
            #expect(try sut.tryGet() == nil)
            try sut.put(99, timeout: .seconds(1))
            #expect(try sut.get(timeout: .seconds(1)) == 99)
            try sut.unlink()
        }

        @Test func aConsumerKilledBetweenGetsLeavesTheRestInOrderAndAUsableQueue() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Queue<UInt64>(name: name, mode: .createExclusive, capacity: 16)
            for value in 0..<UInt64(5) { try sut.put(value, timeout: .seconds(1)) }
            let victim = try Helper.start("queue-take-then-hang", [name.rawValue, "16", "3"])
            try #require(Helper.waitForOutput(victim, containing: "took [0, 1, 2]"), "\(victim.output)")
            victim.kill()
            #expect(try sut.get(timeout: .seconds(1)) == 3)
            #expect(try sut.get(timeout: .seconds(1)) == 4)
            #expect(try sut.tryGet() == nil)
            try sut.put(7, timeout: .seconds(1))
            #expect(try sut.get(timeout: .seconds(1)) == 7)
            try sut.unlink()
        }

        /// Fixed offsets keep segments of this layout version readable by other builds; the
        /// code reads fields by name. A parking word's waiter count is the next 4 bytes.
        @Test func theQueueStateLayoutMatchesTheOffsetsTheFastPathUses() {
            #expect(MemoryLayout<shmipc_event_state>.offset(of: \.waiters) == MemoryLayout<shmipc_event_state>.offset(of: \.flag)! + 4)
            #expect(MemoryLayout<shmipc_semaphore_state>.offset(of: \.waiters) == MemoryLayout<shmipc_semaphore_state>.offset(of: \.value)! + 4)
            typealias State = shmipc_queue_state
            #expect(MemoryLayout<State>.offset(of: \.tail) == 0)
            #expect(MemoryLayout<State>.offset(of: \.head) == 128)
            #expect(MemoryLayout<State>.offset(of: \.not_empty_epoch) == 256)
            #expect(MemoryLayout<State>.offset(of: \.not_empty_waiters) == 260)
            #expect(MemoryLayout<State>.offset(of: \.not_full_epoch) == 264)
            #expect(MemoryLayout<State>.offset(of: \.not_full_waiters) == 268)
            #expect(MemoryLayout<State>.offset(of: \.closed) == 400)
            #expect(MemoryLayout<State>.offset(of: \.producer_pid) == 404)
            #expect(MemoryLayout<State>.offset(of: \.consumer_pid) == 408)
            #expect(MemoryLayout<State>.offset(of: \.unfinished) == 512)
            #expect(MemoryLayout<State>.offset(of: \.join_waiters) == 516)
            #expect(MemoryLayout<State>.offset(of: \.intents_used) == 3 * 128 + 36)
            #expect(MemoryLayout<State>.offset(of: \.abandoned) == 424)
            typealias Intent = shmipc_queue_intent
            #expect(MemoryLayout<Intent>.offset(of: \.owner) == 0)
            #expect(MemoryLayout<Intent>.offset(of: \.producing) == 8)
            #expect(MemoryLayout<Intent>.offset(of: \.consuming) == 16)
            #expect(MemoryLayout<Intent>.stride == 128)
        }
    }
}
import CShim
