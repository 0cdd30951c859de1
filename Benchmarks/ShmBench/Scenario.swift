/// A cross-process benchmark scenario: what the parent (the measuring side) and the child do
/// in one run. Workloads live in Scenarios/, one file per family; the registry only lists them.
protocol Scenario: Sendable {
    /// Dotted name, e.g. `rtt.floor.spin`; selected by prefix on the command line.
    var name: String { get }
    var unit: Unit { get }
    /// One-line description for `--list`.
    var summary: String { get }
    /// Operations per run at `--scale 1`.
    var defaultIterations: Int { get }
    /// Kernel descriptors the transport needs (pipes, sockets); none by default.
    func makeChannels() throws -> Channels
    /// The measuring side; returns what it measured.
    func parent(_ session: Session) throws -> RunMeasurement
    /// The other side.
    func child(_ session: Session) throws
    /// Whether the scenario leaves threads behind in the parent (it awaits); see the default.
    var startsThreads: Bool { get }
}

extension Scenario {
    func makeChannels() throws -> Channels { Channels() }
    /// Whether the scenario leaves threads behind in the parent (it awaits): such scenarios
    /// run after every round of the others, so that process.fork still may fork.
    var startsThreads: Bool { false }
}

/// Round-trip scenarios share one shape: `warmup` untimed round trips, then one timestamp
/// per round trip; the parent's `roundTrip(i)` sends and awaits the reply for iteration i.
struct RoundTripSampler {
    static func measure(
        iterations: Int, warmup: Int, _ roundTrip: (Int) throws -> Void
    ) rethrows -> RunMeasurement {
        for i in 0..<warmup { try roundTrip(i) }
        var cycles = [UInt64](repeating: 0, count: iterations)
        let watch = Stopwatch()
        var previous = Stopwatch.cycles()
        for i in 0..<iterations {
            try roundTrip(warmup + i)
            let now = Stopwatch.cycles()
            cycles[i] = now &- previous
            previous = now
        }
        let elapsed = watch.elapsedNanoseconds()
        let nsPerCycle = watch.nanosecondsPerCycle()
        return .latencies(cycles.map { Double($0) * nsPerCycle }, mean: Double(elapsed) / Double(iterations))
    }

    /// Warm-up round trips before sampling: 5% of the run, at least 100.
    static func warmup(for iterations: Int) -> Int { max(100, iterations / 20) }
}
