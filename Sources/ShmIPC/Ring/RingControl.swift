public import Atomics
public import CShim

/// A view on a ring's control block (`shmipc_queue_state`) and slots in shared memory: the
/// index and slot arithmetic (kept here, in one place), waking and parking. The queues
/// (Queue/) and the byte-message rings of Pipe and Connection (Channel/) both build on it, so
/// it sits below both. The MPMC algorithm (Vyukov's bounded queue with an intent table) is
/// ``MPMCControl``'s, in Queue/.
///
/// Waiting is waiter-counted: a put or get makes a wake-up syscall only if somebody registered
/// to park, through the asymmetric half of ``ParkingWord`` (the not-empty and not-full epochs):
/// the parking side (rare, already paying for a sleep) issues `membarrier(GLOBAL_EXPEDITED)`;
/// the fast path needs only a compiler barrier between publishing and reading the waiter count.
/// Where membarrier is unavailable, both sides fence instead (``fenceOnFastPath``).
@usableFromInline
struct RingControl: @unchecked Sendable {
    /// `@unchecked Sendable`: plain pointers into shared memory designed for concurrent access.
    @usableFromInline let state: UnsafeMutablePointer<shmipc_queue_state>
    @usableFromInline let slots: UnsafeMutableRawPointer
    @usableFromInline let mask: UInt64
    @usableFromInline let stride: Int
    @usableFromInline let elementOffset: Int
    @usableFromInline let fenceOnFastPath: Bool
    // Nothing else: SPSC endpoints keep a copy of this view on the caller's stack, and its
    // layout measurably moves throughput.queue.spsc.64B (a 50-byte view with the MPMC intent
    // table's address: -20%). The MPMC parts live in MPMCControl.

    /// A view whose geometry comes from the caller (validated configuration), not from the
    /// shared block: for channels, whose peers may be hostile. `capacity` is a power of two.
    init(state: UnsafeMutablePointer<shmipc_queue_state>, capacity: Int, stride: Int, elementOffset: Int) {
        self.state = state
        slots = UnsafeMutableRawPointer(state) + MemoryLayout<shmipc_queue_state>.stride
        mask = UInt64(capacity) &- 1
        self.stride = stride
        self.elementOffset = elementOffset
        fenceOnFastPath = !Membarrier.available
    }

    // MARK: fields (by name: offsets of the C struct, folded to constants)

    @inlinable static func offset(_ field: KeyPath<shmipc_queue_state, UInt64>) -> Int {
        MemoryLayout<shmipc_queue_state>.offset(of: field)!
    }
    @inlinable static func offset(_ field: KeyPath<shmipc_queue_state, UInt32>) -> Int {
        MemoryLayout<shmipc_queue_state>.offset(of: field)!
    }
    @inlinable static func offset(_ field: KeyPath<shmipc_queue_state, Int32>) -> Int {
        MemoryLayout<shmipc_queue_state>.offset(of: field)!
    }
    @inlinable func word64(_ offset: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: (UnsafeMutableRawPointer(state) + offset).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }
    @inlinable func word32(_ offset: Int) -> UnsafeAtomic<UInt32> {
        UnsafeAtomic(at: (UnsafeMutableRawPointer(state) + offset).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }
    @inlinable var tail: UnsafeAtomic<UInt64> { word64(Self.offset(\.tail)) }
    @inlinable var head: UnsafeAtomic<UInt64> { word64(Self.offset(\.head)) }
    /// Byte rings: messages published and taken so far (statistics, each on its side's line).
    @inlinable var produced: UnsafeAtomic<UInt64> { word64(Self.offset(\.produced)) }
    @inlinable var consumed: UnsafeAtomic<UInt64> { word64(Self.offset(\.consumed)) }
    /// Consumers park here (`not_empty_epoch`, then `not_empty_waiters`).
    @inlinable var notEmpty: ParkingWord { ParkingWord(state, offset: Self.offset(\.not_empty_epoch)) }
    /// Producers park here (`not_full_epoch`, then `not_full_waiters`).
    @inlinable var notFull: ParkingWord { ParkingWord(state, offset: Self.offset(\.not_full_epoch)) }
    @inlinable var closedFlag: UnsafeAtomic<UInt32> { word32(Self.offset(\.closed)) }

    @inlinable var capacity: Int { Int(mask) + 1 }

    /// The slot of `index`.
    @inlinable @inline(__always)
    func slot(_ index: UInt64) -> UnsafeMutableRawPointer {
        slots + Int(truncatingIfNeeded: index & mask) &* stride
    }

    /// The slot of `index` with slots `stride` bytes apart: the view's own stride, or the same
    /// number as a constant from a typed caller (``QueueLayout/slotShape(_:withSequence:)``).
    @inlinable @inline(__always)
    func slot(_ index: UInt64, stride: Int) -> UnsafeMutableRawPointer {
        slots + Int(truncatingIfNeeded: index & mask) &* stride
    }

    /// The slot of `index` in a ring of `Element`s alone (SPSC queues): the stride is the
    /// element's, a constant once specialised (``QueueLayout/slotShape(_:withSequence:)``
    /// gives an SPSC slot exactly `MemoryLayout<Element>.stride`).
    @inlinable @inline(__always)
    func typedSlot<Element>(_ index: UInt64, _: Element.Type) -> UnsafeMutableRawPointer {
        slots + Int(truncatingIfNeeded: index & mask) &* MemoryLayout<Element>.stride
    }

    @inlinable @inline(__always)
    func sequence(_ slot: UnsafeMutableRawPointer) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: slot.assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }

