import Glibc
import ShmIPC
import ShmIPCTestSupport
import SystemPackage

/// Scenarios for the shared dictionary, list and Namespace tests. Objects come inherited; the
/// first arguments name their descriptors.
extension Helper {
    static let managerScenarios: [String: @Sendable ([String]) -> Void] = [
        // dict-increment <dict fd> <barrier fd> <n> <keys>: n `modify` increments of
        // SharedDictionary<Int, Int> keys i % keys, after a two-party barrier.
        "dict-increment": { args in
            let dictionary = attempt { () throws(SharedObjectError) in
                try SharedDictionary<Int, Int>(inheriting: FileDescriptor(rawValue: Int32(args[0])!))
            }
            waitAtBarrier(args[1])
            let keys = Int(args[3])!
            for i in 0..<Int(args[2])! {
                do { try dictionary.modify(i % keys) { $0 = ($0 ?? 0) + 1 } } catch { fail("modify: \(error)") }
            }
            say("incremented")
        },
        // list-append <list fd> <barrier fd> <n> <seed>: appends StoreRecords elements 0..<n.
        "list-append": { args in
            let list = attempt { () throws(SharedObjectError) in
                try SharedList<[UInt8]>(inheriting: FileDescriptor(rawValue: Int32(args[0])!))
            }
            waitAtBarrier(args[1])
            let seed = UInt64(args[3])!
            for counter in 0..<UInt64(args[2])! {
                attempt { () throws(ManagerError) in try list.append(StoreRecords.element(seed: seed, counter: counter)) }
            }
            say("appended")
        },
        // manager-child <dict fd> <list fd> <namespace fd>: changes each the way a Python
        // tutorial's child does: d[1] = '1', d['2'] = 2 (as strings), l.reverse(), ns.x += 1.
        "manager-child": { args in
            let d = attempt { () throws(SharedObjectError) in try SharedDictionary<String, String>(inheriting: FileDescriptor(rawValue: Int32(args[0])!)) }
            let l = attempt { () throws(SharedObjectError) in try SharedList<Int>(inheriting: FileDescriptor(rawValue: Int32(args[1])!)) }
            let ns = attempt { () throws(SharedObjectError) in try Namespace(inheriting: FileDescriptor(rawValue: Int32(args[2])!)) }
            d["1"] = "1"
            d["2"] = "2"
            d["0.25"] = nil
            let reversed = attempt { () throws(ManagerError) in try l.snapshot() }.reversed()
            attempt { () throws(ManagerError) in
                try l.removeAll()
                try l.append(contentsOf: reversed)
            }
            do { try ns.modify("x", as: Int.self) { $0 = ($0 ?? 0) + 1 } } catch { fail("\(error)") }
            ns.y = "from the child"
            say("changed")
        },
        // store-churn <dict fd> <list fd> <seed>: inserts, replaces and removes dictionary keys
        // 0..<200 (StoreRecords values) and appends to and removes from the list, until killed.
        "store-churn": { args in
            let (d, l) = attachStore(args)
            let seed = UInt64(args[2])!
            var random = seed, version = seed << 32, counter: UInt64 = 0
            func next() -> UInt64 { random = MessageStream.mix(random); return random }
            var announced = false
            while true {
                let r = next()
                let key = Int(next() % 200)
                do throws(ManagerError) {
                    switch r % 10 {
                    case 0...3:
                        version += 1
                        try d.setValue(StoreRecords.value(key: key, version: version), forKey: key)
                    case 4, 5:
                        _ = try d.removeValue(forKey: key)
                    case 6...8 where l.count < 300:
                        try l.append(StoreRecords.element(seed: seed, counter: counter))
                        counter += 1
                    case 6...8:
                        _ = try l.remove(at: Int(next() % 50))
                    default:
                        _ = try l.popLast()
                    }
                } catch {
                    fail("churn: \(error)")
                }
                if !announced { say("running"); announced = true }
            }
        },
        // store-verify <dict fd> <list fd> <anchors>: checks every value whole, the anchor
        // keys 1000..<1000+anchors intact, the list's elements whole, unique and in order per
        // writer; then changes both and checks again (the repaired heap works).
        "store-verify": { args in
            let (d, l) = attachStore(args)
            verifyStore(d, l, anchors: Int(args[2])!)
            attempt { () throws(ManagerError) in
                for key in 0..<200 where key % 3 == 0 {
                    try d.setValue(StoreRecords.value(key: key, version: 1), forKey: key)
                }
                try l.append(StoreRecords.element(seed: 0, counter: 0))
                _ = try l.popLast()
            }
            verifyStore(d, l, anchors: Int(args[2])!)
            say("verified \(d.count) keys, \(l.count) elements, recoveries \(d.statistics.recoveries) + \(l.statistics.recoveries)")
        },
        // store-scribble <fd> <milliseconds> <seed>: a hostile peer. Maps the structure's
        // segment and writes random words (small ones often: plausible offsets and lengths)
        // anywhere past its lock until the time is up.
        "store-scribble": { args in
            let memory = attempt { () throws(SharedMemoryError) in try SharedMemory(inheriting: FileDescriptor(rawValue: Int32(args[0])!)) }
            let until = Deadline.after(.milliseconds(Int(args[1])!))
            var random = UInt64(args[2])!
            func next() -> UInt64 { random = MessageStream.mix(random); return random }
            var writes = 0
            memory.withUnsafeMutableBytes { bytes in
                let first = 128 + 16  // after the common header and the writers' lock
                let words = (bytes.count - first) / 8
                while !until.hasPassed {
                    let offset = first + Int(next() % UInt64(words)) * 8
                    let word = next() & 1 == 0 ? next() % 4096 : next()
                    bytes.storeBytes(of: word, toByteOffset: offset, as: UInt64.self)
                    writes += 1
                    if writes % 64 == 0 { Sys.sleep(.microseconds(50)) }
                }
            }
            say("scribbled \(writes)")
        },
    ]

