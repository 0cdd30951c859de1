import Glibc
import ShmIPC

/// Processes: fork and getpid/getppid, data copied at fork, a target with arguments, a
/// Runnable ("subclass"), daemons, terminate/is_alive/exitcode, current_process().name.
enum Basics {
    static let greet = Entry("greet") { (name: String) in say("hello \(name)") }

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

    /// Python: `class Worker(Process): def run(self): print(...)`.
    struct Worker: Runnable {
        var label: String
        func run() throws { say("Worker \(label) running in \(Multiprocessing.currentProcess.name)") }
    }

    static let entries: [any EntryPoint] = [greet, greetWithDefaults, printNumbers, sleeper, Worker.entry]

    static let examples: [Example] = [
        Example(name: "fork", summary: "os.fork() returns twice; getpid() and getppid()") {
            switch try Multiprocessing.fork() {
            case .child:
                say("child: my pid is \(ProcessID.current), my parent is \(Multiprocessing.parentProcess!.pid)")
                exit(0)
            case .parent(let child):
                child.join()
                say("parent: my pid is \(ProcessID.current), my child was \(child.pid!)")
            }
        },
        Example(name: "fork-copy", summary: "a forked child changes its copy of the data, not the parent's") {
            var num = 1
            switch try Multiprocessing.fork() {
            case .child:
                num += 1
                say("child: num = \(num)")
                exit(0)
            case .parent(let child):
                child.join()
                say("parent: num = \(num)")
            }
        },
        Example(name: "process", summary: "Process(target=f, args=('bob',)); start(); join()") {
            let p = try Process(greet, argument: "bob")
            try p.start()
            p.join()
            say("exit code \(p.exitCode!)")
        },
        Example(name: "defaults", summary: "a target with default arguments: greet('Alice'), greet('Bob', 'Hi', 2)") {
            for greeting in [Greeting(name: "Alice"), Greeting(name: "Bob", greeting: "Hi", times: 2)] {
                let p = try Process(greetWithDefaults, argument: greeting)
                try p.start()
                p.join()
            }
        },
        Example(name: "subclass", summary: "class Worker(Process): def run(self): …") {
            let workers = try (1...2).map { try Process(Worker(label: "w\($0)")) }
            for worker in workers { try worker.start() }
            for worker in workers { worker.join() }
            say("workers ended with \(workers.map { $0.exitCode! })")
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
        Example(name: "daemon", summary: "a daemon child is ended when the parent exits") {
            let p = try Process(sleeper, argument: 30, daemon: true)
            try p.start()
            say("daemon \(p.daemon), alive \(p.isAlive); exiting without join")
        },
    ]
}
