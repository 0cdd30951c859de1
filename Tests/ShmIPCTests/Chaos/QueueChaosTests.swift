import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import SystemPackage
import Testing

extension ShmIPCTests {
    /// kill -9 at random instants, inside operations: producers and consumers of an MPMC
    /// `Queue` are SIGKILLed while they put and get, and the survivors check the invariants.
    @Suite(.serialized) struct QueueChaosTests {
        static let capacity = 8

        /// Producer processes killed at random instants while this process consumes: every
        /// item received is whole, each producer's items arrive in order with no gap and none
        /// twice, the queue never stalls, and at most one item per kill is lost (given up as
        /// abandoned).
        @Test func producersKilledAtRandomInstantsLoseAtMostTheirItemInFlight() throws {
            let kills = 150
            // Spinning: a waiter looks at the slot it waits on every 25 ms (parked: every slice).
            let sut = try Queue<ChaosItem>(capacity: Self.capacity, waitStrategy: .spin)
            let descriptor = sut.inheritableDescriptor!
            var next: [UInt64: UInt64] = [:]  // producer -> next counter expected
            var random = SystemRandomNumberGenerator()
            var received = 0
            func take(_ item: ChaosItem) {
                #expect(item.isWhole, "a torn item \(item)")
                let expected = next[item.producer, default: 0]
                #expect(item.counter == expected, "producer \(item.producer): \(item.counter), expected \(expected)")
                next[item.producer] = item.counter + 1
                received += 1
            }
            for round in 0..<kills {
                let producer = try Helper.start("queue-chaos-put", ["10", "\(Self.capacity)", "\(round + 1)"], descriptors: [(descriptor, 10)])
                guard Helper.waitForOutput(producer, containing: "running") else {
                    Issue.record("round \(round): \(producer.output)")
                    _ = producer.kill()
                    return
                }
                let until = Deadline.after(.microseconds(Int.random(in: 0..<3000, using: &random)))
                while !until.hasPassed { if let item = try sut.tryGet() { take(item) } }
                #expect(producer.kill() == .signaled(SIGKILL), "round \(round): \(producer.output)")
                // Drain what it left; a slot it died holding is given up within 25 ms.
                while let item = try? sut.get(timeout: .milliseconds(60)) { take(item) }
            }
            // Not wedged: the queue takes and gives items after all those deaths.
            for counter in 0..<UInt64(3 * Self.capacity) {
                try sut.put(ChaosItem(producer: 0, counter: counter), timeout: .seconds(10))
                take(try sut.get(timeout: .seconds(10)))
            }
            print("queue chaos (producers): \(kills) kills, \(received) items, \(sut.abandoned) abandoned")
            #expect(sut.abandoned <= kills)
            #expect(sut.count == 0)
        }

        /// Consumer processes killed at random instants while this process produces: no item
        /// is delivered twice or torn, and what is missing is at most one item per kill given
        /// up inside the queue (abandoned) plus one per kill taken but not yet recorded.
        @Test func consumersKilledAtRandomInstantsLoseAtMostTheirItemInFlight() throws {
            let kills = 150
            let items = 1_000_000
            let sut = try Queue<ChaosItem>(capacity: Self.capacity, waitStrategy: .spin)
            let ledger = try SharedArray<UInt64>(count: items + 1, repeating: 0)
            let descriptors = [(sut.inheritableDescriptor!, Int32(10)), (ledger.inheritableDescriptor!, Int32(11))]
            var random = SystemRandomNumberGenerator()
            var counter: UInt64 = 0
            for round in 0..<kills {
                let consumer = try Helper.start("queue-chaos-get", ["10", "\(Self.capacity)", "11", "\(items)"], descriptors: descriptors)
                guard Helper.waitForOutput(consumer, containing: "running") else {
                    Issue.record("round \(round): \(consumer.output)")
                    _ = consumer.kill()
                    return
                }
                let until = Deadline.after(.microseconds(Int.random(in: 0..<3000, using: &random)))
                while !until.hasPassed && counter < UInt64(items - 1) {
                    if try sut.tryPut(ChaosItem(producer: 0, counter: counter)) { counter += 1 }
                }
                // (A slot a consumer dies holding is freed by the next put that waits on it.)
                #expect(consumer.kill() == .signaled(SIGKILL), "round \(round): \(consumer.output)")
            }
            // A last consumer drains the rest (through any slot a dead consumer held: a waiting
            // producer frees it) and stops at the end marker.
            let last = try Helper.start("queue-chaos-get", ["10", "\(Self.capacity)", "11", "\(items)"], descriptors: descriptors)
            try sut.put(ChaosItem(producer: 0, counter: UInt64(items)), timeout: .seconds(30))
            #expect(Helper.finish(last) == .exited(0), "\(last.output)")
            let seen = (0..<Int(counter)).filter { ledger[$0] != 0 }.count
            let missing = Int(counter) - seen
            print("queue chaos (consumers): \(kills) kills, \(counter) items put, \(missing) missing, \(sut.abandoned) abandoned")
            #expect(ledger[items] == 0, "items delivered twice")
            #expect((0..<Int(counter)).allSatisfy { ledger[$0] <= 1 })
            #expect(sut.abandoned <= kills)
            #expect(missing <= sut.abandoned + kills)
            #expect(sut.count == 0)
        }
    }
}

