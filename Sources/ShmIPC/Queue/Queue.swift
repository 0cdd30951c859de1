public import Atomics
internal import CShim
public import SystemPackage

/// A bounded multi-producer, multi-consumer queue of `Element`s in shared memory.
///
/// Python: `multiprocessing.Queue(maxsize)`, without pickling, feeder thread or pipe: elements
/// are copied bit for bit into a ring of slots (Vyukov's bounded MPMC queue), so `Element` must
/// be `BitwiseCopyable` (no references, no Strings; see the byte-message queues for those).
///
/// - Capacity: the queue holds exactly the `capacity` it was created with (Python's
///   `Queue(10)` holds 10: `isFull` is true and `put` waits at 10); the ring beneath is the next
///   power of two. Attaching checks the capacity and the element type's fingerprint.
/// - Concurrency: any number of threads and processes may put and get at once. Items from one
///   producer thread are delivered in the order it put them.
/// - Waiting: per ``WaitStrategy``; a put or get makes a wake-up syscall only when somebody is
///   parked, and a parked thread uses no CPU.
/// - `count`, `isEmpty` and `isFull` are best-effort snapshots.
/// - Peer death, at any instant: before claiming a slot (the CAS on the tail or head), a
///   thread names the index in its entry of the queue's intent table. A producer killed after
///   claiming a slot and before publishing it loses that item only: the first consumer to wait
///   on the slot finds no live thread naming it (within 25 ms while spinning, or one park
///   slice, 100 ms, while parked), gives the slot up, and every consumer skips it. A consumer
///   killed while taking an item loses that item only (a producer waiting for the slot frees
///   it). An item is delivered whole or not at all, never twice; the items of a producer that
///   lives keep their order; ``abandoned`` counts the items lost this way, for every process.
///   A consumer killed while parked stays counted as a waiter, so puts keep making a wake-up
///   syscall.
public final class Queue<Element: BitwiseCopyable>: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties over shared state designed for
    /// concurrent use (see ``RingControl``).
    private let storage: SharedState<shmipc_queue_state>
    /// The MPMC view (its ring's ``RingControl`` is ``control``).
    @usableFromInline let mpmc: MPMCControl
    @inlinable var control: RingControl { mpmc.ring }
    /// How this process's threads wait on the queue.
    public let waitStrategy: WaitStrategy
    /// When a failed try may next look for a slot held by a dead thread (process-local).
    @usableFromInline let repairClock = ManagedAtomic<UInt64>(0)

    /// Creates or attaches the named queue `name` holding up to `capacity` elements.
    public convenience init(
        name: SegmentName, mode: CreationMode, capacity: Int,
        permissions: FilePermissions = SharedMemory.defaultPermissions, waitStrategy: WaitStrategy = .default
    ) throws(SharedObjectError) {
        try self.init(name: name, mode: mode, capacity: capacity, permissions: permissions,
                      waitStrategy: waitStrategy, initialIndex: 0, kind: .queue)
    }

    /// Creates an inheritable queue.
    public convenience init(capacity: Int, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        try self.init(capacity: capacity, waitStrategy: waitStrategy, initialIndex: 0, kind: .queue)
    }

    /// Attaches an inheritable queue; `capacity` must match the creator's.
    public convenience init(inheriting descriptor: FileDescriptor, capacity: Int, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        try self.init(inheriting: descriptor, capacity: capacity, waitStrategy: waitStrategy, kind: .queue)
    }

    /// Attaches an inheritable queue of `kind` (``ObjectKind/queue`` or, for
    /// ``JoinableQueue``, ``ObjectKind/joinableQueue``).
    init(inheriting descriptor: FileDescriptor, capacity: Int, waitStrategy: WaitStrategy, kind: ObjectKind) throws(SharedObjectError) {
        storage = try SharedState(inheriting: descriptor, layout: Self.layout(capacity, kind: kind))
        mpmc = Self.view(storage, kind: kind)
        self.waitStrategy = waitStrategy
    }

    /// Testing hook: head and tail start at `initialIndex` (near 2^64 to exercise wrap-around);
    /// `kind` is ``ObjectKind/joinableQueue`` for ``JoinableQueue``.
    init(
        name: SegmentName, mode: CreationMode, capacity: Int, permissions: FilePermissions,
        waitStrategy: WaitStrategy, initialIndex: UInt64, kind: ObjectKind
    ) throws(SharedObjectError) {
        storage = try SharedState(name: name, mode: mode, layout: Self.layout(capacity, kind: kind), permissions: permissions) {
            QueueLayout.initialize($0, kind: kind, element: Element.self, capacity: capacity, initialIndex: initialIndex)
        }
        mpmc = Self.view(storage, kind: kind)
        self.waitStrategy = waitStrategy
    }

    /// Testing hook for inheritable queues; see the named variant.
    init(capacity: Int, waitStrategy: WaitStrategy, initialIndex: UInt64, kind: ObjectKind = .queue) throws(SharedObjectError) {
        storage = try SharedState(inheritable: Self.layout(capacity, kind: kind)) {
            QueueLayout.initialize($0, kind: kind, element: Element.self, capacity: capacity, initialIndex: initialIndex)
        }
        mpmc = Self.view(storage, kind: kind)
        self.waitStrategy = waitStrategy
    }

    static func layout(_ capacity: Int, kind: ObjectKind) -> ObjectLayout {
        QueueLayout.layout(kind: kind, element: Element.self, capacity: capacity)
    }

    /// The MPMC view of a validated segment: ring and bound from its header.
    private static func view(_ storage: SharedState<shmipc_queue_state>, kind: ObjectKind) -> MPMCControl {
        let layout = storage.segment.layout
        return MPMCControl(RingControl(state: storage.state, layout: layout, element: Element.self),
                           bound: layout.capacity, countsTasks: kind == .joinableQueue)
    }

    // MARK: putting

    /// Puts `value`, waiting at most `timeout` (`nil`: forever) for room.
    /// Throws ``QueueError/timedOut`` or ``QueueError/closed``.
    @inlinable @inline(__always)
    public func put(_ value: Element, timeout: Duration? = nil) throws(QueueError) {
        if !control.isClosed, mpmc.mpmcTryPut(value) {
            control.didPut()
            return
        }
        var limit = RingControl.WaitLimit.after(timeout)
        try putWaiting(value, limit: &limit)
    }

    /// Puts `value` if there is room, without waiting. Python: `put_nowait` (which raises
    /// `Full`; here: `false`). Throws ``QueueError/closed``.
    @inlinable
    public func tryPut(_ value: Element) throws(QueueError) -> Bool {
        if control.isClosed { throw .closed }
        guard mpmc.mpmcTryPut(value) else {
            mpmc.repairIfDue(consumers: false, repairClock)
            return false
        }
        control.didPut()
        return true
    }

    /// Puts every element of `values` in order, waiting at most `timeout` (`nil`: forever, for
    /// the whole batch) for room, with one wake-up check per run of elements that fit rather
    /// than one per element.
    ///
    /// A batch is all or a prefix: each element is claimed and published on its own (Vyukov's
    /// ring has no multi-slot claim that a crash could not tear), so after a throw
    /// (``QueueError/timedOut``, ``QueueError/closed``) the consumers see a prefix of `values`,
    /// each element whole; a producer killed in the middle leaves a prefix and at most the one
    /// element it was moving, counted in ``abandoned``. To know how long a prefix, put with
    /// ``tryPut(contentsOf:)``, which says.
    @inlinable
    public func put(contentsOf values: some Sequence<Element>, timeout: Duration? = nil) throws(QueueError) {
        var limit = RingControl.WaitLimit.after(timeout)  // one for the whole batch
        var pending = 0
        defer { if pending > 0 { control.didPut(count: pending) } }
        for value in values {
            if control.isClosed { throw .closed }
            if mpmc.mpmcTryPut(value) { pending += 1; continue }
            if pending > 0 { control.didPut(count: pending); pending = 0 }  // wake before we wait
            try putWaiting(value, limit: &limit)
        }
    }

    /// Puts as many of `values` as fit now, from the first, without waiting (one wake-up check
    /// for them all); returns how many (0 if full). Throws ``QueueError/closed``.
    @inlinable
    public func tryPut(contentsOf values: some Collection<Element>) throws(QueueError) -> Int {
        if control.isClosed { throw .closed }
        var count = 0
        for value in values {
            guard mpmc.mpmcTryPut(value) else { break }
            count += 1
        }
        if count > 0 { control.didPut(count: count) } else if !values.isEmpty { mpmc.repairIfDue(consumers: false, repairClock) }
        return count
    }

    /// Out of line (the fast path stays small), but specialized for `Element` in the caller's
    /// module: the generic version measured +20 ns a spinning round trip.
    @inlinable @inline(never)
    func putWaiting(_ value: Element, limit: inout RingControl.WaitLimit) throws(QueueError) {
        while true {
            if control.isClosed { throw .closed }
            if mpmc.mpmcTryPut(value) {
                control.didPut()
                return
            }
            try control.await(consumers: false, limit: &limit, strategy: waitStrategy, repairing: mpmc) { mpmc.mpmcLooksNotFull() }
        }
    }

    // MARK: getting

    /// Takes the next element, waiting at most `timeout` (`nil`: forever) for one.
    /// Throws ``QueueError/timedOut``, or ``QueueError/closed`` once the queue is closed and empty.
    @inlinable @inline(__always)
    public func get(timeout: Duration? = nil) throws(QueueError) -> Element {
        if let value = mpmc.mpmcTryGet(Element.self) {
            control.didGet()
            return value
        }
        return try getWaiting(timeout: timeout)
    }

    /// Takes the next element if there is one, without waiting. Python: `get_nowait` (which
    /// raises `Empty`; here: `nil`). Throws ``QueueError/closed`` once closed and empty.
    @inlinable
    public func tryGet() throws(QueueError) -> Element? {
        if let value = mpmc.mpmcTryGet(Element.self) {
            control.didGet()
            return value
        }
        if control.isClosed, !mpmc.mpmcLooksNonEmpty() { throw .closed }
        mpmc.repairIfDue(consumers: true, repairClock)
        return nil
    }

    /// Waits at most `timeout` (`nil`: forever) for an element, then takes as many as are
    /// ready, up to `buffer.count`, into the start of `buffer`, with one wake-up check for them
    /// all; returns how many. Throws ``QueueError/closed`` once the queue is closed and empty.
    @inlinable
    public func get(into buffer: UnsafeMutableBufferPointer<Element>, timeout: Duration? = nil) throws(QueueError) -> Int {
        guard !buffer.isEmpty else { return 0 }
        if let value = mpmc.mpmcTryGet(Element.self) {
            buffer.initializeElement(at: 0, to: value)
        } else {
            buffer.initializeElement(at: 0, to: try getWaiting(timeout: timeout))
            if buffer.count == 1 { return 1 }
            return 1 + takeReady(into: UnsafeMutableBufferPointer(rebasing: buffer[1...]), counted: 0)
        }
        return takeReady(into: UnsafeMutableBufferPointer(rebasing: buffer[1...]), counted: 1) + 1
    }

    /// Takes what is ready now, up to `buffer.count`, as ``get(into:timeout:)`` does, without
    /// waiting: 0 if nothing is. Throws ``QueueError/closed`` once the queue is closed and empty.
    @inlinable
    public func tryGet(into buffer: UnsafeMutableBufferPointer<Element>) throws(QueueError) -> Int {
        guard !buffer.isEmpty else { return 0 }
        let taken = takeReady(into: buffer, counted: 0)
        if taken == 0 {
            if control.isClosed, !mpmc.mpmcLooksNonEmpty() { throw .closed }
            mpmc.repairIfDue(consumers: true, repairClock)
        }
        return taken
    }

    /// Waits at most `timeout` for an element, then takes up to `maxCount` of those ready
    /// (see ``get(into:timeout:)``), as a new array. Python: a loop of `get` then `get_nowait`.
    public func get(upTo maxCount: Int, timeout: Duration? = nil) throws(QueueError) -> [Element] {
        precondition(maxCount >= 1, "get(upTo:) takes at least one element")
        let buffer = UnsafeMutableBufferPointer<Element>.allocate(capacity: maxCount)
        defer { buffer.deallocate() }
        let count = try get(into: buffer, timeout: timeout)
        return Array(buffer[..<count])
    }

    /// Takes what is ready into `buffer`, then one wake-up check for those and the `counted`
    /// taken before (not yet checked); returns how many it took.
    @inlinable
    func takeReady(into buffer: UnsafeMutableBufferPointer<Element>, counted: Int) -> Int {
        var taken = 0
        while taken < buffer.count, let value = mpmc.mpmcTryGet(Element.self) {
            buffer.initializeElement(at: taken, to: value)
            taken += 1
        }
        if taken + counted > 0 { control.didGet(count: taken + counted) }
        return taken
    }

    /// See ``putWaiting(_:deadline:)``.
    @inlinable @inline(never)
    func getWaiting(timeout: Duration?) throws(QueueError) -> Element {
        var limit = RingControl.WaitLimit.after(timeout)
        while true {
            if let value = mpmc.mpmcTryGet(Element.self) {
                control.didGet()
                return value
            }
            try control.await(consumers: true, limit: &limit, strategy: waitStrategy, repairing: mpmc) { mpmc.mpmcLooksNonEmpty() }
        }
    }

    // MARK: state

    /// Elements in the queue (a best-effort snapshot). Python: `qsize()`.
    /// Items lost because a producer or consumer died in the middle of moving them (a
    /// snapshot, the same for every process).
    public var abandoned: Int { mpmc.abandoned }

    /// Items in the queue (a snapshot).
    public var count: Int { control.count }
    /// Whether the queue is empty (a snapshot). Python: `empty()`.
    public var isEmpty: Bool { count == 0 }
    /// Whether the queue is full (a snapshot). Python: `full()`.
    public var isFull: Bool { count >= capacity }
    /// The most elements the queue holds: the capacity it was created with. Python: `maxsize`.
    public var capacity: Int { Int(mpmc.bound) }

    /// Closes the queue: puts fail with ``QueueError/closed``; gets drain what is left, then fail
    /// with it. Everybody parked is woken. Python: `close()` (which is local to one process;
    /// here every process sees it).
    public func close() { control.close() }
    /// Whether the queue was closed.
    public var isClosed: Bool { control.isClosed }

    /// The descriptor to hand to a child process (`sharing:`); `nil` for a named object.
    public var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }

    /// Removes the object's name (only the process that created it may); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try storage.unlink() }
}
