import ArgumentParser
import CShim
import Foundation
import ShmIPC

@main
struct ShmBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shm-bench",
        abstract: "Cross-process benchmarks: ShmIPC against the hardware floor and the kernel transports, in one run.",
        discussion: """
            Two processes, pinned to two CPUs and started behind a barrier, run each scenario \
            --runs times, in rounds (every scenario once per round). Latency rows report the median, min and max over runs of each run's \
            p50, and p99/p999 over all samples; throughput and cost rows report the median, min \
            and max of the runs' values. Compare ratios, not absolute times: a noisy machine \
            moves both.
            """,
        subcommands: [Run.self, Instructions.self, Peer.self],
        defaultSubcommand: Run.self)

    /// First the entry points: a child the process and pool scenarios spawn (this executable
    /// again) runs its entry there and exits.
    static func main() {
        Multiprocessing.bootstrap(BenchEntries.all)
        main(nil)
    }
}

extension ShmBench {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "run", abstract: "Run scenarios (the default).")

        @Argument(help: "Scenario name prefixes to run (default: all), e.g. rtt or throughput.pipe.")
        var scenarios: [String] = []

        @Option(help: "Runs per scenario; each run is a fresh pair of processes.")
        var runs: Int = 3

        @Option(help: "Multiplies every scenario's iteration count (e.g. 0.1 for a quick look).")
        var scale: Double = 1

        @Option(help: "Write the results as JSON to this path.")
        var json: String?

        @Option(help: "Write report.html and SVG charts (round-trip distributions, throughput by size) to this directory.")
        var report: String?

        @Option(help: "The two CPUs to pin the parent and the child to, as A,B.")
        var cpus: String = "0,1"

        @Flag(help: "Do not pin the processes.")
        var noPin = false

        @Flag(help: "List the scenarios and exit.")
        var list = false

        mutating func validate() throws {
            guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
            guard scale > 0 else { throw ValidationError("--scale must be positive") }
            for prefix in scenarios where !Registry.all.contains(where: { $0.name.hasPrefix(prefix) }) {
                throw ValidationError("no scenario starts with '\(prefix)'; see --list")
            }
        }

        func run() throws {
            if list {
                let width = (Registry.all.map(\.name.count).max() ?? 0) + 2
                for scenario in Registry.all {
                    print(scenario.name + String(repeating: " ", count: width - scenario.name.count) + scenario.summary)
                }
                return
            }
            let pinned = try pinning()
            if let pinned, case .failure(let errno) = Sys.pinCurrentThread(to: pinned.parent) {
                throw ValidationError("cannot pin to CPU \(pinned.parent): \(errno)")
            }
            #if DEBUG
            print("warning: a debug build; measure with `swift run -c release shm-bench`")
            #endif
            let selected = Registry.all.filter { scenario in
                scenarios.isEmpty || scenarios.contains { scenario.name.hasPrefix($0) }
            }
            let machine = MachineInfo.current(pinned: pinned, runs: runs, scale: scale)
            print("shm-bench: \(machine.cpuModel), \(machine.logicalCPUs) CPUs, kernel \(machine.kernel), "
                + "\(machine.build) build, pinned \(pinned.map { "\($0.parent),\($0.child)" } ?? "no"), \(runs) runs")
            // Warm-up (unmeasured): both pinned CPUs busy for a second first.
            _ = try? Harness.runOnce(WarmUp(), iterations: 1, cpus: pinned)
            // Rounds: every selected scenario runs once per round, so drift on a noisy machine
            // affects each scenario alike and same-run comparisons stay fair.
            var measurements: [String: [RunMeasurement]] = [:]
            // A paired row's reference, measured with it in each run, in the same order.
            var referenceMeasurements: [String: [RunMeasurement]] = [:]
            var failures: [String: String] = [:]
            // Scenarios that start threads (awaiting: the cooperative pool, the async waiter)
            // run after all rounds of the others: a multi-threaded process may not fork.
            let phases = [selected.filter { !$0.startsThreads }, selected.filter(\.startsThreads)].filter { !$0.isEmpty }
            for (phase, round) in phases.flatMap({ phase in (1...runs).map { (phase, $0) } }) {
                for scenario in phase where failures[scenario.name] == nil {
                    let iterations = scaled(scenario)
                    do {
                        if let reference = Registry.references[scenario.name].flatMap(Registry.named) {
                            // Back to back in one process pair; alternate which goes first.
                            let referenceFirst = round % 2 == 1
                            let parts: [(scenario: any Scenario, iterations: Int)] = [(scenario, iterations), (reference, scaled(reference))]
                            let measured = try Harness.runTogether(referenceFirst ? parts.reversed() : parts, cpus: pinned)
                            measurements[scenario.name, default: []].append(referenceFirst ? measured[1] : measured[0])
                            referenceMeasurements[scenario.name, default: []].append(referenceFirst ? measured[0] : measured[1])
                        } else {
                            measurements[scenario.name, default: []].append(
                                try Harness.runOnce(scenario, iterations: iterations, cpus: pinned))
                        }
                    } catch {
                        failures[scenario.name] = "\(error)"
                        print("\(scenario.name): FAILED: \(error)")
                    }
                }
                print("round \(round)/\(runs) done")
            }
            let rows = selected.compactMap { scenario -> ResultRow? in
                guard failures[scenario.name] == nil, let runs = measurements[scenario.name] else { return nil }
                var row = ResultRow(scenario: scenario.name, unit: scenario.unit, measurements: runs)
                if let reference = Registry.references[scenario.name], let paired = referenceMeasurements[scenario.name] {
                    row.pair(with: reference, paired, runs)
                }
                return row
            }
            let report = Report(machine: machine, results: rows)
            print("\n" + report.table())
            if let json {
                try report.write(to: json)
                print("wrote \(json)")
            }
            if let directory = self.report {
                func pooled(_ runs: [RunMeasurement]?) -> [Double] {
                    (runs ?? []).flatMap { run -> [Double] in if case .latencies(let samples, _) = run { samples } else { [] } }.sorted()
                }
                try ChartReport(
                    report: report, samples: measurements.mapValues { pooled($0) },
                    referenceSamples: referenceMeasurements.mapValues { pooled($0) }
                ).write(to: directory)
                print("wrote \(directory)/report.html")
            }
            if !failures.isEmpty {
                let lines = failures.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
                throw ValidationError("\(failures.count) scenario(s) failed:\n" + lines.joined(separator: "\n"))
            }
        }

        /// A scenario's iterations at `--scale`.
        private func scaled(_ scenario: any Scenario) -> Int {
            max(1, Int((Double(scenario.defaultIterations) * scale).rounded()))
        }

        private func pinning() throws -> (parent: Int, child: Int)? {
            if noPin { return nil }
            let parts = cpus.split(separator: ",").compactMap { Int($0) }
            guard parts.count == 2, parts[0] != parts[1] else { throw ValidationError("--cpus takes two different CPUs, A,B") }
            if Sys.allowedCPUCount < 2 {
                print("warning: fewer than 2 CPUs available; running unpinned")
                return nil
            }
            return (parts[0], parts[1])
        }
    }

    /// The other process of a scenario; started by `run`, never by hand.
    struct Peer: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "peer", abstract: "Internal: the child side of a scenario.", shouldDisplay: false)

        /// The scenarios to run, in order, each with its iterations and descriptor count.
        @Option var scenario: [String]
        @Option var iterations: [Int]
        @Option var descriptors: [Int]
        @Option var cpu: Int?

        func run() throws {
            _ = shmipc_set_parent_death_signal(SIGKILL)  // never outlive the measuring process
            guard scenario.count == iterations.count, scenario.count == descriptors.count else {
                throw ValidationError("one --iterations and one --descriptors per --scenario")
            }
            let parts = try scenario.indices.map { index in
                guard let found = (Registry.all + [WarmUp()]).first(where: { $0.name == scenario[index] }) else {
                    throw ValidationError("unknown scenario \(scenario[index])")
                }
                return (scenario: found as any Scenario, iterations: iterations[index], descriptorCount: descriptors[index])
            }
            try Harness.runPeer(parts, cpu: cpu)
        }
    }
}
