import Glibc
import ShmIPC
import ShmIPCTestSupport
import SystemPackage

/// Scenarios for the queue tests. Items are `producer << 32 | sequence`, so a consumer can
/// check each producer's order and the test a closed-form total.
extension Helper {
    static let queueScenarios: [String: @Sendable ([String]) -> Void] = [
        // queue-produce <name> <capacity> <producer id> <count> <start name> <parties>
        "queue-produce": { args in
            let queue = attempt { () throws(SharedObjectError) in
                try Queue<UInt64>(name: segmentName(args[0]), mode: .openExisting, capacity: Int(args[1])!)
            }
            let producer = UInt64(args[2])!
            let start = attempt { () throws(SharedObjectError) in
                try Barrier(name: segmentName(args[4]), mode: .openExisting, parties: Int(args[5])!)
            }
            _ = attempt { () throws(SyncError) in try start.wait(timeout: .seconds(60)) }
            for sequence in 0..<UInt64(args[3])! {
                attempt { () throws(QueueError) in try queue.put(producer << 32 | sequence, timeout: .seconds(60)) }
            }
            say("produced")
        },
        // queue-consume <name> <capacity> <start name> <parties>: takes until closed and empty;
        // reports count, sum, xor, and whether every producer's items came in order.
        "queue-consume": { args in
            let queue = attempt { () throws(SharedObjectError) in
                try Queue<UInt64>(name: segmentName(args[0]), mode: .openExisting, capacity: Int(args[1])!)
            }
            let start = attempt { () throws(SharedObjectError) in
                try Barrier(name: segmentName(args[2]), mode: .openExisting, parties: Int(args[3])!)
            }
            _ = attempt { () throws(SyncError) in try start.wait(timeout: .seconds(60)) }
            var count = 0, sum: UInt64 = 0, xor: UInt64 = 0, ordered = true
            var last: [UInt64: UInt64] = [:]
            while true {
                let item: UInt64
                do throws(QueueError) { item = try queue.get(timeout: .seconds(60)) } catch .closed { break } catch { fail("\(error)") }
                count += 1
                sum &+= item
                xor ^= item
                let producer = item >> 32, sequence = item & 0xFFFF_FFFF
                if let previous = last[producer], previous >= sequence { ordered = false }
                last[producer] = sequence
            }
            say("count \(count) sum \(sum) xor \(xor) ordered \(ordered)")
        },
        // spsc-produce <name> <capacity> <count>: puts 0..<count through the producer role.
        "spsc-produce": { args in
            let queue = attempt { () throws(SharedObjectError) in
                try SPSCQueue<UInt64>(name: segmentName(args[0]), mode: .openExisting, capacity: Int(args[1])!)
            }
            var producer = attempt { () throws(QueueError) in try queue.makeProducer() }
            for value in 0..<UInt64(args[2])! {
                do throws(QueueError) { try producer.put(value, timeout: .seconds(60)) } catch { fail("\(error)") }
            }
            say("produced")
        },
        // spsc-hold-role <name> <capacity>: takes the producer role and waits to be killed.
        "spsc-hold-role": { args in
            let queue = attempt { () throws(SharedObjectError) in
                try SPSCQueue<UInt64>(name: segmentName(args[0]), mode: .openExisting, capacity: Int(args[1])!)
            }
            let producer = attempt { () throws(QueueError) in try queue.makeProducer() }
            say("holding")
            // A use inside the loop keeps the endpoint (and so the role) alive: a use after an
            // endless loop would be unreachable, and Swift would end its lifetime at once.
            while producer.waitStrategy != .spin { Sys.sleep(.seconds(1)) }
            fail("unreachable")
        },
        // jq-work <name> <capacity> <count>: takes count items, marking each task done.
        "jq-work": { args in
            let queue = attempt { () throws(SharedObjectError) in
                try JoinableQueue<UInt64>(name: segmentName(args[0]), mode: .openExisting, capacity: Int(args[1])!)
            }
            for _ in 0..<Int(args[2])! {
                _ = attempt { () throws(QueueError) in try queue.get(timeout: .seconds(60)) }
                attempt { () throws(QueueError) in try queue.taskDone() }
            }
            say("worked")
        },
        // queue-put-then-hang <name> <capacity> <count>: puts 0..<count, then waits to be killed.
        "queue-put-then-hang": { args in
            let queue = attempt { () throws(SharedObjectError) in
                try Queue<UInt64>(name: segmentName(args[0]), mode: .openExisting, capacity: Int(args[1])!)
            }
            for value in 0..<UInt64(args[2])! {
                attempt { () throws(QueueError) in try queue.put(value, timeout: .seconds(60)) }
            }
            say("put")
            while true { withExtendedLifetime(queue) { Sys.sleep(.seconds(1)) } }
        },
        // queue-take-then-hang <name> <capacity> <count>: takes count items, then waits to be killed.
        "queue-take-then-hang": { args in
            let queue = attempt { () throws(SharedObjectError) in
                try Queue<UInt64>(name: segmentName(args[0]), mode: .openExisting, capacity: Int(args[1])!)
            }
            var taken: [UInt64] = []
            for _ in 0..<Int(args[2])! {
                taken.append(attempt { () throws(QueueError) in try queue.get(timeout: .seconds(60)) })
            }
            say("took \(taken)")
            while true { withExtendedLifetime(queue) { Sys.sleep(.seconds(1)) } }
        },
        // spsc-echo <there name> <back name> <capacity> <count>: parked echo of count items;
        // reports the slice recoveries it saw (lost wake-ups).
        "spsc-echo": { args in
            let there = attempt { () throws(SharedObjectError) in
                try SPSCQueue<UInt64>(name: segmentName(args[0]), mode: .openExisting, capacity: Int(args[2])!)
            }
            let back = attempt { () throws(SharedObjectError) in
                try SPSCQueue<UInt64>(name: segmentName(args[1]), mode: .openExisting, capacity: Int(args[2])!)
            }
            var consumer = attempt { () throws(QueueError) in try there.makeConsumer(waitStrategy: .park) }
            var producer = attempt { () throws(QueueError) in try back.makeProducer(waitStrategy: .park) }
            for _ in 0..<Int(args[3])! {
                do throws(QueueError) {
                    try producer.put(try consumer.get(timeout: .seconds(30)) &+ 1, timeout: .seconds(30))
                } catch { fail("\(error)") }
            }
            say("echoed, slice recoveries \(QueueDiagnostics.sliceRecoveries)")
        },
        // queue-get <name> <capacity> <timeout-ms>: one get, reported.
        "queue-get": { args in
            let queue = attempt { () throws(SharedObjectError) in
                try Queue<UInt64>(name: segmentName(args[0]), mode: .openExisting, capacity: Int(args[1])!, waitStrategy: .park)
            }
            say("waiting")
            do { say("got \(try queue.get(timeout: .milliseconds(Int(args[2])!)))") } catch { say("get: \(error)") }
        },
        // queue-chaos-put <fd> <capacity> <producer> [<batch>]: puts ChaosItems 0, 1, 2… until
        // killed, one `put` each, or `put(contentsOf:)` batches of <batch>.
        "queue-chaos-put": { args in
            let queue = attempt { () throws(SharedObjectError) in
                try Queue<ChaosItem>(inheriting: FileDescriptor(rawValue: Int32(args[0])!), capacity: Int(args[1])!, waitStrategy: .spin)
            }
            let producer = UInt64(args[2])!
            let batch = args.count > 3 ? Int(args[3])! : 1
            // Made before the loop, so the loop's time is mostly spent inside `put` (copying 4 KiB
            // into a claimed slot), where the kills are meant to land.
            let made = (0..<UInt64(4096)).map { ChaosItem(producer: producer, counter: $0) }
            var counter: UInt64 = 0
            while true {
                let items = (0..<UInt64(batch)).map { counter + $0 < 4096 ? made[Int(counter + $0)] : ChaosItem(producer: producer, counter: counter + $0) }
                if batch == 1 {
                    attempt { () throws(QueueError) in try queue.put(items[0], timeout: .seconds(60)) }
                } else {
                    attempt { () throws(QueueError) in try queue.put(contentsOf: items, timeout: .seconds(60)) }
                }
                if counter == 0 { say("running") }
                counter += UInt64(batch)
            }
        },
        // queue-chaos-get <fd> <capacity> <ledger fd> <items>: takes ChaosItems (from producer
        // 0, counters below <items>) until killed or the one with counter <items>; marks each
        // in the ledger (SharedArray<UInt64> of items + 1; the last element counts repeats).
        "queue-chaos-get": { args in
            let queue = attempt { () throws(SharedObjectError) in
                try Queue<ChaosItem>(inheriting: FileDescriptor(rawValue: Int32(args[0])!), capacity: Int(args[1])!, waitStrategy: .spin)
            }
            let items = Int(args[3])!
            let ledger = attempt { () throws(SharedObjectError) in
                try SharedArray<UInt64>(inheriting: FileDescriptor(rawValue: Int32(args[2])!), count: items + 1)
            }
            say("running")
            while true {
                let item = attempt { () throws(QueueError) in try queue.get(timeout: .seconds(60)) }
                guard item.looksWhole, item.producer == 0, item.counter <= UInt64(items) else { fail("a torn or forged item \(item.producer) \(item.counter)") }
                if item.counter == UInt64(items) { break }
                if ledger.add(1, at: Int(item.counter)) != 0 { _ = ledger.add(1, at: items) }
            }
            say("drained")
        },
        // spsc-chaos-put <fd> <capacity> <producer> [<batch>]: takes the producer role, puts
        // ChaosItems 0, 1, 2… until killed, one `put` each, or `put(contentsOf:)` batches of
        // <batch>.
        // spsc-chaos-get <fd> <capacity> <state fd>: takes ChaosItems of producer 1 until
        // killed. state[0] is the counter expected next (after each item); state[3] counts the
        // consumers since the last item was recorded, the recorder included: each of them may
        // have died having taken one more, so the first item may skip that many (counted in
        // state[2]); each later one must be the next. A violation (or a torn item) counts in
        // state[1] and ends the helper.
        "spsc-chaos-get": { args in
            let queue = attempt { () throws(SharedObjectError) in
                try SPSCQueue<ChaosItem>(inheriting: FileDescriptor(rawValue: Int32(args[0])!), capacity: Int(args[1])!)
            }
            let state = attempt { () throws(SharedObjectError) in
                try SharedArray<UInt64>(inheriting: FileDescriptor(rawValue: Int32(args[2])!), count: 4)
            }
            var endpoint = attempt { () throws(QueueError) in try queue.makeConsumer(waitStrategy: .spin) }
            var expected = state[0]
            let mayHaveLost = state.add(1, at: 3)
            var first = true
            say("running")
            while true {
                let item = attempt { () throws(QueueError) in try endpoint.get(timeout: .seconds(60)) }
                guard item.producer == 1, item.isWhole, item.counter == expected || (first && item.counter > expected && item.counter - expected <= mayHaveLost) else {
                    _ = state.add(1, at: 1)
                    fail("expected item \(expected), received \(item.producer):\(item.counter) (whole: \(item.isWhole))")
                }
                if item.counter != expected { _ = state.add(item.counter - expected, at: 2) }
                first = false
                expected = item.counter + 1
                state[0] = expected
                state[3] = 1
            }
        },
        "spsc-chaos-put": { args in
            let queue = attempt { () throws(SharedObjectError) in
                try SPSCQueue<ChaosItem>(inheriting: FileDescriptor(rawValue: Int32(args[0])!), capacity: Int(args[1])!)
            }
            let producer = UInt64(args[2])!
            let batch = args.count > 3 ? Int(args[3])! : 1
            let made = (0..<UInt64(4096)).map { ChaosItem(producer: producer, counter: $0) }
            var endpoint = attempt { () throws(QueueError) in try queue.makeProducer(waitStrategy: .spin) }
            var counter: UInt64 = 0
            while true {
                if batch == 1 {
                    let item = counter < 4096 ? made[Int(counter)] : ChaosItem(producer: producer, counter: counter)
                    attempt { () throws(QueueError) in try endpoint.put(item, timeout: .seconds(60)) }
                } else {
                    let items = (0..<UInt64(batch)).map { counter + $0 < 4096 ? made[Int(counter + $0)] : ChaosItem(producer: producer, counter: counter + $0) }
                    attempt { () throws(QueueError) in try endpoint.put(contentsOf: items, timeout: .seconds(60)) }
                }
                if counter == 0 { say("running") }
                counter += UInt64(batch)
            }
        },
    ]
}
