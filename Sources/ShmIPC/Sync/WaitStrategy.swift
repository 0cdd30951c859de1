internal import CShim

/// How a thread waits for a primitive (or, later, a queue endpoint) that is not ready.
///
/// A per-endpoint, per-process choice (not stored in shared memory): two processes may wait
/// on the same object with different strategies.
public enum WaitStrategy: Hashable, Sendable {
    /// Never sleep: poll with a CPU-relax hint until ready or the deadline. The lowest latency;
    /// burns a core while waiting. Dead-owner detection still runs every park slice (100 ms).
    case spin
    /// Poll `spins` times, then sleep on a futex (the default). A reply that comes within the
    /// spin window does not pay for a sleep and a wake-up (~10–30 µs on a VM).
    case spinThenPark(spins: Int)
    /// Sleep on a futex at once: no CPU while waiting.
    case park

    /// `spinThenPark(spins: 512)`: a few microseconds of polling before sleeping.
    public static let `default` = WaitStrategy.spinThenPark(spins: 512)

    /// How long a parked waiter sleeps before it re-checks for a dead peer.
    package static let parkSlice: Duration = .milliseconds(25)

    /// Polls `ready` as the strategy allows before parking; true as soon as it holds. For
    /// `.spin`, polls 4096 times and returns false, so the caller can check its deadline and
    /// its peers between rounds.
    @inline(__always)
    func spin(_ ready: () -> Bool) -> Bool {
        switch self {
        case .park:
            return false
        case .spinThenPark(let spins):
            for _ in 0..<max(0, spins) {
                if ready() { return true }
                shmipc_cpu_relax()
            }
            return false
        case .spin:
            var polls = 0
            while true {
                if ready() { return true }
                shmipc_cpu_relax()
                polls &+= 1
                // Checking the clock every 4096 polls keeps the loop tight and the
                // deadline (and dead-peer checks in the caller) within microseconds.
                if polls & 0xFFF == 0 { return false }
            }
        }
    }

    /// Like ``spin(_:)``, but with exponential backoff between polls (1, 2, 4… up to 64
    /// CPU-relax hints), the budget counted in relax hints. For contended locks: a waiter
    /// polling the lock word in a tight loop keeps pulling the line away from the holder and
    /// slows every hand-over; backing off lets the holder run.
    @inline(__always)
    func spinWithBackoff(_ ready: () -> Bool) -> Bool {
        let budget: Int
        switch self {
        case .park: return false
        case .spinThenPark(let spins): budget = spins
        case .spin: budget = 4096
        }
        var pause = 1, used = 0
        while used < budget {
            if ready() { return true }
            for _ in 0..<pause { shmipc_cpu_relax() }
            used += pause
            pause = min(pause * 2, 64)
        }
        return ready()
    }

    /// Whether a waiter may sleep in the kernel.
    var parks: Bool { self != .spin }
}
