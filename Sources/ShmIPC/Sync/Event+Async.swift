extension Event {
    /// Suspends the task (never blocking a thread) until the flag is set or `timeout` passes
    /// (`nil`: forever); whether it is set. Throws `CancellationError` if the task is
    /// cancelled while waiting. Python: `await`-able `wait(timeout)`.
    @discardableResult
    public func wait(timeout: Duration? = nil) async throws -> Bool {
        try await core.wait(deadline: .after(timeout))
    }
}

extension EventCore {
    func wait(deadline: Deadline) async throws -> Bool {
        while true {
            if isSet { return true }
            if deadline.hasPassed { return isSet }
            try Task.checkCancellation()
            // The symmetric pair with set(), as a parked thread's; the check covers a setter
            // killed between its store and its wake-up.
            _ = try await flag.park(deadline: deadline, check: { [self] in isSet }) { $0 != 0 }
        }
    }
}

extension Semaphore {
    /// Decrements the count, suspending the task (never blocking a thread) while it is zero,
    /// at most `timeout` (`nil`: forever). Throws ``SyncError/timedOut`` or `CancellationError`
    /// (nothing taken).
    public func acquire(timeout: Duration? = nil) async throws {
        if core.tryAcquire() { return }
        try await core.acquire(deadline: .after(timeout))
    }
}

extension SemaphoreCore {
    func acquire(deadline: Deadline) async throws {
        while true {
            if tryAcquire() { return }
            if deadline.hasPassed { throw SyncError.timedOut }
            try Task.checkCancellation()
            // Sleeps only on a count of 0, as a parked thread does.
            _ = try await count.park(deadline: deadline, check: { [self] in value > 0 }) { $0 != 0 }
        }
    }
}
