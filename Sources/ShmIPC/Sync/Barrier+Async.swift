extension Barrier {
    /// Waits until all parties have called `wait` (synchronously or not), suspending the task
    /// (never blocking a thread), at most `timeout` (`nil`: forever).
    ///
    /// - Returns: this party's arrival index in its generation, `0..<parties`.
    /// - Throws: ``SyncError/brokenBarrier`` as the synchronous ``wait(timeout:)``, or
    ///   `CancellationError`. A cancelled party breaks the barrier for everyone, as a timeout
    ///   does (Python: a waiter leaving by an exception), unless the barrier tripped first, in
    ///   which case the wait returns its index.
    @discardableResult
    public func wait(timeout: Duration? = nil, isolation: isolated (any Actor)? = #isolation) async throws -> Int {
        let deadline = Deadline.after(timeout)
        let (index, myGeneration) = try await withInternalLock(isolation: isolation) { () throws(SyncError) in try arrive() }
        if index + 1 == parties { return index }
        var cancelled = false
        // Acquire: pairs with advance(), as the synchronous wait's loads.
        while generation.loadAcquiring() == myGeneration {
            if deadline.hasPassed || cancelled || Task.isCancelled {
                cancelled = cancelled || Task.isCancelled
                try await breakIfStill(myGeneration, isolation: isolation)
                break
            }
            do {
                // The check stands for a parked thread's slice: a party that arrived and died.
                _ = try await AsyncWaiter.shared.wait(
                    generation.pointer, expected: myGeneration, deadline: deadline,
                    check: { [self] in generation.loadAcquiring() != myGeneration || arrivedPartyDied() })
            } catch {
                cancelled = true  // the wait throws only CancellationError
                continue
            }
            if generation.loadAcquiring() == myGeneration, arrivedPartyDied() {
                try await breakIfStill(myGeneration, isolation: isolation)
                break
            }
        }
        let broken = try await withInternalLock(cancellable: false, isolation: isolation) { () throws(SyncError) in
            endedBroken(myGeneration)
        }
        if broken { throw cancelled ? CancellationError() : SyncError.brokenBarrier }
        return index
    }

    /// The internal lock around `body`, taken asynchronously (the synchronous form's repair
    /// of a dead holder included).
    private func withInternalLock<R>(
        cancellable: Bool = true, isolation: isolated (any Actor)?, _ body: () throws(SyncError) -> R
    ) async throws -> R {
        let lock = self.lock
        let (me, acquisition) = try await lock.lockAsync(
            deadline: .distantFuture, strategy: waitStrategy, cancellable: cancellable, isolation: isolation)
        defer { lock.unlockHeld() }
        try repairIfDied(acquisition, me)
        return try body()
    }

    private func breakIfStill(_ myGeneration: UInt32, isolation: isolated (any Actor)?) async throws {
        try await withInternalLock(cancellable: false, isolation: isolation) { () throws(SyncError) in breakIfCurrent(myGeneration) }
    }
}
