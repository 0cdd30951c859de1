import Glibc
import ShmIPC
import SystemPackage

/// Scenarios for the synchronization tests. Arguments are object names (created by the test)
/// and counts; every wait has a timeout so a helper can fail, never hang.
extension Helper {
    static let syncScenarios: [String: @Sendable ([String]) -> Void] = [
        // lock-hold <lock|rlock|condition> <name>: acquires, reports, then waits to be killed.
        "lock-hold": { args in
            let name = segmentName(args[1])
            switch args[0] {
            case "lock":
                let lock = attempt { () throws(SharedObjectError) in try Lock(name: name, mode: .openExisting) }
                _ = attempt { () throws(SyncError) in try lock.acquire(timeout: .seconds(20)) }
                holdForever(lock)
            case "rlock":
                let lock = attempt { () throws(SharedObjectError) in try RLock(name: name, mode: .openExisting) }
                _ = attempt { () throws(SyncError) in try lock.acquire(timeout: .seconds(20)) }
                _ = attempt { () throws(SyncError) in try lock.acquire(timeout: .seconds(20)) }  // depth 2
                holdForever(lock)
            default:
                let condition = attempt { () throws(SharedObjectError) in try Condition(name: name, mode: .openExisting) }
                _ = attempt { () throws(SyncError) in try condition.acquire(timeout: .seconds(20)) }
                holdForever(condition)
            }
        },
        // lock-count <lock|rlock> <lock name> <data name> <start barrier name> <parties> <n>:
        // after the start barrier, n increments of word 0 of <data> under the lock (RLock: nested).
        "lock-count": { args in
            let data = attempt { () throws(SharedMemoryError) in try SharedMemory.open(name: segmentName(args[2])) }
            let start = attempt { () throws(SharedObjectError) in
                try Barrier(name: segmentName(args[3]), mode: .openExisting, parties: Int(args[4])!)
            }
            let iterations = Int(args[5])!
            let counter = data.withUnsafeMutableBytes { $0.baseAddress!.assumingMemoryBound(to: UInt64.self) }
            if args[0] == "lock" {
                let lock = attempt { () throws(SharedObjectError) in try Lock(name: segmentName(args[1]), mode: .openExisting) }
                _ = attempt { () throws(SyncError) in try start.wait(timeout: .seconds(30)) }
                for _ in 0..<iterations {
                    _ = attempt { () throws(SyncError) in try lock.acquire(timeout: .seconds(30)) }
                    counter.pointee += 1  // plain: ordered by the lock
                    attempt { () throws(SyncError) in try lock.release() }
                }
            } else {
                let lock = attempt { () throws(SharedObjectError) in try RLock(name: segmentName(args[1]), mode: .openExisting) }
                _ = attempt { () throws(SyncError) in try start.wait(timeout: .seconds(30)) }
                for _ in 0..<iterations {
                    _ = attempt { () throws(SyncError) in try lock.acquire(timeout: .seconds(30)) }
                    _ = attempt { () throws(SyncError) in try lock.acquire(timeout: .seconds(30)) }
                    counter.pointee += 1
                    attempt { () throws(SyncError) in try lock.release() }
                    attempt { () throws(SyncError) in try lock.release() }
                }
            }
            withExtendedLifetime(data) {}
            say("done")
        },
        // barrier-loop <name> <parties> <generations>: waits every generation; prints the sum
        // of its arrival indexes.
        // lock-pair-forever <lock fd> <array fd>: under the lock, adds 1 to word 0, then to word
        // 1 (a two-step update a death can tear), until killed; repairs a torn pair it inherits.
        "lock-pair-forever": { args in
            let lock = attempt { () throws(SharedObjectError) in try Lock(inheriting: FileDescriptor(rawValue: Int32(args[0])!)) }
            let pair = attempt { () throws(SharedObjectError) in try SharedArray<UInt64>(inheriting: FileDescriptor(rawValue: Int32(args[1])!), count: 2) }
            var announced = false
            while true {
                let acquisition = attempt { () throws(SyncError) in try lock.acquire(timeout: .seconds(60)) }
                if acquisition == .previousOwnerDied {
                    pair[1] = pair[0]
                    attempt { () throws(SyncError) in try lock.markConsistent() }
                }
                pair[0] = pair[0] &+ 1
                pair[1] = pair[1] &+ 1
                attempt { () throws(SyncError) in try lock.release() }
                if !announced { say("running"); announced = true }
            }
        },
        "barrier-loop": { args in
            let barrier = attempt { () throws(SharedObjectError) in
                try Barrier(name: segmentName(args[0]), mode: .openExisting, parties: Int(args[1])!)
            }
            var sum = 0
            for _ in 0..<Int(args[2])! {
                sum += attempt { () throws(SyncError) in try barrier.wait(timeout: .seconds(30)) }
            }
            say("sum \(sum)")
        },
        // barrier-wait <name> <parties> <timeout-ms>: one wait; reports how it ended.
        "barrier-wait": { args in
            let barrier = attempt { () throws(SharedObjectError) in
                try Barrier(name: segmentName(args[0]), mode: .openExisting, parties: Int(args[1])!)
            }
            say("waiting")
            do {
                let index = try barrier.wait(timeout: .milliseconds(Int(args[2])!))
                say("index \(index)")
            } catch {
                say("wait: \(error)")
            }
        },
        // condition-wait <name> <timeout-ms>: one wait holding the lock; reports how it ended.
        "condition-wait": { args in
            let condition = attempt { () throws(SharedObjectError) in try Condition(name: segmentName(args[0]), mode: .openExisting) }
            _ = attempt { () throws(SyncError) in try condition.acquire(timeout: .seconds(20)) }
            say("waiting")
            let notified = attempt { () throws(SyncError) in try condition.wait(timeout: .milliseconds(Int(args[1])!)) }
            attempt { () throws(SyncError) in try condition.release() }
            say(notified ? "notified" : "timed out")
        },
        // condition-produce <name> <data name> <n>: n times, under the lock: word 0 += 1, notify.
        "condition-produce": { args in
            let condition = attempt { () throws(SharedObjectError) in try Condition(name: segmentName(args[0]), mode: .openExisting) }
            let data = attempt { () throws(SharedMemoryError) in try SharedMemory.open(name: segmentName(args[1])) }
            let items = data.withUnsafeMutableBytes { $0.baseAddress!.assumingMemoryBound(to: UInt64.self) }
            for _ in 0..<Int(args[2])! {
                _ = attempt { () throws(SyncError) in try condition.acquire(timeout: .seconds(30)) }
                items.pointee += 1
                attempt { () throws(SyncError) in try condition.notify() }
                attempt { () throws(SyncError) in try condition.release() }
            }
            withExtendedLifetime(data) {}
            say("produced")
        },
        // condition-consume <name> <data name> <n>: takes n items, waiting with wait(for:).
        "condition-consume": { args in
            let condition = attempt { () throws(SharedObjectError) in try Condition(name: segmentName(args[0]), mode: .openExisting) }
            let data = attempt { () throws(SharedMemoryError) in try SharedMemory.open(name: segmentName(args[1])) }
            let items = data.withUnsafeMutableBytes { $0.baseAddress!.assumingMemoryBound(to: UInt64.self) }
            var taken = 0
            for _ in 0..<Int(args[2])! {
                _ = attempt { () throws(SyncError) in try condition.acquire(timeout: .seconds(30)) }
                let ready = (try? condition.wait(for: { items.pointee > 0 }, timeout: .seconds(30))) ?? false
                if !ready { fail("no item within 30 s after \(taken)") }
                items.pointee -= 1
                taken += 1
                attempt { () throws(SyncError) in try condition.release() }
            }
            withExtendedLifetime(data) {}
            say("consumed \(taken)")
        },
        // event-wait <name> <timeout-ms> / semaphore-acquire <name> <timeout-ms>
        "event-wait": { args in
            let event = attempt { () throws(SharedObjectError) in try Event(name: segmentName(args[0]), mode: .openExisting) }
            say("waiting")
            say(event.wait(timeout: .milliseconds(Int(args[1])!)) ? "set" : "timed out")
        },
        "semaphore-acquire": { args in
            let semaphore = attempt { () throws(SharedObjectError) in try Semaphore(name: segmentName(args[0]), mode: .openExisting) }
            say("waiting")
            do {
                try semaphore.acquire(timeout: .milliseconds(Int(args[1])!))
                say("acquired")
            } catch {
                say("acquire: \(error)")
            }
        },
    ]

    static func segmentName(_ text: String) -> SegmentName {
        attempt { () throws(SharedMemoryError) in try SegmentName(text) }
    }

    static func holdForever(_ object: AnyObject) -> Never {
        say("holding")
        // Used inside the loop: a use after an endless loop is unreachable and would not keep
        // the object (and its mapping) alive.
        while true { withExtendedLifetime(object) { Sys.sleep(.seconds(1)) } }
    }
}
