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
