public import Atomics
public import CShim
public import SystemPackage

/// A bounded single-producer, single-consumer queue of `Element`s in shared memory: the
/// fastest path between two processes.
///
/// The roles are enforced by the API: ``makeProducer(waitStrategy:)`` and
/// ``makeConsumer(waitStrategy:)`` each hand out one `~Copyable` endpoint at a time, across all
/// processes (the claim records the holder's pid; a dead holder's role can be claimed again).
/// An endpoint is used by one thread at a time (it can be moved, not copied).
///
/// The ring follows rigtorp's SPSCQueue: head and tail on separate cache-line pairs, each
/// endpoint keeping a private copy of the other side's index and re-reading it only when the
/// ring looks full (producer) or empty (consumer); no atomic read-modify-write on the way.
///
/// Waiting, closing, snapshots and peer death as ``Queue``; additionally a producer or consumer
/// killed at any point leaves the other side's view consistent (the indices are published
/// after the slot is written or read), and its role can be claimed by a new endpoint.
public final class SPSCQueue<Element: BitwiseCopyable>: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties over shared state designed for
    /// concurrent use by one producer and one consumer.
    private let storage: SharedState<shmipc_queue_state>
    @usableFromInline let control: RingControl

    /// Creates or attaches the named queue `name` (capacity rounded up to a power of two, at
    /// least 2). Unlike ``Queue``, which holds exactly its capacity as Python's does, this
    /// fastest path keeps the ring's size as its bound: an exact bound below it cost
    /// throughput.queue.spsc.8B 6–16% in three versions (Notes/0008).
    public init(
        name: SegmentName, mode: CreationMode, capacity: Int,
        permissions: FilePermissions = SharedMemory.defaultPermissions
    ) throws(SharedObjectError) {
        let slots = QueueLayout.slotCount(forCapacity: capacity)
        storage = try SharedState(name: name, mode: mode, layout: Self.layout(slots), permissions: permissions) {
            QueueLayout.initialize($0, kind: .spscQueue, element: Element.self, capacity: slots, initialIndex: 0)
        }
        control = RingControl(state: storage.state, layout: storage.segment.layout, element: Element.self)
    }

    /// Creates an inheritable queue; `initialIndex` is a testing hook (see ``Queue``).
    public init(capacity: Int) throws(SharedObjectError) {
        let slots = QueueLayout.slotCount(forCapacity: capacity)
        storage = try SharedState(inheritable: Self.layout(slots)) {
            QueueLayout.initialize($0, kind: .spscQueue, element: Element.self, capacity: slots, initialIndex: 0)
        }
        control = RingControl(state: storage.state, layout: storage.segment.layout, element: Element.self)
    }

    /// Testing hook: indices start at `initialIndex`.
    init(capacity: Int, initialIndex: UInt64) throws(SharedObjectError) {
        let slots = QueueLayout.slotCount(forCapacity: capacity)
        storage = try SharedState(inheritable: Self.layout(slots)) {
            QueueLayout.initialize($0, kind: .spscQueue, element: Element.self, capacity: slots, initialIndex: initialIndex)
        }
        control = RingControl(state: storage.state, layout: storage.segment.layout, element: Element.self)
    }

    /// Attaches an inheritable queue; `capacity` must match the creator's.
    public init(inheriting descriptor: FileDescriptor, capacity: Int) throws(SharedObjectError) {
        storage = try SharedState(inheriting: descriptor, layout: Self.layout(QueueLayout.slotCount(forCapacity: capacity)))
        control = RingControl(state: storage.state, layout: storage.segment.layout, element: Element.self)
    }

    static func layout(_ slots: Int) -> ObjectLayout {
        QueueLayout.layout(kind: .spscQueue, element: Element.self, capacity: slots)
    }

    /// Claims the producer role. Throws ``QueueError/roleTaken(pid:)`` while another live
    /// endpoint (in any process, this one included) holds it.
    public func makeProducer(waitStrategy: WaitStrategy = .default) throws(QueueError) -> Producer {
        try control.claimRole(producer: true)
        return Producer(queue: self, waitStrategy: waitStrategy)
    }

    /// Claims the consumer role; see ``makeProducer(waitStrategy:)``.
    public func makeConsumer(waitStrategy: WaitStrategy = .default) throws(QueueError) -> Consumer {
        try control.claimRole(producer: false)
        return Consumer(queue: self, waitStrategy: waitStrategy)
    }

    /// The pid of the process that made the queue's segment (a part of its identity: a queue
    /// made again under the same name has another creator, or the same one later).
    package var creatorPID: Int32 { storage.segment.creatorPID }

    /// Elements in the queue (a best-effort snapshot).
    public var count: Int { control.count }
    /// Whether it holds nothing (a snapshot).
    public var isEmpty: Bool { count == 0 }
    /// Whether the queue is full (a snapshot).
    public var isFull: Bool { count >= capacity }
    /// How many elements it holds at most.
    public var capacity: Int { control.capacity }

    /// Closes the queue (see ``Queue/close()``).
    public func close() { control.close() }
    /// Whether it was closed.
    public var isClosed: Bool { control.isClosed }

    /// The descriptor to hand to a child process (`sharing:`); `nil` for a named object.
    public var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }

    /// Removes the object's name (only the process that created it may); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try storage.unlink() }
}

