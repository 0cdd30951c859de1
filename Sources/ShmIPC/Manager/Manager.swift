internal import Synchronization

/// Python's `multiprocessing.Manager()`, without the server process: it makes shared
/// dictionaries, lists, namespaces, queues, locks and values that live in shared memory, and
/// hands them to children like any other ShmIPC object (`sharing:` their
/// `inheritableDescriptor`, attached in the child with the type's `init(inheriting:)`).
///
/// ```swift
/// try Manager.with { manager in
///     let d = try manager.dict([1: "1"])                  // SharedDictionary<Int, String>
///     let l = try manager.list(Array(0..<10))             // SharedList<Int>
///     let q = try manager.messageQueue(capacity: 5)       // Python: Manager().Queue(5)
///     let p = try Process(f, argument: 0, sharing: [d.inheritableDescriptor!, l.inheritableDescriptor!])
///     …
/// }
/// ```
///
/// - **Inheritable** (the default, `Manager()`): every object is a memfd, nothing appears in
///   /dev/shm, and its memory is freed when the last process holding it exits or drops it.
/// - **Named** (`Manager(prefix:)`): every object is `<prefix>.<name>` in /dev/shm, so unrelated
///   processes attach it by name with the type's `init(name:mode: .openExisting)`. The manager
///   owns the names it created and removes them at ``shutdown()`` (and at the end of
///   ``with(prefix:capacity:_:)``); processes attached keep using the objects.
/// - Nothing runs in the background, and a crashed manager process takes nothing down with it:
///   each object lives on as long as somebody holds it (Python's objects die with the server).
public final class Manager: Sendable {
    private let prefix: String?
    /// The heap size of the dictionaries, lists and namespaces this manager makes by default.
    public let capacity: Int
    private let created = Mutex<[SegmentName]>([])
    private let counter = Atomic<Int>(0)

    /// A manager of inheritable objects. `capacity`: the default heap size of its
    /// dictionaries and lists, in bytes.
    public init(capacity: Int = 1 << 20) {
        prefix = nil
        self.capacity = capacity
    }

    /// A manager of named objects, `<prefix>.<name>` (see ``SegmentName`` for the characters).
    public init(prefix: String, capacity: Int = 1 << 20) throws(SharedMemoryError) {
        _ = try SegmentName(prefix)  // the prefix alone must be a valid name
        self.prefix = prefix
        self.capacity = capacity
    }

    /// Runs `body` with a manager, then ``shutdown()``. Python: `with Manager() as manager:`.
    public static func with<Result>(
        prefix: String? = nil, capacity: Int = 1 << 20, _ body: (Manager) throws -> Result
    ) throws -> Result {
        let manager = try prefix.map { (prefix) throws(SharedMemoryError) in try Manager(prefix: prefix, capacity: capacity) }
            ?? Manager(capacity: capacity)
        defer { manager.shutdown() }
        return try body(manager)
    }

    /// Removes the names of the named objects this manager created (processes attached keep
    /// using them). Inheritable objects need nothing: they go with their last holder.
    /// Python: `manager.shutdown()`.
    public func shutdown() {
        let names = created.withLock { names in
            defer { names.removeAll() }
            return names
        }
        for name in names { _ = try? SharedMemory.removeLeftover(name) }
    }

    /// The names this manager created and has not removed yet.
    public var createdNames: [SegmentName] { created.withLock { $0 } }

    // MARK: structures

    /// A shared dictionary holding `contents`. Python: `manager.dict(contents)`.
    public func dict<Key: Hashable & Codable, Value: Codable>(
        _ contents: [Key: Value] = [:], named name: String? = nil, capacity: Int? = nil,
        waitStrategy: WaitStrategy = .default
    ) throws -> SharedDictionary<Key, Value> {
        let capacity = capacity ?? self.capacity
        let dictionary = try make(name, "dict") { (name) throws(SharedObjectError) in
            try SharedDictionary<Key, Value>(name: name, mode: .createExclusive, capacity: capacity, waitStrategy: waitStrategy)
        } inheritable: { () throws(SharedObjectError) in
            try SharedDictionary<Key, Value>(capacity: capacity, waitStrategy: waitStrategy)
        }
        if !contents.isEmpty { try dictionary.merge(contents) }
        return dictionary
    }

    /// A shared list holding `contents`. Python: `manager.list(contents)`.
    public func list<Element: Codable>(
        _ contents: [Element] = [], named name: String? = nil, capacity: Int? = nil,
        waitStrategy: WaitStrategy = .default
    ) throws -> SharedList<Element> {
        let capacity = capacity ?? self.capacity
        let list = try make(name, "list") { (name) throws(SharedObjectError) in
            try SharedList<Element>(name: name, mode: .createExclusive, capacity: capacity, waitStrategy: waitStrategy)
        } inheritable: { () throws(SharedObjectError) in
            try SharedList<Element>(capacity: capacity, waitStrategy: waitStrategy)
        }
        try list.append(contentsOf: contents)
        return list
    }

    /// A shared namespace. Python: `manager.Namespace()`.
    public func namespace(named name: String? = nil, capacity: Int = 64 << 10) throws -> Namespace {
        try make(name, "namespace") { (name) throws(SharedObjectError) in
            try Namespace(name: name, mode: .createExclusive, capacity: capacity)
        } inheritable: { () throws(SharedObjectError) in try Namespace(capacity: capacity) }
    }

