internal import CShim

extension RingControl {

    /// ``await(consumers:deadline:strategy:peerGone:repairs:repair:ready:)`` for a task: a
    /// short poll (``WaitStrategy/asyncSpins``), then suspensions through the process's
    /// ``AsyncWaiter`` until `ready()` holds.
    /// Throws ``QueueError/closed`` once the queue is closed (producers at once; consumers once
    /// `ready()` is false), ``QueueError/timedOut`` at `deadline`, or `CancellationError`.
    /// `check` runs every ``AsyncWaiter/checkInterval`` while suspended (repairs, a lost
    /// wake-up): when it returns true the task resumes and looks again. `peerGone`, if given,
    /// is asked before each suspension, at most every ``peerCheckInterval``; once it says the
    /// other side is gone, the wait ends as if the ring were closed (`check` should ask it
    /// too, so that a suspended task learns of a death).
    func awaitAsync(
        consumers: Bool, deadline: Deadline, strategy: WaitStrategy, peerGone: (() -> Bool)? = nil,
        check: @escaping @Sendable () -> Bool, isolation: isolated (any Actor)? = #isolation, ready: () -> Bool
    ) async throws {
        let parking = consumers ? notEmpty : notFull
        var spins = 0
        var nextPeerCheck = Deadline(uptimeNanoseconds: 0)
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
            if let peerGone, nextPeerCheck.hasPassed {
                nextPeerCheck = .after(Self.peerCheckInterval)
                if peerGone() { if consumers && ready() { return }; throw QueueError.closed }
            }
            _ = try await parking.parkAfterHeavyBarrier(
                seen: parking.epoch, deadline: deadline, fence: fenceOnFastPath, check: check
            ) { ready() || isClosed }
        }
    }
}
