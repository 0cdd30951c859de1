import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import SystemPackage
import Testing

extension ShmIPCTests {
    /// `Process` through the helper executable, which registers `TestEntries`. Children are
    /// daemons where they could outlive a failing test; every wait has a timeout.
    @Suite struct ProcessTests {
        /// A process running `entry` in the helper executable.
        static func sut<A, O>(
            _ entry: Entry<A, O>, _ argument: A, name: String? = nil, sharing: [FileDescriptor] = [], method: StartMethod = .spawn
        ) throws -> ShmIPC.Process {
            try ShmIPC.Process(
                entry, argument: argument, name: name, daemon: true, sharing: sharing, startMethod: method, executable: Helper.path)
        }

        /// The start methods a multi-threaded process may use.
        static let methods: [StartMethod] = [.spawn, .forkserver]

        /// Starts `sut`, waits for it under a watchdog, returns its exit code.
        static func run(_ sut: ShmIPC.Process, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int32? {
            try sut.start()
            if !sut.join(timeout: .seconds(60)) {
                Issue.record("watchdog: child \(sut.pid!) still running; killed", sourceLocation: sourceLocation)
                sut.kill()
                sut.join(timeout: .seconds(10))
            }
            return sut.exitCode
        }

        @Test(arguments: methods) func exitCodesFollowPythonsConvention(method: StartMethod) throws {
            #expect(try Self.run(Self.sut(TestEntries.returns, 0, method: method)) == 0)
            #expect(try Self.run(Self.sut(TestEntries.throwing, "on purpose", method: method)) == 1)
            let trapped = try Self.run(Self.sut(TestEntries.traps, 0, method: method))
            #expect(trapped == -SIGILL || trapped == -SIGTRAP, "a trap ended the child with \(String(describing: trapped))")

            for (signal, stop) in [(SIGTERM, ShmIPC.Process.terminate), (SIGKILL, ShmIPC.Process.kill)] {
                let sut = try Self.sut(TestEntries.sleeps, 60_000, method: method)
                try sut.start()
                #expect(sut.isAlive)
                stop(sut)()
                #expect(sut.join(timeout: .seconds(30)))
                #expect(sut.exitCode == -signal)
                #expect(!sut.isAlive)
            }
        }

        /// Python's default names: `Process-N` here, `SpawnPoolWorker-N` (by start method) for
        /// pool workers, and `Process-N:1` for the first child of a process numbered N.
        @Test func processesAndPoolWorkersAreNamedAsInPython() throws {
            let sut = try Self.sut(TestEntries.returns, 0)
            #expect(sut.name.wholeMatch(of: /Process-[0-9]+/) != nil, "\(sut.name)")
            let next = try Self.sut(TestEntries.returns, 0)
            #expect(Int(next.name.dropFirst(8))! > Int(sut.name.dropFirst(8))!)
            #expect(Multiprocessing.currentProcess.name == "MainProcess")
            for method in Self.methods {
                let pool = try Pool(processes: 1, startMethod: method, executable: Helper.path)
                defer { pool.terminate() }
                let names = try pool.apply(TestEntries.names, 0, timeout: .seconds(60))
                let prefix = method == .spawn ? "SpawnPoolWorker" : "ForkServerPoolWorker"
                let match = try #require(names[0].wholeMatch(of: /([A-Za-z]+)-([0-9]+)/), "\(names)")
                #expect(match.1 == prefix, "\(names)")
                #expect(names[1] == "Process-\(match.2):1", "a child's child is numbered below it: \(names)")
            }
        }

        /// A name and daemon flag set after creation, before `start()`, are the child's.
        @Test(arguments: methods) func nameAndDaemonAreSettableBeforeStart(method: StartMethod) throws {
            let sut = try ShmIPC.Process(
                TestEntries.identity, argument: .init(name: "renamed", parentPID: getpid(), parentIsOSParent: method == .spawn),
                startMethod: method, executable: Helper.path)
            #expect(!sut.daemon)
            sut.name = "renamed"
            sut.daemon = true
            #expect(try Self.run(sut) == 0)
            #expect(sut.name == "renamed" && sut.daemon)
        }

        /// A context's start method is its processes' and its pools', whatever the program's.
        @Test func aContextStartsItsProcessesAndPoolsWithItsMethod() throws {
            let context = Multiprocessing.context(.forkserver)
            #expect(context.startMethod == .forkserver)
            let sut = try context.process(TestEntries.returns, argument: 0, daemon: true, executable: Helper.path)
            #expect(sut.startMethod == .forkserver)
            #expect(try Self.run(sut) == 0)
            let pool = try context.pool(processes: 1, executable: Helper.path)
            defer { pool.terminate() }
            let names = try pool.apply(TestEntries.names, 0, timeout: .seconds(60))
            #expect(names[0].hasPrefix("ForkServerPoolWorker-"), "\(names)")
            #expect(Multiprocessing.context().startMethod == Multiprocessing.startMethod)
        }

        /// The program-wide start method (in the helper: setting it here would change every
        /// other test's processes).
        @Test func theProgramsStartMethodIsSetOnceAndUsedByDefault() throws {
            let (status, output) = try Helper.run("start-method")
            #expect(status == .exited(0), "\(output)")
            let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("start-method ") }, "\(output)")
            let expected = /start-method spawn forkserver 0 ForkServerPoolWorker-[0-9]+ \[the start method was already set \(to forkserver\)\] fork/
            #expect(line.wholeMatch(of: expected) != nil, "\(line)")
        }