    // MARK: queues

    /// A queue of Codable messages of up to `maxMessageSize` bytes. Python: `manager.Queue(maxsize)`.
    public func messageQueue(capacity: Int, maxMessageSize: Int = 4096, named name: String? = nil) throws -> MessageQueue {
        try make(name, "queue") { (name) throws(SharedObjectError) in
            try MessageQueue(name: name, mode: .createExclusive, maxMessageSize: maxMessageSize, capacity: capacity)
        } inheritable: { () throws(SharedObjectError) in try MessageQueue(maxMessageSize: maxMessageSize, capacity: capacity) }
    }

    /// A typed queue of `BitwiseCopyable` elements (no serialization at all).
    public func queue<Element: BitwiseCopyable>(of _: Element.Type, capacity: Int, named name: String? = nil) throws -> Queue<Element> {
        try make(name, "queue") { (name) throws(SharedObjectError) in
            try Queue<Element>(name: name, mode: .createExclusive, capacity: capacity)
        } inheritable: { () throws(SharedObjectError) in try Queue<Element>(capacity: capacity) }
    }

    /// Python: `manager.JoinableQueue(maxsize)`.
    public func joinableQueue<Element: BitwiseCopyable>(of _: Element.Type, capacity: Int, named name: String? = nil) throws -> JoinableQueue<Element> {
        try make(name, "joinable-queue") { (name) throws(SharedObjectError) in
            try JoinableQueue<Element>(name: name, mode: .createExclusive, capacity: capacity)
        } inheritable: { () throws(SharedObjectError) in try JoinableQueue<Element>(capacity: capacity) }
    }

    // MARK: synchronization and values

    /// Python: `manager.Lock()`.
    public func lock(named name: String? = nil) throws -> Lock {
        try make(name, "lock") { (name) throws(SharedObjectError) in try Lock(name: name, mode: .createExclusive) }
            inheritable: { () throws(SharedObjectError) in try Lock() }
    }

    /// Python: `manager.RLock()`.
    public func rLock(named name: String? = nil) throws -> RLock {
        try make(name, "rlock") { (name) throws(SharedObjectError) in try RLock(name: name, mode: .createExclusive) }
            inheritable: { () throws(SharedObjectError) in try RLock() }
    }

    /// Python: `manager.Semaphore(value)`, and `BoundedSemaphore` with `maximum`.
    public func semaphore(value: Int = 1, maximum: Int? = nil, named name: String? = nil) throws -> Semaphore {
        try make(name, "semaphore") { (name) throws(SharedObjectError) in
            try Semaphore(name: name, mode: .createExclusive, value: value, maximum: maximum)
        } inheritable: { () throws(SharedObjectError) in try Semaphore(value: value, maximum: maximum) }
    }

    /// Python: `manager.Event()`.
    public func event(named name: String? = nil) throws -> Event {
        try make(name, "event") { (name) throws(SharedObjectError) in try Event(name: name, mode: .createExclusive) }
            inheritable: { () throws(SharedObjectError) in try Event() }
    }

    /// Python: `manager.Condition()`.
    public func condition(named name: String? = nil) throws -> Condition {
        try make(name, "condition") { (name) throws(SharedObjectError) in try Condition(name: name, mode: .createExclusive) }
            inheritable: { () throws(SharedObjectError) in try Condition() }
    }

    /// Python: `manager.Barrier(parties)`.
    public func barrier(parties: Int, named name: String? = nil) throws -> Barrier {
        try make(name, "barrier") { (name) throws(SharedObjectError) in
            try Barrier(name: name, mode: .createExclusive, parties: parties)
        } inheritable: { () throws(SharedObjectError) in try Barrier(parties: parties) }
    }

    /// Python: `manager.Value(typecode, value)`.
    public func value<T: BitwiseCopyable>(_ initial: T, named name: String? = nil) throws -> Value<T> {
        try make(name, "value") { (name) throws(SharedObjectError) in
            try Value<T>(name: name, mode: .createExclusive, initial: initial)
        } inheritable: { () throws(SharedObjectError) in try Value<T>(initial) }
    }

    /// Python: `manager.Array(typecode, sequence)`.
    public func array<T: BitwiseCopyable>(count: Int, repeating initial: T, named name: String? = nil) throws -> SharedArray<T> {
        try make(name, "array") { (name) throws(SharedObjectError) in
            try SharedArray<T>(name: name, mode: .createExclusive, count: count, repeating: initial)
        } inheritable: { () throws(SharedObjectError) in try SharedArray<T>(count: count, repeating: initial) }
    }

    // MARK: private

    /// Makes an object named `<prefix>.<name>` (a generated name when `name` is nil) for a
    /// named manager, recording it for ``shutdown()``; an inheritable one otherwise.
    private func make<Object>(
        _ name: String?, _ kind: String,
        named: (SegmentName) throws(SharedObjectError) -> Object,
        inheritable: () throws(SharedObjectError) -> Object
    ) throws -> Object {
        guard let prefix else { return try inheritable() }
        let given = name ?? "\(kind)-\(counter.add(1, ordering: .relaxed).newValue)"  // relaxed: only uniqueness matters
        let segmentName = try SegmentName("\(prefix).\(given)")
        let object = try named(segmentName)
        created.withLock { $0.append(segmentName) }
        return object
    }
}
