public import Atomics
public import CShim

/// An MPMC queue's view: the ``RingControl`` of its ring, its intent table, and whether it
/// counts tasks (a JoinableQueue's).
///
/// A slot's sequence is index + 1 once full for `index`, and index + capacity once free for
/// the next lap (Vyukov). A producer (consumer) owns a slot from its CAS on the tail (head)
/// to its release store of the sequence. Before that CAS it stores the index it is about to
/// claim in its own entry of the queue's intent table (a plain store to a line only it
/// writes; the CAS, a release, publishes it): so whenever a slot is claimed and not yet
/// published, its claimant's entry names the slot's index. A waiter that finds the slot it
/// waits on claimed and unpublished for a while looks for a live thread that names it
/// (``repairStalledSlot(at:)``); if none does, the claimant died, and the slot is given up:
/// the only item lost is the one the dead thread was moving.
///
/// The fast path is Vyukov's plus one store and a thread-local look-up (the slot CAS of the
/// previous design cost -28% throughput: Notes/0006). A given-up slot is told by its
/// sequence alone (``givenUp(_:)``), on the get's "empty" branch.
///
/// The bound: a queue holds ``bound`` items, which may be fewer than the ring's slots (a
/// power of two). Below the ring, a producer claims index `i` only once the item at
/// `i - bound` was taken and its slot freed (its sequence shows it), so tail - head never
/// exceeds the bound; at the ring's size that is Vyukov's own "slot free" test, and the check
/// is skipped (one predictable branch).
@usableFromInline
struct MPMCControl: @unchecked Sendable {
    /// `@unchecked Sendable`: plain pointers into shared memory designed for concurrent access.
    @usableFromInline let ring: RingControl
    /// The intent table, after the slots (``QueueLayout/intentTableOffset(slots:stride:)``).
    @usableFromInline let intents: UnsafeMutablePointer<shmipc_queue_intent>
    /// The most items the queue holds (its capacity, from the validated header): at most the
    /// ring's slots.
    @usableFromInline let bound: UInt64
    /// A JoinableQueue's: an item given up with a dead producer or consumer also ends its task.
    let countsTasks: Bool
    /// ``tryLimit(_:)`` of this ring, computed once.
    @usableFromInline let tries: Int

    init(_ ring: RingControl, bound: Int, countsTasks: Bool = false) {
        precondition(bound >= 1 && bound <= ring.capacity, "a queue's bound must be in 1...its slots")
        self.ring = ring
        intents = (ring.slots + QueueLayout.intentTableOffset(slots: ring.capacity, stride: ring.stride))
            .assumingMemoryBound(to: shmipc_queue_intent.self)
        self.bound = UInt64(bound)
        self.countsTasks = countsTasks
        tries = Self.tryLimit(ring.mask)
    }

    /// Whether the bound is below the ring (then puts check it).
    @inlinable @inline(__always) var boundsBelowRing: Bool { bound <= mask }

    /// Whether the item at `index` was taken and its slot freed (its sequence is "free for
    /// index + slots", or a later lap's): for a producer of a bounded queue about to claim
    /// `index + bound`. Acquire: pairs with the consumer's freeing store, as the slot's own.
    @inlinable @inline(__always)
    func wasTaken(_ index: UInt64, stride: Int) -> Bool {
        let sequence = self.sequence(ring.slot(index, stride: stride)).load(ordering: .acquiring)
        return Int64(bitPattern: sequence &- (index &+ mask &+ 1)) >= 0
    }

    /// The index whose slot a waiter of the index `waitedOn` (the head for consumers, the tail
    /// for producers) waits to see move: a producer of a bounded queue waits for the item a
    /// bound behind the tail to be taken.
    @inlinable @inline(__always)
    func slotWaitedOn(_ waitedOn: UInt64, consumers: Bool) -> UInt64 {
        consumers || !boundsBelowRing ? waitedOn : waitedOn &- bound
    }

