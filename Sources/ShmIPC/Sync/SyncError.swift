/// Errors of the synchronization primitives.
public enum SyncError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The timeout passed before the primitive became available.
    case timedOut
    /// `release()` (or a Condition operation) by a thread that does not own the lock.
    case notOwner
    /// `release()` of a lock that is not held.
    case notLocked
    /// `acquire()` of a non-recursive Lock by the thread that already holds it: it would wait
    /// forever. (Python's Lock deadlocks here; use an RLock to re-enter.)
    case wouldDeadlock
    /// A lock's previous owner died while holding it; the lock was released without being
    /// acquired (``Lock/withLock(timeout:recovering:_:)`` without a recovery closure).
    case previousOwnerDied
    /// `release()` of a BoundedSemaphore would raise its value above its bound.
    case overReleased(maximum: Int)
    /// The barrier is broken (aborted, timed out, or a party died), or was reset while waiting.
    case brokenBarrier

    /// A description for people: logs and error messages.
    public var description: String {
        switch self {
        case .timedOut: "timed out"
        case .notOwner: "the calling thread does not own the lock"
        case .notLocked: "the lock is not held"
        case .wouldDeadlock: "the calling thread already holds this non-recursive lock"
        case .previousOwnerDied: "the lock's previous owner died while holding it"
        case .overReleased(let maximum): "release would raise the semaphore above its bound \(maximum)"
        case .brokenBarrier: "the barrier is broken"
        }
    }
}

/// How an acquisition of a Lock or RLock went. Not discardable on purpose: a previous owner's
/// death must be handled (Python has no equivalent; glibc: EOWNERDEAD).
public enum LockAcquisition: Hashable, Sendable {
    /// The lock is held, and its state is consistent.
    case acquired
    /// The lock is held, but a previous owner died while holding it: the data it protects may
    /// be half-updated. Repair it, then call `markConsistent()`; until then every acquirer
    /// receives this result.
    case previousOwnerDied
}

extension LockAcquisition {
    /// The recovery step of every `withLock(recovering:)`: nothing if the state is consistent;
    /// otherwise runs `recovering` (the lock held) and marks the lock consistent, or, without a
    /// recovery closure, throws ``SyncError/previousOwnerDied``.
    func recover(_ recovering: (() throws -> Void)?, markConsistent: () throws(SyncError) -> Void) throws {
        guard self == .previousOwnerDied else { return }
        guard let recovering else { throw SyncError.previousOwnerDied }
        try recovering()
        try markConsistent()
    }
}
