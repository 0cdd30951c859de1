import ArgumentParser
import Foundation
import ShmIPC

/// `shmipc`: what ShmIPC objects exist in /dev/shm, who made them, whether their creator
/// lives, who maps them, how full they are; and the removal of what is stale.
@main
struct ShmIPCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shmipc",
        abstract: "Inspect and clean up ShmIPC's shared objects in /dev/shm.",
        subcommands: [List.self, Inspect.self, Remove.self, Clean.self, RemoteHandOver.Serve.self, RemoteHandOver.Remote.self,
                      RemoteHandOver.Worker.self])
}

/// `shmipc serve`, `shmipc remote …` and `shmipc worker` hand over to `shmipc-remote` beside this executable
/// (as git runs git-NAME), so that `shmipc` itself builds nothing of gRPC.
enum RemoteHandOver {
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve this host's objects to other hosts (runs shmipc-remote serve; --help there).")
        @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
        func run() throws { try handOver(["serve"] + arguments) }
    }

    struct Remote: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask a remote server: remote list (runs shmipc-remote remote; --help there).")
        @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
        func run() throws { try handOver(["remote"] + arguments) }
    }

    struct Worker: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Be a worker host of a RemotePool on another host (runs shmipc-remote worker; --help there).")
        @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
        func run() throws { try handOver(["worker"] + arguments) }
    }

    static func handOver(_ arguments: [String]) throws {
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let path = me.deletingLastPathComponent().appendingPathComponent("shmipc-remote").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            complain("shmipc: \(path) is not built: swift build --product shmipc-remote")
            throw ExitCode(2)
        }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        complain("shmipc: cannot run \(path): errno \(errno)")
        throw ExitCode(2)
    }
}

/// A report as JSON (sorted keys, so that scripts and diffs are stable).
func jsonText<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// The report on `name`, or exit status 1 (with a message) if there is no such object.
func existing(_ name: String) throws -> SegmentReport {
    guard let report = SegmentInspector.report(name) else {
        complain("shmipc: no object named '\(name)' in /dev/shm")
        throw ExitCode(1)
    }
    return report
}