    /// Whether the queue was closed (acquire: pairs with the release store in close()).
    @inlinable var isClosed: Bool { closedFlag.load(ordering: .acquiring) != 0 }

    /// Items in the queue: a best-effort snapshot (head and tail are read one after the other).
    var count: Int {
        let head = self.head.load(ordering: .relaxed)  // relaxed: a snapshot, documented as such
        let tail = self.tail.load(ordering: .relaxed)
        return Int(clamping: max(0, Int64(bitPattern: tail &- head)))
    }

    // MARK: waking (the fast-path half of the Dekker pair)

    /// After publishing an element: wake a parked consumer, if any registered (the fast half
    /// of ``ParkingWord``'s asymmetric pair, spelled out here). The out-of-line wake takes the
    /// control block's address alone: given this view, a caller keeps a copy of the view on
    /// its stack for the call (the MPMC put copied it on every call).
    @inlinable @inline(__always)
    func didPut(count: Int = 1) {
        Membarrier.fastSideBarrier(fenceOnFastPath)
        // Relaxed: the barrier above (with the parker's membarrier) orders this read after our
        // publication; see the type's documentation.
        if notEmpty.waiters.load(ordering: .relaxed) != 0 { Self.wakeConsumers(state, count) }
    }

    /// After freeing a slot: wake a parked producer, if any registered.
    @inlinable @inline(__always)
    func didGet(count: Int = 1) {
        Membarrier.fastSideBarrier(fenceOnFastPath)
        if notFull.waiters.load(ordering: .relaxed) != 0 { Self.wakeProducers(state, count) }
    }

    @usableFromInline @inline(never)
    static func wakeConsumers(_ state: UnsafeMutablePointer<shmipc_queue_state>, _ count: Int) {
        ParkingWord(state, offset: offset(\.not_empty_epoch)).bump(waking: count)
    }

    @usableFromInline @inline(never)
    static func wakeProducers(_ state: UnsafeMutablePointer<shmipc_queue_state>, _ count: Int) {
        ParkingWord(state, offset: offset(\.not_full_epoch)).bump(waking: count)
    }

    // MARK: parking (the slow half)

    /// Waits until `ready()` holds (the queue looks non-empty, or not full), per `strategy`,
    /// until `deadline`. Throws ``QueueError/closed`` once the queue is closed (producers at
    /// once; consumers only once `ready()` is false).
    /// `peerGone`, if given, is asked every ``peerCheckInterval`` while waiting; once it says
    /// the other side is gone, the wait ends as if the queue were closed.
    /// With `repairs` (MPMC queues), `repair` is called every ``peerCheckInterval`` and after
    /// every park slice with the index waited on (the head for consumers, the tail for
    /// producers), to repair the slot if a dead thread holds it
    /// (``MPMCControl/repairStalledSlot(at:)``, passed in by Queue/). A flag and a non-escaping
    /// closure, not an optional closure (which escapes: a heap-allocated context per wait) nor
    /// a generic (unspecialized across modules: metadata calls per wait); either measured
    /// +20 ns on rtt.queue.mpmc.spin.
    /// (``QueueError`` is the rings' error too: Channel maps it to its own.)
    @usableFromInline
    func await(
        consumers: Bool, deadline: Deadline, strategy: WaitStrategy, peerGone: (() -> Bool)?,
        repairs: Bool, repair: (UInt64) -> Void, ready: () -> Bool
    ) throws(QueueError) {
        var limit = WaitLimit.at(deadline)
        try self.await(
            consumers: consumers, limit: &limit, strategy: strategy, peerGone: peerGone, repairs: repairs, repair: repair,
            ready: ready)
    }

