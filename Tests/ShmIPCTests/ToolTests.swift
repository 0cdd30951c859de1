import Foundation
import Glibc
@testable import ShmIPC
import MetricsTestKit
import Testing

extension ShmIPCTests {
    /// The `shmipc` command, run as an executable against live objects that helper processes
    /// created: what it lists and inspects, what it removes and what it keeps, and how it reports
    /// segments it cannot validate. Every listing is filtered to this test's own names.
    @Suite struct ToolTests {
        static var path: String { Helper.path.replacingLastComponent(with: "shmipc") }

        /// Runs `shmipc` with `arguments`: its exit status and output.
        static func shmipc(_ arguments: [String]) throws -> (status: TerminationStatus, output: String) {
            let child = try ChildProcess(executable: path, arguments: arguments)
            return (Helper.finish(child, timeout: .seconds(60)), child.output)
        }

        /// `list --json --prefix`, decoded.
        static func list(_ prefix: String) throws -> [SegmentReport] {
            let (status, output) = try shmipc(["list", "--json", "--prefix", prefix])
            #expect(status == .exited(0), "\(output)")
            return try JSONDecoder().decode([SegmentReport].self, from: Data(output.utf8))
        }

        /// A helper that creates `kind` named `name` with `items`, then exits or holds it.
        static func create(_ kind: String, _ name: SegmentName, items: Int, holds: Bool) throws -> ChildProcess {
            let child = try Helper.start("create-named", [kind, name.rawValue, "\(items)", holds ? "hold" : "exit"])
            try #require(Helper.waitForOutput(child, containing: "created"), "\(child.output)")
            return child
        }

        /// Names for one test: `<base>-<tag>`, all under the suite's leak-checked prefix.
        static func names(_ tags: String...) -> (prefix: String, names: [SegmentName]) {
            let base = TestNames.unique("tool").rawValue + "-"
            return (base, tags.map { try! SegmentName(base + $0) })
        }

        @Test func listAndInspectShowKindTypeCapacityDepthHolderAndCreator() throws {
            let (prefix, names) = Self.names("queue", "lock", "pipe")
            defer { names.forEach(TestNames.cleanUp) }
            let queueMaker = try Self.create("queue", names[0], items: 3, holds: true)
            let lockMaker = try Self.create("lock", names[1], items: 1, holds: true)
            let pipeMaker = try Self.create("pipe", names[2], items: 2, holds: true)
            defer { for child in [queueMaker, lockMaker, pipeMaker] { _ = child.kill() } }

            let reports = Dictionary(uniqueKeysWithValues: try Self.list(prefix).map { ($0.name, $0) })
            let queue = try #require(reports[names[0].rawValue])
            #expect(queue.valid && queue.kind == "queue" && queue.elementType == "Swift.UInt64", "\(queue)")
            #expect(queue.capacity == 16 && queue.depth == 3 && queue.depthUnit == "items", "\(queue)")
            #expect(queue.creatorPID == queueMaker.pid && queue.creatorAlive == true, "\(queue)")
            #expect(queue.mappedBy.contains(queueMaker.pid) && !queue.isStale, "\(queue)")
            let lock = try #require(reports[names[1].rawValue])
            #expect(lock.kind == "lock" && lock.holder == lockMaker.pid && lock.holderAlive == true, "\(lock)")
            let pipe = try #require(reports[names[2].rawValue])
            #expect(pipe.kind == "pipe" && pipe.elementType == "ShmIPC.Pipe.duplex", "\(pipe)")
            #expect(pipe.depth == 2 * RingGeometry.recordSize(10) && pipe.depthUnit == "bytes", "\(pipe)")
            #expect(pipe.counters["messagesSent"] == 2 && pipe.counters["messagesReceived"] == 0, "\(pipe.counters)")

            let (status, output) = try Self.shmipc(["inspect", names[0].rawValue, "--json"])
            #expect(status == .exited(0), "\(output)")
            let inspected = try JSONDecoder().decode(SegmentReport.self, from: Data(output.utf8))
            #expect(inspected.counters["puts"] == 3 && inspected.counters["gets"] == 0, "\(inspected.counters)")
            let (textStatus, text) = try Self.shmipc(["inspect", names[1].rawValue])
            #expect(textStatus == .exited(0) && text.contains("held by       thread \(lockMaker.pid)"), "\(text)")
            let (tableStatus, table) = try Self.shmipc(["list", "--prefix", prefix])
            #expect(tableStatus == .exited(0) && table.contains(names[0].rawValue) && table.contains("Swift.UInt64"), "\(table)")
        }

