internal import CShim

extension RingControl {

    /// ``await(consumers:deadline:strategy:peerGone:repairs:repair:ready:)`` for a task: a
    /// short poll (``WaitStrategy/asyncSpins``), then suspensions through the process's
    /// ``AsyncWaiter`` until `ready()` holds.
    /// Throws ``QueueError/closed`` once the queue is closed (producers at once; consumers once
    /// `ready()` is false), ``QueueError/timedOut`` at `deadline`, or `CancellationError`.
    /// `check` runs every ``AsyncWaiter/checkInterval`` while suspended (repairs, a lost
    /// wake-up): when it returns true the task resumes and looks again.
    func awaitAsync(
        consumers: Bool, deadline: Deadline, strategy: WaitStrategy, check: @escaping @Sendable () -> Bool, ready: () -> Bool
    ) async throws {
        let parking = consumers ? notEmpty : notFull
        var spins = 0
        while true {
            if !consumers && isClosed { throw QueueError.closed }
            if ready() { return }
            if isClosed { if consumers && ready() { return }; throw QueueError.closed }
            if deadline.hasPassed { throw QueueError.timedOut }
            if spins < strategy.asyncSpins {
                spins += 1
                shmipc_cpu_relax()
                continue
            }
            try Task.checkCancellation()
            _ = try await parking.parkAfterHeavyBarrier(
                seen: parking.epoch, deadline: deadline, fence: fenceOnFastPath, check: check
            ) { ready() || isClosed }
        }
    }
}
