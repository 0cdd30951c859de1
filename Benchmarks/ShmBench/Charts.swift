import Foundation

/// `--report DIR`: a self-contained `report.html` (the table, the machine, and every chart
/// inline) and the charts as SVG files of their own:
/// - `rtt-<name>.svg` for each round-trip row (`rtt.queue.spsc.spin`: `rtt-queue-spsc-spin.svg`): the distribution (CDF) of its pooled
///   samples, with its paired floor's and the pipe's when they ran;
/// - `throughput-by-size.svg`: messages per second against message size for the Connection
///   (copying), the loan (in place: the transport alone), the C ring (copying) and the kernel
///   pipe.
/// Plain SVG and well-formed XHTML, no scripts: they open in any browser, and parse as XML.
struct ChartReport {
    let report: Report
    /// Each latency row's pooled samples (sorted), and each paired row's reference's, by name.
    let samples: [String: [Double]]
    let referenceSamples: [String: [Double]]

    func write(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var charts: [(file: String, svg: String)] = []
        for row in report.results where row.unit == .nanoseconds && row.scenario.hasPrefix("rtt.") {
            guard let own = samples[row.scenario], !own.isEmpty else { continue }
            var series = [Chart.Series(name: row.scenario, points: Self.cdf(own))]
            if let reference = row.reference, let floor = referenceSamples[row.scenario], !floor.isEmpty {
                series.append(Chart.Series(name: reference, points: Self.cdf(floor)))
            }
            if row.scenario != "rtt.pipe", let pipe = samples["rtt.pipe"], !pipe.isEmpty {
                series.append(Chart.Series(name: "rtt.pipe", points: Self.cdf(pipe)))
            }
            let chart = Chart(
                title: "\(row.scenario): round-trip times", xLabel: "round trip (ns, log scale)", yLabel: "fraction of round trips",
                series: series, xAxis: .log10, yAxis: .linear(0, 1))
            charts.append((Self.file(row.scenario), chart.svg()))
        }
        if let sizes = sizeChart() { charts.append(("throughput-by-size.svg", sizes.svg())) }
        for chart in charts {
            try Data(chart.svg.utf8).write(to: URL(fileURLWithPath: directory).appendingPathComponent(chart.file))
        }
        try Data(html(charts).utf8).write(to: URL(fileURLWithPath: directory).appendingPathComponent("report.html"))
    }

    static func file(_ scenario: String) -> String { "\(scenario.replacingOccurrences(of: ".", with: "-")).svg" }

    /// The empirical CDF at 200 quantiles and the tail (99.9%, 99.99%, the maximum).
    static func cdf(_ sorted: [Double]) -> [(x: Double, y: Double)] {
        let quantiles = (0...199).map { Double($0) / 200 } + [0.995, 0.999, 0.9999, 1]
        return quantiles.map { q in (ResultRow.percentile(sorted, q), q) }
    }

    /// Messages per second by message size, one series per family, from the rows that ran.
    func sizeChart() -> Chart? {
        let families: [(name: String, prefix: String)] = [
            ("Connection (send/receive, copying)", "throughput.connection."),
            ("loan (in place)", "throughput.loan."),
            ("C ring (copying)", "throughput.ref.copy."),
            ("kernel pipe", "throughput.pipe."),
        ]
        var series: [Chart.Series] = []
        for family in families {
            var points: [(x: Double, y: Double)] = []
            for row in report.results where row.scenario.hasPrefix(family.prefix) && row.unit == .messagesPerSecond {
                guard let size = Self.bytes(String(row.scenario.dropFirst(family.prefix.count))) else { continue }
                points.append((Double(size), row.median))
            }
            // The C ring's 64-byte row is the SPSC reference.
            if family.prefix == "throughput.ref.copy.", let row = report.results.first(where: { $0.scenario == "throughput.ref.spsc.64B" }) {
                points.append((64, row.median))
            }
            if points.count >= 2 { series.append(Chart.Series(name: family.name, points: points.sorted { $0.x < $1.x })) }
        }
        guard !series.isEmpty else { return nil }
        return Chart(
            title: "Throughput by message size", xLabel: "message size (bytes, log scale)", yLabel: "messages per second (log scale)",
            series: series, xAxis: .log2, yAxis: .log10)
    }

