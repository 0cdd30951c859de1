public import SystemPackage

/// A dictionary in shared memory, readable and writable by every process that attaches it.
/// Python: `multiprocessing.Manager().dict()`, without the server process: the entries live in
/// the segment itself, so a get is a hash probe and a copy, not a socket round trip.
///
/// ```swift
/// let scores = try SharedDictionary<String, Int>()          // inheritable; or name:mode:
/// scores["ada"] = 1
/// try scores.modify("ada") { $0 = ($0 ?? 0) + 1 }           // atomic, across processes
/// let child = try Process(entry, argument: 0, sharing: [scores.inheritableDescriptor!])
/// // in the child: let scores = try SharedDictionary<String, Int>(inheriting: context.descriptors[0])
/// ```
///
/// - **Storage.** Keys and values are stored as bytes (`StoredCoding`: integers, floating
///   point, `Bool`, `String` and `[UInt8]` directly, other `Codable` types through
///   ``BinaryMessageCoder``) in the segment's heap, whose size is fixed at creation
///   (`capacity`, bytes). A full heap is ``ManagerError/noSpace(needed:free:)`` and the
///   dictionary is unchanged. Keys are equal when their stored bytes are (see `StoredCoding`).
/// - **Concurrency.** Any thread of any process may call anything. Writers (`set`, `remove`,
///   `modify`…) take the dictionary's process-shared lock; readers (`value(forKey:)`,
///   `contains`, `count`, `snapshot`…) take no lock and never wait for each other: they read
///   under a sequence counter and retry if a writer overlapped them (after 64 tries, they take
///   the lock). ``modify(_:_:)`` is an atomic read-modify-write: `d[k] += 1` done as
///   `modify(k) { $0 = ($0 ?? 0) + 1 }` from many processes loses no increment.
/// - **Peer death.** Every change is published by one atomic store: a process killed at any
///   instant, even inside a change, leaves each key with its old value or its new one, whole,
///   and every other key untouched. The next writer (or a reader that found the structure
///   busy for too long) takes the dead writer's lock within about 100 ms (the park slice)
///   and repairs what the dead writer left (its half-allocated blocks, the counts) before it
///   goes on; ``statistics`` counts the repairs. A `modify` whose process dies before its
///   closure returns changes nothing.
/// - **Hostile peers.** Every offset and length read from the segment is checked before use:
///   a peer scribbling on it causes ``ManagerError/corrupted(_:)`` or wrong-but-whole values,
///   never a read outside the mapping or an endless loop.
/// - **Snapshots.** ``count``, ``keys()``, ``values()`` and ``snapshot()`` are consistent
///   snapshots (taken between two changes); they may be stale as soon as they return.
public final class SharedDictionary<Key: Hashable & Codable, Value: Codable>: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties over shared state designed for
    /// concurrent use by threads and processes (see ``SharedStore``).
    @usableFromInline let store: SharedStore

    /// The heap size a dictionary gets when none is given: 1 MiB.
    public static var defaultCapacity: Int { SharedStore.defaultCapacity }

    /// Creates an inheritable dictionary with a heap of `capacity` bytes (at least 4 KiB):
    /// nothing appears in /dev/shm; hand ``inheritableDescriptor`` to a child.
    public convenience init(capacity: Int = defaultCapacity, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        try self.init(store: SharedStore(
            inheritable: .dictionary, element: Self.fingerprint, capacity: capacity, waitStrategy: waitStrategy,
            format: DictionaryTable.format, repair: DictionaryTable.repair))
    }

    /// Creates or attaches the named dictionary `name` (see ``CreationMode``). `capacity` is the
    /// heap's size when this call creates it; an existing dictionary keeps its own.
    public convenience init(
        name: SegmentName, mode: CreationMode, capacity: Int = defaultCapacity,
        permissions: FilePermissions = SharedMemory.defaultPermissions, waitStrategy: WaitStrategy = .default
    ) throws(SharedObjectError) {
        try self.init(store: SharedStore(
            name: name, mode: mode, kind: .dictionary, element: Self.fingerprint, capacity: capacity,
            permissions: permissions, waitStrategy: waitStrategy,
            format: DictionaryTable.format, repair: DictionaryTable.repair))
    }

    /// Attaches an inheritable dictionary through a descriptor this process inherited. Another
    /// key or value type than the creator's is ``SharedObjectError/typeMismatch(expected:found:)``.
    public convenience init(inheriting descriptor: FileDescriptor, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        try self.init(store: SharedStore(
            inheriting: descriptor, kind: .dictionary, element: Self.fingerprint, waitStrategy: waitStrategy,
            repair: DictionaryTable.repair))
    }

    init(store: SharedStore) { self.store = store }

    /// The type check on attach: the key and value types' names, through the dictionary type's.
    static var fingerprint: TypeFingerprint { TypeFingerprint(of: SharedDictionary<Key, Value>.self) }

    private var table: DictionaryTable { DictionaryTable(store: store) }

    // MARK: reading

    /// The value for `key`, or nil. Traps on the errors ``value(forKey:)`` throws; setting
    /// stores (nil removes) and traps on the errors of ``setValue(_:forKey:)``.
    public subscript(key: Key) -> Value? {
        get {
            do { return try value(forKey: key) } catch { preconditionFailure("SharedDictionary[\(key)]: \(error)") }
        }
        set {
            do {
                if let newValue { try setValue(newValue, forKey: key) } else { _ = try removeValue(forKey: key) }
            } catch { preconditionFailure("SharedDictionary[\(key)] = …: \(error)") }
        }
    }

    /// The value for `key`, or nil; never waits for other readers. Python: `d.get(k)`.
    /// Inlinable, so the caller's specialization decodes without generic dispatch.
    @inlinable
    public func value(forKey key: Key) throws(ManagerError) -> Value? {
        let keyBytes = try StoredCoding.encode(key)
        // The bytes are copied out under the sequence: decoding (the user's init(from:) for
        // other types) only ever sees a whole value.
        guard let bytes = try keyBytes.withUnsafeBytes({ (raw) throws(ManagerError) -> [UInt8]? in
            try store.copyDictionaryValue(forKey: raw)
        }) else { return nil }
        return try StoredCoding.decode(Value.self, from: bytes)
    }

    /// Whether `key` has a value. Python: `k in d`.
    public func contains(_ key: Key) throws(ManagerError) -> Bool {
        let keyBytes = try StoredCoding.encode(key)
        return try keyBytes.withUnsafeBytes { (key) throws(ManagerError) -> Bool in
            let hash = StoredCoding.hash(key)
            return try store.read { () throws(ManagerError) -> Bool in try table.find(key, hash: hash) != nil }
        }
    }

    /// The number of entries (a snapshot). Python: `len(d)`.
    public var count: Int {
        // Relaxed: read under the sequence (which orders it); a snapshot.
        (try? store.read { () throws(ManagerError) -> Int in Int(clamping: store.count.load(ordering: .relaxed)) }) ?? 0
    }

    /// Whether it holds nothing (a snapshot).
    public var isEmpty: Bool { count == 0 }

    /// The keys (a consistent snapshot, in no particular order). Python: `d.keys()`.
    public func keys() throws(ManagerError) -> [Key] {
        try snapshotPairs().map { $0.key }
    }

    /// The values (a consistent snapshot, in the order of ``keys()``). Python: `d.values()`.
    public func values() throws(ManagerError) -> [Value] {
        try snapshotPairs().map { $0.value }
    }

    /// The whole dictionary copied out into a Swift `Dictionary` (a consistent snapshot).
    /// Python: `d.copy()`, `dict(d)`.
    public func snapshot() throws(ManagerError) -> [Key: Value] {
        var result: [Key: Value] = [:]
        for (key, value) in try snapshotPairs() { result[key] = value }
        return result
    }

    /// The entries' bytes copied out under one sequence, then decoded.
    private func snapshotPairs() throws(ManagerError) -> [(key: Key, value: Value)] {
        let raw = try store.read { () throws(ManagerError) -> [([UInt8], [UInt8])] in
            var pairs: [([UInt8], [UInt8])] = []
            try table.forEach { (key, value) throws(ManagerError) in pairs.append(([UInt8](key), [UInt8](value))) }
            return pairs
        }
        var result: [(key: Key, value: Value)] = []
        result.reserveCapacity(raw.count)
        for (key, value) in raw {
            let k = try key.withUnsafeBytes { b in Result { () throws(ManagerError) -> Key in try StoredCoding.decode(Key.self, from: b) } }.get()
            let v = try value.withUnsafeBytes { b in Result { () throws(ManagerError) -> Value in try StoredCoding.decode(Value.self, from: b) } }.get()
            result.append((k, v))
        }
        return result
    }

    // MARK: writing

    /// Stores `value` for `key`. Python: `d[k] = v`.
    public func setValue(_ value: Value, forKey key: Key) throws(ManagerError) {
        let keyBytes = try StoredCoding.encode(key), valueBytes = try StoredCoding.encode(value)
        try keyBytes.withUnsafeBytes { (key) throws(ManagerError) in
            let hash = StoredCoding.hash(key)
            try valueBytes.withUnsafeBytes { (value) throws(ManagerError) in
                try store.write { () throws(ManagerError) in
                    try store.mutating { () throws(ManagerError) in try table.set(key, hash: hash, value: value) }
                }
            }
        }
    }

    /// Stores `value` for `key` and returns the value it replaced, or nil.
    @discardableResult
    public func updateValue(_ value: Value, forKey key: Key) throws(ManagerError) -> Value? {
        try modifyTyped(key) { (current: inout Value?) throws(ManagerError) -> Value? in
            defer { current = value }
            return current
        }
    }

    /// Removes `key`'s entry; returns its value, or nil if there was none. Python: `d.pop(k, None)`.
    @discardableResult
    public func removeValue(forKey key: Key) throws(ManagerError) -> Value? {
        try modifyTyped(key) { (current: inout Value?) throws(ManagerError) -> Value? in
            defer { current = nil }
            return current
        }
    }

    /// Removes every entry. Python: `d.clear()`.
    public func removeAll() throws(ManagerError) {
        try store.write { () throws(ManagerError) in
            try store.mutating { () throws(ManagerError) in try table.removeAll() }
        }
    }

    /// Stores every pair of `other` in one change: readers and writers see all of them or
    /// none. A process killed in the middle, or a full heap (``ManagerError/noSpace(needed:free:)``),
    /// leaves the pairs stored before it. Python: `d.update(other)`.
    public func merge(_ other: [Key: Value]) throws(ManagerError) {
        let encoded = try other.map { (key, value) throws(ManagerError) in (try StoredCoding.encode(key), try StoredCoding.encode(value)) }
        try store.write { () throws(ManagerError) in
            try store.mutating { () throws(ManagerError) in
                for (keyBytes, valueBytes) in encoded {
                    try keyBytes.withUnsafeBytes { (key) throws(ManagerError) in
                        try valueBytes.withUnsafeBytes { (value) throws(ManagerError) in
                            try table.set(key, hash: StoredCoding.hash(key), value: value)
                        }
                    }
                }
            }
        }
    }

    /// Reads, changes and writes `key`'s value atomically: no other writer of any process runs
    /// between the read and the write. `body` gets the value (nil if absent) and may change it;
    /// leaving nil removes the entry. Python: `with lock: d[k] = f(d[k])`.
    ///
    /// `body` runs holding the dictionary's lock: keep it short, and do not use this
    /// dictionary in it (``ManagerError/lock(_:)`` with ``SyncError/wouldDeadlock``). If it
    /// throws, nothing changes and its error is rethrown. If the process dies inside it,
    /// nothing changes and the next writer takes the lock over.
    public func modify<Result>(_ key: Key, _ body: (inout Value?) throws -> Result) throws -> Result {
        let keyBytes = try StoredCoding.encode(key)
        return try keyBytes.withUnsafeBytes { (key) throws -> Result in
            let hash = StoredCoding.hash(key)
            try store.acquire()
            defer { store.release() }
            let found = try table.find(key, hash: hash)
            var value: Value? = try found.map { (found) throws(ManagerError) in try StoredCoding.decode(Value.self, from: found.value) }
            let hadValue = value != nil
            let result = try body(&value)
            try store.mutating { () throws(ManagerError) in
                if let value {
                    let valueBytes = try StoredCoding.encode(value)
                    try valueBytes.withUnsafeBytes { (bytes) throws(ManagerError) in try table.set(key, hash: hash, value: bytes) }
                } else if hadValue, let found {
                    try table.remove(found)
                }
            }
            return result
        }
    }

    /// ``modify(_:_:)`` for a body that throws only ``ManagerError``.
    private func modifyTyped<Result>(_ key: Key, _ body: (inout Value?) throws(ManagerError) -> Result) throws(ManagerError) -> Result {
        do { return try modify(key, body) } catch let error as ManagerError { throw error } catch {
            preconditionFailure("unreachable: \(error)")
        }
    }

    // MARK: facts

    /// How full the heap is, and how often a writer repaired the dictionary after another died.
    public var statistics: SharedHeapStatistics { store.statistics }

    /// The descriptor to hand to a child; nil for named dictionaries.
    public var inheritableDescriptor: FileDescriptor? { store.storage.inheritableDescriptor }

    /// The name, for named dictionaries.
    public var name: SegmentName? { store.storage.name }

    /// Removes the dictionary's name (creator only); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try store.storage.unlink() }
}