extension SPSCQueue {
    /// The producing end: the only one, until it ends.
    public struct Producer: ~Copyable {
        @usableFromInline let queue: SPSCQueue
        @usableFromInline let control: RingControl
        /// The next index to fill (this endpoint is the tail's only writer).
        @usableFromInline var tail: UInt64
        /// The consumer's head as last read: re-read only when the ring looks full.
        @usableFromInline var cachedHead: UInt64
        /// How this process's threads wait on the object.
        public let waitStrategy: WaitStrategy

        init(queue: SPSCQueue, waitStrategy: WaitStrategy) {
            self.queue = queue
            control = queue.control
            assert(control.stride == MemoryLayout<Element>.stride, "typedSlot's stride")
            tail = control.tail.load(ordering: .relaxed)  // relaxed: we are its only writer
            cachedHead = control.head.load(ordering: .acquiring)
            self.waitStrategy = waitStrategy
        }

        deinit { control.releaseRole(producer: true) }

        /// The ring's size, as the index arithmetic uses it (no conversion to check).
        @inlinable @inline(__always)
        var slotCount: UInt64 { control.mask &+ 1 }

        /// Whether a slot is free, re-reading the head only if the cached one says full.
        @inlinable @inline(__always)
        mutating func hasRoom() -> Bool {
            if tail &- cachedHead < slotCount { return true }
            // Acquire: pairs with the consumer's release store of head, so its reads of the
            // slots we are about to overwrite are done.
            cachedHead = control.head.load(ordering: .acquiring)
            return tail &- cachedHead < slotCount
        }

        @inlinable @inline(__always)
        mutating func write(_ value: Element) {
            control.typedSlot(tail, Element.self).storeBytes(of: value, as: Element.self)
            tail &+= 1
        }

        /// Publishes everything written so far (release: pairs with the consumer's acquire).
        @inlinable @inline(__always)
        func publish(_ count: Int) {
            control.tail.store(tail, ordering: .releasing)
            control.didPut(count: count)
        }

        /// The fast path: puts `value` if the queue is open and has room; whether it did.
        @inlinable @inline(__always)
        mutating func putIfRoom(_ value: Element) -> Bool {
            guard !control.isClosed, hasRoom() else { return false }
            write(value)
            publish(1)
            return true
        }

        /// Puts `value` if there is room, without waiting; throws ``QueueError/closed``.
        @inlinable
        public mutating func tryPut(_ value: Element) throws(QueueError) -> Bool {
            if putIfRoom(value) { return true }
            if control.isClosed { throw .closed }
            return false
        }

        /// Puts `value`, waiting at most `timeout` (`nil`: forever) for room.
        @inlinable
        public mutating func put(_ value: Element, timeout: Duration? = nil) throws(QueueError) {
            if _fastPath(putIfRoom(value)) { return }
            try putWaiting(value, timeout: timeout)
        }

        /// ``put(_:timeout:)`` once the fast path found the queue full or closed: out of line,
        /// so the fast path keeps its values in registers (inlined, the wait's closure context
        /// was rebuilt on the stack for every put: 78 instructions a put + get, 2.6× the C ring's).
        @inlinable @inline(never)
        mutating func putWaiting(_ value: Element, timeout: Duration?) throws(QueueError) {
            if try tryPut(value) { return }
            var limit = RingControl.WaitLimit.after(timeout)
            while true {
                let (next, control) = (tail, self.control)
                try control.await(consumers: false, limit: &limit, strategy: waitStrategy) {
                    next &- control.head.load(ordering: .acquiring) <= control.mask
                }
                if try tryPut(value) { return }
            }
        }

