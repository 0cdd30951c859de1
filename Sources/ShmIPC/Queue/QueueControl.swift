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
    /// A JoinableQueue's: an item given up with a dead producer or consumer also ends its task.
    let countsTasks: Bool

    init(state: UnsafeMutablePointer<shmipc_queue_state>, countsTasks: Bool = false) {
        self.init(
            state: state, capacity: Int(state.pointee.capacity), stride: Int(state.pointee.slot_stride),
            elementOffset: Int(state.pointee.element_offset), countsTasks: countsTasks)
    }

    /// A view whose geometry comes from the caller (validated configuration), not from the
    /// shared block: for channels, whose peers may be hostile. `capacity` is a power of two.
    init(state: UnsafeMutablePointer<shmipc_queue_state>, capacity: Int, stride: Int, elementOffset: Int, countsTasks: Bool = false) {
        self.state = state
        slots = UnsafeMutableRawPointer(state) + MemoryLayout<shmipc_queue_state>.stride
        mask = UInt64(capacity) &- 1
        self.stride = stride
        self.elementOffset = elementOffset
        self.countsTasks = countsTasks
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

    // MARK: MPMC (Vyukov's bounded queue, with claimed slots)
    //
    // A slot's sequence is index + 1 once full for `index`, and index + capacity once free for
    // the next lap (Vyukov). Ownership of a slot is taken by a CAS on its claim word, stamped
    // with the index's low 32 bits (so a thread that read a slot a lap ago cannot claim it
    // now): stamp | 0 is free for a producer of that index, stamp | SHMIPC_CLAIM_READY is
    // published and free for a consumer (two values, so a producer that read the slot free a
    // moment ago cannot claim it once it is full); stamp | tid is held by a producer, or by a
    // consumer with SHMIPC_CLAIM_CONSUMER; stamp | SHMIPC_CLAIM_ABANDONED marks a slot given up
    // after its producer died. The holder passes the tail (or head) on, and any thread that
    // finds it lagging does it for the holder ("helping"), so a holder that dies never blocks
    // the others' indices. A waiter that finds the slot it waits on held by a dead thread repairs it
    // (``repairStalledSlot(at:)``): the only item lost is the one the dead thread was moving.
    //
    // The claim, not the index, decides who owns a slot, so the tail and head are hints: the
    // holder moves its index on with a plain store when it still reads its own position (a
    // CAS there measured +25% round trip and -38% throughput), and a thread that finds the
    // index behind (the slot at it already taken or used) helps it on with a CAS. A store that
    // lands late can move an index back; the next threads then help it forward again, slot by
    // slot, and never claim an index twice (the claim is stamped with it).

    /// The claim word of `slot`.
    @inlinable @inline(__always)
    func claim(_ slot: UnsafeMutableRawPointer) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: (slot + 8).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }

    /// The claim word of a slot free to claim for `index`.
    @inlinable @inline(__always)
    static func stamp(_ index: UInt64) -> UInt64 { index << 32 }

    @usableFromInline static let stampMask: UInt64 = 0xFFFF_FFFF_0000_0000
    @usableFromInline static let holderMask: UInt64 = 0xFFFF_FFFF
    @usableFromInline static let readyMark = UInt64(SHMIPC_CLAIM_READY)
    @usableFromInline static let consumerFlag = UInt64(SHMIPC_CLAIM_CONSUMER)
    @usableFromInline static let abandonedMark = UInt64(SHMIPC_CLAIM_ABANDONED)

    /// This thread, as a claim holder.
    @inlinable @inline(__always)
    static var me: UInt64 { UInt64(UInt32(bitPattern: shmipc_thread_id())) }

    /// Puts `value` if a slot is free; false if the queue is full.
    @inlinable @inline(__always)
    func mpmcTryPut<Element: BitwiseCopyable>(_ value: Element) -> Bool {
        mpmcTryPut { slot in (slot + elementOffset).storeBytes(of: value, as: Element.self) }
    }

    /// Claims a free slot and lets `fill` write it (the slot's start; the element area is at
    /// `elementOffset`), then publishes it; false if the queue is full.
    @inlinable @inline(__always)
    func mpmcTryPut(_ fill: (UnsafeMutableRawPointer) -> Void) -> Bool {
        var position = tail.load(ordering: .relaxed)  // relaxed: the claim below validates it
        for _ in 0...Self.helpLimit(mask) {
            let slot = self.slot(position)
            // Acquire: pairs with the release store of the consumer that freed the slot, so its
            // read of the old element happens before our write.
            let sequence = self.sequence(slot).load(ordering: .acquiring)
            let difference = Int64(bitPattern: sequence &- position)
            if difference == 0 {
                let free = Self.stamp(position)
                // Acquiring: pairs with the releasing claim store of the previous holder.
                let (won, current) = claim(slot).compareExchange(expected: free, desired: free | Self.me, ordering: .acquiring)
                if won {
                    // Past `position` for the other producers (unless one helped already; see
                    // above). Relaxed: the slot's sequence, not the tail, publishes the element.
                    if tail.load(ordering: .relaxed) == position { tail.store(position &+ 1, ordering: .relaxed) }
                    fill(slot)
                    // Ready for the consumers of `position`, then published: in that order, so
                    // the slot's line is written twice in a row (a consumer polling the sequence
                    // would otherwise pull it away between the two stores). Safe: a consumer
                    // claims only after it saw the sequence. Release: pairs with the consumers'
                    // acquiring CAS and sequence load; the second publishes the element.
                    claim(slot).store(free | Self.readyMark, ordering: .releasing)
                    self.sequence(slot).store(position &+ 1, ordering: .releasing)
                    return true
                }
                guard current & Self.stampMask == free else { return false }  // the last lap's consumer has not let go yet
                // Another producer holds `position`: help it past, then go on at the tail.
                _ = tail.compareExchange(expected: position, desired: position &+ 1, ordering: .relaxed)
                position = tail.load(ordering: .relaxed)
            } else if difference < 0 {
                return false  // the slot still holds the element of the previous lap: full
            } else {
                // Another producer took it: help the tail past it if it lags, and reload.
                _ = tail.compareExchange(expected: position, desired: position &+ 1, ordering: .relaxed)
                position = tail.load(ordering: .relaxed)
            }
        }
        return false  // walked a whole lap and more without a free slot: as full, for now
    }

    /// Takes an element if one is ready; nil if the queue is empty.
    @inlinable @inline(__always)
    func mpmcTryGet<Element: BitwiseCopyable>(_: Element.Type) -> Element? {
        mpmcTryGet(accept: { _ in true }) { slot in (slot + elementOffset).loadUnaligned(as: Element.self) }
    }

    /// Takes the element at the head if one is ready and `accept` (shown the slot before it is
    /// claimed) agrees, reading it with `read` before the slot is freed; nil if the queue is
    /// empty or `accept` declined. Slots given up after their producer died are skipped.
    @inlinable @inline(__always)
    func mpmcTryGet<Result>(
        accept: (UnsafeMutableRawPointer) -> Bool, _ read: (UnsafeMutableRawPointer) -> Result
    ) -> Result? {
        var position = head.load(ordering: .relaxed)  // relaxed: the claim below validates it
        for _ in 0...Self.helpLimit(mask) {
            let slot = self.slot(position)
            // Acquire: pairs with the producer's release store in mpmcTryPut.
            let sequence = self.sequence(slot).load(ordering: .acquiring)
            let difference = Int64(bitPattern: sequence &- (position &+ 1))
            if difference == 0 {
                guard accept(slot) else { return nil }
                let free = Self.stamp(position)
                // Acquiring: pairs with the producer's releasing claim store.
                let (won, current) = claim(slot).compareExchange(
                    expected: free | Self.readyMark, desired: free | Self.me | Self.consumerFlag, ordering: .acquiring)
                if won {
                    if head.load(ordering: .relaxed) == position { head.store(position &+ 1, ordering: .relaxed) }  // as in put
                    let value = read(slot)
                    mpmcFree(slot, position)
                    return value
                }
                guard current & Self.stampMask == free else { return nil }  // not let go by its producer yet
                if current & Self.holderMask == Self.abandonedMark {
                    skipAbandoned(slot, position, current)
                } else if current & Self.consumerFlag == 0 {
                    return nil  // its producer published it and is letting go: not ready yet
                } else {
                    // Another consumer holds `position`: help it past.
                    _ = head.compareExchange(expected: position, desired: position &+ 1, ordering: .relaxed)
                }
                position = head.load(ordering: .relaxed)
            } else if difference < 0 {
                return nil  // not yet filled for this index: empty
            } else {
                // Another consumer took it: help the head past it if it lags, and reload.
                _ = head.compareExchange(expected: position, desired: position &+ 1, ordering: .relaxed)
                position = head.load(ordering: .relaxed)
            }
        }
        return nil  // walked a whole lap and more without a ready slot: as empty, for now
    }

    /// Frees `slot` (taken at `position`) for the next lap.
    @inlinable @inline(__always)
    func mpmcFree(_ slot: UnsafeMutableRawPointer, _ position: UInt64) {
        let next = position &+ mask &+ 1
        // Free for a producer of index + capacity, then the sequence that lets it look (the
        // order as in put). Release: pairs with the producers' acquiring CAS and sequence load,
        // so our read precedes the next write.
        claim(slot).store(Self.stamp(next), ordering: .releasing)
        self.sequence(slot).store(next, ordering: .releasing)
    }

    /// Claims a slot given up after its producer died, passes the head over it and frees it.
    @usableFromInline @inline(never)
    func skipAbandoned(_ slot: UnsafeMutableRawPointer, _ position: UInt64, _ current: UInt64) {
        guard claim(slot).compareExchange(
            expected: current, desired: Self.stamp(position) | Self.me | Self.consumerFlag, ordering: .acquiring).exchanged else { return }
        _ = head.compareExchange(expected: position, desired: position &+ 1, ordering: .relaxed)
        mpmcFree(slot, position)
        didGet()
    }

    /// Whether the MPMC slot at the head holds an element ready to claim (a snapshot, for
    /// waiting).
    @usableFromInline
    func mpmcLooksNonEmpty() -> Bool {
        for _ in 0...Self.helpLimit(mask) {
            let position = head.load(ordering: .relaxed)
            let slot = self.slot(position)
            let sequence = self.sequence(slot).load(ordering: .acquiring)
            if Int64(bitPattern: sequence &- (position &+ 1)) > 0 {
                // The head lags (taken already): help it on and look again.
                _ = head.compareExchange(expected: position, desired: position &+ 1, ordering: .relaxed)
                continue
            }
            guard sequence == position &+ 1 else { return false }
            let holder = claim(slot).load(ordering: .acquiring)  // pairs with the releasing claim stores
            return holder == Self.stamp(position) | Self.readyMark || holder == Self.stamp(position) | Self.abandonedMark
        }
        return false
    }

    /// How many slots a try walks (helping a lagging index on) before it gives up for now:
    /// bounds every try against forged sequences.
    @inlinable
    static func helpLimit(_ mask: UInt64) -> Int { Int(truncatingIfNeeded: min(mask, 1 << 20)) &* 2 &+ 16 }

    /// Whether the MPMC slot at the tail is free to claim (a snapshot, for waiting).
    func mpmcLooksNotFull() -> Bool {
        for _ in 0...Self.helpLimit(mask) {
            let position = tail.load(ordering: .relaxed)
            let slot = self.slot(position)
            let sequence = self.sequence(slot).load(ordering: .acquiring)
            if Int64(bitPattern: sequence &- position) > 0 {
                // The tail lags (taken already): help it on and look again.
                _ = tail.compareExchange(expected: position, desired: position &+ 1, ordering: .relaxed)
                continue
            }
            return sequence == position
                && claim(slot).load(ordering: .acquiring) == Self.stamp(position)  // pairs with the releasing claim stores
        }
        return false
    }

    /// Items given up because a producer or consumer died holding them (a snapshot).
    var abandoned: Int { Int(clamping: word64(424).load(ordering: .relaxed)) }  // relaxed: a statistic

    /// Repairs the slot a waiter waits on (the head's for consumers, the tail's for producers)
    /// if a thread that died holds it, or died between the two stores that hand it on. Cold:
    /// waiters call it every ``peerCheckInterval``.
    /// - a producer died before publishing: the slot is given up (the tail passed over it, the
    ///   item counted in ``abandoned``) and consumers skip it;
    /// - a consumer died before freeing the item it took: the item is lost (counted) and the
    ///   slot freed;
    /// - a producer died between marking the slot ready and publishing its sequence, or a
    ///   consumer between marking it free and freeing its sequence: the second store is done
    ///   for it (the value it would have stored; nothing is lost).
    @usableFromInline @inline(never)
    func repairStalledSlot(at position: UInt64) {
        let slot = self.slot(position)
        let sequence = self.sequence(slot).load(ordering: .acquiring)  // pairs with the holders' releasing stores
        let current = claim(slot).load(ordering: .acquiring)
        let holder = current & Self.holderMask
        // The index the claim is for: this lap's or the last (a waiter at the tail waits on a
        // slot still holding the last lap's item).
        let stamp = current & Self.stampMask
        let previous = position &- mask &- 1
        guard stamp == Self.stamp(position) || stamp == Self.stamp(previous) else { return }
        let index = stamp == Self.stamp(position) ? position : previous
        switch holder {
        case Self.readyMark:
            // Ready but not published: its producer stopped between the two stores.
            if sequence == index {
                self.sequence(slot).store(index &+ 1, ordering: .releasing)  // pairs with the consumers' acquire
                didPut()
            }
            return
        case 0:
            // Free for `index` but not freed: its consumer stopped between the two stores.
            if sequence == index &- mask {
                self.sequence(slot).store(index, ordering: .releasing)  // pairs with the producers' acquire
                didGet()
            }
            return
        case Self.abandonedMark:
            // A repair given up half-way (its repairer died): finish it.
            if sequence == index {
                self.sequence(slot).store(index &+ 1, ordering: .releasing)  // pairs with the consumers' acquire
                didPut()
            }
            return
        default:
            break
        }
        guard !Sys.threadIsAlive(Int32(truncatingIfNeeded: holder & ~Self.consumerFlag)) else { return }
        switch (holder & Self.consumerFlag != 0, sequence) {
        case (false, index):
            // A producer died holding `index` before publishing it: give the slot up.
            guard claim(slot).compareExchange(
                expected: current, desired: stamp | Self.abandonedMark, ordering: .acquiring).exchanged else { return }
            _ = tail.compareExchange(expected: index, desired: index &+ 1, ordering: .relaxed)
            countAbandoned()
            self.sequence(slot).store(index &+ 1, ordering: .releasing)  // pairs with the consumers' acquire
            didPut()
        case (true, index &+ 1):
            // A consumer died holding an item it had not finished taking: it is lost.
            guard claim(slot).compareExchange(
                expected: current, desired: stamp | Self.me | Self.consumerFlag, ordering: .acquiring).exchanged else { return }
            _ = head.compareExchange(expected: index, desired: index &+ 1, ordering: .relaxed)
            countAbandoned()
            mpmcFree(slot, index)
            didGet()
        default:
            return  // no state a holder leaves: a peer scribbled on it
        }
    }

    /// For a `tryPut` that found the queue full or a `tryGet` that found it empty: repairs the
    /// slot at the tail (or head) if a dead thread holds it, at most once per
    /// ``peerCheckInterval`` per `clock` (a process-local deadline, so a polling caller pays
    /// one clock read per failed try, and the /proc look-up only that often).
    @usableFromInline @inline(never)
    func repairIfDue(consumers: Bool, _ clock: ManagedAtomic<UInt64>) {
        let now = Deadline.now.uptimeNanoseconds
        let due = clock.load(ordering: .relaxed)  // relaxed: a process-local rate limit
        guard now >= due, clock.compareExchange(expected: due, desired: now &+ Self.peerCheckNanoseconds, ordering: .relaxed).exchanged else { return }
        repairStalledSlot(at: (consumers ? head : tail).load(ordering: .relaxed))  // relaxed: a hint; the repair re-reads
    }

    /// Counts an item given up; in a JoinableQueue its task can never be done, so it ends too.
    private func countAbandoned() {
        word64(424).wrappingIncrement(ordering: .relaxed)  // relaxed: a statistic
        guard countsTasks else { return }
        let unfinished = word32(512)
        var current = unfinished.load(ordering: .relaxed)
        while current > 0 {
            // Sequentially consistent, as JoinableQueue.taskDone(): joiners see the change.
            let (exchanged, original) = unfinished.weakCompareExchange(
                expected: current, desired: current - 1, successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed)
            if exchanged {
                if current == 1 { Futex((UnsafeMutableRawPointer(state) + 512).assumingMemoryBound(to: UInt32.self)).wakeAll() }
                return
            }
            current = original
        }
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
    /// `repairsSlots` (MPMC queues): every ``peerCheckInterval`` and after every park slice,
    /// the slot waited on is repaired if a dead thread holds it (``repairStalledSlot(at:)``).
    func await(
        consumers: Bool, deadline: Deadline, strategy: WaitStrategy,
        peerGone: (() -> Bool)? = nil, repairsSlots: Bool = false, ready: () -> Bool
    ) throws(QueueError) {
        let epoch = consumers ? notEmptyEpoch : notFullEpoch
        let waiters = consumers ? notEmptyWaiters : notFullWaiters
        let epochWord = UnsafeMutableRawPointer(state).advanced(by: consumers ? 256 : 264).assumingMemoryBound(to: UInt32.self)
        var nextPeerCheck = peerGone == nil && !repairsSlots ? Deadline.distantFuture : .after(Self.peerCheckInterval)
        while true {
            if !consumers && isClosed { throw .closed }
            if strategy.spin(ready) { return }
            if isClosed { if consumers && ready() { return }; throw .closed }
            if deadline.hasPassed { throw .timedOut }
            if nextPeerCheck.hasPassed {
                if let peerGone, peerGone() { if consumers && ready() { return }; throw .closed }
                if repairsSlots {
                    // Relaxed: a hint of which slot to look at; the repair re-reads the slot.
                    repairStalledSlot(at: (consumers ? head : tail).load(ordering: .relaxed))
                    if ready() { return }
                }
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
            if sliceEnded && repairsSlots { nextPeerCheck = .now }  // a whole slice: look at the slot
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
