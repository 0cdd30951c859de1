// A condition's lock is owned by a thread, so its async forms wrap the lock around a
// synchronous body as ``Lock``'s do (see Lock+Async.swift): the waits release the lock while
// the task is suspended and take it back (for whichever thread resumes the task) before the
// body runs. Notifications keep the synchronous accounting: `waiting` and `signals`, under
// the lock, decide who was notified; the task sleeps on the `sequence` word through the
// process's ``AsyncWaiter``, which `notify(n)` wakes as it wakes threads.

extension Condition {
    /// Runs `body` holding the condition's lock, suspending the task (never blocking a
    /// thread) while another thread or process holds it; see
    /// ``Lock/withLock(timeout:recovering:isolation:_:)``. `notify` and `notifyAll` may be
    /// called inside `body`.
    public func withLock<Result>(
        timeout: Duration? = nil, recovering: (() throws -> Void)? = nil,
        isolation: isolated (any Actor)? = #isolation, _ body: () throws -> Result
    ) async throws -> Result {
        let lock = self.lock
        let (me, acquisition) = try await lock.lockAsync(deadline: .after(timeout), strategy: waitStrategy, isolation: isolation)
        defer { try? lock.unlock(me) }  // cannot fail: this thread holds the lock
        try acquisition.recover(recovering) { () throws(SyncError) in try lock.lock.markConsistent(me) }
        return try body()
    }

    /// Takes the lock, waits until `predicate` (evaluated holding the lock) is true or
    /// `timeout` passes (the task suspended and the lock released meanwhile), then runs `body`
    /// holding the lock, with the predicate's last value. Python:
    /// `with cond: ok = cond.wait_for(predicate, timeout); …`.
    ///
    /// Throws ``SyncError/timedOut`` if the lock itself cannot be had in time,
    /// ``SyncError/previousOwnerDied`` (lock released, still marked) if a holder died, or
    /// `CancellationError` (lock released, no notification consumed).
    public func withLock<Result>(
        waitingFor predicate: () throws -> Bool, timeout: Duration? = nil,
        isolation: isolated (any Actor)? = #isolation, _ body: (_ satisfied: Bool) throws -> Result
    ) async throws -> Result {
        let deadline = Deadline.after(timeout)
        var (me, acquisition) = try await lock.lockAsync(deadline: deadline, strategy: waitStrategy, isolation: isolation)
        while true {
            let satisfied: Bool
            do {
                if acquisition == .previousOwnerDied { throw SyncError.previousOwnerDied }
                satisfied = try predicate()
            } catch {
                try? lock.unlock(me)
                throw error
            }
            if satisfied || deadline.hasPassed {
                defer { try? lock.unlock(me) }
                return try body(satisfied)
            }
            (me, acquisition, _) = try await awaitNotification(me, deadline: deadline, isolation: isolation)
        }
    }

    /// Takes the lock, waits for a notification or `timeout` (the task suspended and the
    /// lock released meanwhile), then runs `body` holding the lock, with whether it was
    /// notified. Python: `with cond: notified = cond.wait(timeout); …`. Throws as
    /// ``withLock(waitingFor:timeout:isolation:_:)``.
    public func withLockAfterNotification<Result>(
        timeout: Duration? = nil, isolation: isolated (any Actor)? = #isolation, _ body: (_ notified: Bool) throws -> Result
    ) async throws -> Result {
        let deadline = Deadline.after(timeout)
        var (me, acquisition) = try await lock.lockAsync(deadline: deadline, strategy: waitStrategy, isolation: isolation)
        while true {
            var notified = false
            if acquisition != .previousOwnerDied {
                (me, acquisition, notified) = try await awaitNotification(me, deadline: deadline, isolation: isolation)
            }
            if acquisition == .previousOwnerDied {
                try? lock.unlock(me)
                throw SyncError.previousOwnerDied
            }
            // Woken with no notification left for this task (another took it): wait again.
            if notified || deadline.hasPassed {
                defer { try? lock.unlock(me) }
                return try body(notified)
            }
        }
    }

    /// One wait for a notification by the task holding the lock at depth 1 on thread `me`:
    /// releases the lock, suspends until woken, `deadline` or cancellation, and takes the lock
    /// back in every case (deaf to cancellation, as a thread must hold it again before it
    /// returns). Consumes a pending notification unless cancelled. Returns the new holder,
    /// what it found, and whether it was notified; throws `CancellationError` with the lock
    /// released.
    private func awaitNotification(
        _ me: Int32, deadline: Deadline, isolation: isolated (any Actor)?
    ) async throws -> (me: Int32, acquisition: LockAcquisition, notified: Bool) {
        let state = storage.state
        state.pointee.waiting += 1  // under the lock
        // Read before unlocking: a notify between the unlock and the suspension changes it,
        // and the wait then ends at once. Relaxed: the lock orders the counters.
        let seen = sequence.loadRelaxed()
        lock.lock.unlockHeld()
        var cancelled = false
        do {
            _ = try await AsyncWaiter.shared.wait(sequence.pointer, expected: seen, deadline: deadline)
        } catch {
            cancelled = true  // the wait throws only CancellationError
        }
        let (holder, acquisition) = try await lock.lockAsync(
            deadline: .distantFuture, strategy: waitStrategy, cancellable: false, isolation: isolation)
        let notified = !cancelled && state.pointee.signals > 0
        if notified { state.pointee.signals -= 1 }
        state.pointee.waiting -= 1
        // A cancelled waiter leaves its notification for another: never more pending than waiting.
        state.pointee.signals = min(state.pointee.signals, state.pointee.waiting)
        if cancelled {
            try? lock.unlock(holder)
            throw CancellationError()
        }
        return (holder, acquisition, notified)
    }
}