    /// Waits as ``await(consumers:deadline:strategy:peerGone:repairs:repair:ready:)``, until
    /// `limit`; a timeout becomes a deadline only once the first spin has given up, and
    /// `limit` is left holding it, for the caller's next wait of the same call. So a wait that
    /// ends spinning reads no clock at all (a clock read before every wait measured +20–25 ns
    /// a round trip), and a timeout counts from the end of the first spin: later, never
    /// earlier, than asked (by the spin, a few microseconds; with `.spin`, 4,096 polls).
    @usableFromInline
    func await(
        consumers: Bool, limit: inout WaitLimit, strategy: WaitStrategy, peerGone: (() -> Bool)?,
        repairs: Bool, repair: (UInt64) -> Void, ready: () -> Bool
    ) throws(QueueError) {
        if case .after(let timeout) = limit {
            if strategy.spin(ready) { return }
            limit = .at(.after(timeout))
        }
        guard case .at(let deadline) = limit else { return }
        let parking = consumers ? notEmpty : notFull
        // The first check is scheduled once the first spin has given up: a wait that ends
        // spinning reads no clock for it (a clock read per get measured +20 ns a round trip).
        let checks = peerGone != nil || repairs
        var nextPeerCheck = Deadline.distantFuture
        var scheduled = false
        while true {
            if !consumers && isClosed { throw .closed }
            if strategy.spin(ready) { return }
            if isClosed { if consumers && ready() { return }; throw .closed }
            if deadline.hasPassed { throw .timedOut }
            if checks && !scheduled {
                nextPeerCheck = .after(Self.peerCheckInterval)
                scheduled = true
            }
            if nextPeerCheck.hasPassed {
                if let peerGone, peerGone() { if consumers && ready() { return }; throw .closed }
                if repairs {
                    // Relaxed: a hint of which slot to look at; the repair re-reads the slot.
                    repair((consumers ? head : tail).load(ordering: .relaxed))
                    if ready() { return }
                }
                nextPeerCheck = .after(Self.peerCheckInterval)
            }
            guard strategy.parks else { continue }
            // In slices: a peer killed between publishing and waking must not leave us asleep
            // beside an element (crash model); a slice ending with the queue ready is counted,
            // so tests can tell such a recovery from a normal wake-up.
            let sliceEnded = parking.parkAfterHeavyBarrier(
                seen: parking.epoch, deadline: min(deadline, .after(Self.parkSlice)), fence: fenceOnFastPath
            ) { ready() || isClosed }
            if ready() {
                if sliceEnded { Self.noteSliceRecovery() }
                return
            }
            if sliceEnded && repairs { nextPeerCheck = .now }  // a whole slice: look at the slot
        }
    }

    /// ``await(consumers:limit:strategy:peerGone:repairs:repair:ready:)`` with no slot to repair.
    @inlinable @inline(__always)
    func await(
        consumers: Bool, limit: inout WaitLimit, strategy: WaitStrategy, peerGone: (() -> Bool)? = nil, ready: () -> Bool
    ) throws(QueueError) {
        try self.await(
            consumers: consumers, limit: &limit, strategy: strategy, peerGone: peerGone, repairs: false, repair: { _ in },
            ready: ready)
    }

    /// Waits as ``await(consumers:deadline:strategy:peerGone:repairs:repair:ready:)``, with no
    /// slot to repair (SPSC queues, byte rings).
    @inlinable @inline(__always)
    func await(
        consumers: Bool, deadline: Deadline, strategy: WaitStrategy, peerGone: (() -> Bool)? = nil, ready: () -> Bool
    ) throws(QueueError) {
        try self.await(
            consumers: consumers, deadline: deadline, strategy: strategy, peerGone: peerGone, repairs: false, repair: { _ in },
            ready: ready)
    }

    /// Until when a wait may last: a timeout not yet turned into a deadline (`nil`: forever), or
    /// a deadline.
    @usableFromInline
    enum WaitLimit {
        case after(Duration?)
        case at(Deadline)
    }

    /// Closes the queue and wakes everybody parked on it.
    func close() {
        closedFlag.store(1, ordering: .releasing)  // pairs with the acquire in isClosed
        notEmpty.bump(waking: Int(Int32.max))
        notFull.bump(waking: Int(Int32.max))
    }

    /// How long a parked queue waiter sleeps before it re-checks on its own. Longer than the
    /// locks' slice: it only bounds the rare case of a peer dying between publishing and
    /// waking, and each wake-up of an idle vCPU costs ~100 µs here (cpu.queue.idle).
    static let parkSlice: Duration = .milliseconds(100)

    /// How often a waiter with a `peerGone` check runs it (a /proc read).
    static let peerCheckInterval: Duration = .milliseconds(25)
    /// ``peerCheckInterval`` in nanoseconds, for the try path's clock (computed once).
    static let peerCheckNanoseconds = UInt64(peerCheckInterval.components.seconds) * 1_000_000_000
        + UInt64(peerCheckInterval.components.attoseconds / 1_000_000_000)

    // MARK: diagnostics

    #if DEBUG
    /// Times a parked waiter found its queue ready only when its park slice ended: a lost
    /// wake-up, or a peer that died before waking it. Debug builds only; tests expect 0.
    static let sliceRecoveries = ManagedAtomic<Int>(0)
    #endif

    static func noteSliceRecovery() {
        #if DEBUG
        sliceRecoveries.wrappingIncrement(ordering: .relaxed)  // relaxed: a statistic
        #endif
    }
}

/// Diagnostics of the queue machinery, for tests.
package enum QueueDiagnostics {
    /// See `RingControl.sliceRecoveries`; always 0 in release builds, which do not count.
    package static var sliceRecoveries: Int {
        #if DEBUG
        RingControl.sliceRecoveries.load(ordering: .relaxed)  // relaxed: a statistic
        #else
        0
        #endif
    }
}
