import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Glibc
@testable import ShmIPC
import Testing

extension ShmIPCTests {
    /// shm-bench end to end, at a tiny scale: every scenario of this issue runs across two
    /// processes and the JSON report has the documented schema. (No speed is asserted here:
    /// speed targets belong in the benchmark, not in tests.)
    @Suite struct ShmBenchTests {
        static let scenarios = [
            "rtt.ref.spin", "rtt.ref.spsc", "throughput.ref.spsc.8B", "throughput.ref.spsc.64B", "throughput.ref.spsc.8B.batch32",
            "throughput.ref.spsc.64B.batch32", "throughput.ref.mpmc.8B", "throughput.ref.mpmc.8B.producers1",
            "throughput.ref.mpmc.8B.producers2", "throughput.ref.mpmc.8B.producers4", "throughput.ref.copy.8B",
            "throughput.ref.copy.512B", "throughput.ref.copy.4KiB", "throughput.ref.copy.64KiB", "throughput.ref.copy.1MiB",
            "atomic.ref.add.2proc", "rtt.floor.spin", "rtt.floor.futex", "rtt.pipe", "rtt.socketpair", "throughput.pipe.8B",
            "throughput.pipe.64B", "throughput.pipe.512B", "throughput.pipe.4KiB", "throughput.pipe.64KiB",
            "throughput.pipe.1MiB", "atomic.floor.add.2proc", "lock.lock.uncontended", "lock.pthread.uncontended",
            "lock.rlock.uncontended", "lock.pthread-recursive.uncontended", "lock.counter.2proc", "lock.pthread.counter.2proc",
            "rtt.event.park", "rtt.queue.spsc.spin", "rtt.queue.spsc.default", "rtt.queue.spsc.park", "rtt.queue.mpmc.spin",
            "throughput.queue.spsc.8B", "throughput.queue.spsc.64B", "throughput.queue.spsc.8B.spin",
            "throughput.queue.spsc.64B.spin", "throughput.queue.spsc.8B.batch32", "throughput.queue.spsc.64B.batch32",
            "throughput.queue.mpmc.8B", "throughput.queue.mpmc.8B.bounded", "throughput.queue.mpmc.8B.spin",
            "throughput.queue.mpmc.8B.producers1", "throughput.queue.mpmc.8B.producers2", "throughput.queue.mpmc.8B.producers4",
            "cpu.queue.idle", "rtt.connection.64B", "throughput.connection.8B", "throughput.connection.64B",
            "throughput.connection.512B", "throughput.connection.4KiB", "throughput.connection.64KiB",
            "throughput.connection.1MiB", "throughput.loan.64B", "throughput.loan.4KiB", "throughput.loan.64KiB",
            "throughput.loan.1MiB", "value.add.2proc", "value.read.64B", "value.lockedadd.2proc", "process.spawn", "process.fork",
            "process.forkserver", "pool.map.100k", "pool.imap.chunk1", "pool.apply.rtt", "manager.floor.dict.get",
            "manager.dict.get", "manager.dict.set", "manager.dict.increment.2proc", "manager.list.append", "rtt.queue.spsc.async",
            "rtt.queue.spsc.async.park", "rtt.queue.spsc.async.park.waiter", "throughput.queue.spsc.async.8B", "queue.get.ready.sync", "queue.get.ready.async",
            "rtt.async.fanout1000", "rtt.async.fanout1000.threads",
        ]

        var benchPath: String { Helper.path.replacingOccurrences(of: "shmipc-test-helper", with: "shm-bench") }

        @Test func listNamesEveryScenario() throws {
            let child = try ChildProcess(executable: benchPath, arguments: ["--list"])
            let status = Helper.finish(child)
            #expect(status == .exited(0), "\(child.output)")
            for name in Self.scenarios { #expect(child.output.contains(name)) }
        }

        /// `--report DIR` writes report.html and the SVG charts: each parses as XML, the HTML
        /// has a table row per scenario and every chart inline, a round-trip chart draws its
        /// row, its floor and the pipe, and the size chart its four families.
        @Test func aReportHasParsableChartsAndTheTable() throws {
            let directory = "/tmp/shm-bench-report-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let scenarios = ["rtt.ref.spin", "rtt.pipe", "rtt.queue.spsc.spin", "throughput.ref.spsc.64B", "throughput.ref.copy.4KiB",
                             "throughput.pipe.64B", "throughput.pipe.4KiB", "throughput.connection.64B", "throughput.connection.4KiB",
                             "throughput.loan.64B", "throughput.loan.4KiB"]
            let child = try ChildProcess(
                executable: benchPath, arguments: scenarios + ["--runs", "2", "--scale", "0.002", "--no-pin", "--report", directory])
            #expect(Helper.finish(child, timeout: .seconds(300)) == .exited(0), "\(child.output)")

            let html = try XMLElementTree.parse(file: directory + "/report.html")
            #expect(html.name == "html")
            let cells = html.all("td").map(\.text)
            for name in scenarios { #expect(cells.contains(name), "\(name)") }
            let rttChart = try XMLElementTree.parse(file: directory + "/rtt-queue-spsc-spin.svg")
            #expect(rttChart.name == "svg")
            let rttSeries = rttChart.all("polyline").compactMap { $0.attributes["data-name"] }
            #expect(rttSeries == ["rtt.queue.spsc.spin", "rtt.ref.spin", "rtt.pipe"])
            for line in rttChart.all("polyline") { #expect((line.attributes["points"] ?? "").split(separator: " ").count > 100) }
            let sizeChart = try XMLElementTree.parse(file: directory + "/throughput-by-size.svg")
            #expect(sizeChart.all("polyline").compactMap { $0.attributes["data-name"] }
                == ["Connection (send/receive, copying)", "loan (in place)", "C ring (copying)", "kernel pipe"])
            // Every chart file is in the page.
            let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".svg") }
            #expect(files.count >= 4)
            #expect(Set(html.all("figure").compactMap { $0.attributes["id"] }) == Set(files))
        }