        /// Puts every element of `values` in order, waiting at most `timeout` (`nil`: forever)
        /// for room, with one index store and one wake-up check for each run of elements that
        /// fits (all of them, when the ring has room).
        ///
        /// A batch is all or a prefix: each run is published at once (one store of the tail), so
        /// after a throw (``QueueError/timedOut``, ``QueueError/closed``) or a crash the consumer
        /// sees a prefix of `values`, each element whole and in order, and nothing after it. To
        /// know how long a prefix, put with ``tryPut(contentsOf:)``, which says.
        @inlinable
        public mutating func put(contentsOf values: UnsafeBufferPointer<Element>, timeout: Duration? = nil) throws(QueueError) {
            var index = 0
            var deadline: Deadline?
            while index < values.count {
                let count = try tryPut(contentsOf: UnsafeBufferPointer(rebasing: values[index...]))
                if count > 0 { index &+= count; continue }
                if deadline == nil { deadline = .after(timeout) }
                let (next, control) = (tail, self.control)
                try control.await(consumers: false, deadline: deadline!, strategy: waitStrategy) {
                    next &- control.head.load(ordering: .acquiring) <= control.mask
                }
            }
        }

        /// Puts every element of `values`, as the buffer variant does (all or a prefix).
        @inlinable
        public mutating func put(contentsOf values: [Element], timeout: Duration? = nil) throws(QueueError) {
            try values.withUnsafeBufferPointer { buffer throws(QueueError) in try put(contentsOf: buffer, timeout: timeout) }
        }

        /// Puts as many of `values` as fit now, from the first, without waiting, and publishes
        /// them at once (one index store, one wake-up check); returns how many (0 if full).
        /// Throws ``QueueError/closed``.
        @inlinable
        public mutating func tryPut(contentsOf values: UnsafeBufferPointer<Element>) throws(QueueError) -> Int {
            if control.isClosed { throw .closed }
            guard !values.isEmpty else { return 0 }
            // As many as fit, with one look at the head for the lot (none if the cached head
            // leaves room for them all).
            if Int(truncatingIfNeeded: slotCount &- (tail &- cachedHead)) < values.count {
                // Acquire: as in hasRoom().
                cachedHead = control.head.load(ordering: .acquiring)
            }
            let room = Int(truncatingIfNeeded: slotCount &- (tail &- cachedHead))
            let count = min(room, values.count)
            guard count > 0 else { return 0 }
            let source = values.baseAddress!
            for offset in 0..<count { write(source[offset]) }
            publish(count)
            return count
        }
    }

    /// The consuming end: the only one, until it ends.
    public struct Consumer: ~Copyable {
        @usableFromInline let queue: SPSCQueue
        @usableFromInline let control: RingControl
        /// The next index to take (this endpoint is the head's only writer).
        @usableFromInline var head: UInt64
        /// The producer's tail as last read: re-read only when the ring looks empty.
        @usableFromInline var cachedTail: UInt64
        /// How this process's threads wait on the object.
        public let waitStrategy: WaitStrategy

        init(queue: SPSCQueue, waitStrategy: WaitStrategy) {
            self.queue = queue
            control = queue.control
            assert(control.stride == MemoryLayout<Element>.stride, "typedSlot's stride")
            head = control.head.load(ordering: .relaxed)  // relaxed: we are its only writer
            cachedTail = control.tail.load(ordering: .acquiring)
            self.waitStrategy = waitStrategy
        }

        deinit { control.releaseRole(producer: false) }

        /// Whether an element is ready, re-reading the tail only if the cached one says empty.
        @inlinable @inline(__always)
        mutating func hasElement() -> Bool {
            if head != cachedTail { return true }
            // Acquire: pairs with the producer's release store of tail: the slots are written.
            cachedTail = control.tail.load(ordering: .acquiring)
            return head != cachedTail
        }

        @inlinable @inline(__always)
        mutating func read() -> Element {
            let value = control.typedSlot(head, Element.self).loadUnaligned(as: Element.self)
            head &+= 1
            return value
        }

        /// Publishes everything taken so far (release: pairs with the producer's acquire).
        @inlinable @inline(__always)
        func release(_ count: Int) {
            control.head.store(head, ordering: .releasing)
            control.didGet(count: count)
        }

        /// Takes the next element if there is one, without waiting; throws
        /// ``QueueError/closed`` once the queue is closed and empty.
        @inlinable
        public mutating func tryGet() throws(QueueError) -> Element? {
            guard hasElement() else {
                if control.isClosed, !hasElement() { throw .closed }
                return nil
            }
            let value = read()
            release(1)
            return value
        }

