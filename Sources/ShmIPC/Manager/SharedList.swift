public import SystemPackage

/// A list in shared memory, readable and writable by every process that attaches it. Python:
/// `multiprocessing.Manager().list()`, without the server process.
///
/// ```swift
/// let log = try SharedList<String>()                 // inheritable; or name:mode:
/// try log.append("started")
/// try log.insert("first", at: 0)
/// let all = try log.snapshot()                       // ["first", "started"]
/// ```
///
/// - **Storage** as ``SharedDictionary``'s: elements are stored as bytes in a heap of fixed
///   `capacity`; a full heap is ``ManagerError/noSpace(needed:free:)`` with the list unchanged.
/// - **Indices** are positions `0..<count` at the moment of the call; another process may
///   change the list between two calls (use ``modify(at:_:)`` for a read-modify-write, or a
///   ``Lock`` for a sequence of calls). The subscripts trap on an index out of range, like
///   `Array`'s; ``element(at:)``, ``setElement(_:at:)``, ``remove(at:)`` and ``insert(_:at:)``
///   throw ``ManagerError/indexOutOfRange(index:count:)``.
/// - **Costs.** Reads take no lock and never wait for other readers. `append` is amortized
///   O(1); `insert` and `remove` (except of the last element) are O(count): they copy the
///   index of 4 bytes per element, as Python's list moves its pointers.
/// - **Peer death.** Every change is published by one atomic store: a process killed at any
///   instant leaves the list as it was before its change or after it (``append(contentsOf:)``:
///   all of the elements or none), never a torn element. The next writer repairs what the dead
///   one left; ``statistics`` counts the repairs.
/// - **Hostile peers**: ``ManagerError/corrupted(_:)``, never a read outside the mapping.
public final class SharedList<Element: Codable>: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties over shared state designed for
    /// concurrent use by threads and processes (see ``SharedStore``).
    let store: SharedStore

    /// The heap size a list gets when none is given, in bytes.
    public static var defaultCapacity: Int { SharedStore.defaultCapacity }

    /// Creates an inheritable list with a heap of `capacity` bytes (at least 4 KiB).
    public convenience init(capacity: Int = defaultCapacity, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        try self.init(store: SharedStore(
            inheritable: .list, element: Self.fingerprint, capacity: capacity, waitStrategy: waitStrategy,
            format: ListTable.format, repair: ListTable.repair))
    }

    /// Creates or attaches the named list `name` (see ``CreationMode``); an existing list keeps
    /// its capacity.
    public convenience init(
        name: SegmentName, mode: CreationMode, capacity: Int = defaultCapacity,
        permissions: FilePermissions = SharedMemory.defaultPermissions, waitStrategy: WaitStrategy = .default
    ) throws(SharedObjectError) {
        try self.init(store: SharedStore(
            name: name, mode: mode, kind: .list, element: Self.fingerprint, capacity: capacity,
            permissions: permissions, waitStrategy: waitStrategy, format: ListTable.format, repair: ListTable.repair))
    }

    /// Attaches an inheritable list; another element type than the creator's is
    /// ``SharedObjectError/typeMismatch(expected:found:)``.
    public convenience init(inheriting descriptor: FileDescriptor, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        try self.init(store: SharedStore(
            inheriting: descriptor, kind: .list, element: Self.fingerprint, waitStrategy: waitStrategy, repair: ListTable.repair))
    }

    init(store: SharedStore) { self.store = store }

    static var fingerprint: TypeFingerprint { TypeFingerprint(of: SharedList<Element>.self) }

    private var table: ListTable { ListTable(store: store) }

    // MARK: reading

    /// The number of elements (a snapshot). Python: `len(l)`.
    public var count: Int { table.count() }

    /// Whether it holds nothing (a snapshot).
    public var isEmpty: Bool { count == 0 }

    /// The element at `index`. Traps if `index` is out of range or on the errors of
    /// ``element(at:)``; setting traps on those of ``setElement(_:at:)``.
    public subscript(index: Int) -> Element {
        get {
            do { return try element(at: index) } catch { preconditionFailure("SharedList[\(index)]: \(error)") }
        }
        set {
            do { try setElement(newValue, at: index) } catch { preconditionFailure("SharedList[\(index)] = …: \(error)") }
        }
    }

    /// The elements in `range`, copied out (a consistent snapshot). Traps if `range` is not
    /// within `0..<count`. Python: `l[a:b]`.
    public subscript(range: Range<Int>) -> [Element] {
        do { return try elements(in: range) } catch { preconditionFailure("SharedList[\(range)]: \(error)") }
    }

    /// The element at `index`; never waits for other readers. Python: `l[i]`.
    public func element(at index: Int) throws(ManagerError) -> Element {
        if StoredCoding.isDirect(Element.self) {
            return try store.read { () throws(ManagerError) -> Element in
                let list = try table.index()
                guard index >= 0, index < list.count else { throw .indexOutOfRange(index: index, count: list.count) }
                return try StoredCoding.decode(Element.self, from: table.element(list, index).bytes)
            }
        }
        guard index < Int.max else { throw .indexOutOfRange(index: index, count: count) }
        return try elements(in: index..<(index + 1))[0]
    }

    /// The elements in `range`, copied out under one sequence (a consistent snapshot).
    public func elements(in range: Range<Int>) throws(ManagerError) -> [Element] {
        let raw = try store.read { () throws(ManagerError) -> [[UInt8]] in
            let list = try table.index()
            guard range.lowerBound >= 0, range.upperBound <= list.count else {
                throw .indexOutOfRange(index: range.lowerBound < 0 ? range.lowerBound : range.upperBound, count: list.count)
            }
            var result: [[UInt8]] = []
            result.reserveCapacity(range.count)
            for i in range { result.append([UInt8](try table.element(list, i).bytes)) }
            return result
        }
        var result: [Element] = []
        result.reserveCapacity(raw.count)
        for bytes in raw { result.append(try Self.decode(bytes)) }
        return result
    }

    /// The whole list, copied out (a consistent snapshot). Python: `list(l)`, `l[:]`.
    public func snapshot() throws(ManagerError) -> [Element] {
        let raw = try store.read { () throws(ManagerError) -> [[UInt8]] in
            let list = try table.index()
            var result: [[UInt8]] = []
            result.reserveCapacity(list.count)
            for i in 0..<list.count { result.append([UInt8](try table.element(list, i).bytes)) }
            return result
        }
        var result: [Element] = []
        result.reserveCapacity(raw.count)
        for bytes in raw { result.append(try Self.decode(bytes)) }
        return result
    }

    private static func decode(_ bytes: [UInt8]) throws(ManagerError) -> Element {
        try bytes.withUnsafeBytes { raw in Result { () throws(ManagerError) -> Element in try StoredCoding.decode(Element.self, from: raw) } }.get()
    }

    // MARK: writing

    /// Appends `element`. Python: `l.append(x)`.
    public func append(_ element: Element) throws(ManagerError) {
        let bytes = try StoredCoding.encode(element)
        try bytes.withUnsafeBytes { (raw) throws(ManagerError) in
            try store.write { () throws(ManagerError) in
                try store.mutating { () throws(ManagerError) in try table.append([raw]) }
            }
        }
    }

    /// Appends every element of `elements`, all or none. Python: `l.extend(xs)`.
    public func append(contentsOf elements: some Sequence<Element>) throws(ManagerError) {
        var encoded: [StoredBytes] = []
        for element in elements { encoded.append(try StoredCoding.encode(element)) }
        try Self.withBuffers(encoded) { (buffers) throws(ManagerError) in
            try store.write { () throws(ManagerError) in
                try store.mutating { () throws(ManagerError) in try table.append(buffers) }
            }
        }
    }

    /// Inserts `element` before position `index` (0...count). Python: `l.insert(i, x)`.
    public func insert(_ element: Element, at index: Int) throws(ManagerError) {
        let bytes = try StoredCoding.encode(element)
        try bytes.withUnsafeBytes { (raw) throws(ManagerError) in
            try store.write { () throws(ManagerError) in
                let count = table.count()
                guard index >= 0, index <= count else { throw .indexOutOfRange(index: index, count: count) }
                try store.mutating { () throws(ManagerError) in try table.insert(raw, at: index) }
            }
        }
    }

    /// Replaces the element at `index`. Python: `l[i] = x`.
    public func setElement(_ element: Element, at index: Int) throws(ManagerError) {
        let bytes = try StoredCoding.encode(element)
        try bytes.withUnsafeBytes { (raw) throws(ManagerError) in
            try store.write { () throws(ManagerError) in
                let count = table.count()
                guard index >= 0, index < count else { throw .indexOutOfRange(index: index, count: count) }
                try store.mutating { () throws(ManagerError) in try table.set(raw, at: index) }
            }
        }
    }

    /// Removes and returns the element at `index`. Python: `l.pop(i)`.
    @discardableResult
    public func remove(at index: Int) throws(ManagerError) -> Element {
        let bytes = try store.write { () throws(ManagerError) -> [UInt8] in
            let list = try table.index()
            guard index >= 0, index < list.count else { throw .indexOutOfRange(index: index, count: list.count) }
            let bytes = [UInt8](try table.element(list, index).bytes)
            try store.mutating { () throws(ManagerError) in try table.remove(at: index) }
            return bytes
        }
        return try Self.decode(bytes)
    }

    /// Removes and returns the last element, or nil if the list is empty. Python: `l.pop()`.
    public func popLast() throws(ManagerError) -> Element? {
        let bytes = try store.write { () throws(ManagerError) -> [UInt8]? in
            let list = try table.index()
            guard list.count > 0 else { return nil }
            let bytes = [UInt8](try table.element(list, list.count - 1).bytes)
            try store.mutating { () throws(ManagerError) in try table.remove(at: list.count - 1) }
            return bytes
        }
        return try bytes.map { (bytes) throws(ManagerError) in try Self.decode(bytes) }
    }

    /// Removes every element. Python: `l.clear()`, `del l[:]`.
    public func removeAll() throws(ManagerError) {
        try store.write { () throws(ManagerError) in
            try store.mutating { () throws(ManagerError) in try table.removeAll() }
        }
    }

    /// Reads, changes and writes the element at `index` atomically (no other writer runs in
    /// between). `body` runs holding the list's lock: keep it short and do not use this list in
    /// it. If it throws, nothing changes. Python: `with lock: l[i] = f(l[i])`.
    public func modify<Result>(at index: Int, _ body: (inout Element) throws -> Result) throws -> Result {
        try store.acquire()
        defer { store.release() }
        let list = try table.index()
        guard index >= 0, index < list.count else { throw ManagerError.indexOutOfRange(index: index, count: list.count) }
        var element = try StoredCoding.decode(Element.self, from: table.element(list, index).bytes)
        let result = try body(&element)
        let bytes = try StoredCoding.encode(element)
        try bytes.withUnsafeBytes { (raw) throws(ManagerError) in
            try store.mutating { () throws(ManagerError) in try table.set(raw, at: index) }
        }
        return result
    }

    /// Calls `body` with every element's bytes.
    private static func withBuffers<R>(
        _ encoded: [StoredBytes], _ body: ([UnsafeRawBufferPointer]) throws(ManagerError) -> R
    ) throws(ManagerError) -> R {
        // Most elements are `[UInt8]`/`String` storage; copy all into one contiguous buffer.
        var offsets: [Int] = [], all: [UInt8] = []
        for bytes in encoded {
            offsets.append(all.count)
            bytes.withUnsafeBytes { (raw) in all.append(contentsOf: raw) }
        }
        offsets.append(all.count)
        return try all.withUnsafeBytes { raw in
            Result { () throws(ManagerError) -> R in
                try body((0..<encoded.count).map { UnsafeRawBufferPointer(rebasing: raw[offsets[$0]..<offsets[$0 + 1]]) })
            }
        }.get()
    }

    // MARK: facts

    /// How full the heap is, and how often a writer repaired the list after another died.
    public var statistics: SharedHeapStatistics { store.statistics }

    /// The descriptor to hand to a child process (`sharing:`); `nil` for a named object.
    public var inheritableDescriptor: FileDescriptor? { store.storage.inheritableDescriptor }
    /// The object's name; `nil` for an inheritable object.
    public var name: SegmentName? { store.storage.name }
    /// Removes the object's name (only the process that created it may); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try store.storage.unlink() }
}
