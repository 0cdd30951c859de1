public import Atomics
public import CShim

/// The inlinable fast paths of ``Lock`` and ``RLock``: the uncontended acquire (one CAS) and
/// release (one exchange) are compiled into the caller, as pthread's never can be. Everything
/// else (waiting, dead-owner detection, errors) stays out of line in ``LockCore``.
///
/// The word protocol is ``LockCore``'s; these functions must stay in step with it.
@usableFromInline
enum LockWord {
    @inlinable @inline(__always)
    static func word(_ state: UnsafeMutablePointer<shmipc_lock_state>) -> UnsafeAtomic<UInt32> {
        UnsafeAtomic(at: UnsafeMutableRawPointer(state).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }

    /// One CAS 0 → `me`. Acquire: pairs with the release exchange in ``tryUnlock(_:_:)`` and
    /// ``LockCore/unlockHeld()``, so the previous owner's writes are visible.
    @inlinable @inline(__always)
    static func tryLock(_ state: UnsafeMutablePointer<shmipc_lock_state>, _ me: Int32) -> Bool {
        word(state).compareExchange(expected: 0, desired: UInt32(bitPattern: me), ordering: .acquiring).exchanged
    }

    /// The result for a thread that just took the lock. Plain read: the flag is written only
    /// by lock holders, and the acquiring CAS ordered those writes before this read.
    @inlinable @inline(__always)
    static func acquisitionResult(_ state: UnsafeMutablePointer<shmipc_lock_state>) -> LockAcquisition {
        state.pointee.inconsistent == 0 ? .acquired : .previousOwnerDied
    }

    /// The owner's thread id (relaxed: a thread can only see its own id here if it wrote it).
    @inlinable @inline(__always)
    static func owner(_ state: UnsafeMutablePointer<shmipc_lock_state>) -> Int32 {
        Int32(bitPattern: word(state).load(ordering: .relaxed) & SHMIPC_LOCK_OWNER_MASK)
    }

    /// Releases if `me` holds the lock: one exchange, and a wake-up only if a waiter parked.
    /// Returns false (and changes nothing) if `me` does not hold it.
    @inlinable @inline(__always)
    static func tryUnlock(_ state: UnsafeMutablePointer<shmipc_lock_state>, _ me: Int32) -> Bool {
        guard owner(state) == me else { return false }
        unlockHeld(state)
        return true
    }

    /// Releases a lock the caller has checked it holds.
    @inlinable @inline(__always)
    static func unlockHeld(_ state: UnsafeMutablePointer<shmipc_lock_state>) {
        // Release: pairs with the acquiring CAS of the next owner (tryLock, or LockCore's slow
        // path and take-over).
        if word(state).exchange(0, ordering: .releasing) & SHMIPC_LOCK_WAITERS != 0 {
            wakeOne(state)
        }
    }

    @usableFromInline @inline(never)
    static func wakeOne(_ state: UnsafeMutablePointer<shmipc_lock_state>) {
        Futex(UnsafeMutableRawPointer(state).assumingMemoryBound(to: UInt32.self)).wake(count: 1)
    }

    /// The error for a thread that does not hold the lock (cold).
    @usableFromInline @inline(never)
    static func notHeldError(_ state: UnsafeMutablePointer<shmipc_lock_state>) -> SyncError {
        owner(state) == 0 ? .notLocked : .notOwner
    }
}
