import Glibc
@testable import ShmIPC
import Testing

extension ShmIPCTests {
    /// Every tutorial program in `shmipc-examples` runs and prints what its tutorial shows.
    /// Lines are regular expressions (pids vary); the lines of one process come in order,
    /// while lines of concurrent processes may interleave, so each example lists the lines it
    /// must print and, where the tutorial fixes it, their order.
    @Suite struct ExamplesTests {
        static var path: String { Helper.path.replacingLastComponent(with: "shmipc-examples") }

        /// Runs `name`; its exit status and output lines.
        static func run(_ name: String) throws -> (status: TerminationStatus, lines: [String]) {
            let child = try ChildProcess(executable: path, arguments: [name])
            let status = Helper.finish(child, timeout: .seconds(120))
            return (status, child.output.split(separator: "\n").map(String.init))
        }

        /// What each example prints: the lines, in order if `ordered`.
        static let expected: [String: (ordered: Bool, lines: [String])] = [
            "fork": (false, [#"child: my pid is (\d+), my parent is (\d+)"#, #"parent: my pid is \d+, my child was \d+"#]),
            "fork-copy": (true, ["child: num = 2", "parent: num = 1"]),
            "process": (true, ["hello bob", "exit code 0"]),
            "defaults": (true, ["Hello, Alice!", "Hi, Bob!", "Hi, Bob!"]),
            "subclass": (false, ["Worker w1 running in Process-1", "Worker w2 running in Process-2", #"workers ended with \[0, 0\]"#]),
            "names": (true, ["main: MainProcess", "Process-1: 0", "printer: 0"]),
            "terminate": (false, ["before start: alive false", "started: alive true", "terminated: alive false, exit code -15"]),
            "daemon": (true, ["daemon true, alive true; exiting without join"]),
            "pool-map": (true, [#"\[1, 4, 9\]"#]),
            "pool-apply-async": (true, [#"\[0, 1, 4, 9, 16\]"#]),
            "pool-imap": (true, ["0", "1", "4", "9", "16"]),
            "pool-map-async": (true, ["callback: 10 results", #"\[0, 1, 4, 9, 16, 25, 36, 49, 64, 81\]"#, "ready true, successful true"]),
            "pool-starmap": (true, [#"\[2, 12, 30\]"#]),
            "square-list": (true, [#"Result\(in process p1\): \[1, 4, 9, 16\]"#, #"Result\(in main program\): \[\]"#]),
            "square-list-shared": (true, [
                #"Result\(in process p1\): \[1, 4, 9, 16\]"#, #"Sum of squares\(in process p1\): 30"#,
                #"Result\(in main program\): \[1, 4, 9, 16\]"#, #"Sum of squares\(in main program\): 30"#,
            ]),
            "service": (true, ["served 100 orders, total 5050", "shut down gracefully"]),
            "merge": (true, ["merged 100 numbers, total 52450"]),
            "queue": (false, ["produced a", "produced b", "produced c", "consumed a", "consumed b", "consumed c", "done"]),
            "pipe": (true, ["received hello", "received world"]),
            "account": (true, ["Final balance: 1000"]),
            "lock": (false, (0..<10).map { "hello world \($0)" }),
            "event": (false, ["setting the event", "waiting for the event", "the event is set"]),
            "semaphore": (false, (1...4).map { "Process-\($0) working" } + ["at most 2 at a time"]),
            "condition": (false, ["producer: notified", "consumer: the item is ready"]),
            "barrier": (false, (1...3).map { "Process-\($0) waiting" } + (1...3).map { "Process-\($0) passed" }),
            "manager-dict-list": (true, [#"\{0\.25: None, 1: 1, 2: 2\}"#, #"\[9, 8, 7, 6, 5, 4, 3, 2, 1, 0\]"#]),
            "manager-namespace": (true, [#"x = 2, y = \["from the parent", "from the child"\]"#]),
            "manager-queue": (true, (0..<10).map { "got \($0)" } + ["done"]),
        ]

        @Test func theListNamesEveryExample() throws {
            let (status, lines) = try Self.run("--list")
            #expect(status == .exited(0))
            let names = lines.compactMap { $0.split(separator: " ").first.map(String.init) }
            #expect(Set(names) == Set(Self.expected.keys), "\(lines)")
        }

        @Test(arguments: expected.keys.sorted()) func theExampleRunsAndPrintsItsLines(_ name: String) throws {
            let (status, lines) = try Self.run(name)
            #expect(status == .exited(0), "\(lines)")
            let (ordered, patterns) = Self.expected[name]!
            var position = 0
            for pattern in patterns {
                let regex = try Regex(pattern)
                let found = lines.indices.first { (ordered ? $0 >= position : true) && lines[$0].wholeMatch(of: regex) != nil }
                #expect(found != nil, "\(name): no line matching \(pattern) (in order: \(ordered)) in \(lines)")
                if let found { position = found + 1 }
            }
        }

        /// Nobody passes the barrier before all three have reached it.
        @Test func theBarrierExampleLetsNobodyPassEarly() throws {
            let (status, lines) = try Self.run("barrier")
            #expect(status == .exited(0))
            let lastWaiting = try #require(lines.lastIndex { $0.hasSuffix(" waiting") })
            let firstPassed = try #require(lines.firstIndex { $0.hasSuffix(" passed") })
            #expect(lastWaiting < firstPassed, "\(lines)")
        }

        @Test func anUnknownExampleIsRefused() throws {
            let (status, lines) = try Self.run("no-such-example")
            #expect(status != .exited(0), "\(lines)")
        }
    }
}

extension String {
    func replacingLastComponent(with name: String) -> String {
        guard let slash = lastIndex(of: "/") else { return name }
        return String(self[...slash]) + name
    }
}