    // The ring's parts the algorithm uses.
    @inlinable var state: UnsafeMutablePointer<shmipc_queue_state> { ring.state }
    @inlinable var mask: UInt64 { ring.mask }
    @inlinable var elementOffset: Int { ring.elementOffset }
    @inlinable var tail: UnsafeAtomic<UInt64> { ring.tail }
    @inlinable var head: UnsafeAtomic<UInt64> { ring.head }
    @inlinable func word32(_ offset: Int) -> UnsafeAtomic<UInt32> { ring.word32(offset) }
    @inlinable func word64(_ offset: Int) -> UnsafeAtomic<UInt64> { ring.word64(offset) }
    @inlinable @inline(__always) func slot(_ index: UInt64) -> UnsafeMutableRawPointer { ring.slot(index) }
    @inlinable @inline(__always) func sequence(_ slot: UnsafeMutableRawPointer) -> UnsafeAtomic<UInt64> { ring.sequence(slot) }
    @inlinable @inline(__always) func didPut(count: Int = 1) { ring.didPut(count: count) }
    @inlinable @inline(__always) func didGet(count: Int = 1) { ring.didGet(count: count) }
    static var peerCheckNanoseconds: UInt64 { RingControl.peerCheckNanoseconds }

    /// The sequence of a slot given up for `index` (its producer died before publishing):
    /// "full for index" with the top bit flipped, a value no lap near this one uses. Set by one
    /// CAS from "free for index", so it can never cover an item its producer published
    /// meanwhile (a first version wrote a separate mark before that CAS: a repairer that lost
    /// the race to a late-publishing producer left the mark on a live item, and a consumer
    /// skipped it).
    @inlinable @inline(__always)
    static func givenUp(_ index: UInt64) -> UInt64 { (index &+ 1) ^ (1 << 63) }

    /// Entry `k` of the intent table.
    @inlinable @inline(__always)
    func intent(_ k: Int) -> UnsafeMutablePointer<shmipc_queue_intent> { intents + k }

    @inlinable @inline(__always)
    static func owner(_ entry: UnsafeMutablePointer<shmipc_queue_intent>) -> UnsafeAtomic<UInt32> {
        UnsafeAtomic(at: UnsafeMutableRawPointer(entry).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }

    /// The entry's producing (or consuming) intent: the index + 1 it claims or holds; 0 none.
    @inlinable @inline(__always)
    static func intending(_ entry: UnsafeMutablePointer<shmipc_queue_intent>, consumer: Bool) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: (UnsafeMutableRawPointer(entry) + (consumer ? 16 : 8)).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }

    /// This thread's intent entry: from the thread's cache, else registered (or, with every
    /// entry held by a live thread, the shared entry leased for one operation: ``endOperation``).
    @inlinable @inline(__always)
    func myIntent() -> UnsafeMutablePointer<shmipc_queue_intent> {
        // The cold calls take the two pointers they need, not this view: passing the view made
        // every put and get copy it to the stack first (MPMC put + get: 214 instructions).
        shmipc_intent_lookup(intents) ?? IntentTable(state: state, intents: intents).register()
    }

    /// After an operation: gives the shared entry back if it was leased for it.
    @inlinable @inline(__always)
    func endOperation(_ entry: UnsafeMutablePointer<shmipc_queue_intent>) {
        if entry == intents { IntentTable(state: state, intents: intents).releaseShared() }
    }

    /// Puts `value` if a slot is free; false if the queue is full.
    @inlinable @inline(__always)
    func mpmcTryPut<Element: BitwiseCopyable>(_ value: Element) -> Bool {
        let shape = QueueLayout.slotShape(Element.self, withSequence: true)
        return mpmcTryPut(stride: shape.stride) { slot in (slot + shape.offset).storeBytes(of: value, as: Element.self) }
    }

    /// Claims a free slot and lets `fill` write it (the slot's start; the element area is at
    /// `elementOffset`), then publishes it; false if the queue is full.
    @inlinable @inline(__always)
    func mpmcTryPut(_ fill: (UnsafeMutableRawPointer) -> Void) -> Bool {
        mpmcTryPut(stride: ring.stride, fill)
    }

