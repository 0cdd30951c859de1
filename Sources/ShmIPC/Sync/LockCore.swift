internal import Atomics
internal import CShim

/// The lock algorithm shared by ``Lock``, ``RLock`` and the primitives that embed a lock
/// (``Condition``, ``Barrier``), as a view on a `shmipc_lock_state` in shared memory.
///
/// The word holds the owner's kernel thread id (unique across processes among live threads)
/// and a WAITERS bit (Drepper, "Futexes Are Tricky", mutex 2, with the owner's id in place of 1):
/// - uncontended acquire: one CAS 0 → tid; uncontended release: one exchange → 0, and a
///   FUTEX_WAKE only if the WAITERS bit was set (waiter accounting);
/// - a waiter spins per its ``WaitStrategy``, then sets WAITERS and parks in slices of
///   ``WaitStrategy/parkSlice``; when a slice passes with the same owner, it checks that the
///   owner thread lives, and if it died takes the lock over, marking it inconsistent.
struct LockCore: @unchecked Sendable {
    /// `@unchecked Sendable`: a view on shared memory designed for concurrent use (an async
    /// waiter's check reads it from the waiter's thread).
    let state: UnsafeMutablePointer<shmipc_lock_state>

    var word: SharedWord {
        SharedWord(UnsafeMutableRawPointer(state).assumingMemoryBound(to: UInt32.self))
    }
    private var inconsistentFlag: SharedWord {
        SharedWord((UnsafeMutableRawPointer(state) + MemoryLayout<shmipc_lock_state>.offset(of: \.inconsistent)!).assumingMemoryBound(to: UInt32.self))
    }

    static func initialize(_ state: UnsafeMutablePointer<shmipc_lock_state>) {
        state.initialize(to: shmipc_lock_state(word: 0, inconsistent: 0, recursion: 0, recoveries: 0))
    }

    /// The recursion depth; read and written only by the owner (plain accesses suffice: the
    /// acquire CAS and release exchange order them against other owners).
    var recursion: UInt32 {
        get { state.pointee.recursion }
        nonmutating set { state.pointee.recursion = newValue }
    }

    /// The owning thread id, or 0 (a snapshot).
    var owner: Int32 { LockWord.owner(state) }

    var isLocked: Bool { owner != 0 }

    /// One attempt, no waiting: true if the calling thread `me` now holds the lock.
    @inline(__always)
    func tryLock(_ me: Int32) -> Bool { LockWord.tryLock(state, me) }

    /// The result for a thread that just took the lock.
    @inline(__always)
    func acquisitionResult() -> LockAcquisition { LockWord.acquisitionResult(state) }

    /// Acquires for `me`, waiting until `deadline`.
    @inline(__always)
    func lock(_ me: Int32, deadline: Deadline, strategy: WaitStrategy) throws(SyncError) -> LockAcquisition {
        if tryLock(me) { return acquisitionResult() }
        return try lockSlow(me, deadline: deadline, strategy: strategy)
    }

    /// Acquires for `me`, waiting at most `timeout` (nil: forever). The deadline is computed
    /// only if the first attempt fails: the uncontended path reads no clock.
    @inline(__always)
    func lock(_ me: Int32, timeout: Duration?, strategy: WaitStrategy) throws(SyncError) -> LockAcquisition {
        if tryLock(me) { return acquisitionResult() }
        return try lockSlow(me, timeout: timeout, strategy: strategy)
    }

    /// Out of line, so the clock read and its stack buffer stay off the fast path.
    @inline(never)
    private func lockSlow(_ me: Int32, timeout: Duration?, strategy: WaitStrategy) throws(SyncError) -> LockAcquisition {
        try lockSlow(me, deadline: .after(timeout), strategy: strategy)
    }