        /// Takes the next element, waiting at most `timeout` (`nil`: forever).
        @inlinable
        public mutating func get(timeout: Duration? = nil) throws(QueueError) -> Element {
            if _fastPath(hasElement()) {
                let value = read()
                release(1)
                return value
            }
            return try getWaiting(timeout: timeout)
        }

        /// ``get(timeout:)`` once the fast path found the queue empty (out of line, as
        /// ``Producer``'s `putWaiting`).
        @inlinable @inline(never)
        mutating func getWaiting(timeout: Duration?) throws(QueueError) -> Element {
            if let value = try tryGet() { return value }
            var limit = RingControl.WaitLimit.after(timeout)
            while true {
                let (next, control) = (head, self.control)
                try control.await(consumers: true, limit: &limit, strategy: waitStrategy) {
                    control.tail.load(ordering: .acquiring) != next
                }
                if let value = try tryGet() { return value }
            }
        }

        /// Waits at most `timeout` (`nil`: forever) for an element, then takes as many as are
        /// ready, up to `buffer.count`, into the start of `buffer` and frees their slots at
        /// once (one index store, one wake-up check); returns how many. Throws
        /// ``QueueError/closed`` once the queue is closed and empty.
        @inlinable
        public mutating func get(into buffer: UnsafeMutableBufferPointer<Element>, timeout: Duration? = nil) throws(QueueError) -> Int {
            guard !buffer.isEmpty else { return 0 }
            if !hasElement() {
                buffer.initializeElement(at: 0, to: try getWaiting(timeout: timeout))
                return 1 + takeReady(into: UnsafeMutableBufferPointer(rebasing: buffer[1...]))
            }
            return takeReady(into: buffer)
        }

        /// Takes what is ready now, up to `buffer.count`, as ``get(into:timeout:)`` does,
        /// without waiting: 0 if nothing is. Throws ``QueueError/closed`` once the queue is
        /// closed and empty.
        @inlinable
        public mutating func tryGet(into buffer: UnsafeMutableBufferPointer<Element>) throws(QueueError) -> Int {
            guard !buffer.isEmpty else { return 0 }
            let taken = takeReady(into: buffer)
            if taken == 0, control.isClosed, !hasElement() { throw .closed }
            return taken
        }

        /// Waits at most `timeout` for an element, then takes up to `maxCount` of those ready
        /// (see ``get(into:timeout:)``), as a new array.
        public mutating func get(upTo maxCount: Int, timeout: Duration? = nil) throws(QueueError) -> [Element] {
            precondition(maxCount >= 1, "get(upTo:) takes at least one element")
            let buffer = UnsafeMutableBufferPointer<Element>.allocate(capacity: maxCount)
            defer { buffer.deallocate() }
            let count = try get(into: buffer, timeout: timeout)
            return Array(buffer[..<count])
        }

        /// Takes what is ready, up to `buffer.count`, with one look at the tail for the lot
        /// (none if the cached tail shows enough).
        @inlinable
        mutating func takeReady(into buffer: UnsafeMutableBufferPointer<Element>) -> Int {
            if cachedTail &- head < UInt64(buffer.count) {
                // Acquire: as in hasElement().
                cachedTail = control.tail.load(ordering: .acquiring)
            }
            let count = min(Int(truncatingIfNeeded: cachedTail &- head), buffer.count)
            guard count > 0 else { return 0 }
            let target = buffer.baseAddress!
            for offset in 0..<count { (target + offset).initialize(to: read()) }
            release(count)
            return count
        }
    }
}

extension RingControl {
    @inlinable var producerRole: UnsafeAtomic<UInt32> { word32(RingControl.offset(\.producer_pid)) }
    @inlinable var consumerRole: UnsafeAtomic<UInt32> { word32(RingControl.offset(\.consumer_pid)) }

    /// Claims the SPSC producer or consumer role for this process: free, or held by a dead pid.
    func claimRole(producer: Bool) throws(QueueError) {
        let role = producer ? producerRole : consumerRole
        let me = UInt32(bitPattern: Sys.currentPID)
        while true {
            // Acquire: pairs with the releasing store in releaseRole(), so the previous holder's
            // index publication is visible before we read the indices.
            let holder = role.load(ordering: .acquiring)
            if holder != 0, Sys.threadIsAlive(Int32(bitPattern: holder)) {
                throw .roleTaken(pid: Int32(bitPattern: holder))
            }
            if role.compareExchange(expected: holder, desired: me, ordering: .acquiringAndReleasing).exchanged {
                return
            }
        }
    }

    func releaseRole(producer: Bool) {
        (producer ? producerRole : consumerRole).store(0, ordering: .releasing)  // pairs with claimRole
    }
}