    /// ``mpmcTryPut(_:)`` with the ring's stride from the caller (a constant for a typed one).
    @inlinable @inline(__always)
    func mpmcTryPut(stride: Int, _ fill: (UnsafeMutableRawPointer) -> Void) -> Bool {
        let entry = myIntent()
        defer { endOperation(entry) }
        let intending = Self.intending(entry, consumer: false)
        var position = tail.load(ordering: .relaxed)  // relaxed: the CAS below validates it
        for _ in 0...tries {
            let slot = ring.slot(position, stride: stride)
            // Acquire: pairs with the release store of the consumer that freed the slot, so its
            // read of the old element happens before our write.
            let sequence = self.sequence(slot).load(ordering: .acquiring)
            let difference = Int64(bitPattern: sequence &- position)
            if difference == 0 {
                // Full at the bound (below the ring) while the item a bound back is not taken.
                // (With a stale position the true tail is further on: full all the more.)
                if boundsBelowRing, !wasTaken(position &- bound, stride: stride) { break }
                // Relaxed: the releasing CAS below publishes it (before the tail moves past).
                intending.store(position &+ 1, ordering: .relaxed)
                let (won, current) = tail.weakCompareExchange(
                    expected: position, desired: position &+ 1, successOrdering: .releasing, failureOrdering: .relaxed)
                if won {
                    fill(slot)
                    // Release: pairs with the acquire load in mpmcTryGet; publishes the element.
                    self.sequence(slot).store(position &+ 1, ordering: .releasing)
                    return true
                }
                position = current
            } else if difference < 0 {
                break  // the slot still holds the element of the previous lap: full
            } else {
                position = tail.load(ordering: .relaxed)  // another producer took it: reload
            }
        }
        // Full (or a forged sequence): name no index we may have announced and not claimed.
        // Release: a repairer that reads this also sees what we published before.
        intending.store(0, ordering: .releasing)
        return false
    }

    /// Takes an element if one is ready; nil if the queue is empty.
    @inlinable @inline(__always)
    func mpmcTryGet<Element: BitwiseCopyable>(_: Element.Type) -> Element? {
        let shape = QueueLayout.slotShape(Element.self, withSequence: true)
        return mpmcTryGet(stride: shape.stride, accept: { _ in true }) { slot in
            (slot + shape.offset).loadUnaligned(as: Element.self)
        }
    }

    /// Takes the element at the head if one is ready and `accept` (shown the slot before it is
    /// claimed) agrees, reading it with `read` before the slot is freed; nil if the queue is
    /// empty or `accept` declined. Slots given up after their producer died are skipped.
    @inlinable @inline(__always)
    func mpmcTryGet<Result>(
        accept: (UnsafeMutableRawPointer) -> Bool, _ read: (UnsafeMutableRawPointer) -> Result
    ) -> Result? {
        mpmcTryGet(stride: ring.stride, accept: accept, read)
    }

    /// ``mpmcTryGet(accept:_:)`` with the ring's stride from the caller (see ``mpmcTryPut(stride:_:)``).
    @inlinable @inline(__always)
    func mpmcTryGet<Result>(
        stride: Int, accept: (UnsafeMutableRawPointer) -> Bool, _ read: (UnsafeMutableRawPointer) -> Result
    ) -> Result? {
        let entry = myIntent()
        defer { endOperation(entry) }
        let intending = Self.intending(entry, consumer: true)
        var position = head.load(ordering: .relaxed)  // relaxed: the CAS below validates it
        for _ in 0...tries {
            let slot = ring.slot(position, stride: stride)
            // Acquire: pairs with the producer's (or repairer's) release of the sequence.
            let sequence = self.sequence(slot).load(ordering: .acquiring)
            let difference = Int64(bitPattern: sequence &- (position &+ 1))
            if difference == 0 {
                guard accept(slot) else { break }
                intending.store(position &+ 1, ordering: .relaxed)  // as in put
                let (won, current) = head.weakCompareExchange(
                    expected: position, desired: position &+ 1, successOrdering: .releasing, failureOrdering: .relaxed)
                if won {
                    let value = read(slot)
                    // Release: frees the slot for index + capacity; pairs with the acquire in
                    // mpmcTryPut, so our read precedes the next write.
                    self.sequence(slot).store(position &+ mask &+ 1, ordering: .releasing)
                    return value
                }
                position = current
            } else if difference < 0 {
                guard sequence == Self.givenUp(position) else { break }  // not yet filled: empty
                // Given up after its producer died: claimed like an item, freed unread.
                intending.store(position &+ 1, ordering: .relaxed)  // as in put
                if head.compareExchange(expected: position, desired: position &+ 1, ordering: .releasing).exchanged {
                    Self.skipGivenUp(slot, freeingFor: position &+ mask &+ 1, state)
                    position &+= 1
                } else {
                    position = head.load(ordering: .relaxed)
                }
            } else {
                position = head.load(ordering: .relaxed)  // another consumer took it: reload
            }
        }
        intending.store(0, ordering: .releasing)  // as in put
        return nil
    }