        @Test func aQuickRunWritesTheDocumentedJSONSchema() throws {
            let path = "/tmp/shm-bench-test-\(getpid()).json"
            defer { unlink(path) }
            let child = try ChildProcess(
                executable: benchPath, arguments: ["--runs", "2", "--scale", "0.005", "--no-pin", "--json", path])
            let status = Helper.finish(child, timeout: .seconds(300))
            #expect(status == .exited(0), "\(child.output)")

            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let report = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let machine = try #require(report["machine"] as? [String: Any])
            #expect(machine["cpuModel"] is String)
            #expect(machine["runs"] as? Int == 2)
            let results = try #require(report["results"] as? [[String: Any]])
            #expect(results.compactMap { $0["scenario"] as? String } == Self.scenarios)
            for row in results {
                let name = row["scenario"] as? String ?? "?"
                let median = try #require(row["median"] as? Double, "\(name)")
                let low = try #require(row["min"] as? Double, "\(name)")
                let high = try #require(row["max"] as? Double, "\(name)")
                #expect(low >= 0 && low <= median && median <= high, "\(name): \(low) \(median) \(high)")
                if name != "cpu.queue.idle" { #expect(low > 0, "\(name)") }
                #expect(row["unit"] is String)
                if ["ns", "µs", "ms"].contains(row["unit"] as? String) {  // latency rows
                    let p99 = try #require(row["p99"] as? Double, "\(name)")
                    let p999 = try #require(row["p999"] as? Double, "\(name)")
                    #expect(p99 <= p999, "\(name)")
                    let mean = try #require(row["mean"] as? Double, "\(name)")
                    #expect(mean > 0, "\(name)")
                } else {
                    #expect(row["p99"] == nil, "\(name)")
                    #expect(row["mean"] == nil, "\(name)")
                }
                // A paired row names its reference, which ran in the same runs; its ratios are
                // ordered and positive, and the reference's own figures are reported with them.
                if let reference = row["reference"] as? String {
                    #expect(Self.scenarios.contains(reference), "\(name) → \(reference)")
                    let ratio = try #require(row["ratioMedian"] as? Double, "\(name)")
                    let ratioLow = try #require(row["ratioMin"] as? Double, "\(name)")
                    let ratioHigh = try #require(row["ratioMax"] as? Double, "\(name)")
                    #expect(ratioLow > 0 && ratioLow <= ratio && ratio <= ratioHigh, "\(name): \(ratioLow) \(ratio) \(ratioHigh)")
                    #expect(row["referenceMedian"] is Double, "\(name)")
                } else {
                    #expect(row["ratioMedian"] == nil, "\(name)")
                }
            }
            let paired = Set(results.compactMap { $0["reference"] != nil ? $0["scenario"] as? String : nil })
            #expect(paired.isSuperset(of: [
                "throughput.queue.spsc.8B", "throughput.queue.spsc.64B", "throughput.queue.spsc.8B.batch32",
                "throughput.queue.spsc.64B.batch32", "throughput.queue.mpmc.8B", "throughput.connection.64B",
                "rtt.queue.spsc.spin", "rtt.connection.64B", "rtt.queue.mpmc.spin", "rtt.queue.spsc.async.park",
                "rtt.queue.spsc.async.park.waiter",
            ]), "\(paired)")
        }

        @Test func anUnknownScenarioPrefixIsRejected() throws {
            let child = try ChildProcess(executable: benchPath, arguments: ["nosuch"])
            let status = Helper.finish(child)
            #expect(status != .exited(0))
            #expect(child.output.contains("no scenario starts with 'nosuch'"))
        }
    }
}

/// A parsed XML document as a tree of elements (names without namespace prefixes), for the
/// report test.
final class XMLElementTree {
    let name: String
    var attributes: [String: String]
    var children: [XMLElementTree] = []
    var text = ""

    init(name: String, attributes: [String: String]) {
        self.name = name
        self.attributes = attributes
    }

    /// Every element named `name` in this subtree, in document order.
    func all(_ name: String) -> [XMLElementTree] {
        (self.name == name ? [self] : []) + children.flatMap { $0.all(name) }
    }

    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    static func parse(file: String) throws -> XMLElementTree {
        let parser = XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: file)))
        let builder = Builder()
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else {
            throw ParseError(description: "\(file): \(parser.parserError.map { "\($0)" } ?? "no root element")")
        }
        return root
    }

    final class Builder: NSObject, XMLParserDelegate {
        var root: XMLElementTree?
        var stack: [XMLElementTree] = []

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String]) {
            let element = XMLElementTree(name: name, attributes: attributes)
            if let parent = stack.last { parent.children.append(element) } else { root = element }
            stack.append(element)
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            stack.removeLast()
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            stack.last?.text += string
        }
    }
}