extension ShmIPCTests {
    /// Each repair of a slot a dead thread holds, set up exactly: the slot states a thread
    /// leaves when killed at each step of a put or a get.
    @Suite struct QueueSlotRepairTests {
        /// A thread id that is no longer alive (a helper that ran and was reaped).
        static func deadThreadID() throws -> UInt64 {
            let child = try Helper.start("exit", ["0"])
            #expect(Helper.finish(child) == .exited(0))
            return UInt64(UInt32(bitPattern: child.pid))
        }

        @Test func aProducerKilledBeforePublishingLosesOnlyItsItem() throws {
            let sut = try Queue<UInt64>(capacity: 4, waitStrategy: .spin)
            let control = sut.control
            // Killed after claiming index 0 and passing the tail, before publishing.
            control.claim(control.slot(0)).store(QueueControl.stamp(0) | (try Self.deadThreadID()), ordering: .relaxed)
            control.tail.store(1, ordering: .relaxed)
            try sut.put(7)
            #expect(try sut.get(timeout: .seconds(5)) == 7)
            #expect(sut.abandoned == 1)
            // The slot serves the next lap.
            for value in 10..<18 as Range<UInt64> { try sut.put(value, timeout: .seconds(5)); #expect(try sut.get(timeout: .seconds(5)) == value) }
        }

        @Test func aProducerKilledBeforePassingTheTailLosesOnlyItsItem() throws {
            let sut = try Queue<UInt64>(capacity: 4, waitStrategy: .spin)
            let control = sut.control
            // Killed right after claiming index 0: the tail still says 0.
            control.claim(control.slot(0)).store(QueueControl.stamp(0) | (try Self.deadThreadID()), ordering: .relaxed)
            try sut.put(8, timeout: .seconds(5))  // another producer helps the tail past index 0
            #expect(try sut.get(timeout: .seconds(5)) == 8)
            #expect(sut.abandoned == 1)
        }

        @Test func aProducerKilledBetweenReadyAndPublishedLosesNothing() throws {
            let sut = try Queue<UInt64>(capacity: 4, waitStrategy: .spin)
            let control = sut.control
            try sut.put(9)
            // As if it died after marking index 0 ready, before publishing its sequence.
            control.sequence(control.slot(0)).store(0, ordering: .relaxed)
            #expect(try sut.tryGet() == nil)
            #expect(try sut.get(timeout: .seconds(5)) == 9)
            #expect(sut.abandoned == 0)
        }

        @Test func aConsumerKilledWhileTakingLosesOnlyThatItem() throws {
            let sut = try Queue<UInt64>(capacity: 2, waitStrategy: .spin)
            let control = sut.control
            try sut.put(1)
            try sut.put(2)
            // A consumer claimed index 0, passed the head, and died copying it out.
            let holder = QueueControl.stamp(0) | (try Self.deadThreadID()) | QueueControl.consumerFlag
            control.claim(control.slot(0)).store(holder, ordering: .relaxed)
            control.head.store(1, ordering: .relaxed)
            #expect(try sut.get(timeout: .seconds(5)) == 2)
            try sut.put(3, timeout: .seconds(5))   // waits on slot 0 (index 2): frees it
            #expect(sut.abandoned == 1)
            #expect(try sut.get(timeout: .seconds(5)) == 3)
            #expect(sut.count == 0)
        }

        @Test func aConsumerKilledBetweenFreeAndFreedLosesNothing() throws {
            let sut = try Queue<UInt64>(capacity: 2, waitStrategy: .spin)
            let control = sut.control
            try sut.put(1)
            #expect(try sut.get() == 1)
            // As if it died after marking slot 0 free for index 2, before freeing its sequence.
            control.sequence(control.slot(0)).store(1, ordering: .relaxed)
            try sut.put(2)
            try sut.put(3, timeout: .seconds(5))   // index 2: slot 0, freed by the repair
            #expect(try sut.get() == 2)
            #expect(try sut.get() == 3)
            #expect(sut.abandoned == 0)
        }

        @Test func aJoinableQueuesAbandonedItemEndsItsTask() throws {
            let sut = try JoinableQueue<UInt64>(capacity: 4, waitStrategy: .spin)
            let control = sut.queue.control
            // A producer counted its task, claimed index 0 and died.
            control.word32(512).store(1, ordering: .relaxed)
            control.claim(control.slot(0)).store(QueueControl.stamp(0) | (try Self.deadThreadID()), ordering: .relaxed)
            control.tail.store(1, ordering: .relaxed)
            try sut.put(5)
            #expect(try sut.get(timeout: .seconds(5)) == 5)
            try sut.taskDone()
            try sut.join(timeout: .seconds(5))
            #expect(sut.abandoned == 1)
        }
    }
}

extension ShmIPCTests {
    @Suite struct ValueChaosTests {
        /// A writer of a wide value SIGKILLed at random instants, 100 times (inside a store:
        /// under the lock, filling the other buffer): every read is whole, and the next store
        /// (which takes over the dead writer's lock) and read work.
        @Test func aWriterKilledAtRandomInstantsNeverTearsTheValueOrWedgesTheNextWriter() throws {
            let sut = try Value<Pattern64>(Pattern64(0))
            var random = SystemRandomNumberGenerator()
            var last: UInt64 = 0
            for round in 0..<100 {
                let writer = try Helper.start("value-store-forever", ["10"], descriptors: [(sut.inheritableDescriptor!, 10)])
                guard Helper.waitForOutput(writer, containing: "writing") else {
                    Issue.record("round \(round): \(writer.output)")
                    _ = writer.kill()
                    return
                }
                Sys.sleep(.microseconds(Int.random(in: 0..<2000, using: &random)))
                #expect(writer.kill() == .signaled(SIGKILL))
                let read = sut.load()
                #expect(read.isWhole, "round \(round): a torn value \(read)")
                last = read.first
                sut.store(Pattern64(UInt64(round) << 40))   // takes the lock over if the writer died holding it
                #expect(sut.load() == Pattern64(UInt64(round) << 40))
            }
            print("value chaos: 100 kills, last value written by a killed writer: \(last)")
        }

        /// Forged buffer index and sequences (what a hostile peer can write): reads and writes
        /// stay in the value's buffers and end (a read that never sees an even sequence reads
        /// under the lock).
        @Test func forgedIndexAndSequencesNeitherEscapeTheBuffersNorHang() throws {
            let sut = try Value<Pattern64>(Pattern64(7))
            sut.currentIndex.store(1000, ordering: .relaxed)
            sut.sequence(0).store(1, ordering: .relaxed)
            sut.sequence(1).store(3, ordering: .relaxed)
            _ = sut.load()  // some whole buffer, or the lock path: must return
            sut.store(Pattern64(9))
            #expect(sut.load() == Pattern64(9))
            sut.withUnsafeMutablePointer { _ = $0.pointee }
        }
    }
}