    static func attachStore(_ args: [String]) -> (SharedDictionary<Int, [UInt8]>, SharedList<[UInt8]>) {
        let d = attempt { () throws(SharedObjectError) in try SharedDictionary<Int, [UInt8]>(inheriting: FileDescriptor(rawValue: Int32(args[0])!)) }
        let l = attempt { () throws(SharedObjectError) in try SharedList<[UInt8]>(inheriting: FileDescriptor(rawValue: Int32(args[1])!)) }
        return (d, l)
    }

    static func verifyStore(_ d: SharedDictionary<Int, [UInt8]>, _ l: SharedList<[UInt8]>, anchors: Int) {
        let contents = attempt { () throws(ManagerError) in try d.snapshot() }
        for (key, value) in contents where StoreRecords.version(ofValue: value, key: key) == nil {
            fail("key \(key): a torn or misplaced value of \(value.count) bytes")
        }
        for key in 1000..<(1000 + anchors) where contents[key] != StoreRecords.value(key: key, version: 7) {
            fail("anchor key \(key) lost or changed")
        }
        guard contents.count == d.count else { fail("count \(d.count), \(contents.count) entries") }
        var last: [UInt64: UInt64] = [:]
        for bytes in attempt({ () throws(ManagerError) in try l.snapshot() }) {
            guard let (seed, counter) = StoreRecords.parseElement(bytes) else { fail("a torn list element of \(bytes.count) bytes") }
            if let previous = last[seed], previous >= counter { fail("writer \(seed): \(counter) after \(previous)") }
            last[seed] = counter
        }
    }

    static func waitAtBarrier(_ descriptor: String) {
        let barrier = attempt { () throws(SharedObjectError) in try Barrier(inheriting: FileDescriptor(rawValue: Int32(descriptor)!), parties: 2) }
        _ = attempt { () throws(SyncError) in try barrier.wait(timeout: .seconds(60)) }
    }
}
