extension ParkingWord {
    /// ``parkAfterHeavyBarrier(seen:deadline:fence:ready:)`` for a task: registers, issues the
    /// heavy barrier, and suspends on the epoch `seen` unless `ready()` now holds, through the
    /// process's ``AsyncWaiter`` (no thread blocks). The registration in ``waiters`` is the same
    /// as a parked thread's, so wakers make their syscall exactly as they would for one; it
    /// ends when the task resumes, however it resumes. Whether the wait ran to its deadline.
    func parkAfterHeavyBarrier(
        seen: UInt32, deadline: Deadline, fence: Bool, check: (@Sendable () -> Bool)?,
        isolation: isolated (any Actor)? = #isolation, ready: () -> Bool
    ) async throws -> Bool {
        waiters.wrappingIncrement(ordering: .relaxed)  // relaxed: ordered by the barrier below
        defer { waiters.wrappingDecrement(ordering: .relaxed) }  // relaxed: only a hint for wakers
        Membarrier.heavyBarrier(fence)
        if ready() { return false }
        return try await AsyncWaiter.shared.wait(word, expected: seen, deadline: deadline, check: check) == .timedOut
    }

    /// ``park(deadline:until:)`` for a task (the symmetric registration): suspends while the
    /// word holds the value read after registering, unless `done(value)` holds.
    func park(deadline: Deadline, check: (@Sendable () -> Bool)? = nil, until done: (UInt32) -> Bool) async throws -> Futex.WaitResult {
        waiters.wrappingIncrement(ordering: .sequentiallyConsistent)
        defer { waiters.wrappingDecrement(ordering: .relaxed) }  // relaxed: only a hint for wakers
        let current = value.load(ordering: .sequentiallyConsistent)
        if done(current) { return .valueChanged }
        return try await AsyncWaiter.shared.wait(word, expected: current, deadline: deadline, check: check) == .timedOut
            ? .timedOut : .woken
    }
}

extension WaitStrategy {
    /// How many times an async wait polls before it suspends: a reply already in flight is
    /// cheaper to catch than a suspension, but a thread of the cooperative pool must not spin
    /// for long. `.park`: none; otherwise at most 64 (so `.spin` too suspends after 64).
    var asyncSpins: Int {
        switch self {
        case .park: 0
        case .spin: 64
        case .spinThenPark(let spins): min(max(spins, 0), 64)
        }
    }
}