    /// The byte count of a size label (8B, 4KiB, 1MiB).
    static func bytes(_ label: String) -> Int? {
        for (suffix, scale) in [("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)] where label.hasSuffix(suffix) {
            return Int(label.dropLast(suffix.count)).map { $0 * scale }
        }
        return nil
    }

    func html(_ charts: [(file: String, svg: String)]) -> String {
        let machine = report.machine
        var body = "<h1>shm-bench</h1>\n<p>" + Chart.escape(
            "\(machine.cpuModel), \(machine.logicalCPUs) CPUs, kernel \(machine.kernel), \(machine.build) build, "
                + "pinned \(machine.pinnedCPUs.map { $0.map(String.init).joined(separator: ",") } ?? "no"), "
                + "\(machine.runs) runs, \(machine.date)") + "</p>\n"
        body += "<table>\n<tr><th>scenario</th><th>unit</th><th>median</th><th>min</th><th>max</th><th>×ref (per-run median, min–max)</th><th>reference</th></tr>\n"
        for row in report.results {
            let ratio = row.ratioMedian.map { median in
                "\(Report.ratio(median)) (\(Report.ratio(row.ratioMin ?? median))–\(Report.ratio(row.ratioMax ?? median)))"
            } ?? ""
            let cells = [row.scenario, row.unit.rawValue, Report.format(row.median), Report.format(row.min), Report.format(row.max), ratio, row.reference ?? ""]
            body += "<tr>" + cells.map { "<td>\(Chart.escape($0))</td>" }.joined() + "</tr>\n"
        }
        body += "</table>\n"
        let warnings = report.results.flatMap { $0.warnings ?? [] }
        if !warnings.isEmpty {
            body += "<h2>Measurement warnings</h2>\n<ul>\n" + warnings.map { "<li>\(Chart.escape($0))</li>\n" }.joined() + "</ul>\n"
        }
        for chart in charts { body += "<figure id=\"\(chart.file)\">\n\(chart.svg)\n</figure>\n" }
        return """
            <!DOCTYPE html>
            <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
            <head><meta charset="utf-8"/><title>shm-bench report</title>
            <style>body { font-family: sans-serif; margin: 2em; } table { border-collapse: collapse; } \
            td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; } td:first-child { text-align: left; } \
            figure { margin: 2em 0; }</style></head>
            <body>
            \(body)</body>
            </html>

            """
    }
}

/// A line chart as SVG: axes with ticks (linear, or logarithmic in base 10 or 2), one
/// polyline per series, a legend.
struct Chart {
    struct Series {
        let name: String
        let points: [(x: Double, y: Double)]
    }

    enum Axis {
        case linear(Double, Double)
        case log10
        case log2
    }

    let title: String
    let xLabel: String
    let yLabel: String
    let series: [Series]
    let xAxis: Axis
    let yAxis: Axis
    var width = 760.0
    var height = 440.0
    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]

    /// The plot area inside the margins.
    var left: Double { 80 }
    var right: Double { width - 20 }
    var top: Double { 40 }
    var bottom: Double { height - 120 }

