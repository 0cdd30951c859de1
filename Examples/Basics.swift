import Glibc
import ShmIPC

/// Processes beyond the tutorials: a target with default arguments, current_process().name,
/// terminate/is_alive/exitcode.
enum Basics {
    static let printNumbers = Entry("print-numbers") { (count: Int) in
        for i in 0..<count { say("\(Multiprocessing.currentProcess.name): \(i)") }
    }

    static let sleeper = Entry("sleeper") { (seconds: Int) in
        say("sleeping \(seconds) s")
        Glibc.sleep(UInt32(seconds))
    }

    /// Python: `def greet(name, greeting="Hello", times=1)`. Default argument values are the
    /// defaults of the argument struct's properties (its memberwise initializer takes them).
    struct Greeting: Codable {
        var name: String
        var greeting = "Hello"
        var times = 1
    }

    static let greetWithDefaults = Entry("greet-with-defaults") { (g: Greeting) in
        for _ in 0..<g.times { say("\(g.greeting), \(g.name)!") }
    }

    static let entries: [any EntryPoint] = [greetWithDefaults, printNumbers, sleeper]

    static let examples: [Example] = [
        Example(name: "defaults", summary: "a target with default arguments: greet('Alice'), greet('Bob', 'Hi', 2)") {
            for greeting in [Greeting(name: "Alice"), Greeting(name: "Bob", greeting: "Hi", times: 2)] {
                let p = try Process(greetWithDefaults, argument: greeting)
                try p.start()
                p.join()
            }
        },
        Example(name: "names", summary: "current_process().name: MainProcess, Process-1, and a name given") {
            say("main: \(Multiprocessing.currentProcess.name)")
            let first = try Process(printNumbers, argument: 1)
            let second = try Process(printNumbers, argument: 1, name: "printer")
            for p in [first, second] {
                try p.start()
                p.join()
            }
        },
        Example(name: "terminate", summary: "is_alive(), terminate(), exitcode") {
            let p = try Process(sleeper, argument: 30)
            say("before start: alive \(p.isAlive)")
            try p.start()
            say("started: alive \(p.isAlive)")
            Glibc.usleep(100_000)
            p.terminate()
            p.join()
            say("terminated: alive \(p.isAlive), exit code \(p.exitCode!)")
        },
    ]
}
