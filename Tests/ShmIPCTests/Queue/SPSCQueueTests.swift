import Foundation
import Glibc
@testable import ShmIPC
import Testing

extension ShmIPCTests {
    @Suite struct SPSCQueueTests {
        @Test func theRolesAreHandedOutOnceAtATime() throws {
            let sut = try SPSCQueue<Int>(capacity: 4)
            do {
                let producer = try sut.makeProducer()
                #expect(throws: QueueError.roleTaken(pid: getpid())) { _ = try sut.makeProducer() }
                _ = consume producer
            }
            let again = try sut.makeProducer()  // released when the first one ended
            let consumer = try sut.makeConsumer()
            #expect(throws: QueueError.roleTaken(pid: getpid())) { _ = try sut.makeConsumer() }
            _ = consume again
            _ = consume consumer
        }

        /// Unlike `Queue`, an SPSC queue keeps its ring's size as its bound (its fast path is
        /// one compare): the capacity rounds up to a power of two, and attaching with the
        /// capacity asked for still matches.
        @Test func theCapacityRoundsUpToAPowerOfTwo() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try SPSCQueue<Int>(name: name, mode: .createExclusive, capacity: 10)
            #expect(sut.capacity == 16)
            var producer = try sut.makeProducer()
            for value in 0..<16 { #expect(try producer.tryPut(value)) }
            #expect(try producer.tryPut(16) == false && sut.isFull)
            #expect(try SPSCQueue<Int>(name: name, mode: .openExisting, capacity: 10).capacity == 16)
            try sut.unlink()
        }

        @Test(arguments: [2, 4, 8])
        func everyFillLevelFromEveryStartOffsetRoundTrips(capacity: Int) throws {
            let starts = (0..<UInt64(capacity)).flatMap { [$0, UInt64.max - UInt64(capacity) + 1 + $0] }
            for start in starts {
                let sut = try SPSCQueue<UInt64>(capacity: capacity, initialIndex: start)
                var producer = try sut.makeProducer()
                var consumer = try sut.makeConsumer()
                var next: UInt64 = 0, expected: UInt64 = 0
                for fill in 0...capacity {
                    for _ in 0..<fill { #expect(try producer.tryPut(next)); next += 1 }
                    if fill == capacity { #expect(try producer.tryPut(999) == false) }
                    #expect(sut.count == fill)
                    for _ in 0..<fill { #expect(try consumer.tryGet() == expected); expected += 1 }
                    #expect(try consumer.tryGet() == nil)
                }
            }
        }

        @Test func batchesGoThroughInOrder() throws {
            let sut = try SPSCQueue<Int>(capacity: 16)
            var producer = try sut.makeProducer()
            var consumer = try sut.makeConsumer()
            let values = Array(0..<12)
            try values.withUnsafeBufferPointer { try producer.put(contentsOf: $0, timeout: .seconds(1)) }
            let buffer = UnsafeMutableBufferPointer<Int>.allocate(capacity: 32)
            defer { buffer.deallocate() }
            let taken = try consumer.get(into: buffer, timeout: .seconds(1))
            #expect(Array(buffer[0..<taken]) == values)
        }

        /// A batch larger than the room left: `tryPut(contentsOf:)` puts the prefix that fits
        /// and says how long it is; `put(contentsOf:)` times out having put a prefix; the
        /// consumer's batch calls take what is there, in order, and report an empty or closed
        /// queue as the single calls do.
        @Test func aBatchThatDoesNotFitIsPutAsAPrefix() throws {
            let sut = try SPSCQueue<Int>(capacity: 8)
            var producer = try sut.makeProducer()
            var consumer = try sut.makeConsumer()
            try producer.put(-1)
            let values = Array(0..<12)
            #expect(try values.withUnsafeBufferPointer { try producer.tryPut(contentsOf: $0) } == 7)
            #expect(try values.withUnsafeBufferPointer { try producer.tryPut(contentsOf: $0) } == 0)
            #expect(try consumer.get(upTo: 3) == [-1, 0, 1])
            #expect(throws: QueueError.timedOut) { try producer.put(contentsOf: Array(100..<110), timeout: .milliseconds(20)) }
            // Room for 3 was left: the batch's first 3 went in, after the 5 still there.
            #expect(try consumer.get(upTo: 100, timeout: .seconds(1)) == [2, 3, 4, 5, 6, 100, 101, 102])
            let buffer = UnsafeMutableBufferPointer<Int>.allocate(capacity: 4)
            defer { buffer.deallocate() }
            #expect(try consumer.tryGet(into: buffer) == 0)
            #expect(throws: QueueError.timedOut) { _ = try consumer.get(into: buffer, timeout: .milliseconds(20)) }
            try producer.put(contentsOf: [7, 8])
            sut.close()
            #expect(throws: QueueError.closed) { _ = try producer.tryPut(contentsOf: UnsafeBufferPointer(rebasing: buffer[..<1])) }
            #expect(try consumer.tryGet(into: buffer) == 2)
            #expect(Array(buffer[..<2]) == [7, 8])
            #expect(throws: QueueError.closed) { _ = try consumer.tryGet(into: buffer) }
            #expect(throws: QueueError.closed) { _ = try consumer.get(upTo: 4, timeout: .seconds(1)) }
        }

        @Test func closeFailsTheProducerAndLetsTheConsumerDrain() throws {
            let sut = try SPSCQueue<Int>(capacity: 4)
            var producer = try sut.makeProducer()
            var consumer = try sut.makeConsumer(waitStrategy: .park)
            try producer.put(7)
            sut.close()
            #expect(throws: QueueError.closed) { try producer.put(8) }
            #expect(try consumer.get(timeout: .seconds(1)) == 7)
            #expect(throws: QueueError.closed) { _ = try consumer.get(timeout: .seconds(1)) }
        }

        @Test func aGetTimesOutNoEarlierThanItsDeadline() throws {
            let sut = try SPSCQueue<Int>(capacity: 4)
            var consumer = try sut.makeConsumer(waitStrategy: .park)
            let deadline = Deadline.after(.milliseconds(40))
            #expect(throws: QueueError.timedOut) { _ = try consumer.get(timeout: .milliseconds(40)) }
            #expect(Deadline.now >= deadline)
        }

        @Test func attachingAnSPSCQueueAsAnMPMCQueueFails() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try SPSCQueue<UInt64>(name: name, mode: .createExclusive, capacity: 8)
            #expect(throws: SharedObjectError.kindMismatch(expected: .queue, found: .spscQueue)) {
                _ = try Queue<UInt64>(name: name, mode: .openExisting, capacity: 8)
            }
            try owner.unlink()
        }

        @Test func aKilledProducersRoleCanBeClaimedAgain() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try SPSCQueue<UInt64>(name: name, mode: .createExclusive, capacity: 8)
            let holder = try Helper.start("spsc-hold-role", [name.rawValue, "8"])
            try #require(Helper.waitForOutput(holder, containing: "holding"), "\(holder.output)")
            #expect(throws: QueueError.roleTaken(pid: holder.pid)) { _ = try sut.makeProducer() }
            holder.kill()
            var producer = try sut.makeProducer()
            #expect(try producer.tryPut(1))
            try sut.unlink()
        }