        /// `Multiprocessing.fork()` returns twice in the single-threaded helper: the child sees
        /// its own pid, its parent's, and its own copy of the data; the parent joins it and reads
        /// its exit status. In the multi-threaded test runner it is refused.
        @Test func forkReturnsTwiceInASingleThreadedProcessAndIsRefusedHere() throws {
            let (status, output) = try Helper.run("fork-twice")
            #expect(status == .exited(0), "\(output)")
            let lines = output.split(separator: "\n")
            let child = try #require(lines.first { $0.hasPrefix("child ") }?.wholeMatch(
                of: /child pid ([0-9]+) ([0-9]+) ppid ([0-9]+) ([0-9]+) name (Process-1) parent (MainProcess) num 2/), "\(output)")
            let parent = try #require(lines.first { $0.hasPrefix("parent ") }?.wholeMatch(
                of: /parent pid ([0-9]+) child ([0-9]+) exit 3 name Process-1 num 1 active 0/), "\(output)")
            #expect(child.1 == child.2, "getpid() and currentProcess.pid agree")
            #expect(child.3 == child.4 && child.3 == parent.1, "the child's parent is the forking process")
            #expect(child.1 == parent.2, "the parent's Process is the child")
            do {
                _ = try Multiprocessing.fork()
                Issue.record("the multi-threaded test runner forked")
            } catch {
                guard case .forkUnsafe(let threads) = error, threads > 1 else {
                    Issue.record("expected forkUnsafe, got \(error)")
                    return
                }
            }
        }

        /// A `Runnable` type is a Process "subclass": its properties travel as the arguments,
        /// its `run(context:)` runs in the child under the name given, and its exit codes,
        /// a thrown error and a kill are a Process's.
        @Test(arguments: methods) func runnableTypesRunAsProcesses(method: StartMethod) throws {
            let shared = try SharedArray<Int>(count: 4, repeating: 0)
            let sut = try ShmIPC.Process(
                TestEntries.Worker(slot: 1, value: 42), name: "worker-one", daemon: true,
                sharing: [shared.inheritableDescriptor!], startMethod: method, executable: Helper.path)
            #expect(sut.name == "worker-one" && sut.startMethod == method)
            #expect(try Self.run(sut) == 0)
            #expect(shared[1] == 42 && shared[3] == "worker-one".utf8.count)

            let failing = try ShmIPC.Process(
                TestEntries.Worker(slot: 2, value: 7, fails: true), daemon: true, sharing: [shared.inheritableDescriptor!],
                startMethod: method, executable: Helper.path)
            #expect(try Self.run(failing) == 1)
            #expect(shared[2] == 0)

            let sleeper = try ShmIPC.Process(
                TestEntries.Worker(slot: 0, value: 1, sleepMilliseconds: 60_000), daemon: true,
                sharing: [shared.inheritableDescriptor!], startMethod: method, executable: Helper.path)
            try sleeper.start()
            #expect(sleeper.isAlive && sleeper.pid != nil)
            sleeper.kill()
            #expect(sleeper.join(timeout: .seconds(30)))
            #expect(sleeper.exitCode == -SIGKILL && shared[0] == 0)
            #expect(TestEntries.Worker.entryName == "ShmIPCTestSupport.TestEntries.Worker")
        }

        /// Targets as Python passes arguments: none, or several (`args=(a, b)`).
        @Test(arguments: methods) func targetsTakeNoArgumentOrSeveral(method: StartMethod) throws {
            let none = try ShmIPC.Process(TestEntries.noArgument, daemon: true, startMethod: method, executable: Helper.path)
            #expect(try Self.run(none) == 0)
            let two = try ShmIPC.Process(
                TestEntries.twoArguments, arguments: (7, "x7"), daemon: true, startMethod: method, executable: Helper.path)
            #expect(try Self.run(two) == 0)
            let wrong = try ShmIPC.Process(
                TestEntries.twoArguments, arguments: (7, "y"), daemon: true, startMethod: method, executable: Helper.path)
            #expect(try Self.run(wrong) == 1)
            let pool = try Pool(processes: 1, startMethod: method, executable: Helper.path)
            defer { pool.terminate() }
            #expect(try pool.starmap(TestEntries.twoArguments, [(1, "x1"), (2, "x2")], timeout: .seconds(60)) == [2, 4])
        }

        /// Any signal, by its type: the exit code is its negative number, as Python's.
        @Test(arguments: methods) func aTypedSignalReachesTheChild(method: StartMethod) throws {
            for signal in [Signal.interrupt, .user1, Signal(rawValue: SIGUSR2)] {
                let sut = try Self.sut(TestEntries.sleeps, 60_000, method: method)
                sut.signal(signal)  // not started: nothing to signal, nothing happens
                try sut.start()
                sut.signal(signal)
                #expect(sut.join(timeout: .seconds(30)))
                #expect(sut.exitCode == -signal.rawValue, "\(signal)")
                sut.signal(.kill)  // ended: the pidfd no longer reaches anybody
            }
        }

        @Test(arguments: methods) func joinTimesOutWhileTheChildRunsAndReturnsOnceItEnds(method: StartMethod) throws {
            let sut = try Self.sut(TestEntries.sleeps, 60_000, method: method)
            #expect(!sut.join(timeout: .zero), "joining a process not started")
            #expect(sut.pid == nil && sut.exitCode == nil && !sut.isAlive)
            try sut.start()
            #expect(!sut.join(timeout: .milliseconds(50)))
            #expect(sut.isAlive && sut.exitCode == nil && sut.pid != nil)
            sut.kill()
            #expect(sut.join(timeout: .seconds(30)))
            #expect(sut.exitCode == -SIGKILL)
            #expect(sut.join(timeout: .zero), "joining an ended process returns at once")
        }

        @Test(arguments: methods) func aChildKnowsItsNameAndItsParent(method: StartMethod) throws {
            let me = getpid()
            // A fork server's child has the server as its OS parent; ShmIPC's parent is still us.
            let direct = method != .forkserver
            #expect(try Self.run(Self.sut(
                TestEntries.identity, .init(name: "worker-7", parentPID: me, parentIsOSParent: direct), name: "worker-7", method: method)) == 0)
            // The check can fail: a wrong expectation makes the child throw.
            #expect(try Self.run(Self.sut(
                TestEntries.identity, .init(name: "worker-8", parentPID: me, parentIsOSParent: direct), name: "worker-7", method: method)) == 1)
            let unnamed = try Self.sut(TestEntries.returns, 0)
            #expect(unnamed.name.hasPrefix("Process-"))
        }

        @Test(arguments: methods) func sharedObjectsTravelAsInheritedDescriptors(method: StartMethod) throws {
            let queue = try Queue<Int>(capacity: 64)
            let sut = try Self.sut(TestEntries.produce, 10_000, sharing: [queue.inheritableDescriptor!], method: method)
            try sut.start()
            for expected in 0..<10_000 {
                let value = try queue.get(timeout: .seconds(30))
                guard value == expected else {
                    Issue.record("got \(value), expected \(expected)")
                    break
                }
            }
            #expect(sut.join(timeout: .seconds(30)))
            #expect(sut.exitCode == 0)
        }

        @Test func startingTwiceOrAnUnregisteredEntryIsRefused() throws {
            let sut = try Self.sut(TestEntries.returns, 0)
            try sut.start()
            #expect(throws: ProcessError.alreadyStarted) { try sut.start() }
            #expect(sut.join(timeout: .seconds(30)))

            // From this executable (not bootstrapped with it), an unknown entry is refused
            // before anything is spawned: a child would otherwise run main from the top.
            Multiprocessing.bootstrap([])
            let unknown = Entry<Int, NoOutput>("t.nowhere") { _ in }
            #expect(throws: ProcessError.entryNotRegistered("t.nowhere")) {
                try ShmIPC.Process(unknown, argument: 0, daemon: true).start()
            }
        }

        @Test func forkIsRefusedInAMultiThreadedProcess() throws {
            let sut = try ShmIPC.Process(TestEntries.returns, argument: 0, daemon: true, startMethod: .fork)
            #expect(Sys.threadCount > 1, "the test runner has worker threads")
            #expect(throws: ProcessError.forkUnsafe(threads: Sys.threadCount)) { try sut.start() }
            #expect(sut.pid == nil)
        }

        /// The helper is single-threaded: it forks a child that fills a shared queue, one that
        /// throws and one that traps.
        @Test func forkStartsChildrenInASingleThreadedProcess() throws {
            let (status, output) = try Helper.run("fork")
            #expect(status == .exited(0), "\(output)")
            let trap = output.contains("fork 4950 0 1 -\(SIGILL)") || output.contains("fork 4950 0 1 -\(SIGTRAP)")
            #expect(trap, "\(output)")
        }

        /// A helper starts a daemon child and is SIGKILLed: the daemon must end too (and, with
        /// the fork server, the server).
        @Test(arguments: methods) func daemonChildrenDieWithAKilledParent(method: StartMethod) throws {
            let parent = try Helper.start("start-daemon", [method == .forkserver ? "forkserver" : "spawn"])
            guard Helper.waitForOutput(parent, containing: "daemon ") else {
                Issue.record("the helper did not start its daemon: \(parent.output)")
                return
            }
            let line = parent.output.split(separator: "\n").first { $0.hasPrefix("daemon ") }!
            let daemon = Int32(line.dropFirst("daemon ".count))!
            #expect(Sys.threadIsAlive(daemon))
            #expect(parent.kill() == .signaled(SIGKILL))
            let deadline = Deadline.after(.seconds(30))
            while Sys.threadIsAlive(daemon) && !deadline.hasPassed { Sys.sleep(.milliseconds(5)) }
            #expect(!Sys.threadIsAlive(daemon), "daemon \(daemon) outlived its parent")
            if Sys.threadIsAlive(daemon) { _ = Sys.sendSignal(SIGKILL, to: daemon) }
        }

        /// A `Process` dropped while its child runs leaves no zombie: the child is reaped once
        /// it ends (here by `activeChildren()`).
        @Test func aDroppedProcessIsReapedOnceItEnds() throws {
            var pid = ProcessID(rawValue: 0)
            do {
                let sut = try ShmIPC.Process(TestEntries.sleeps, argument: 100, executable: Helper.path)
                try sut.start()
                pid = sut.pid!
            }
            #expect(Multiprocessing.activeChildren().contains(pid) || !Sys.threadIsAlive(pid.rawValue))
            let deadline = Deadline.after(.seconds(30))
            while Multiprocessing.activeChildren().contains(pid) && !deadline.hasPassed { Sys.sleep(.milliseconds(5)) }
            #expect(!Multiprocessing.activeChildren().contains(pid))
            #expect(!ZombieChildren.list().contains { $0.pid == pid.rawValue })
        }

        /// Someone else reaps the child (a waitpid elsewhere in the program): join must not spin
        /// or hang; the status is lost.
        @Test func aChildReapedBehindOurBackCountsAsEndedWithAnUnknownStatus() throws {
            let sut = try Self.sut(TestEntries.returns, 0)
            try sut.start()
            var raw: Int32 = 0
            #expect(waitpid(sut.pid!.rawValue, &raw, 0) == sut.pid!.rawValue)
            #expect(sut.join(timeout: .seconds(30)))
            #expect(sut.exitCode == ShmIPC.Process.unknownExitCode)
            #expect(!sut.isAlive)
        }

        @Test func theCPUCountIsPositive() {
            #expect(Multiprocessing.cpuCount >= 1)
            #expect((1...Multiprocessing.cpuCount).contains(Multiprocessing.availableCPUCount))
            #expect(Multiprocessing.currentProcess.pid == ProcessID(rawValue: getpid()))
            #expect(ProcessID.current == Multiprocessing.currentProcess.pid)
        }
    }
}