    @inline(never)
    private func lockSlow(_ me: Int32, deadline: Deadline, strategy: WaitStrategy) throws(SyncError) -> LockAcquisition {
        let mine = UInt32(bitPattern: me)
        if word.loadRelaxed() & SHMIPC_LOCK_OWNER_MASK == mine { throw .wouldDeadlock }
        var watch = OwnerWatch()
        while true {
            if strategy.spinWithBackoff({ word.loadRelaxed() == 0 && tryLock(me) }) {
                return acquisitionResult()
            }
            let observed = word.loadRelaxed()
            let owner = observed & SHMIPC_LOCK_OWNER_MASK
            if owner == 0 {
                // Free, but others may be parked: keep WAITERS set so our unlock wakes one.
                // Acquire: pairs with the release exchange in LockWord.unlockHeld().
                if word.atomic.compareExchange(expected: observed, desired: mine | SHMIPC_LOCK_WAITERS, ordering: .acquiring).exchanged {
                    return acquisitionResult()
                }
                continue
            }
            if watch.hasDied(owner) {
                if takeOver(observed, mine) { return .previousOwnerDied }
                continue
            }
            if deadline.hasPassed { throw .timedOut }
            guard strategy.parks else { continue }
            if observed & SHMIPC_LOCK_WAITERS == 0 {
                // Relaxed: announcing a waiter publishes nothing; the futex re-checks the word.
                if !word.atomic.compareExchange(expected: observed, desired: observed | SHMIPC_LOCK_WAITERS, ordering: .relaxed).exchanged {
                    continue
                }
            }
            let slice = min(deadline, .after(WaitStrategy.parkSlice))
            _ = word.futex.wait(expected: observed | SHMIPC_LOCK_WAITERS, deadline: slice)
        }
    }

    /// Takes the lock from a dead owner; false if somebody else changed the word first.
    func takeOver(_ observed: UInt32, _ mine: UInt32) -> Bool {
        // Keep WAITERS: other waiters may be parked. Acquire: pairs with whatever release the
        // dead owner managed, so its completed writes are visible.
        guard word.atomic.compareExchange(expected: observed, desired: mine | SHMIPC_LOCK_WAITERS, ordering: .acquiring).exchanged else {
            return false
        }
        inconsistentFlag.storeRelaxed(1)  // relaxed: published by our unlock's release
        recursion = 0
        state.pointee.recoveries &+= 1  // plain: written only by owners, ordered by the lock
        logRecovery(.warning, "a lock's owner died holding it; taken over, marked inconsistent until repaired", [
            "deadOwner": "\(observed & SHMIPC_LOCK_OWNER_MASK)", "newOwner": "\(mine)",
        ])
        return true
    }

    /// Releases a lock the calling thread `me` holds.
    @inline(__always)
    func unlock(_ me: Int32) throws(SyncError) {
        if !LockWord.tryUnlock(state, me) { throw LockWord.notHeldError(state) }
    }

    /// Releases a lock the caller has checked it holds.
    @inline(__always)
    func unlockHeld() { LockWord.unlockHeld(state) }

    /// The error for a thread that does not hold the lock (cold).
    func notHeldError() -> SyncError { LockWord.notHeldError(state) }

    /// Acquires (waiting as long as it takes) for an object whose protected state is always
    /// whole, such as a double-buffered value: a dead previous holder left nothing to repair, so
    /// its death is acknowledged here instead of reported.
    func lockSelfHealing(_ me: Int32, strategy: WaitStrategy = .default) throws(SyncError) {
        if try lock(me, deadline: .distantFuture, strategy: strategy) == .previousOwnerDied {
            try markConsistent(me)
        }
    }

    /// Clears the inconsistent mark; only the holder may.
    func markConsistent(_ me: Int32) throws(SyncError) {
        guard owner == me else { throw notHeldError() }
        inconsistentFlag.storeRelaxed(0)  // relaxed: published by the holder's unlock
    }
}

/// A waiter's view of the lock's owner, for the dead-owner check: the owner it last saw and
/// since when. Liveness is read (from /proc) only once one owner has held the lock for a whole
/// ``WaitStrategy/parkSlice``, so a healthy, busy lock never pays for it.
struct OwnerWatch {
    private var owner: UInt32 = 0
    private var since = Deadline.now

    /// Whether `owner` (the owner field just read) is a thread that died.
    mutating func hasDied(_ owner: UInt32) -> Bool {
        if owner != self.owner {
            self.owner = owner
            since = .now
            return false
        }
        guard since.advanced(by: WaitStrategy.parkSlice).hasPassed else { return false }
        since = .now
        return !Sys.threadIsAlive(Int32(bitPattern: owner))
    }
}
