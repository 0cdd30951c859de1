public import CoreMetrics  // the factory parameter

/// Reports named objects' live figures to swift-metrics, so that whatever backend a service
/// uses (Prometheus, StatsD, OpenTelemetry…) sees its queues fill and its locks recover.
///
/// Each ``update()`` reads every object's figures from outside (as `shmipc inspect` does, no
/// fast path is touched) and records them with the dimensions `object` (the name) and `kind`:
/// - gauges for levels: `shmipc.depth` (items or bytes in flight), `shmipc.parked` (threads
///   and tasks waiting), `shmipc.unfinished_tasks`;
/// - counters for totals, incremented by what grew since the last update: `shmipc.puts`,
///   `shmipc.gets`, `shmipc.messages_sent`, `shmipc.messages_received`, `shmipc.abandoned`,
///   `shmipc.owner_died_recoveries`;
/// - `shmipc.valid` (1 or 0): a segment that stops validating is worth an alert.
///
/// Call ``update()`` on a timer (once a second is plenty), or run ``run(every:)`` as a task.
public final class ShmIPCMetrics: @unchecked Sendable {
    /// `@unchecked Sendable`: the previous totals are only touched under `lock`.
    private let names: [String]
    private let prefix: String
    private let factory: any MetricsFactory
    private let lock = ThreadLock<[String: [String: UInt64]]>([:])

    /// Reports the objects named `names` (without the `shmipc.` prefix), with metric labels
    /// starting with `prefix`, to `factory` (default: the one `MetricsSystem` was bootstrapped with).
    public init(objects names: [String], labelPrefix prefix: String = "shmipc", factory: any MetricsFactory = MetricsSystem.factory) {
        self.names = names
        self.prefix = prefix
        self.factory = factory
    }

    /// Reads every object once and records its figures.
    public func update() {
        for name in names {
            guard let report = SegmentInspector.report(name, mappings: false) else {
                Gauge(label: "\(prefix).valid", dimensions: [("object", name), ("kind", "missing")], factory: factory).record(0)
                continue
            }
            let dimensions = [("object", name), ("kind", report.kind ?? "unknown")]
            Gauge(label: "\(prefix).valid", dimensions: dimensions, factory: factory).record(report.valid ? 1 : 0)
            guard report.valid else { continue }
            if let depth = report.depth { Gauge(label: "\(prefix).depth", dimensions: dimensions, factory: factory).record(depth) }
            let parked = ["consumersParked", "producersParked", "joinersParked", "parked"].compactMap { report.counters[$0] }
            if !parked.isEmpty { Gauge(label: "\(prefix).parked", dimensions: dimensions, factory: factory).record(Int(clamping: parked.reduce(0, &+))) }
            if let unfinished = report.counters["unfinishedTasks"] {
                Gauge(label: "\(prefix).unfinished_tasks", dimensions: dimensions, factory: factory).record(Int(clamping: unfinished))
            }
            let totals: [(String, String)] = [
                ("puts", "puts"), ("gets", "gets"), ("messagesSent", "messages_sent"), ("messagesReceived", "messages_received"),
                ("abandoned", "abandoned"), ("ownerDiedRecoveries", "owner_died_recoveries"),
            ]
            let growth: [(String, UInt64)] = lock.withLock { previous in
                var growth: [(String, UInt64)] = []
                for (key, label) in totals {
                    guard let now = report.counters[key] else { continue }
                    let before = previous[name]?[key] ?? 0
                    // A total that went down belongs to an object made anew under the name.
                    growth.append((label, now >= before ? now - before : now))
                    previous[name, default: [:]][key] = now
                }
                return growth
            }
            for (label, grown) in growth where grown > 0 {
                Counter(label: "\(prefix).\(label)", dimensions: dimensions, factory: factory).increment(by: Int64(clamping: grown))
            }
        }
    }

    /// Calls ``update()`` every `interval` until the task is cancelled.
    public func run(every interval: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            update()
            try? await Task.sleep(for: interval)
        }
    }
}
