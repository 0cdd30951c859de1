import ArgumentParser
import Glibc
import ShmIPC

/// `swift run shmipc-examples NAME`: every program of the five `multiprocessing` tutorials
/// ShmIPC follows, one by one (`t000-…` to `t004-…`), and a few programs beyond them. `--list`
/// lists them by tutorial. Each prints what its tutorial's program prints, up to pids, times and
/// the interleaving of concurrent prints; a test runs every one and checks its lines.
@main
struct Examples: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shmipc-examples",
        abstract: "The multiprocessing tutorials' programs, in ShmIPC.")

    @Flag(name: .long, help: "List the examples, by tutorial, and exit.")
    var list = false

    @Argument(help: "The example to run (see --list).")
    var name: String?

    /// The examples by tutorial, in the tutorials' order, then the others.
    static let groups: [ExampleGroup] = [
        Tutorial000.group, Tutorial001.group, Tutorial002.group, Tutorial003.group, Tutorial004.group,
        ExampleGroup(
            title: "Beyond the tutorials: more of multiprocessing, and async/await",
            examples: Basics.examples + PoolExamples.examples + SharingExamples.examples + SyncExamples.examples
                + ManagerExamples.examples + ServiceExamples.examples),
    ]

    static var all: [Example] { groups.flatMap(\.examples) }

    static func main() {
        // First: a child these examples start runs its entry here and exits.
        Multiprocessing.bootstrap(
            Tutorial000.entries + Tutorial001.entries + Tutorial002.entries + Tutorial003.entries + Tutorial004.entries
                + Basics.entries + PoolExamples.entries + SharingExamples.entries + SyncExamples.entries
                + ManagerExamples.entries + ServiceExamples.entries)
        Self.main(nil)
    }

    func run() throws {
        if list || name == nil {
            let width = Self.all.map(\.name.count).max()! + 2
            for (index, group) in Self.groups.enumerated() {
                if index > 0 { print() }
                print(group.title)
                for example in group.examples {
                    print("  " + example.name + String(repeating: " ", count: width - example.name.count) + example.summary)
                }
            }
            return
        }
        guard let example = Self.all.first(where: { $0.name == name }) else {
            throw ValidationError("no example named '\(name!)' (see --list)")
        }
        try example.run()
        fflush(nil)
    }
}

/// The examples of one tutorial.
struct ExampleGroup: Sendable {
    let title: String
    let examples: [Example]
}

/// One program.
struct Example: Sendable {
    let name: String
    let summary: String
    let run: @Sendable () throws -> Void
}

/// `print` that reaches the terminal (or the test's pipe) before the process forks or ends.
func say(_ line: String) {
    print(line)
    fflush(nil)
}

/// Python's `print(a, b, …)`: the values' descriptions joined by spaces.
func say(_ first: Any, _ second: Any, _ rest: Any...) {
    say(([first, second] + rest).map { "\($0)" }.joined(separator: " "))
}

/// Python's `time.sleep(seconds)`.
func sleep(seconds: Double) {
    Glibc.usleep(UInt32(seconds * 1_000_000))
}

/// Python's `os.getpid()` and `os.getppid()`: the operating system's numbers.
var osGetpid: Int32 { Glibc.getpid() }
var osGetppid: Int32 { Glibc.getppid() }
