import Glibc
import ShmIPC
import ShmIPCTestSupport
import SystemPackage

/// Scenarios for the shared value and array tests.
extension Helper {
    static let valueScenarios: [String: @Sendable ([String]) -> Void] = [
        // value-add <name> <n> <start name> <parties> <atomic|locked>: n increments of a Value<Int>.
        "value-add": { args in
            let value = attempt { () throws(SharedObjectError) in try Value<Int>(name: segmentName(args[0]), mode: .openExisting, initial: 0) }
            let start = attempt { () throws(SharedObjectError) in
                try Barrier(name: segmentName(args[2]), mode: .openExisting, parties: Int(args[3])!)
            }
            _ = attempt { () throws(SyncError) in try start.wait(timeout: .seconds(60)) }
            let locked = args[4] == "locked"
            for _ in 0..<Int(args[1])! {
                if locked {
                    do { try value.withLock { $0 += 1 } } catch { fail("\(error)") }
                } else {
                    value.add(1)
                }
            }
            say("added")
        },
        // value-alternate <name> <stop name>: stores Pattern64(0xAAAA…) and (0x5555…) in turn
        // until the stop value becomes 1 (at most 120 s); reports how many stores it made.
        "value-alternate": { args in
            let value = attempt { () throws(SharedObjectError) in
                try Value<Pattern64>(name: segmentName(args[0]), mode: .openExisting, initial: Pattern64(0))
            }
            let stop = attempt { () throws(SharedObjectError) in try Value<Int>(name: segmentName(args[1]), mode: .openExisting, initial: 0) }
            let patterns = [Pattern64(0xAAAA_AAAA_AAAA_AAAA), Pattern64(0x5555_5555_5555_5555)]
            let giveUp = Deadline.after(.seconds(120))
            var stores = 0
            say("writing")
            while stop.load() == 0 && !giveUp.hasPassed {
                value.store(patterns[stores & 1])
                stores += 1
            }
            say("stores \(stores)")
        },
        // value-store-forever <fd>: stores Pattern64(1), (2), (3)… into an inherited value
        // (wide: double-buffered, under its lock) until killed.
        "value-store-forever": { args in
            let value = attempt { () throws(SharedObjectError) in
                try Value<Pattern64>(inheriting: FileDescriptor(rawValue: Int32(args[0])!))
            }
            var next: UInt64 = 1
            value.store(Pattern64(next))
            say("running")
            while true {
                next &+= 1
                value.store(Pattern64(next))
            }
        },
        // array-add <name> <count> <n> <start name> <parties>: n atomic increments spread over the elements.
        "array-add": { args in
            let count = Int(args[1])!
            let array = attempt { () throws(SharedObjectError) in
                try SharedArray<Int>(name: segmentName(args[0]), mode: .openExisting, count: count, repeating: 0)
            }
            let start = attempt { () throws(SharedObjectError) in
                try Barrier(name: segmentName(args[3]), mode: .openExisting, parties: Int(args[4])!)
            }
            _ = attempt { () throws(SyncError) in try start.wait(timeout: .seconds(60)) }
            for i in 0..<Int(args[2])! { array.add(1, at: i % count) }
            say("added")
        },
    ]
}
