import ShmIPC
import Synchronization
import SystemPackage

/// The manager rows' workload, as Python's baseline (Benchmarks/python/multiprocessing_baseline.py):
/// 10k `Int` keys, each with a 64-byte value (`[UInt8]`, Python's `bytes`), visited in a
/// scrambled order (a stride coprime with the key count) so no access pattern is favoured.
enum ManagerWorkload {
    static let keys = 10_000
    static let value = [UInt8](repeating: 0x5A, count: 64)

    /// The key the `i`th operation touches.
    @inline(__always)
    static func key(_ i: Int) -> Int { (i &* 7919) % keys }

    static func filledDictionary() throws -> SharedDictionary<Int, [UInt8]> {
        let dictionary = try SharedDictionary<Int, [UInt8]>(capacity: 4 << 20)
        for key in 0..<keys { try dictionary.setValue(value, forKey: key) }
        return dictionary
    }
}

/// `manager.dict.get` / `manager.dict.set`: ns per get (or set, replacing a 64-byte value) of
/// a `SharedDictionary<Int, [UInt8]>` of 10k keys, one process.
struct ManagerDictionaryAccess: Scenario {
    let writes: Bool
    var name: String { writes ? "manager.dict.set" : "manager.dict.get" }
    let unit = Unit.nanosecondsPerOperation
    var summary: String { "SharedDictionary<Int, [UInt8]>, 10k keys, 64-byte values: ns per \(writes ? "set" : "get"), one process" }
    var defaultIterations: Int { writes ? 1_000_000 : 2_000_000 }

    func parent(_ session: Session) throws -> RunMeasurement {
        let dictionary = try ManagerWorkload.filledDictionary()
        try session.barrier()
        let watch = Stopwatch()
        if writes {
            for i in 0..<session.iterations { try dictionary.setValue(ManagerWorkload.value, forKey: ManagerWorkload.key(i)) }
        } else {
            var sink = 0
            for i in 0..<session.iterations { sink &+= try dictionary.value(forKey: ManagerWorkload.key(i))?.count ?? 0 }
            guard sink == 64 * session.iterations else { throw BenchError.peerFailed("read \(sink) bytes") }
        }
        let elapsed = watch.elapsedNanoseconds()
        guard dictionary.count == ManagerWorkload.keys else { throw BenchError.peerFailed("\(dictionary.count) keys") }
        return .cost(Double(elapsed) / Double(session.iterations))
    }

    func child(_ session: Session) throws { try session.barrier() }
}

/// `manager.floor.dict.get`: the same gets from a Swift `Dictionary<Int, [UInt8]>` behind a
/// `Mutex`, in one process: what a get costs without shared memory.
struct ManagerDictionaryFloor: Scenario {
    let name = "manager.floor.dict.get"
    let unit = Unit.nanosecondsPerOperation
    let summary = "the floor: Dictionary<Int, [UInt8]> behind a Mutex, in-process, 10k keys: ns per get"
    let defaultIterations = 2_000_000

    func parent(_ session: Session) throws -> RunMeasurement {
        var contents: [Int: [UInt8]] = [:]
        for key in 0..<ManagerWorkload.keys { contents[key] = ManagerWorkload.value }
        let dictionary = Mutex(contents)
        try session.barrier()
        var sink = 0
        let watch = Stopwatch()
        for i in 0..<session.iterations {
            let value = dictionary.withLock { $0[ManagerWorkload.key(i)] }
            sink &+= value?.count ?? 0
        }
        let elapsed = watch.elapsedNanoseconds()
        guard sink == 64 * session.iterations else { throw BenchError.peerFailed("read \(sink) bytes") }
        return .cost(Double(elapsed) / Double(session.iterations))
    }

    func child(_ session: Session) throws { try session.barrier() }
}

/// `manager.dict.increment.2proc`: two pinned processes incrementing one key with `modify`
/// (Python: `with lock: d[k] += 1`); ns per increment over both, checked exact.
struct ManagerDictionaryIncrement: Scenario {
    let name = "manager.dict.increment.2proc"
    let unit = Unit.nanosecondsPerOperation
    let summary = "two processes incrementing one SharedDictionary<Int, Int> key with modify: ns per increment"
    let defaultIterations = 200_000

    func makeChannels() throws -> Channels {
        let dictionary = try SharedDictionary<Int, Int>(capacity: 64 << 10)
        try dictionary.setValue(0, forKey: 1)
        return Channels(child: [try duplicate(dictionary.inheritableDescriptor)], objects: [dictionary])
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        guard let dictionary = session.objects[0] as? SharedDictionary<Int, Int> else { throw BenchError.peerFailed("dictionary") }
        try session.barrier()
        let watch = Stopwatch()
        try increment(dictionary, session.iterations)
        try session.spin(until: session.pong, equals: 1)  // the child's "done" (release store)
        let elapsed = watch.elapsedNanoseconds()
        guard let total = try dictionary.value(forKey: 1), total == 2 * session.iterations else {
            throw BenchError.peerFailed("the key holds \(String(describing: try dictionary.value(forKey: 1))), expected \(2 * session.iterations)")
        }
        return .cost(Double(elapsed) / Double(2 * session.iterations))
    }

    func child(_ session: Session) throws {
        let dictionary = try SharedDictionary<Int, Int>(inheriting: FileDescriptor(rawValue: session.descriptors[0]))
        try session.barrier()
        try increment(dictionary, session.iterations)
        session.pong.storeReleasing(1)  // pairs with the parent's acquire in spin(until:)
    }

    private func increment(_ dictionary: SharedDictionary<Int, Int>, _ count: Int) throws {
        for _ in 0..<count { try dictionary.modify(1) { $0 = ($0 ?? 0) + 1 } }
    }
}

/// `manager.list.append`: ns per `append` of an `Int` to a `SharedList<Int>`, one process.
struct ManagerListAppend: Scenario {
    let name = "manager.list.append"
    let unit = Unit.nanosecondsPerOperation
    let summary = "SharedList<Int>.append, one process: ns per append"
    let defaultIterations = 1_000_000

    func parent(_ session: Session) throws -> RunMeasurement {
        // 32 bytes a block per element, 4 an index word (twice while the index doubles).
        let list = try SharedList<Int>(capacity: session.iterations * 48 + (1 << 20))
        try session.barrier()
        let watch = Stopwatch()
        for i in 0..<session.iterations { try list.append(i) }
        let elapsed = watch.elapsedNanoseconds()
        guard list.count == session.iterations, try list.element(at: session.iterations - 1) == session.iterations - 1 else {
            throw BenchError.peerFailed("the list has \(list.count) elements")
        }
        return .cost(Double(elapsed) / Double(session.iterations))
    }

    func child(_ session: Session) throws { try session.barrier() }
}