        /// Both sides park for every item, so every hand-over goes through the waiter accounting
        /// (membarrier on the parking side, a compiler barrier on the fast path). A lost wake-up
        /// shows up as a park slice that ended with the queue ready.
        @Test func aParkedPingPongAcrossProcessesLosesNoWakeUp() throws {
            let there = TestNames.unique("there"), back = TestNames.unique("back")
            defer { [there, back].forEach(TestNames.cleanUp) }
            let thereQueue = try SPSCQueue<UInt64>(name: there, mode: .createExclusive, capacity: 8)
            let backQueue = try SPSCQueue<UInt64>(name: back, mode: .createExclusive, capacity: 8)
            var producer = try thereQueue.makeProducer(waitStrategy: .park)
            var consumer = try backQueue.makeConsumer(waitStrategy: .park)
            let rounds = 10_000
            let before = QueueDiagnostics.sliceRecoveries
            let echo = try Helper.start("spsc-echo", [there.rawValue, back.rawValue, "8", "\(rounds)"])
            for value in 0..<UInt64(rounds) {
                try producer.put(value, timeout: .seconds(30))
                #expect(try consumer.get(timeout: .seconds(30)) == value + 1)
            }
            #expect(Helper.finish(echo) == .exited(0), "\(echo.output)")
            #expect(echo.output.contains("echoed, slice recoveries 0"), "\(echo.output)")
            #expect(QueueDiagnostics.sliceRecoveries == before)
            _ = consume producer
            _ = consume consumer
            try thereQueue.unlink()
            try backQueue.unlink()
        }

        @Test func tenMillionItemsCrossProcessesInOrder() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let capacity = 4096, items = 10_000_000
            let sut = try SPSCQueue<UInt64>(name: name, mode: .createExclusive, capacity: capacity)
            var consumer = try sut.makeConsumer()
            let producer = try Helper.start("spsc-produce", [name.rawValue, "\(capacity)", "\(items)"])
            var expected: UInt64 = 0, sum: UInt64 = 0, inOrder = true
            let buffer = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: 256)
            defer { buffer.deallocate() }
            while expected < UInt64(items) {
                let taken: Int
                do { taken = try consumer.get(into: buffer, timeout: .seconds(60)) } catch {
                    Issue.record("after \(expected) items: \(error); producer: \(producer.output)")
                    break
                }
                for value in buffer[0..<taken] {
                    if value != expected { inOrder = false }
                    sum &+= value
                    expected += 1
                }
            }
            #expect(Helper.finish(producer, timeout: .seconds(300)) == .exited(0), "\(producer.output)")
            #expect(inOrder)
            #expect(expected == UInt64(items))
            #expect(sum == UInt64(items) * UInt64(items - 1) / 2)
            _ = consume consumer
            try sut.unlink()
        }
    }
}
