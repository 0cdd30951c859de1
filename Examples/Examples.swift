import ArgumentParser
import Glibc
import ShmIPC

/// `swift run shmipc-examples NAME`: the programs of the classic `multiprocessing`
/// tutorials, ported. `--list` lists them. Each prints what its tutorial shows, up to pids and
/// the interleaving of concurrent prints; a test runs every one and checks its lines.
@main
struct Examples: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shmipc-examples",
        abstract: "The multiprocessing tutorials' programs, in ShmIPC.")

    @Flag(name: .long, help: "List the examples and exit.")
    var list = false

    @Argument(help: "The example to run (see --list).")
    var name: String?

    /// Every example, in the order of the tutorials.
    static let all: [Example] = Basics.examples + PoolExamples.examples + SharingExamples.examples + SyncExamples.examples
        + ManagerExamples.examples + ServiceExamples.examples

    static func main() {
        // First: a child these examples start runs its entry here and exits.
        Multiprocessing.bootstrap(Basics.entries + PoolExamples.entries + SharingExamples.entries + SyncExamples.entries
            + ManagerExamples.entries + ServiceExamples.entries)
        Self.main(nil)
    }

    func run() throws {
        if list || name == nil {
            for example in Self.all { print(example.name + String(repeating: " ", count: max(1, 20 - example.name.count)) + example.summary) }
            return
        }
        guard let example = Self.all.first(where: { $0.name == name }) else {
            throw ValidationError("no example named '\(name!)' (see --list)")
        }
        try example.run()
        fflush(nil)
    }
}

/// One tutorial program.
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