        /// A dead creator's unmapped object is removed by `clean` (after a dry run that removes
        /// nothing); a live creator's is kept, and `remove` refuses it unless forced.
        @Test func cleanRemovesOnlyWhatADeadCreatorLeftAndRemoveRespectsMappings() throws {
            let (prefix, names) = Self.names("dead", "live")
            defer { names.forEach(TestNames.cleanUp) }
            let dead = try Self.create("queue", names[0], items: 1, holds: false)
            #expect(Helper.finish(dead) == .exited(0))
            let live = try Self.create("queue", names[1], items: 0, holds: true)
            defer { _ = live.kill() }

            let (dryStatus, dry) = try Self.shmipc(["clean", "--dry-run", "--json", "--prefix", prefix])
            #expect(dryStatus == .exited(0), "\(dry)")
            let planned = try JSONDecoder().decode(CleanPlan.self, from: Data(dry.utf8))
            #expect(planned.removed == [names[0].rawValue] && planned.dryRun, "\(dry)")
            #expect(access(names[0].path, F_OK) == 0, "a dry run removed it")

            let (status, output) = try Self.shmipc(["clean", "--prefix", prefix])
            #expect(status == .exited(0) && output.contains("removed \(names[0].rawValue)"), "\(output)")
            #expect(access(names[0].path, F_OK) != 0)
            #expect(access(names[1].path, F_OK) == 0)

            let (refused, why) = try Self.shmipc(["remove", names[1].rawValue])
            #expect(refused == .exited(1) && why.contains("mapped by \(live.pid)"), "\(why)")
            #expect(access(names[1].path, F_OK) == 0)
            let (forced, _) = try Self.shmipc(["remove", "--force", names[1].rawValue])
            #expect(forced == .exited(0))
            #expect(access(names[1].path, F_OK) != 0)
            let (missing, _) = try Self.shmipc(["remove", names[1].rawValue])
            #expect(missing == .exited(1))
        }

        /// Garbage, a file shorter than a header, and a real header whose size disagrees with
        /// the file: each is listed with its reason (the listing succeeds), and `inspect` of it
        /// fails with that reason.
        @Test func segmentsThatDoNotValidateAreReportedNotTrusted() throws {
            let (prefix, names) = Self.names("garbage", "short", "resized", "source")
            defer { names.forEach(TestNames.cleanUp) }
            let source = try Queue<UInt64>(name: names[3], mode: .createExclusive, capacity: 16)
            var header = [UInt8](repeating: 0, count: SegmentHeader.size)
            let fd = open(names[3].path, O_RDONLY)
            try #require(fd >= 0)
            _ = header.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            close(fd)
            var generator = SystemRandomNumberGenerator()
            let files: [(SegmentName, [UInt8])] = [
                (names[0], (0..<300).map { _ in UInt8.random(in: 1...255, using: &generator) }),
                (names[1], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
                (names[2], header + [UInt8](repeating: 0, count: 512)),
            ]
            for (name, bytes) in files {
                let out = open(name.path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
                try #require(out >= 0)
                _ = bytes.withUnsafeBytes { write(out, $0.baseAddress, $0.count) }
                close(out)
            }
            let reports = Dictionary(uniqueKeysWithValues: try Self.list(prefix).map { ($0.name, $0) })
            let expected = [
                names[0].rawValue: "not a ShmIPC object", names[1].rawValue: "smaller than a header",
                names[2].rawValue: "the file has \(SegmentHeader.size + 512)",
            ]
            for (name, reason) in expected {
                let report = try #require(reports[name])
                #expect(!report.valid && report.problem?.contains(reason) == true, "\(report)")
                let (status, output) = try Self.shmipc(["inspect", name])
                #expect(status == .exited(1) && output.contains(reason), "\(output)")
            }
            #expect(reports[names[3].rawValue]?.valid == true)
            withExtendedLifetime(source) {}
        }
    }

    /// What `shmipc clean --json` prints.
    struct CleanPlan: Decodable {
        var removed: [String]
        var dryRun: Bool
    }
}

extension ShmIPCTests.ToolTests {
    /// The metrics adapter records a queue's depth as a gauge and its puts and gets as
    /// counters that grow by what happened between updates.
    @Test func metricsReportAQueuesDepthAndTotals() throws {
        let (_, names) = Self.names("metrics")
        defer { names.forEach(TestNames.cleanUp) }
        let queue = try Queue<UInt64>(name: names[0], mode: .createExclusive, capacity: 16)
        let metrics = TestMetrics()
        let sut = ShmIPCMetrics(objects: [names[0].rawValue], factory: metrics)
        let dimensions = [("object", names[0].rawValue), ("kind", "queue")]
        for value in UInt64(0)..<5 { #expect(try queue.tryPut(value)) }
        sut.update()
        #expect(try metrics.expectGauge("shmipc.depth", dimensions).lastValue == 5)
        #expect(metrics.counterTotal(label: "shmipc.puts", dimensions: dimensions) == 5)
        _ = try queue.tryGet()
        _ = try queue.tryGet()
        sut.update()
        #expect(try metrics.expectGauge("shmipc.depth", dimensions).lastValue == 3)
        #expect(metrics.counterTotal(label: "shmipc.puts", dimensions: dimensions) == 5)
        #expect(metrics.counterTotal(label: "shmipc.gets", dimensions: dimensions) == 2)
        #expect(try metrics.expectGauge("shmipc.valid", dimensions).lastValue == 1)
    }
}
