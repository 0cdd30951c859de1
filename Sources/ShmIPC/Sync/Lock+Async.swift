internal import CShim

// The locks are owned by a thread (its kernel id is the lock word), and a task may resume on
// any thread of the pool. So the async forms take the lock and run a *synchronous* body
// between two suspension points, on one thread: the lock is taken for the thread that runs
// the body and released by it before the task can suspend again. There is no bare async
// `acquire()`: the lock it returned would belong to whichever thread the task happened to be
// on, and a release after the next `await` could run elsewhere.

extension LockCore {
    /// Takes the lock for the thread that runs the calling task when this returns,
    /// suspending the task (never blocking a thread) while another thread holds it; the
    /// acquirer's id and what it found.
    ///
    /// The caller passes its own isolation, so that nothing hops between this return and its
    /// use of the lock, and releases the lock before it next suspends. A dead owner is taken
    /// over (``LockAcquisition/previousOwnerDied``), found by the suspended task's check.
    /// With `cancellable` false, cancellation is ignored (a waiter that must take the lock
    /// back before it leaves). Throws ``SyncError/timedOut``, ``SyncError/wouldDeadlock``
    /// (the thread running the task holds it: a lock held across an `await`), or
    /// `CancellationError`.
    func lockAsync(
        deadline: Deadline, strategy: WaitStrategy, cancellable: Bool = true, isolation: isolated (any Actor)?
    ) async throws -> (me: Int32, acquisition: LockAcquisition) {
        var watch = OwnerWatch()
        var spins = 0
        var waited = false
        while true {
            let me = Sys.currentThreadID  // the thread may differ after every suspension
            let mine = UInt32(bitPattern: me)
            let observed = word.loadRelaxed()
            let owner = observed & SHMIPC_LOCK_OWNER_MASK
            if owner == 0 {
                // Once this task has slept, others may sleep too: keep WAITERS set, so that
                // its release wakes the next (Drepper's mutex 2). Acquire: pairs with the
                // release exchange in LockWord.unlockHeld().
                let desired = mine | (waited ? SHMIPC_LOCK_WAITERS : observed & SHMIPC_LOCK_WAITERS)
                if word.atomic.compareExchange(expected: observed, desired: desired, ordering: .acquiring).exchanged {
                    return (me, acquisitionResult())
                }
                continue
            }
            if owner == mine { throw SyncError.wouldDeadlock }
            if watch.hasDied(owner) {
                if takeOver(observed, mine) { return (me, .previousOwnerDied) }
                continue
            }
            if deadline.hasPassed { throw SyncError.timedOut }
            if spins < strategy.asyncSpins {
                spins += 1
                shmipc_cpu_relax()
                continue
            }
            if cancellable { try Task.checkCancellation() }
            if observed & SHMIPC_LOCK_WAITERS == 0 {
                // Relaxed: announcing a waiter publishes nothing; the futex re-checks the word.
                if !word.atomic.compareExchange(expected: observed, desired: observed | SHMIPC_LOCK_WAITERS, ordering: .relaxed).exchanged {
                    continue
                }
            }
            waited = true
            // The check stands for a parked thread's slice: an owner that died holding the
            // lock never wakes anyone.
            let core = self
            _ = try await AsyncWaiter.shared.wait(
                word.pointer, expected: observed | SHMIPC_LOCK_WAITERS, deadline: deadline,
                check: { core.word.loadRelaxed() & SHMIPC_LOCK_OWNER_MASK != owner || !Sys.threadIsAlive(Int32(bitPattern: owner)) },
                cancellable: cancellable)
        }
    }
}

extension Lock {
    /// Runs `body` holding the lock, suspending the task (never blocking a thread) while
    /// another thread or process holds it, at most `timeout` (`nil`: forever).
    ///
    /// `body` is synchronous: the lock belongs to the thread that runs it, and is released
    /// before the task can suspend again. `recovering` is as in the synchronous
    /// ``withLock(timeout:recovering:_:)``. Throws ``SyncError/timedOut``,
    /// ``SyncError/wouldDeadlock`` (this thread holds the lock: held across an `await`),
    /// ``SyncError/previousOwnerDied`` (no `recovering`), or `CancellationError` (the lock
    /// not taken). Python: `async with lock:` (asyncio's, across processes).
    public func withLock<Result>(
        timeout: Duration? = nil, recovering: (() throws -> Void)? = nil,
        isolation: isolated (any Actor)? = #isolation, _ body: () throws -> Result
    ) async throws -> Result {
        let core = LockCore(state: state)
        var me = Sys.currentThreadID
        var acquisition = LockAcquisition.acquired
        if core.tryLock(me) {
            acquisition = core.acquisitionResult()
        } else {
            (me, acquisition) = try await core.lockAsync(deadline: .after(timeout), strategy: waitStrategy, isolation: isolation)
        }
        defer { core.unlockHeld() }
        try acquisition.recover(recovering) { () throws(SyncError) in try core.markConsistent(me) }
        return try body()
    }
}

extension RLock {
    /// Runs `body` holding the lock, suspending the task while another thread or process
    /// holds it; see ``Lock/withLock(timeout:recovering:isolation:_:)``. Inside `body` the
    /// lock may be re-entered synchronously (same thread); an async acquisition never
    /// re-enters, since the thread it resumes on may not be the holder.
    public func withLock<Result>(
        timeout: Duration? = nil, recovering: (() throws -> Void)? = nil,
        isolation: isolated (any Actor)? = #isolation, _ body: () throws -> Result
    ) async throws -> Result {
        let recursive = core
        let (me, acquisition) = try await recursive.lockAsync(deadline: .after(timeout), strategy: waitStrategy, isolation: isolation)
        defer { try? recursive.unlock(me) }  // cannot fail: this thread holds the lock
        try acquisition.recover(recovering) { () throws(SyncError) in try recursive.lock.markConsistent(me) }
        return try body()
    }
}

extension RecursiveLockCore {
    /// ``LockCore/lockAsync(deadline:strategy:cancellable:isolation:)`` at depth 1 (an
    /// uncontended lock takes no suspension).
    func lockAsync(
        deadline: Deadline, strategy: WaitStrategy, cancellable: Bool = true, isolation: isolated (any Actor)?
    ) async throws -> (me: Int32, acquisition: LockAcquisition) {
        var me = Sys.currentThreadID
        var acquisition = LockAcquisition.acquired
        if lock.tryLock(me) {
            acquisition = lock.acquisitionResult()
        } else {
            (me, acquisition) = try await lock.lockAsync(deadline: deadline, strategy: strategy, cancellable: cancellable, isolation: isolation)
        }
        lock.recursion = 1
        return (me, acquisition)
    }
}