/// Prints to standard error.
func complain(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every ShmIPC object in /dev/shm.",
        discussion: "A segment that does not validate is listed with the reason; listing still succeeds.")

    @Flag(help: "Print JSON (an array of reports).")
    var json = false

    @Option(help: "Only the objects whose name starts with this.")
    var prefix = ""

    func run() throws {
        let reports = SegmentInspector.reportAll().filter { $0.name.hasPrefix(prefix) }
        if json {
            print(try jsonText(reports))
            return
        }
        let header = ["NAME", "KIND", "TYPE", "CAPACITY", "DEPTH", "BYTES", "CREATOR", "MAPPED BY", "HOLDER", "STATUS"]
        var rows = [header]
        for report in reports {
            rows.append([
                report.name, report.kind ?? "?", report.elementType.map { $0.isEmpty ? "-" : $0 } ?? "?",
                report.capacity.map(String.init) ?? "-",
                report.depth.map { "\($0)\(report.depthUnit == "bytes" ? " B" : "")" } ?? "-",
                String(report.fileSize),
                report.creatorPID.map { "\($0) (\(report.creatorAlive == true ? "alive" : "dead"))" } ?? "-",
                report.mappedBy.isEmpty ? "-" : report.mappedBy.map(String.init).joined(separator: ","),
                report.holder.map { "\($0)\(report.holderAlive == false ? " (dead)" : "")" } ?? "-",
                report.valid ? (report.isStale ? "stale" : "ok") : "invalid: \(report.problem ?? "?")",
            ])
        }
        print(Table(rows).text)
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show one object's validated header and live counters.",
        discussion: "Exits with status 1 if there is no such object or it does not validate.")

    @Argument(help: "The object's name (without the shmipc. prefix).")
    var name: String

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "Refresh once a second, with the counters' rates per second (Ctrl-C ends).")
    var watch = false

    func run() throws {
        var report = try existing(name)
        if !watch {
            print(json ? try jsonText(report) : describe(report, rates: [:]))
            if !report.valid { throw ExitCode(1) }
            return
        }
        while true {
            Thread.sleep(forTimeInterval: 1)
            guard let next = SegmentInspector.report(name) else {
                complain("shmipc: '\(name)' is gone")
                throw ExitCode(1)
            }
            var rates: [String: Int64] = [:]
            for (key, value) in next.counters { rates[key] = Int64(bitPattern: value &- (report.counters[key] ?? value)) }
            print(json ? try jsonText(next) : describe(next, rates: rates) + "\n")
            fflush(nil)  // a pipe's reader sees each refresh as it comes
            report = next
        }
    }

    func describe(_ report: SegmentReport, rates: [String: Int64]) -> String {
        var lines = [
            "name          \(report.name)",
            "file          /dev/shm/shmipc.\(report.name), \(report.fileSize) bytes",
            "status        \(report.valid ? "valid" : "invalid: \(report.problem ?? "?")")",
        ]
        if let kind = report.kind { lines.append("kind          \(kind) (layout version \(report.layoutVersion ?? 0))") }
        if let type = report.elementType {
            lines.append("element       \(type.isEmpty ? "(no name recorded)" : type), \(report.elementSize ?? 0) bytes, hash \(report.elementTypeHash ?? "?")")
        }
        if let capacity = report.capacity { lines.append("capacity      \(capacity)") }
        if let pid = report.creatorPID { lines.append("creator       \(pid) (\(report.creatorAlive == true ? "alive" : "dead"))") }
        lines.append("mapped by     \(report.mappedBy.isEmpty ? "nobody" : report.mappedBy.map(String.init).joined(separator: ", "))")
        if let depth = report.depth { lines.append("depth         \(depth) \(report.depthUnit ?? "")") }
        if let holder = report.holder { lines.append("held by       thread \(holder)\(report.holderAlive == false ? " (dead)" : "")") }
        for key in report.counters.keys.sorted() {
            let rate = rates[key].map { $0 == 0 ? "" : "   \($0 > 0 ? "+" : "")\($0)/s" } ?? ""
            lines.append("\(key.padding(toLength: max(14, key.count + 2), withPad: " ", startingAt: 0))\(report.counters[key]!)\(rate)")
        }
        return lines.joined(separator: "\n")
    }
}

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove an object's name from /dev/shm.",
        discussion: "Refused while another process maps it, unless --force. Processes that map it keep using it.")

    @Argument(help: "The object's name (without the shmipc. prefix).")
    var name: String

    @Flag(help: "Remove it even if processes map it.")
    var force = false

    func run() throws {
        let report = try existing(name)
        if !report.mappedBy.isEmpty && !force {
            complain("shmipc: '\(name)' is mapped by \(report.mappedBy.map(String.init).joined(separator: ", ")); not removed (--force to remove anyway)")
            throw ExitCode(1)
        }
        if let error = SegmentInspector.remove(name) {
            complain("shmipc: cannot remove '\(name)': \(error)")
            throw ExitCode(1)
        }
        print("removed \(name)")
    }
}

struct Clean: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove the stale objects: those whose creator is dead and which no process maps.",
        discussion: "An object whose creator is unknown (not initialized) or alive, or that a process maps, is kept.")

    @Flag(help: "Show what would be removed, remove nothing.")
    var dryRun = false

    @Flag(help: "Print JSON (the names removed, or that would be).")
    var json = false

    @Option(help: "Only the objects whose name starts with this.")
    var prefix = ""

    func run() throws {
        let stale = SegmentInspector.reportAll().filter { $0.name.hasPrefix(prefix) && $0.isStale }
        var removed: [String] = []
        for report in stale {
            if dryRun {
                removed.append(report.name)
            } else if let error = SegmentInspector.remove(report.name) {
                complain("shmipc: cannot remove '\(report.name)': \(error)")
            } else {
                removed.append(report.name)
            }
        }
        if json {
            print(try jsonText(CleanReport(removed: removed, dryRun: dryRun)))
        } else {
            for name in removed { print(dryRun ? "would remove \(name)" : "removed \(name)") }
            if removed.isEmpty { print("nothing stale") }
        }
    }
}

/// Left-aligned columns.
struct Table {
    let rows: [[String]]
    init(_ rows: [[String]]) { self.rows = rows }

    var text: String {
        let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column] + 2, withPad: " ", startingAt: 0)
            }.joined()
        }.joined(separator: "\n")
    }
}

/// What `clean --json` prints.
struct CleanReport: Codable {
    var removed: [String]
    var dryRun: Bool
}
