import CShim
import BenchShim
import ShmIPC

/// A cheap clock for per-sample timing: the CPU's cycle counter (rdtsc, invariant on this
/// class of machine), converted to nanoseconds by calibrating against CLOCK_MONOTONIC over
/// the whole measurement. One read per sample, ~10 ns, instead of clock_gettime's ~20–25 ns.
struct Stopwatch {
    private let startCycles: UInt64
    private let start: Deadline

    init() {
        start = .now
        startCycles = Self.cycles()
    }

    @inline(__always)
    static func cycles() -> UInt64 { shmipc_cycle_counter() }

    /// Nanoseconds per cycle over the interval since `init()`.
    func nanosecondsPerCycle() -> Double {
        let cycles = Self.cycles() &- startCycles
        let ns = Deadline.now.uptimeNanoseconds &- start.uptimeNanoseconds
        return cycles == 0 ? 1 : Double(ns) / Double(cycles)
    }

    /// Nanoseconds since `init()`, from the monotonic clock.
    func elapsedNanoseconds() -> UInt64 {
        Deadline.now.uptimeNanoseconds &- start.uptimeNanoseconds
    }

    /// The cost of one timestamp as the sampling loops take it.
    static func overheadNanoseconds() -> Double {
        let watch = Stopwatch()
        var sink: UInt64 = 0
        let count = 200_000
        let before = cycles()
        for _ in 0..<count { sink &+= cycles() }
        let after = cycles()
        if sink == 42 { print("") }  // keeps the loop
        return Double(after &- before) / Double(count) * watch.nanosecondsPerCycle()
    }
}

/// What one run of a scenario measured.
enum RunMeasurement {
    /// Per-operation latencies in nanoseconds (one per round trip), and their mean computed
    /// from the run's total time (not quantized by the cycle counter's step).
    case latencies([Double], mean: Double)
    /// Operations per second over the run.
    case rate(Double)
    /// Nanoseconds per operation, averaged over the run.
    case cost(Double)
}

extension RunMeasurement {
    /// The run's figure: the p50 of a latency run, else its rate or cost.
    var value: Double {
        switch self {
        case .latencies(let samples, _): ResultRow.percentile(samples.sorted(), 0.5)
        case .rate(let value), .cost(let value): value
        }
    }

    /// The same measurement in another unit (latencies and costs multiplied by `factor`).
    func scaled(by factor: Double) -> RunMeasurement {
        switch self {
        case .latencies(let samples, let mean): .latencies(samples.map { $0 * factor }, mean: mean * factor)
        case .cost(let value): .cost(value * factor)
        case .rate: self
        }
    }
}

/// The unit a scenario reports in.
enum Unit: String, Codable {
    case nanoseconds = "ns"
    case messagesPerSecond = "msg/s"
    case nanosecondsPerOperation = "ns/op"
    case percentOfCore = "%core"
    case microseconds = "µs"
    case milliseconds = "ms"
    case tasksPerSecond = "task/s"
    case threads = "threads"
}

/// One row of the report: a scenario's figures over all runs.
struct ResultRow: Codable {
    var scenario: String
    var unit: Unit
    /// Latency rows: median over runs of each run's p50. Other rows: median of the runs' values.
    var median: Double
    var min: Double
    var max: Double
    /// Latency rows only: percentiles over the samples of all runs pooled.
    var p99: Double?
    var p999: Double?
    /// Latency rows only: median over runs of each run's mean (total time / round trips).
    /// Per-sample times are quantized by the cycle counter's step (~10 ns on AMD Zen); the
    /// mean is not.
    var mean: Double?
    var runs: Int
    /// Paired rows: the reference measured with this row in every run (Registry.references),
    /// the row's value over the reference's taken per run (median, min and max of those
    /// ratios), and the reference's own per-run values (median, min, max).
    var reference: String?
    var ratioMedian: Double?
    var ratioMin: Double?
    var ratioMax: Double?
    var referenceMedian: Double?
    var referenceMin: Double?
    var referenceMax: Double?
    /// Measurement warnings: a latency row below 0.9× its paired floor in some run (the floor
    /// was not a floor then), or a reference that varied more than 2× across the runs.
    var warnings: [String]?

    /// Below this ratio a round trip is "faster than the hardware": the floor was not a floor.
    static let floorTolerance = 0.9
    /// A reference whose runs differ by more than this factor did not measure one machine.
    static let referenceSpread = 2.0

    init(scenario: String, unit: Unit, measurements: [RunMeasurement]) {
        self.scenario = scenario
        self.unit = unit
        runs = measurements.count
        var perRun: [Double] = []
        var pooled: [Double] = []
        var means: [Double] = []
        for measurement in measurements {
            switch measurement {
            case .latencies(let samples, let mean):
                let sorted = samples.sorted()
                perRun.append(Self.percentile(sorted, 0.5))
                pooled.append(contentsOf: sorted)
                means.append(mean)
            case .rate(let value), .cost(let value):
                perRun.append(value)
            }
        }
        let sortedRuns = perRun.sorted()
        median = Self.percentile(sortedRuns, 0.5)
        min = sortedRuns.first ?? .nan
        max = sortedRuns.last ?? .nan
        if !pooled.isEmpty {
            pooled.sort()
            p99 = Self.percentile(pooled, 0.99)
            p999 = Self.percentile(pooled, 0.999)
            mean = Self.percentile(means.sorted(), 0.5)
        }
    }

    /// Adds the paired reference: `paired[i]` was measured with `measurements[i]`.
    mutating func pair(with referenceName: String, _ paired: [RunMeasurement], _ measurements: [RunMeasurement]) {
        reference = referenceName
        let ratios = zip(measurements, paired).map { $0.value / $1.value }.sorted()
        let references = paired.map(\.value).sorted()
        ratioMedian = Self.percentile(ratios, 0.5)
        ratioMin = ratios.first
        ratioMax = ratios.last
        referenceMedian = Self.percentile(references, 0.5)
        referenceMin = references.first
        referenceMax = references.last
        var warnings: [String] = []
        if unit == .nanoseconds, scenario.hasPrefix("rtt."), let low = ratios.first, low < Self.floorTolerance {
            let below = ratios.filter { $0 < Self.floorTolerance }.count
            warnings.append(
                "\(scenario) read below \(Self.floorTolerance)× its floor \(referenceName) in \(below) of \(ratios.count) runs "
                    + "(lowest \(String(format: "%.2f", low))×): the floor was not a floor then; a measurement artefact, not a result")
        }
        if let low = references.first, let high = references.last, low > 0, high / low > Self.referenceSpread {
            warnings.append(
                "\(referenceName) varied \(String(format: "%.1f", high / low))× across the runs paired with \(scenario): "
                    + "the machine changed under the measurement")
        }
        self.warnings = warnings.isEmpty ? nil : warnings
    }

    /// Whether the ratio is a result (no warning), or a measurement to repeat.
    var ratioIsResult: Bool { reference != nil && warnings == nil }

    /// Nearest-rank percentile of sorted values; the median of an even count is the mean of
    /// the middle two.
    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        if p == 0.5 {
            let mid = sorted.count / 2
            return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
        }
        let rank = Int((p * Double(sorted.count)).rounded(.up)) - 1
        return sorted[Swift.min(Swift.max(rank, 0), sorted.count - 1)]
    }
}
