import Glibc
import ShmIPC
import ShmIPCTestSupport

extension Helper {
    static let processScenarios: [String: @Sendable ([String]) -> Void] = [
        // start-daemon <spawn|forkserver>: starts a daemon child that sleeps a minute, reports
        // its pid, hangs.
        "start-daemon": { args in
            let method: StartMethod = args.first == "forkserver" ? .forkserver : .spawn
            let child = attempt { () throws(ProcessError) in
                let child = try Process(TestEntries.sleeps, argument: 60_000, daemon: true, startMethod: method)
                try child.start()
                return child
            }
            say("daemon \(child.pid!)")
            while true { Sys.sleep(.seconds(1)) }
        },
        // fork: in this single-threaded process, forks a child that fills a shared queue, one
        // that throws and one that traps; reports "fork <sum> <code> <code> <code>".
        "fork": { _ in
            let queue = attempt { () throws(SharedObjectError) in try Queue<Int>(capacity: 64) }
            let producer = attempt { () throws(ProcessError) in
                try Process(TestEntries.produce, argument: 100, sharing: [queue.inheritableDescriptor!], startMethod: .fork)
            }
            attempt { () throws(ProcessError) in try producer.start() }
            var sum = 0
            for _ in 0..<100 { sum += attempt { () throws(QueueError) in try queue.get(timeout: .seconds(30)) } }
            guard producer.join(timeout: .seconds(30)) else { fail("the forked producer did not end") }
            var codes = [producer.exitCode!]
            for process in [
                attempt { () throws(ProcessError) in try Process(TestEntries.throwing, argument: "boom", startMethod: .fork) },
                attempt { () throws(ProcessError) in try Process(TestEntries.traps, argument: 0, startMethod: .fork) },
            ] {
                attempt { () throws(ProcessError) in try process.start() }
                guard process.join(timeout: .seconds(30)) else { fail("a forked child did not end") }
                codes.append(process.exitCode!)
            }
            say("fork \(sum) " + codes.map(String.init).joined(separator: " "))
        },
        // pool-fork: in this single-threaded process, a Pool whose workers are forked maps
        // squares, survives a worker killing itself, and reports "pool-fork <sum> <died>".
        "pool-fork": { _ in
            let pool = attempt { () throws(PoolError) in try Pool(processes: 2, startMethod: .fork) }
            let squares = attempt { () throws(PoolError) in try pool.map(TestEntries.square, Array(0..<1_000), timeout: .seconds(60)) }
            let died: Bool
            switch Result(catching: { () throws(PoolError) in try pool.apply(TestEntries.killsItself, 0, timeout: .seconds(60)) }) {
            case .failure(.workerDied(_, let code)) where code == -SIGKILL: died = true
            default: died = false
            }
            let again = attempt { () throws(PoolError) in try pool.map(TestEntries.square, Array(0..<1_000), chunkSize: 10, timeout: .seconds(60)) }
            guard again == squares else { fail("the pool answered differently after a worker died") }
            attempt { () throws(PoolError) in try pool.join(timeout: .seconds(60)) }
            say("pool-fork \(squares.reduce(0, +)) \(died)")
        },
        // fork-twice: Multiprocessing.fork() returns in both processes; the child changes its
        // copy of `num`, reports its pids and names, and exits 3; the parent joins it.
        "fork-twice": { _ in
            var num = 1
            switch attempt({ () throws(ProcessError) in try Multiprocessing.fork() }) {
            case .child:
                num += 1
                let me = Multiprocessing.currentProcess, parent = Multiprocessing.parentProcess
                say("child pid \(getpid()) \(me.pid) ppid \(getppid()) \(parent?.pid.rawValue ?? -1) name \(me.name) parent \(parent?.name ?? "-") num \(num)")
                exit(3)
            case .parent(let child):
                guard child.join(timeout: .seconds(60)) else { fail("the forked child did not end") }
                say("parent pid \(getpid()) child \(child.pid!) exit \(child.exitCode!) name \(child.name) num \(num) active \(Multiprocessing.activeChildren().count)")
            }
        },
        // start-method: the program-wide start method, set once: the default, a Process and a
        // Pool that name none use it, a second setting is refused, `force` replaces it.
        "start-method": { _ in
            let before = Multiprocessing.startMethod
            attempt { () throws(ProcessError) in try Multiprocessing.setStartMethod(.forkserver) }
            let process = attempt { () throws(ProcessError) in try ShmIPC.Process(TestEntries.returns, argument: 0) }
            attempt { () throws(ProcessError) in try process.start() }
            guard process.join(timeout: .seconds(60)) else { fail("the child did not end") }
            let pool = attempt { () throws(PoolError) in try Pool(processes: 1) }
            let workerNames = attempt { () throws(PoolError) in try pool.apply(TestEntries.names, 0, timeout: .seconds(60)) }
            pool.terminate()
            var refused = "no"
            do { try Multiprocessing.setStartMethod(.fork) } catch { refused = "\(error)" }
            attempt { () throws(ProcessError) in try Multiprocessing.setStartMethod(.fork, force: true) }
            say("start-method \(before) \(process.startMethod) \(process.exitCode ?? -1) \(workerNames[0]) [\(refused)] \(Multiprocessing.startMethod)")
        },
    ]
}
