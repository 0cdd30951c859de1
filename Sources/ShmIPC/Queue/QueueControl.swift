public import Atomics
public import CShim

/// A view on a queue's control block and slots in shared memory: the index and slot
/// arithmetic (kept here, in one place) and the MPMC algorithm (Vyukov's bounded queue).
///
/// Waiting is waiter-counted: a put or get makes a wake-up syscall only if somebody registered
/// to park. The registration and the fast path form an asymmetric Dekker pair: the parking side
/// (rare, already paying for a sleep) issues `membarrier(GLOBAL_EXPEDITED)`; the fast path needs
/// only a compiler barrier between publishing and reading the waiter count. Where membarrier is
/// unavailable, both sides use sequentially consistent fences instead (``fenceOnFastPath``).
@usableFromInline
struct QueueControl: @unchecked Sendable {
    /// `@unchecked Sendable`: plain pointers into shared memory designed for concurrent access.
    @usableFromInline let state: UnsafeMutablePointer<shmipc_queue_state>
    @usableFromInline let slots: UnsafeMutableRawPointer
    @usableFromInline let mask: UInt64
    @usableFromInline let stride: Int
    @usableFromInline let elementOffset: Int
    @usableFromInline let fenceOnFastPath: Bool

    init(state: UnsafeMutablePointer<shmipc_queue_state>) {
        self.init(
            state: state, capacity: Int(state.pointee.capacity), stride: Int(state.pointee.slot_stride),
            elementOffset: Int(state.pointee.element_offset))
    }

    /// A view whose geometry comes from the caller (validated configuration), not from the
    /// shared block: for channels, whose peers may be hostile. `capacity` is a power of two.
    init(state: UnsafeMutablePointer<shmipc_queue_state>, capacity: Int, stride: Int, elementOffset: Int) {
        self.state = state
        slots = UnsafeMutableRawPointer(state) + MemoryLayout<shmipc_queue_state>.stride
        mask = UInt64(capacity) &- 1
        self.stride = stride
        self.elementOffset = elementOffset
        fenceOnFastPath = !QueueControl.membarrierAvailable
    }

    // MARK: fields (offsets fixed by the _Static_asserts in CShim.h; a test checks them)

