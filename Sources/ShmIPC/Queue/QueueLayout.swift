internal import CShim

/// Sizes and initial state of a queue segment: the control block, then the slots.
///
/// The capacity a queue is created with is its bound, exactly (Python's `Queue(10)` holds 10):
/// the header records it, and the ring is the next power of two (``slotCount(forCapacity:)``),
/// derived from the validated header, never from the control block. Where the bound is below
/// the ring, the put paths check it (``MPMCControl``, ``SPSCQueue/Producer``).
@usableFromInline
enum QueueLayout {
    /// The slot count for a capacity: the next power of two (index masking), at least 2 (with
    /// one slot, Vyukov's "full for index i" and "free for index i + 1" are the same sequence
    /// value).
    static func slotCount(forCapacity capacity: Int) -> Int {
        precondition(capacity >= 1 && capacity <= 1 << 40, "queue capacity must be in 1...2^40")
        var slots = 2
        while slots < capacity { slots <<= 1 }
        return slots
    }

    /// (element offset, slot stride) for `Element` in an MPMC slot (its 8-byte sequence
    /// first) or an SPSC slot (the element alone). Inlinable: the typed fast paths fold it to
    /// constants (the stride of a view from the validated layout is the same number).
    @inlinable
    static func slotShape<Element>(_: Element.Type, withSequence: Bool) -> (offset: Int, stride: Int) {
        let alignment = max(MemoryLayout<Element>.alignment, withSequence ? 8 : 1)
        let offset = withSequence ? roundUp(MemoryLayout<UInt64>.size, to: alignment) : 0
        // An 8-byte element makes a 16-byte slot, four to a line, none straddling two (Vyukov's
        // cell). Layout 4 had a 16-byte head (the sequence and a word nothing used): 24-byte
        // slots, one in three across two lines. (Padding MPMC slots to a cache line measured
        // slower: one line moving per message; Notes/0006.)
        let stride = roundUp(offset + max(MemoryLayout<Element>.size, 1), to: alignment)
        return (offset, stride)
    }

    /// The segment of a queue of `capacity` elements (its bound; the header records it).
    /// Version 4: the header's capacity is the bound, no longer the slot count.
    static func layout<Element>(
        kind: ObjectKind, element: Element.Type, capacity: Int
    ) -> ObjectLayout {
        let shape = slotShape(element, withSequence: kind != .spscQueue)
        let slots = slotCount(forCapacity: capacity)
        return ObjectLayout(
            kind: kind, version: 5, element: TypeFingerprint(of: element), capacity: capacity,
            stateSize: stateSize(slots: slots, stride: shape.stride, mpmc: kind != .spscQueue))
    }

    /// The control block, the slots and, for MPMC queues, the intent table.
    static func stateSize(slots: Int, stride: Int, mpmc: Bool) -> Int {
        MemoryLayout<shmipc_queue_state>.stride
            + (mpmc ? intentTableOffset(slots: slots, stride: stride) + intentTableSize : slots * stride)
    }

    /// Where an MPMC queue's intent table starts, from the first slot: after the last slot, on
    /// a line of its own.
    static func intentTableOffset(slots: Int, stride: Int) -> Int {
        roundUp(slots &* stride, to: MemoryLayout<shmipc_queue_intent>.stride)
    }

    static let intentTableSize = Int(SHMIPC_QUEUE_INTENTS) * MemoryLayout<shmipc_queue_intent>.stride

    /// Writes the initial state of a queue of `capacity`: empty, head = tail = `initialIndex`,
    /// every MPMC slot free for its first index.
    static func initialize<Element>(
        _ state: UnsafeMutableRawBufferPointer, kind: ObjectKind, element: Element.Type, capacity: Int,
        initialIndex: UInt64
    ) {
        let shape = slotShape(element, withSequence: kind != .spscQueue)
        initialize(state, shape: shape, sequenced: kind != .spscQueue, slots: slotCount(forCapacity: capacity),
                   initialIndex: initialIndex)
    }

    /// Writes the initial state for slots of `shape`; `sequenced`: Vyukov slots (MPMC).
    static func initialize(
        _ state: UnsafeMutableRawBufferPointer, shape: (offset: Int, stride: Int), sequenced: Bool, slots: Int,
        initialIndex: UInt64
    ) {
        let control = state.baseAddress!.bindMemory(to: shmipc_queue_state.self, capacity: 1)
        control.pointee.tail = initialIndex
        control.pointee.head = initialIndex
        control.pointee.capacity = UInt64(slots)
        control.pointee.initial_index = initialIndex
        control.pointee.slot_stride = UInt32(shape.stride)
        control.pointee.element_offset = UInt32(shape.offset)
        guard sequenced else { return }
        let base = state.baseAddress! + MemoryLayout<shmipc_queue_state>.stride
        for k in 0..<UInt64(slots) {
            let index = initialIndex &+ k
            let slot = base + Int(index & UInt64(slots - 1)) * shape.stride
            slot.storeBytes(of: index, as: UInt64.self)  // free for `index`
        }
    }

    @inlinable
    static func roundUp(_ value: Int, to alignment: Int) -> Int {
        (value + alignment - 1) / alignment * alignment
    }
}

extension RingControl {
    /// A view on a queue of `Element`s whose segment has the validated `layout`: the geometry
    /// comes from it (the ring of its capacity), never from the control block (a peer can
    /// write that).
    init<Element>(state: UnsafeMutablePointer<shmipc_queue_state>, layout: ObjectLayout, element: Element.Type) {
        let shape = QueueLayout.slotShape(element, withSequence: layout.kind != .spscQueue)
        self.init(state: state, capacity: QueueLayout.slotCount(forCapacity: layout.capacity), stride: shape.stride,
                  elementOffset: shape.offset)
    }

    /// Waits as ``await(consumers:deadline:strategy:peerGone:repairs:repair:ready:)``,
    /// repairing the slot waited on if a dead thread holds it (``MPMCControl/repairStalledSlot(at:)``;
    /// a producer of a bounded queue waits on the slot a bound behind the tail:
    /// ``MPMCControl/slotWaitedOn(_:consumers:)``).
    @inlinable @inline(__always)
    func await(
        consumers: Bool, deadline: Deadline, strategy: WaitStrategy, repairing mpmc: MPMCControl, ready: () -> Bool
    ) throws(QueueError) {
        var limit = WaitLimit.at(deadline)
        try self.await(consumers: consumers, limit: &limit, strategy: strategy, repairing: mpmc, ready: ready)
    }

    /// As above, until `limit` (see ``await(consumers:limit:strategy:peerGone:repairs:repair:ready:)``).
    @inlinable @inline(__always)
    func await(
        consumers: Bool, limit: inout WaitLimit, strategy: WaitStrategy, repairing mpmc: MPMCControl, ready: () -> Bool
    ) throws(QueueError) {
        try self.await(
            consumers: consumers, limit: &limit, strategy: strategy, peerGone: nil, repairs: true,
            repair: { mpmc.repairStalledSlot(at: mpmc.slotWaitedOn($0, consumers: consumers)) }, ready: ready)
    }
}
