import Foundation
import ShmIPC

/// The machine a report was measured on, written into the JSON.
struct MachineInfo: Codable {
    var cpuModel: String
    var logicalCPUs: Int
    var kernel: String
    var pinnedCPUs: [Int]?
    var build: String
    var runs: Int
    var scale: Double
    var timerOverheadNanoseconds: Double
    var date: String

    static func current(pinned: (parent: Int, child: Int)?, runs: Int, scale: Double) -> MachineInfo {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let modelLine = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
        let model = modelLine.flatMap { $0.split(separator: ":", maxSplits: 1).last }
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        let kernel = ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "unknown")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        return MachineInfo(
            cpuModel: model, logicalCPUs: ProcessInfo.processInfo.activeProcessorCount, kernel: kernel,
            pinnedCPUs: pinned.map { [$0.parent, $0.child] }, build: build, runs: runs, scale: scale,
            timerOverheadNanoseconds: Stopwatch.overheadNanoseconds(),
            date: ISO8601DateFormatter().string(from: Date()))
    }
}

/// The JSON document `--json PATH` writes (schema in the README).
struct Report: Codable {
    var machine: MachineInfo
    var results: [ResultRow]

    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try encoder.encode(self).write(to: URL(fileURLWithPath: path))
    }

    /// The human table: one row per scenario, with a paired row's median ratio to its
    /// reference (×ref, per-run ratios, see `pairs()`) and each round trip's ratio to the pipe
    /// measured in the same rounds; then the pairs and the measurement warnings.
    func table() -> String {
        let pipe = results.first { $0.scenario == "rtt.pipe" }?.median
        var lines = [
            pad("scenario", 36) + pad("unit", 7) + lpad("median", 13) + lpad("min", 13) + lpad("max", 13)
                + lpad("p99", 11) + lpad("p999", 11) + lpad("mean", 11) + lpad("×ref", 9) + lpad("×pipe", 8)
        ]
        for row in results {
            var line = pad(row.scenario, 36) + pad(row.unit.rawValue, 7)
            line += lpad(format(row.median), 13) + lpad(format(row.min), 13) + lpad(format(row.max), 13)
            line += lpad(row.p99.map(format) ?? "-", 11) + lpad(row.p999.map(format) ?? "-", 11)
            line += lpad(row.mean.map(format) ?? "-", 11)
            // A ratio with a warning is not a result: marked, and explained below.
            line += lpad(row.ratioMedian.map { ratio($0) + (row.ratioIsResult ? "" : "!") } ?? "", 9)
            // Ratios to the pipe only between nanosecond round trips (the pipe's unit).
            let isRoundTrip = row.scenario.hasPrefix("rtt.") && row.unit == .nanoseconds
            line += lpad(isRoundTrip ? pipe.map { ratio(row.median / $0) } ?? "" : "", 8)
            lines.append(line)
        }
        let paired = results.filter { $0.reference != nil }
        if !paired.isEmpty {
            lines.append("")
            lines.append("paired with its reference in every run (row ÷ reference per run: median, min–max; the reference's median):")
            for row in paired {
                lines.append(
                    "  " + pad(row.scenario, 34) + pad("÷ " + row.reference!, 32)
                        + lpad(ratio(row.ratioMedian!), 7) + "  (" + ratio(row.ratioMin!) + "–" + ratio(row.ratioMax!) + ")"
                        + "  ref " + format(row.referenceMedian!) + " " + row.unit.rawValue)
            }
        }
        let warnings = results.flatMap { $0.warnings ?? [] }
        if !warnings.isEmpty {
            lines.append("")
            lines += warnings.map { "measurement warning: " + $0 }
        }
        return lines.joined(separator: "\n")
    }

    func format(_ value: Double) -> String { Self.format(value) }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value >= 1e6 { return String(format: "%.3fM", value / 1e6) }
        if value >= 1e4 { return String(format: "%.0f", value) }
        return String(format: "%.1f", value)
    }

    static func ratio(_ value: Double) -> String {
        String(format: "%.3g", value)
    }

    private func ratio(_ value: Double) -> String {
        String(format: "%.3g", value)  // significant digits: the floor is ~0.001× pipe
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    private func lpad(_ text: String, _ width: Int) -> String {
        text.count >= width ? " " + text : String(repeating: " ", count: width - text.count) + text
    }
}