    @inlinable func word64(_ offset: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: (UnsafeMutableRawPointer(state) + offset).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }
    @inlinable func word32(_ offset: Int) -> UnsafeAtomic<UInt32> {
        UnsafeAtomic(at: (UnsafeMutableRawPointer(state) + offset).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }
    @inlinable var tail: UnsafeAtomic<UInt64> { word64(0) }
    @inlinable var head: UnsafeAtomic<UInt64> { word64(128) }
    @inlinable var notEmptyEpoch: UnsafeAtomic<UInt32> { word32(256) }
    @inlinable var notEmptyWaiters: UnsafeAtomic<UInt32> { word32(260) }
    @inlinable var notFullEpoch: UnsafeAtomic<UInt32> { word32(264) }
    @inlinable var notFullWaiters: UnsafeAtomic<UInt32> { word32(268) }
    @inlinable var closedFlag: UnsafeAtomic<UInt32> { word32(400) }

    @inlinable var capacity: Int { Int(mask) + 1 }

    /// The slot of `index`.
    @inlinable @inline(__always)
    func slot(_ index: UInt64) -> UnsafeMutableRawPointer {
        slots + Int(truncatingIfNeeded: index & mask) &* stride
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

    // MARK: MPMC (Vyukov): a slot's sequence is index + 1 once full for `index`, and
    // index + capacity once free for the next lap.

    /// Puts `value` if a slot is free; false if the queue is full.
    @inlinable @inline(__always)
    func mpmcTryPut<Element: BitwiseCopyable>(_ value: Element) -> Bool {
        mpmcTryPut { slot in (slot + elementOffset).storeBytes(of: value, as: Element.self) }
    }

    /// Claims a free slot and lets `fill` write it (the slot's start; the element area is at
    /// `elementOffset`), then publishes it; false if the queue is full.
    @inlinable @inline(__always)
    func mpmcTryPut(_ fill: (UnsafeMutableRawPointer) -> Void) -> Bool {
        var position = tail.load(ordering: .relaxed)  // relaxed: the CAS below validates it
        while true {
            let slot = self.slot(position)
            // Acquire: pairs with the release store of the consumer that freed the slot, so its
            // read of the old element happens before our write.
            let sequence = self.sequence(slot).load(ordering: .acquiring)
            let difference = Int64(bitPattern: sequence &- position)
            if difference == 0 {
                // Relaxed: the slot's sequence, not the tail, publishes the element.
                let (won, current) = tail.weakCompareExchange(
                    expected: position, desired: position &+ 1, ordering: .relaxed)
                if won {
                    // Claimant (plain: only the thread holding the slot writes it; the sequence
                    // store below publishes it). Read by no one yet: for mid-operation death.
                    slot.storeBytes(of: shmipc_thread_id(), toByteOffset: 8, as: Int32.self)
                    fill(slot)
                    // Release: pairs with the acquire load in mpmcTryGet; publishes the element.
                    self.sequence(slot).store(position &+ 1, ordering: .releasing)
                    return true
                }
                position = current
            } else if difference < 0 {
                return false  // the slot still holds the element of the previous lap: full
            } else {
                position = tail.load(ordering: .relaxed)  // another producer took it: reload
            }
        }
    }

    /// Takes an element if one is ready; nil if the queue is empty.
    @inlinable @inline(__always)
    func mpmcTryGet<Element: BitwiseCopyable>(_: Element.Type) -> Element? {
        mpmcTryGet(accept: { _ in true }) { slot in (slot + elementOffset).loadUnaligned(as: Element.self) }
    }

    /// Takes the element at the head if one is ready and `accept` (shown the slot before it is
    /// claimed) agrees, reading it with `read` before the slot is freed; nil if the queue is
    /// empty or `accept` declined.
    @inlinable @inline(__always)
    func mpmcTryGet<Result>(
        accept: (UnsafeMutableRawPointer) -> Bool, _ read: (UnsafeMutableRawPointer) -> Result
    ) -> Result? {
        var position = head.load(ordering: .relaxed)  // relaxed: the CAS below validates it
        while true {
            let slot = self.slot(position)
            // Acquire: pairs with the producer's release store in mpmcTryPut.
            let sequence = self.sequence(slot).load(ordering: .acquiring)
            let difference = Int64(bitPattern: sequence &- (position &+ 1))
            if difference == 0 {
                guard accept(slot) else { return nil }
                let (won, current) = head.weakCompareExchange(
                    expected: position, desired: position &+ 1, ordering: .relaxed)
                if won {
                    // Claimant (plain: only the thread holding the slot writes it; the sequence
                    // store below publishes it). Read by no one yet: for mid-operation death.
                    slot.storeBytes(of: shmipc_thread_id(), toByteOffset: 8, as: Int32.self)
                    let value = read(slot)
                    // Release: frees the slot for index + capacity; pairs with the acquire in
                    // mpmcTryPut, so our read precedes the next write.
                    self.sequence(slot).store(position &+ mask &+ 1, ordering: .releasing)
                    return value
                }
                position = current
            } else if difference < 0 {
                return nil  // not yet filled for this index: empty
            } else {
                position = head.load(ordering: .relaxed)
            }
        }
    }

    /// Whether the MPMC slot at the head holds an element (a snapshot, for waiting).
    @usableFromInline
    func mpmcLooksNonEmpty() -> Bool {
        let position = head.load(ordering: .relaxed)
        return sequence(slot(position)).load(ordering: .acquiring) == position &+ 1
    }

    /// Whether the MPMC slot at the tail is free (a snapshot, for waiting).
    func mpmcLooksNotFull() -> Bool {
        let position = tail.load(ordering: .relaxed)
        return sequence(slot(position)).load(ordering: .acquiring) == position
    }

    // MARK: waking (the fast-path half of the Dekker pair)

    /// After publishing an element: wake a parked consumer, if any registered.
    @inlinable @inline(__always)
    func didPut(count: Int = 1) {
        if fenceOnFastPath { atomicMemoryFence(ordering: .sequentiallyConsistent) } else { shmipc_compiler_barrier() }
        // Relaxed: the barrier above (with the parker's membarrier) orders this read after our
        // publication; see the type's documentation.
        if notEmptyWaiters.load(ordering: .relaxed) != 0 { wakeConsumers(count) }
    }

    /// After freeing a slot: wake a parked producer, if any registered.
    @inlinable @inline(__always)
    func didGet(count: Int = 1) {
        if fenceOnFastPath { atomicMemoryFence(ordering: .sequentiallyConsistent) } else { shmipc_compiler_barrier() }
        if notFullWaiters.load(ordering: .relaxed) != 0 { wakeProducers(count) }
    }

    @usableFromInline @inline(never)
    func wakeConsumers(_ count: Int) {
        // Release: a parker that sees the new epoch also sees what was published before it.
        notEmptyEpoch.wrappingIncrement(ordering: .releasing)
        Futex(UnsafeMutableRawPointer(state).advanced(by: 256).assumingMemoryBound(to: UInt32.self)).wake(count: count)
    }

    @usableFromInline @inline(never)
    func wakeProducers(_ count: Int) {
        notFullEpoch.wrappingIncrement(ordering: .releasing)
        Futex(UnsafeMutableRawPointer(state).advanced(by: 264).assumingMemoryBound(to: UInt32.self)).wake(count: count)
    }

    // MARK: parking (the slow half)

    /// Waits until `ready()` holds (the queue looks non-empty, or not full), per `strategy`,
    /// until `deadline`. Throws ``QueueError/closed`` once the queue is closed (producers at
    /// once; consumers only once `ready()` is false).
    /// `peerGone`, if given, is asked every ``peerCheckInterval`` while waiting; once it says
    /// the other side is gone, the wait ends as if the queue were closed.
    @usableFromInline
    func await(
        consumers: Bool, deadline: Deadline, strategy: WaitStrategy,
        peerGone: (() -> Bool)? = nil, ready: () -> Bool
    ) throws(QueueError) {
        let epoch = consumers ? notEmptyEpoch : notFullEpoch
        let waiters = consumers ? notEmptyWaiters : notFullWaiters
        let epochWord = UnsafeMutableRawPointer(state).advanced(by: consumers ? 256 : 264).assumingMemoryBound(to: UInt32.self)
        var nextPeerCheck = peerGone == nil ? Deadline.distantFuture : .after(Self.peerCheckInterval)
        while true {
            if !consumers && isClosed { throw .closed }
            if strategy.spin(ready) { return }
            if isClosed { if consumers && ready() { return }; throw .closed }
            if deadline.hasPassed { throw .timedOut }
            if let peerGone, nextPeerCheck.hasPassed {
                if peerGone() { if consumers && ready() { return }; throw .closed }
                nextPeerCheck = .after(Self.peerCheckInterval)
            }
            guard strategy.parks else { continue }
            let seen = epoch.load(ordering: .acquiring)  // pairs with the releasing bump in wake*()
            waiters.wrappingIncrement(ordering: .relaxed)  // relaxed: ordered by the barrier below
            Self.heavyBarrier(fenceOnFastPath)
            var sliceEnded = false
            if !ready() && !isClosed {
                // In slices: a peer killed between publishing and waking must not leave us
                // asleep beside an element (crash model); a slice ending with the queue ready
                // is counted, so tests can tell such a recovery from a normal wake-up.
                sliceEnded = Futex(epochWord).wait(
                    expected: seen, deadline: min(deadline, .after(Self.parkSlice))) == .timedOut
            }
            waiters.wrappingDecrement(ordering: .relaxed)  // relaxed: only a hint for wakers
            if ready() {
                if sliceEnded { Self.noteSliceRecovery() }
                return
            }
        }
    }

    /// Closes the queue and wakes everybody parked on it.
    func close() {
        closedFlag.store(1, ordering: .releasing)  // pairs with the acquire in isClosed
        wakeConsumers(Int(Int32.max))
        wakeProducers(Int(Int32.max))
    }

    /// How long a parked queue waiter sleeps before it re-checks on its own. Longer than the
    /// locks' slice: it only bounds the rare case of a peer dying between publishing and
    /// waking, and each wake-up of an idle vCPU costs ~100 µs here (cpu.queue.idle).
    static let parkSlice: Duration = .milliseconds(100)

    /// How often a waiter with a `peerGone` check runs it (a /proc read).
    static let peerCheckInterval: Duration = .milliseconds(25)

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

    // MARK: membarrier

    /// Whether this process registered for `membarrier(GLOBAL_EXPEDITED)` (once, on first use).
    static let membarrierAvailable: Bool = shmipc_membarrier_register() == 0

    /// The parking side's barrier: membarrier, or a fence where membarrier is unavailable.
    static func heavyBarrier(_ fence: Bool) {
        if fence || shmipc_membarrier_global() != 0 {
            atomicMemoryFence(ordering: .sequentiallyConsistent)
        }
    }
}

/// Diagnostics of the queue machinery, for tests.
package enum QueueDiagnostics {
    /// See `QueueControl.sliceRecoveries`; always 0 in release builds, which do not count.
    package static var sliceRecoveries: Int {
        #if DEBUG
        QueueControl.sliceRecoveries.load(ordering: .relaxed)  // relaxed: a statistic
        #else
        0
        #endif
    }
}