    func svg() -> String {
        let xs = series.flatMap { $0.points.map(\.x) }.filter { $0.isFinite }
        let ys = series.flatMap { $0.points.map(\.y) }.filter { $0.isFinite }
        let xRange = Self.range(xs, xAxis), yRange = Self.range(ys, yAxis)
        func px(_ x: Double) -> Double { left + (Self.transform(x, xAxis) - xRange.low) / (xRange.high - xRange.low) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (Self.transform(y, yAxis) - yRange.low) / (yRange.high - yRange.low) * (bottom - top) }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<title>\(Self.escape(title))</title>\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"white\"/>\n"
        out += "<text x=\"\(Int(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(Self.escape(title))</text>\n"
        // Axes and ticks.
        out += "<line x1=\"\(f(left))\" y1=\"\(f(bottom))\" x2=\"\(f(right))\" y2=\"\(f(bottom))\" stroke=\"black\"/>\n"
        out += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(bottom))\" stroke=\"black\"/>\n"
        for tick in Self.ticks(xRange, xAxis) {
            let x = left + (tick.position - xRange.low) / (xRange.high - xRange.low) * (right - left)
            out += "<line x1=\"\(f(x))\" y1=\"\(f(bottom))\" x2=\"\(f(x))\" y2=\"\(f(top))\" stroke=\"#eee\"/>\n"
            out += "<text x=\"\(f(x))\" y=\"\(f(bottom + 16))\" text-anchor=\"middle\">\(Self.escape(tick.label))</text>\n"
        }
        for tick in Self.ticks(yRange, yAxis) {
            let y = bottom - (tick.position - yRange.low) / (yRange.high - yRange.low) * (bottom - top)
            out += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(right))\" y2=\"\(f(y))\" stroke=\"#eee\"/>\n"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(Self.escape(tick.label))</text>\n"
        }
        out += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(bottom + 36))\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        out += "<text x=\"18\" y=\"\(f((top + bottom) / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 18 \(f((top + bottom) / 2)))\">\(Self.escape(yLabel))</text>\n"
        // The series, then the legend below the plot.
        for (index, line) in series.enumerated() {
            let color = Self.colors[index % Self.colors.count]
            let points = line.points.filter { $0.x.isFinite && $0.y.isFinite && Self.plottable($0.x, xAxis) && Self.plottable($0.y, yAxis) }
            let coordinates = points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            out += "<polyline class=\"series\" data-name=\"\(Self.escape(line.name))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(coordinates)\"/>\n"
            let legendY = bottom + 56 + Double(index) * 16
            out += "<line x1=\"\(f(left))\" y1=\"\(f(legendY - 4))\" x2=\"\(f(left + 24))\" y2=\"\(f(legendY - 4))\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            out += "<text x=\"\(f(left + 30))\" y=\"\(f(legendY))\">\(Self.escape(line.name))</text>\n"
        }
        return out + "</svg>\n"
    }

    private func f(_ value: Double) -> String { String(format: "%.1f", value) }

    static func plottable(_ value: Double, _ axis: Axis) -> Bool {
        if case .linear = axis { return true }
        return value > 0
    }

    static func transform(_ value: Double, _ axis: Axis) -> Double {
        switch axis {
        case .linear: value
        case .log10: Foundation.log10(value)
        case .log2: Foundation.log2(value)
        }
    }

    /// The axis's extent in transformed units: whole decades (octaves) around the data.
    static func range(_ values: [Double], _ axis: Axis) -> (low: Double, high: Double) {
        switch axis {
        case .linear(let low, let high):
            return (low, high)
        case .log10, .log2:
            let positive = values.filter { $0 > 0 }.map { transform($0, axis) }
            guard let low = positive.min(), let high = positive.max() else { return (0, 1) }
            let (a, b) = (low.rounded(.down), high.rounded(.up))
            return a == b ? (a, a + 1) : (a, b)
        }
    }

    static func ticks(_ range: (low: Double, high: Double), _ axis: Axis) -> [(position: Double, label: String)] {
        switch axis {
        case .linear(let low, let high):
            return stride(from: 0.0, through: 1.0, by: 0.1).map { step in
                let value = low + (high - low) * step
                return (value, String(format: "%.1f", value))
            }
        case .log10:
            return stride(from: range.low, through: range.high, by: 1).map { ($0, siLabel(pow(10, $0))) }
        case .log2:
            let step = max(1, ((range.high - range.low) / 10).rounded(.up))
            return stride(from: range.low, through: range.high, by: step).map { ($0, byteLabel(pow(2, $0))) }
        }
    }

    static func siLabel(_ value: Double) -> String {
        for (scale, suffix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] where value >= scale {
            return String(format: "%g", value / scale) + suffix
        }
        return String(format: "%g", value)
    }

    static func byteLabel(_ value: Double) -> String {
        let bytes = Int(value.rounded())
        if bytes >= 1 << 20 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10 { return "\(bytes >> 10) KiB" }
        return "\(bytes) B"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