    /// Frees a slot given up after its producer died, which this consumer claimed (counted
    /// as abandoned by its repairer): its sequence becomes `next`, "free for the next lap".
    /// Static, on plain values: as a method (or given the ring's view) the call made every get
    /// copy the view to the stack first, on the fast path too (MPMC put + get: 136
    /// instructions, now 125).
    @usableFromInline @inline(never)
    static func skipGivenUp(_ slot: UnsafeMutableRawPointer, freeingFor next: UInt64, _ state: UnsafeMutablePointer<shmipc_queue_state>) {
        UnsafeAtomic<UInt64>(at: slot.assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
            .store(next, ordering: .releasing)  // as a get frees
        // As didGet(), with a full fence for its asymmetric half (this path is cold).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        // Relaxed: ordered after our release store by the fence above (a parker's membarrier
        // or fence pairs with it, as with didGet()'s barrier).
        let parked = ParkingWord(state, offset: RingControl.offset(\.not_full_epoch)).waiters.load(ordering: .relaxed)
        if parked != 0 { RingControl.wakeProducers(state, 1) }
    }

    /// Whether the MPMC slot at the head holds an element, or a slot given up (a snapshot, for
    /// waiting).
    @usableFromInline
    func mpmcLooksNonEmpty() -> Bool {
        let position = head.load(ordering: .relaxed)  // relaxed: a snapshot; the get re-reads
        let sequence = self.sequence(slot(position)).load(ordering: .acquiring)  // pairs with the publishing stores
        return sequence == position &+ 1 || sequence == Self.givenUp(position)
    }

    /// Whether the MPMC slot at the tail is free, and within the bound (a snapshot, for
    /// waiting).
    @usableFromInline
    func mpmcLooksNotFull() -> Bool {
        let position = tail.load(ordering: .relaxed)  // as above
        guard sequence(slot(position)).load(ordering: .acquiring) == position else { return false }
        return !boundsBelowRing || wasTaken(position &- bound, stride: ring.stride)
    }

    /// How many slots a try looks at before it gives up for now: bounds every try against
    /// forged sequences (each failed CAS means another thread moved the index on, so a lap
    /// and more of failures is contention no try meets in practice).
    @inlinable
    static func tryLimit(_ mask: UInt64) -> Int { Int(truncatingIfNeeded: min(mask, 1 << 20)) &* 2 &+ 16 }

    // MARK: MPMC intent entries (cold)

    /// Entries of the intent table handed out so far (a high-water mark; scans stop there).
    var intentsUsed: UnsafeAtomic<UInt32> { IntentTable(state: state, intents: intents).used }

    /// The intent table's cold half: handing out entries.
    @usableFromInline
    struct IntentTable {
        @usableFromInline let state: UnsafeMutablePointer<shmipc_queue_state>
        @usableFromInline let intents: UnsafeMutablePointer<shmipc_queue_intent>

        @inlinable init(state: UnsafeMutablePointer<shmipc_queue_state>, intents: UnsafeMutablePointer<shmipc_queue_intent>) {
            self.state = state
            self.intents = intents
        }

        /// Entries handed out so far (`intents_used`).
        var used: UnsafeAtomic<UInt32> {
            UnsafeAtomic(at: (UnsafeMutableRawPointer(state) + RingControl.offset(\.intents_used))
                .assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
        }

        func intent(_ k: Int) -> UnsafeMutablePointer<shmipc_queue_intent> { intents + k }

        /// Finds this thread's entry, or takes a free one, or a dead thread's; caches it. With all
        /// taken by live threads, leases the shared entry 0 for one operation.
        @usableFromInline @inline(never)
        func register() -> UnsafeMutablePointer<shmipc_queue_intent> {
            let me = UInt32(bitPattern: shmipc_thread_id())
            let count = Int(SHMIPC_QUEUE_INTENTS)
            let used = min(Int(self.used.load(ordering: .acquiring)), count)  // pairs with take()'s bump
            func take(_ k: Int, from owner: UInt32) -> UnsafeMutablePointer<shmipc_queue_intent>? {
                let entry = intent(k)
                guard owner == me || MPMCControl.owner(entry).compareExchange(expected: owner, desired: me, ordering: .acquiringAndReleasing).exchanged else { return nil }
                MPMCControl.clearIntents(entry)  // a dead thread's (or a reused thread id's) are not ours
                var seen = self.used.load(ordering: .relaxed)
                while seen < UInt32(k + 1) {
                    // Released before our first intent store: a repairer scanning up to the
                    // high-water mark it read after our CAS on the tail or head sees our entry.
                    let (done, now) = self.used.compareExchange(expected: seen, desired: UInt32(k + 1), ordering: .releasing)
                    if done { break }
                    seen = now
                }
                shmipc_intent_remember(intents, UInt32(k))
                return entry
            }
            // Relaxed owner loads: candidates only; the CAS in take() decides.
            for k in 1..<max(used, 1) where MPMCControl.owner(intent(k)).load(ordering: .relaxed) == me {
                if let entry = take(k, from: me) { return entry }
            }
            for k in 1..<count where MPMCControl.owner(intent(k)).load(ordering: .relaxed) == 0 {
                if let entry = take(k, from: 0) { return entry }
            }
            for k in 1..<count {
                let owner = MPMCControl.owner(intent(k)).load(ordering: .relaxed)
                if !Sys.threadIsAlive(Int32(bitPattern: owner)), let entry = take(k, from: owner) { return entry }
            }
            return leaseShared(me)
        }

        /// Leases the shared entry for one operation: waits while a live thread holds it (for one
        /// operation of its own), takes it from a dead one. Bounded: after ``leaseWait`` (a lessee
        /// stopped by a debugger or SIGSTOP, or a hostile peer writing a live thread id there),
        /// the operation goes unannounced, through a process-local entry nobody scans: it runs as
        /// before this table existed, and only a repair that looks at its slot during those few
        /// nanoseconds could take it for a dead thread's.
        func leaseShared(_ me: UInt32) -> UnsafeMutablePointer<shmipc_queue_intent> {
            let entry = intent(0)
            let deadline = Deadline.after(MPMCControl.leaseWait)
            var spins = 0
            while true {
                let owner = MPMCControl.owner(entry).load(ordering: .relaxed)  // a candidate; the CAS decides
                if owner == 0 || (spins % 1000 == 999 && !Sys.threadIsAlive(Int32(bitPattern: owner))) {
                    if MPMCControl.owner(entry).compareExchange(expected: owner, desired: me, ordering: .acquiringAndReleasing).exchanged {
                        MPMCControl.clearIntents(entry)
                        return entry
                    }
                }
                spins += 1
                if spins % 1000 == 0, deadline.hasPassed { return MPMCControl.unannounced }
                Sys.yield()
            }
        }

        @usableFromInline @inline(never)
        func releaseShared() {
            let entry = intent(0)
            MPMCControl.clearIntents(entry)
            MPMCControl.owner(entry).store(0, ordering: .releasing)  // after the clears: the next lessee finds none
        }
    }

    /// How long an operation waits for the shared entry before it goes unannounced.
    static let leaseWait: Duration = .milliseconds(10)

    /// The entry of operations that go unannounced: process memory, which no repairer scans.
    nonisolated(unsafe) static let unannounced: UnsafeMutablePointer<shmipc_queue_intent> = {
        let entry = UnsafeMutablePointer<shmipc_queue_intent>.allocate(capacity: 1)
        entry.initialize(to: shmipc_queue_intent())
        return entry
    }()

    /// Names no index in `entry`. Release: a repairer that reads a cleared intent also sees
    /// what its thread published before.
    static func clearIntents(_ entry: UnsafeMutablePointer<shmipc_queue_intent>) {
        intending(entry, consumer: false).store(0, ordering: .releasing)
        intending(entry, consumer: true).store(0, ordering: .releasing)
    }

    /// Whether a live thread names `index` as its producing (consuming) intent.
    func aLiveThreadIntends(_ index: UInt64, consumer: Bool) -> Bool {
        let used = min(Int(intentsUsed.load(ordering: .acquiring)), Int(SHMIPC_QUEUE_INTENTS))  // pairs with the bump
        for k in 0..<max(used, 1) {
            let entry = intent(k)
            let owner = Self.owner(entry).load(ordering: .acquiring)
            guard owner != 0 else { continue }
            // Acquire: pairs with the owner's releasing stores, so an intent that moved on
            // shows the publication that preceded it.
            guard Self.intending(entry, consumer: consumer).load(ordering: .acquiring) == index &+ 1 else { continue }
            if Sys.threadIsAlive(Int32(bitPattern: owner)) { return true }
        }
        return false
    }

    /// Items given up because a producer or consumer died holding them (a snapshot).
    var abandoned: Int { Int(clamping: word64(RingControl.offset(\.abandoned)).load(ordering: .relaxed)) }  // relaxed: a statistic

    /// Repairs the slot at `position` (a waiter's: the head's for consumers, the tail's for
    /// producers) if a thread that died holds it. Cold: waiters call it every
    /// ``RingControl/peerCheckInterval``.
    /// - claimed by a producer (the tail past its index) and not published, and no live thread
    ///   names its index: the slot is given up (its sequence set to ``givenUp(_:)`` by a CAS
    ///   from "free", which fails if the producer published meanwhile; ``abandoned`` counts
    ///   the item); consumers claim it like an item and free it unread;
    /// - taken by a consumer (the head past its index) and not freed, and no live thread names
    ///   its index: the item is lost (counted, unless the slot was given up) and the slot freed
    ///   for the next lap.
    /// The index 2^64 - 1 is never given up (its intent, + 1, reads as none).
    @usableFromInline @inline(never)
    func repairStalledSlot(at position: UInt64) {
        let slot = self.slot(position)
        // Acquire, the index first: a claim the index shows happened before, with the
        // claimant's intent store; the sequence then says whether it was published.
        let tail = self.tail.load(ordering: .acquiring)
        let head = self.head.load(ordering: .acquiring)
        let sequence = self.sequence(slot).load(ordering: .acquiring)
        let lap = mask &+ 1
        if sequence == position || sequence == position &- lap {
            // Free for `sequence`: unpublished if a producer claimed it (the tail is past it).
            let index = sequence
            guard index != .max, Int64(bitPattern: tail &- index) > 0,
                  !aLiveThreadIntends(index, consumer: false) else { return }
            // No live producer names it: its claimant died (or published and moved on, and
            // then this CAS fails).
            guard self.sequence(slot).compareExchange(
                expected: index, desired: Self.givenUp(index), ordering: .releasing).exchanged else { return }
            countAbandoned()
            didPut()
            return
        }
        // Full for `index` (or given up for it): half-taken if a consumer claimed it.
        let index: UInt64, given: Bool
        switch sequence {
        case position &+ 1, position &- mask: (index, given) = (sequence &- 1, false)
        case Self.givenUp(position), Self.givenUp(position &- lap): (index, given) = ((sequence ^ (1 << 63)) &- 1, true)
        default: return
        }
        guard index != .max, Int64(bitPattern: head &- index) > 0,
              !aLiveThreadIntends(index, consumer: true) else { return }
        guard self.sequence(slot).compareExchange(
            expected: sequence, desired: index &+ lap, ordering: .releasing).exchanged else { return }
        if !given { countAbandoned() }  // a given-up slot was counted when it was given up
        didGet()
    }

    /// For a `tryPut` that found the queue full or a `tryGet` that found it empty: repairs the
    /// slot at the tail (or head) if a dead thread holds it, at most once per
    /// ``RingControl/peerCheckInterval`` per `clock` (a process-local deadline, so a polling caller pays
    /// one clock read per failed try, and the /proc look-ups only that often).
    @usableFromInline @inline(never)
    func repairIfDue(consumers: Bool, _ clock: ManagedAtomic<UInt64>) {
        let now = Deadline.now.uptimeNanoseconds
        let due = clock.load(ordering: .relaxed)  // relaxed: a process-local rate limit
        guard now >= due, clock.compareExchange(expected: due, desired: now &+ Self.peerCheckNanoseconds, ordering: .relaxed).exchanged else { return }
        // Relaxed: a hint; the repair re-reads.
        repairStalledSlot(at: slotWaitedOn((consumers ? head : tail).load(ordering: .relaxed), consumers: consumers))
    }

    /// Counts an item given up; in a JoinableQueue its task can never be done, so it ends too.
    private func countAbandoned() {
        word64(RingControl.offset(\.abandoned)).wrappingIncrement(ordering: .relaxed)  // relaxed: a statistic
        if countsTasks { TaskCount(state).finish() }
        logRecovery(.warning, "a queue item was abandoned: the peer moving it died; its slot was repaired")
    }
}
