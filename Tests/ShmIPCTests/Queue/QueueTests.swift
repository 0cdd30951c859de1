import Foundation
import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import Testing

extension ShmIPCTests {
    @Suite struct QueueTests {
        @Test func elementsComeOutInTheOrderTheyWentIn() throws {
            let sut = try Queue<Int>(capacity: 4)
            for value in 1...4 { #expect(try sut.tryPut(value)) }
            #expect(try sut.tryPut(5) == false)  // full
            #expect(sut.isFull)
            #expect(sut.count == 4)
            for value in 1...4 { #expect(try sut.tryGet() == value) }
            #expect(try sut.tryGet() == nil)
            #expect(sut.isEmpty)
        }

        /// Python's `Queue(10)` holds 10: full at 10 (not at the ring's 16), a put waits there
        /// and times out, and one get makes room for exactly one.
        @Test(arguments: [1, 3, 10, 16])
        func aQueueHoldsExactlyItsCapacity(capacity: Int) throws {
            let sut = try Queue<Int>(capacity: capacity, waitStrategy: .park)
            #expect(sut.capacity == capacity)
            for value in 0..<capacity {
                #expect(!sut.isFull)
                #expect(try sut.tryPut(value))
            }
            #expect(sut.isFull && sut.count == capacity)
            #expect(try sut.tryPut(-1) == false)
            #expect(throws: QueueError.timedOut) { try sut.put(-1, timeout: .milliseconds(20)) }
            #expect(try sut.tryGet() == 0)
            #expect(try sut.tryPut(capacity))
            #expect(try sut.tryPut(-1) == false)
            for value in 1...capacity { #expect(try sut.tryGet() == value) }
            #expect(try sut.tryGet() == nil)
        }

        /// A producer parked at the bound (below the ring) is woken by the get that makes room.
        @Test func aPutWaitingAtTheBoundIsWokenByAGet() throws {
            let sut = try Queue<Int>(capacity: 3, waitStrategy: .park)
            for value in 0..<3 { try sut.put(value) }
            let done = ResultBox<Result<Void, QueueError>>()
            Thread { done.set(Result { () throws(QueueError) in try sut.put(3, timeout: .seconds(30)) }) }.start()
            Sys.sleep(.milliseconds(50))
            #expect(!done.isSet && sut.count == 3)  // still waiting at 3 (the ring has 4 slots)
            #expect(try sut.get() == 0)
            let outcome = try #require(done.wait(timeout: .seconds(10)))
            #expect(throws: Never.self) { try outcome.get() }
            #expect(sut.count == 3)
            for value in 1...3 { #expect(try sut.tryGet() == value) }
        }

        @Test(arguments: [1, 2, 3, 4, 5, 8, 10])
        func everyFillLevelFromEveryStartOffsetRoundTrips(capacity: Int) throws {
            // Start offsets cover every slot, and near 2^64 every index wraps.
            let starts = (0..<UInt64(capacity)).flatMap { [$0, UInt64.max - UInt64(capacity) + 1 + $0] }
            for start in starts {
                let sut = try Queue<UInt64>(capacity: capacity, waitStrategy: .default, initialIndex: start)
                var next: UInt64 = 0, expected: UInt64 = 0
                for fill in 0...capacity {
                    for _ in 0..<fill { #expect(try sut.tryPut(next)); next += 1 }
                    if fill == capacity { #expect(try sut.tryPut(999) == false) }
                    #expect(sut.count == fill)
                    for _ in 0..<fill { #expect(try sut.tryGet() == expected); expected += 1 }
                    #expect(try sut.tryGet() == nil)
                }
            }
        }

        @Test func nonTrivialLayoutsSurviveTheRing() throws {
            struct Quote: BitwiseCopyable, Equatable { var price: Double; var size: Int32; var side: UInt8 }
            let sut = try Queue<Quote>(capacity: 8)
            let quotes = (0..<20).map { Quote(price: Double($0) * 1.5, size: Int32($0), side: UInt8($0 % 2)) }
            var received: [Quote] = []
            for quote in quotes {
                try sut.put(quote, timeout: .seconds(1))
                if sut.isFull { while let q = try sut.tryGet() { received.append(q) } }
            }
            while let q = try sut.tryGet() { received.append(q) }
            #expect(received == quotes)
        }

        @Test func aGetOnAnEmptyQueueTimesOutNoEarlierThanItsDeadline() throws {
            let sut = try Queue<Int>(capacity: 2, waitStrategy: .park)
            let deadline = Deadline.after(.milliseconds(40))
            #expect(throws: QueueError.timedOut) { _ = try sut.get(timeout: .milliseconds(40)) }
            #expect(Deadline.now >= deadline)
        }

        @Test func aPutOnAFullQueueTimesOutNoEarlierThanItsDeadline() throws {
            let sut = try Queue<Int>(capacity: 2, waitStrategy: .park)
            try sut.put(1)
            try sut.put(1)
            let deadline = Deadline.after(.milliseconds(40))
            #expect(throws: QueueError.timedOut) { try sut.put(2, timeout: .milliseconds(40)) }
            #expect(Deadline.now >= deadline)
        }

        @Test func aGetHonoursItsDeadlineAcrossSignals() throws {
            let sut = try Queue<Int>(capacity: 2, waitStrategy: .park)
            let outcome = try interruptedBySignals { () -> QueueError? in
                do throws(QueueError) { _ = try sut.get(timeout: .milliseconds(150)); return nil } catch { return error }
            }
            #expect(outcome.result == .timedOut)
            #expect(outcome.elapsed >= .milliseconds(150))
            #expect(outcome.signals > 0)
        }

        @Test func closingFailsProducersAndLetsConsumersDrain() throws {
            let sut = try Queue<Int>(capacity: 4)
            try sut.put(1)
            try sut.put(2)
            sut.close()
            #expect(sut.isClosed)
            #expect(throws: QueueError.closed) { try sut.put(3) }
            #expect(throws: QueueError.closed) { _ = try sut.tryPut(3) }
            #expect(try sut.get(timeout: .seconds(1)) == 1)
            #expect(try sut.tryGet() == 2)
            #expect(throws: QueueError.closed) { _ = try sut.get(timeout: .seconds(1)) }
            #expect(throws: QueueError.closed) { _ = try sut.tryGet() }
        }

        /// Repairs run back to back (no 25 ms pacing) against two live producers and a live
        /// consumer: a slot is given up or freed only when its holder is dead, so nothing is
        /// lost, reordered or counted as abandoned. (A first version wrote its given-up mark
        /// before the CAS that decides: a repairer that lost the race to a producer publishing
        /// late left the mark on the live item, and a consumer skipped it; the full suite under
        /// load caught it.)
        @Test func repairsRacingLiveThreadsGiveNothingUp() throws {
            // 4 KiB items, made before the loop: a put spends most of its time inside its claim.
            let sut = try Queue<ChaosItem>(capacity: 8, waitStrategy: .spin)
            let control = sut.mpmc
            let perProducer = 5_000
            let stop = ResultBox<Bool>(), repaired = ResultBox<Int>()
            let producers = (1...2 as ClosedRange<UInt64>).map { producer in
                let done = ResultBox<Bool>()
                let items = (0..<UInt64(perProducer)).map { ChaosItem(producer: producer, counter: $0) }
                Thread {
                    for item in items { try? sut.put(item, timeout: .seconds(30)) }
                    done.set(true)
                }.start()
                return done
            }
            Thread {
                var rounds = 0
                while !stop.isSet {
                    control.repairStalledSlot(at: control.head.load(ordering: .relaxed))
                    control.repairStalledSlot(at: control.tail.load(ordering: .relaxed))
                    rounds += 1
                }
                repaired.set(rounds)
            }.start()
            var next: [UInt64: UInt64] = [1: 0, 2: 0]
            var received = 0
            while received < 2 * perProducer, let item = try? sut.get(timeout: .seconds(5)) {
                let whole = item.looksWhole
                #expect(whole, "a torn item of producer \(item.producer)")
                #expect(item.counter == next[item.producer], "producer \(item.producer): \(item.counter), expected \(next[item.producer] ?? 0)")
                next[item.producer] = item.counter + 1
                received += 1
            }
            stop.set(true)
            for done in producers { #expect(done.wait(timeout: .seconds(30)) == true) }
            let rounds = repaired.wait(timeout: .seconds(30)) ?? 0
            print("repairs racing live threads: \(rounds) repair rounds, \(received) items")
            #expect(rounds > 0)
            #expect(received == 2 * perProducer)
            #expect(sut.abandoned == 0)
        }

        @Test func closingWakesAParkedConsumer() throws {
            let sut = try Queue<Int>(capacity: 4, waitStrategy: .park)
            let result = ResultBox<QueueError?>()
            Thread {
                do throws(QueueError) { _ = try sut.get(timeout: .seconds(30)); result.set(nil) } catch { result.set(error) }
            }.start()
            Sys.sleep(.milliseconds(20))
            sut.close()
            #expect(result.wait(timeout: .seconds(30)) == .some(.closed))
        }

        @Test func aParkedConsumerIsWokenByAPut() throws {
            let sut = try Queue<Int>(capacity: 4, waitStrategy: .park)
            let result = ResultBox<Int>()
            Thread { result.set((try? sut.get(timeout: .seconds(30))) ?? -1) }.start()
            Sys.sleep(.milliseconds(20))
            try sut.put(42)
            #expect(result.wait(timeout: .seconds(30)) == 42)
        }

        @Test func batchesPutAndGetInOrder() throws {
            let sut = try Queue<Int>(capacity: 64)
            try sut.put(contentsOf: 0..<50, timeout: .seconds(1))
            let buffer = UnsafeMutableBufferPointer<Int>.allocate(capacity: 100)
            defer { buffer.deallocate() }
            let taken = try sut.get(into: buffer, timeout: .seconds(1))
            #expect(taken == 50)
            #expect(Array(buffer[0..<taken]) == Array(0..<50))
        }

        /// A batch larger than the room left is put as a prefix: `tryPut(contentsOf:)` says how
        /// long; `put(contentsOf:)` times out after it (the timeout is the whole batch's). The
        /// batch gets take what is ready and report an empty or closed queue.
        @Test func aBatchThatDoesNotFitIsPutAsAPrefix() throws {
            let sut = try Queue<Int>(capacity: 6)  // a bound below the ring's 8 slots
            #expect(try sut.tryPut(contentsOf: 0..<10) == 6)
            #expect(try sut.tryPut(contentsOf: [10]) == 0)
            #expect(try sut.get(upTo: 2) == [0, 1])
            #expect(throws: QueueError.timedOut) { try sut.put(contentsOf: 100..<110, timeout: .milliseconds(20)) }
            #expect(try sut.get(upTo: 100, timeout: .seconds(1)) == [2, 3, 4, 5, 100, 101])
            let buffer = UnsafeMutableBufferPointer<Int>.allocate(capacity: 4)
            defer { buffer.deallocate() }
            #expect(try sut.tryGet(into: buffer) == 0)
            #expect(throws: QueueError.timedOut) { _ = try sut.get(into: buffer, timeout: .milliseconds(20)) }
            try sut.put(contentsOf: [7, 8])
            sut.close()
            #expect(throws: QueueError.closed) { _ = try sut.tryPut(contentsOf: [9]) }
            #expect(try sut.tryGet(into: buffer) == 2)
            #expect(Array(buffer[..<2]) == [7, 8])
            #expect(throws: QueueError.closed) { _ = try sut.tryGet(into: buffer) }
            #expect(throws: QueueError.closed) { _ = try sut.get(upTo: 3, timeout: .seconds(1)) }
        }

        @Test func attachingWithAnotherElementTypeOrCapacityFails() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try Queue<UInt64>(name: name, mode: .createExclusive, capacity: 16)
            #expect(throws: SharedObjectError.typeMismatch(expected: TypeFingerprint(of: Int32.self), found: TypeFingerprint(of: UInt64.self))) {
                _ = try Queue<Int32>(name: name, mode: .openExisting, capacity: 16)
            }
            #expect(throws: SharedObjectError.capacityMismatch(expected: 32, found: 16)) {
                _ = try Queue<UInt64>(name: name, mode: .openExisting, capacity: 32)
            }
            // The same ring (16 slots), another bound: a mismatch too.
            #expect(throws: SharedObjectError.capacityMismatch(expected: 10, found: 16)) {
                _ = try Queue<UInt64>(name: name, mode: .openExisting, capacity: 10)
            }
            try owner.unlink()
        }

        @Test func twoProducerAndTwoConsumerProcessesDeliverEveryItemOnceAndInProducerOrder() throws {
            let name = TestNames.unique("q"), startName = TestNames.unique("start")
            defer { [name, startName].forEach(TestNames.cleanUp) }
            let capacity = 1024, perProducer = 1_000_000
            let sut = try Queue<UInt64>(name: name, mode: .createExclusive, capacity: capacity)
            let start = try Barrier(name: startName, mode: .createExclusive, parties: 4)
            let consumers = try (0..<2).map { _ in
                try Helper.start("queue-consume", [name.rawValue, "\(capacity)", startName.rawValue, "4"])
            }
            let producers = try (1...2).map { id in
                try Helper.start("queue-produce", [name.rawValue, "\(capacity)", "\(id)", "\(perProducer)", startName.rawValue, "4"])
            }
            for producer in producers {
                #expect(Helper.finish(producer, timeout: .seconds(600)) == .exited(0), "\(producer.output)")
            }
            sut.close()  // consumers drain, then stop
            var count = 0, sum: UInt64 = 0, xor: UInt64 = 0
            for consumer in consumers {
                #expect(Helper.finish(consumer, timeout: .seconds(600)) == .exited(0), "\(consumer.output)")
                let fields = consumer.output.split(whereSeparator: \.isWhitespace)
                guard let at = fields.firstIndex(of: "count"), fields.count >= at + 8 else {
                    Issue.record("unexpected output: \(consumer.output)")
                    continue
                }
                count += Int(fields[at + 1]) ?? -1
                sum &+= UInt64(fields[at + 3]) ?? 0
                xor ^= UInt64(fields[at + 5]) ?? 0
                #expect(fields[at + 7] == "true", "a consumer saw a producer's items out of order")
            }
            var expectedSum: UInt64 = 0, expectedXor: UInt64 = 0
            for producer in UInt64(1)...2 {
                for sequence in 0..<UInt64(perProducer) {
                    expectedSum &+= producer << 32 | sequence
                    expectedXor ^= producer << 32 | sequence
                }
            }
            #expect(count == 2 * perProducer)
            #expect(sum == expectedSum)
            #expect(xor == expectedXor)
            try start.unlink()
            try sut.unlink()
        }
    }
}
