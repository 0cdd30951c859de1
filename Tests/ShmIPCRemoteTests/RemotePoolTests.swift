import Foundation
import Logging
import ServiceLifecycle
@testable import ShmIPC
@testable import ShmIPCRemote
import ShmIPCTestSupport
import Synchronization
import SystemPackage
import Testing

/// A ``RemotePool`` with local workers and a worker host in another process (the remote test
/// helper's `pool-worker`). Where the machine allows (root, iproute2), the worker host runs in
/// its own network namespace, joined to this one by a veth pair, so chunks cross a real
/// (virtual) link; elsewhere it dials loopback.
@Suite(.serialized) struct RemotePoolTests {
    static let key = try! AuthKey("pool secret")
    static let watchdog: Duration = .seconds(60)

    /// Where the pool listens and how a worker host is started: in a network namespace of its
    /// own if possible.
    struct Hosts {
        let poolAddress: String
        let namespace: String?
        /// The worker hosts' end of the link (in `namespace`).
        var link: String? = nil

        /// Takes the link down: the worker hosts are cut off, with no reset sent either way.
        func cut() {
            guard let namespace, let link else { return }
            RemoteNamespaceTests.ip(["-n", namespace, "link", "set", link, "down"])
        }

        /// Brings the link up again.
        func restore() {
            guard let namespace, let link else { return }
            RemoteNamespaceTests.ip(["-n", namespace, "link", "set", link, "up"])
        }

        /// A worker host with `processes` workers, dialling `address` with `key`.
        func startWorker(
            _ address: RemoteAddress, processes: Int, name: String, key: String = "pool secret", threads: Bool = false
        ) throws -> RemoteHelper.Running {
            try start(["pool-worker", address.description, key, "\(processes)", name] + (threads ? ["threads"] : []))
        }

        /// The remote test helper with `arguments`, in the namespace if there is one.
        func start(_ arguments: [String]) throws -> RemoteHelper.Running {
            guard let namespace else { return try RemoteHelper.start(arguments) }
            let (read, write) = try Sys.makePipe().get()
            defer { try? read.close() }
            // `ip netns exec` execs the helper: the child's pid is the helper's.
            let child = try ChildProcess(
                executable: RemoteNamespaceTests.ipPath!, arguments: ["netns", "exec", namespace, RemoteHelper.path] + arguments,
                descriptors: [(read, 0)])
            return RemoteHelper.Running(child: child, stdin: write)
        }
    }

    /// Runs `body` with a network namespace holding the worker hosts (this process at
    /// `10.198.N.1`, the namespace at `.2`), or with loopback if namespaces are not available.
    static func withHosts(_ body: (Hosts) async throws -> Void) async throws {
        guard RemoteNamespaceTests.available else { return try await body(Hosts(poolAddress: "127.0.0.1:0", namespace: nil)) }
        let pid = getpid(), subnet = Int(pid % 250) + 1
        let namespace = "shw\(pid)"
        defer {
            RemoteNamespaceTests.ip(["netns", "del", namespace])
            RemoteNamespaceTests.ip(["link", "del", "vwa\(pid)"])
        }
        for step in [
            ["netns", "add", namespace],
            ["link", "add", "vwa\(pid)", "type", "veth", "peer", "name", "vwb\(pid)"],
            ["link", "set", "vwb\(pid)", "netns", namespace],
            ["addr", "add", "10.198.\(subnet).1/24", "dev", "vwa\(pid)"],
            ["-n", namespace, "addr", "add", "10.198.\(subnet).2/24", "dev", "vwb\(pid)"],
            ["link", "set", "vwa\(pid)", "up"], ["-n", namespace, "link", "set", "vwb\(pid)", "up"],
            ["-n", namespace, "link", "set", "lo", "up"],
        ] {
            let (ok, output) = RemoteNamespaceTests.ip(step)
            try #require(ok, "ip \(step.joined(separator: " ")): \(output)")
        }
        try await body(Hosts(poolAddress: "10.198.\(subnet).1:0", namespace: namespace, link: "vwb\(pid)"))
    }

    /// Runs `body` with a pool of `local` local workers (the helper is their program) at
    /// `hosts`' address, terminated after it however it ends.
    static func withPool(
        _ hosts: Hosts, local: Int, workerTimeout: Duration = .seconds(10), _ body: (RemotePool) async throws -> Void
    ) async throws {
        let pool = try await RemotePool.start(
            localProcesses: local, address: try RemoteAddress(hosts.poolAddress), authKey: key, executable: RemoteHelper.path,
            workerTimeout: workerTimeout)
        do { try await body(pool) } catch {
            await pool.terminate()
            throw error
        }
        await pool.terminate()
    }

    /// 100k items split between one local worker and a worker host of two: exact results,
    /// both sides used; then every other call form.
    @Test func aMapSplitsBetweenLocalAndRemoteWorkersWithExactResults() async throws {
        try await Self.withHosts { hosts in
            try await Self.withPool(hosts, local: 1) { pool in
                let worker = try hosts.startWorker(pool.address, processes: 2, name: "far")
                defer { worker.end() }
                try await pool.waitForWorkerHosts(1, timeout: Self.watchdog)
                #expect(pool.workerHosts == ["far"])
                #expect(pool.processes == 3)

                let items = Array(0..<100_000)
                let squares = try await pool.map(TestEntries.square, items, chunkSize: 250, timeout: Self.watchdog)
                #expect(squares == items.map { $0 * $0 })
                #expect(pool.scheduler.localRuns.load(ordering: .relaxed) > 0)
                #expect(pool.scheduler.remoteRuns.load(ordering: .relaxed) > 0)

                // The other forms, each exact.
                #expect(try await pool.apply(TestEntries.square, 12, timeout: Self.watchdog) == 144)
                #expect(try await pool.starmap(TestEntries.power, [(2, 10), (3, 3)], timeout: Self.watchdog) == [1024, 27])
                var ordered: [Int] = []
                for await result in pool.imap(TestEntries.square, 0..<2000, chunkSize: 7, timeout: Self.watchdog) { ordered.append(try result.get()) }
                #expect(ordered == (0..<2000).map { $0 * $0 })
                var unordered: [Int] = []
                for await result in pool.imapUnordered(TestEntries.square, 0..<2000, chunkSize: 7, timeout: Self.watchdog) { unordered.append(try result.get()) }
                #expect(unordered.sorted() == (0..<2000).map { $0 * $0 })
                let mapped = try pool.mapAsync(TestEntries.square, Array(0..<100), chunkSize: 3)
                #expect(try await mapped.get(timeout: Self.watchdog) == (0..<100).map { $0 * $0 })
                // Failures are typed: a throw is taskFailed wherever it ran.
                await #expect(throws: PoolError.taskFailed("TestEntries.Failure: no")) {
                    _ = try await pool.map(TestEntries.throwing, Array(repeating: "no", count: 20), chunkSize: 1, timeout: Self.watchdog)
                }
                try await pool.join(timeout: Self.watchdog)
                await #expect(throws: PoolError.closed) { _ = try await pool.apply(TestEntries.square, 1) }
            }
        }
    }

    /// A worker host whose chunks run on threads of its own process: exact results, and the
    /// same typed failures as a worker host with processes.
    @Test func aWorkerHostOnThreadsRunsChunksWithTheSameResults() async throws {
        try await Self.withHosts { hosts in
            try await Self.withPool(hosts, local: 0) { pool in
                let worker = try hosts.startWorker(pool.address, processes: 2, name: "threaded", threads: true)
                defer { worker.end() }
                try await pool.waitForWorkerHosts(1, timeout: Self.watchdog)
                #expect(pool.processes == 2)
                let items = Array(0..<100_000)
                #expect(try await pool.map(TestEntries.square, items, chunkSize: 1000, timeout: Self.watchdog) == items.map { $0 * $0 })
                #expect(try await pool.starmap(TestEntries.power, [(2, 10), (3, 3)], timeout: Self.watchdog) == [1024, 27])
                await #expect(throws: PoolError.taskFailed("TestEntries.Failure: no")) {
                    _ = try await pool.map(TestEntries.throwing, Array(repeating: "no", count: 20), chunkSize: 1, timeout: Self.watchdog)
                }
                let unknown = Entry("t.not-registered-anywhere") { (x: Int) in x }
                do {
                    _ = try await pool.apply(unknown, 1, timeout: Self.watchdog)
                    Issue.record("an unknown entry ran")
                } catch PoolError.coding(let reason) {
                    #expect(reason.contains("threaded") && reason.contains("t.not-registered-anywhere"), "\(reason)")
                }
                // Its process is the worker host's: every task reports the same pid, not the pool host's.
                let pids = Set(try await pool.map(TestEntries.sleepsThenReportsPID, [1_000, 1_000, 1_000, 1_000], chunkSize: 1, timeout: Self.watchdog))
                #expect(pids == [worker.child.pid])
            }
        }
    }

    /// An entry the worker host lacks is refused there, named, and typed on the pool host.
    @Test func anEntryTheWorkerHostLacksIsATypedError() async throws {
        try await Self.withHosts { hosts in
            try await Self.withPool(hosts, local: 0) { pool in
                let worker = try hosts.startWorker(pool.address, processes: 1, name: "lacking")
                defer { worker.end() }
                try await pool.waitForWorkerHosts(1, timeout: Self.watchdog)
                let unknown = Entry("t.not-registered-anywhere") { (x: Int) in x }
                do {
                    _ = try await pool.apply(unknown, 1, timeout: Self.watchdog)
                    Issue.record("an unknown entry ran")
                } catch PoolError.coding(let reason) {
                    #expect(reason.contains("lacking") && reason.contains("t.not-registered-anywhere"), "\(reason)")
                }
            }
        }
    }

    /// A worker host SIGKILLed at a random instant of a map, 20 times in a row: chunks of an
    /// idempotent entry run again (on the local worker), so the results are exact.
    @Test func aWorkerHostKilledMidMapLosesNothingOfAnIdempotentEntry() async throws {
        try await Self.withHosts { hosts in
            try await Self.withPool(hosts, local: 1) { pool in
                let entry = TestEntries.squareSlowly.idempotent()
                let items = Array(0..<600)
                for round in 0..<20 {
                    let worker = try hosts.startWorker(pool.address, processes: 2, name: "doomed-\(round)")
                    defer { worker.end() }
                    try await pool.waitForWorkerHosts(1, timeout: Self.watchdog)
                        let mapped = try pool.mapAsync(entry, items, chunkSize: 6)
                    try await Task.sleep(for: .milliseconds(Int.random(in: 10...150)))
                    worker.child.send(SIGKILL)
                    #expect(try await mapped.get(timeout: Self.watchdog) == items.map { $0 * $0 })
                    _ = worker.child.wait(deadline: .after(Self.watchdog))
                    try await Self.waitForNoHosts(pool)
                }
                // Most kills land while the host runs chunks (else this test proves little).
                #expect(pool.scheduler.losses.load(ordering: .relaxed) > 0)
            }
        }
    }

    /// The same kills with an entry not declared idempotent: each lost chunk fails the map with
    /// workerLost naming the chunk and the host, never a hang, and the pool goes on.
    @Test func aWorkerHostKilledMidMapFailsANonIdempotentEntryTyped() async throws {
        try await Self.withHosts { hosts in
            try await Self.withPool(hosts, local: 1) { pool in
                let items = Array(0..<600)
                var failed = 0
                for round in 0..<20 {
                    let name = "doomed-\(round)"
                    let worker = try hosts.startWorker(pool.address, processes: 2, name: name)
                    defer { worker.end() }
                    try await pool.waitForWorkerHosts(1, timeout: Self.watchdog)
                    let lossesBefore = pool.scheduler.losses.load(ordering: .relaxed)
                    let mapped = try pool.mapAsync(TestEntries.squareSlowly, items, chunkSize: 6)
                    try await Task.sleep(for: .milliseconds(Int.random(in: 10...150)))
                    worker.child.send(SIGKILL)
                    do {
                        #expect(try await mapped.get(timeout: Self.watchdog) == items.map { $0 * $0 })
                    } catch PoolError.workerLost(let task, let host) {
                        failed += 1
                        #expect(host == name)
                        #expect(task > 0)
                    }
                    _ = worker.child.wait(deadline: .after(Self.watchdog))
                    try await Self.waitForNoHosts(pool)
                    // Any chunk it lost was failed, none run again: a map that lost none is exact.
                    if pool.scheduler.losses.load(ordering: .relaxed) == lossesBefore { #expect(mapped.isSuccessful == true) }
                }
                #expect(failed > 0)
                // The pool goes on, on its local worker.
                #expect(try await pool.map(TestEntries.square, Array(0..<50), timeout: Self.watchdog) == (0..<50).map { $0 * $0 })
            }
        }
    }

    /// The link to a worker host is cut mid-map, twice, with no reset sent either way. First the
    /// host's silence ends it after the worker timeout, and its chunks of an idempotent entry
    /// run again on the local worker: exact results. With the link back, the host dials again;
    /// cut once more mid-map, the pool is terminated at once: terminate returns (the connection
    /// nobody answers for is closed after the shutdown's grace) and the map fails typed.
    @Test func aWorkerHostCutOffMidMapIsEndedByItsSilenceAndTerminateStillReturns() async throws {
        guard RemoteNamespaceTests.available else { return }  // a cut needs a link
        let timeout: Duration = .seconds(4)
        try await Self.withHosts { hosts in
            try await Self.withPool(hosts, local: 1, workerTimeout: timeout) { pool in
                let worker = try hosts.startWorker(pool.address, processes: 2, name: "cut-off")
                defer { worker.end() }
                try await pool.waitForWorkerHosts(1, timeout: Self.watchdog)
                let entry = TestEntries.squareSlowly.idempotent()
                let items = Array(0..<2000)

                let mapped = try pool.mapAsync(entry, items, chunkSize: 6)
                try await Self.waitForRemoteRuns(pool, above: 0)
                hosts.cut()
                let cut = ContinuousClock.now
                #expect(try await mapped.get(timeout: Self.watchdog) == items.map { $0 * $0 })
                let losses = pool.scheduler.losses.load(ordering: .relaxed)
                #expect(losses > 0, "the cut came after the host's last chunk")
                // Its chunks came back only when its silence ended it, not before.
                if losses > 0 { #expect(ContinuousClock.now - cut >= timeout - .milliseconds(300)) }
                #expect(pool.workerHosts.isEmpty)
                // And its connection was closed (gRPC would keep it: nobody answers its GOAWAY).
                try await Self.waitForNoConnections(pool)

                hosts.restore()
                try await pool.waitForWorkerHosts(1, timeout: Self.watchdog)
                let runs = pool.scheduler.remoteRuns.load(ordering: .relaxed)
                let second = try pool.mapAsync(entry, items, chunkSize: 6)
                try await Self.waitForRemoteRuns(pool, above: runs)
                hosts.cut()
                // A watchdog on terminate: a hung one fails the test instead of wedging it.
                final class Ended: Sendable { let flag = Atomic(false) }
                let ended = Ended()
                let terminating = Task {
                    await pool.terminate()
                    ended.flag.store(true, ordering: .releasing)
                }
                let deadline = ContinuousClock.now + Self.watchdog
                while !ended.flag.load(ordering: .acquiring) && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                let returned = ended.flag.load(ordering: .acquiring)
                try #require(returned, "terminate did not return within \(Self.watchdog)")
                await terminating.value
                await #expect(throws: PoolError.terminated) { _ = try await second.get(timeout: Self.watchdog) }
                try await Self.waitForNoConnections(pool)
            }
        }
    }

    /// A RemoteManager whose client is cut off by the network while it waits in a get stops
    /// anyway: by a graceful shutdown (after its grace) and, served again, by cancellation.
    @Test func aRemoteManagerWhoseClientIsCutOffStillStops() async throws {
        guard RemoteNamespaceTests.available else { return }  // a cut needs a link
        try await Self.withHosts { hosts in
            let jobs = try Queue<UInt64>(capacity: 8, waitStrategy: .park)
            for graceful in [true, false] {
                hosts.restore()
                let manager = RemoteManager(address: try RemoteAddress(hosts.poolAddress), authKey: Self.key)
                manager.export("jobs", jobs)
                let group = ServiceGroup(services: [manager], logger: Logger(label: "test"))
                final class Ended: Sendable { let flag = Atomic(false) }
                let ended = Ended()
                let serving = Task {
                    try? await group.run()
                    ended.flag.store(true, ordering: .releasing)
                }
                let address = try await manager.listeningAddress
                let client = try hosts.start(["get-waiting", address.description, "pool secret", "jobs"])
                defer { client.end() }
                _ = try await RemoteHelper.waitForLine(client.child, prefix: "getting", timeout: Self.watchdog)
                let deadline = ContinuousClock.now + Self.watchdog
                while jobs.control.notEmpty.waiters.load(ordering: .relaxed) == 0 {
                    try #require(ContinuousClock.now < deadline, "the remote get never waited: \(client.child.output)")
                    try await Task.sleep(for: .milliseconds(5))
                }
                hosts.cut()
                if graceful { await group.triggerGracefulShutdown() } else { serving.cancel() }
                while !ended.flag.load(ordering: .acquiring) && ContinuousClock.now < deadline + Self.watchdog {
                    try await Task.sleep(for: .milliseconds(20))
                }
                let stopped = ended.flag.load(ordering: .acquiring)
                try #require(stopped, "the manager did not stop (\(graceful ? "graceful shutdown" : "cancelled"))")
            }
        }
    }

    /// Waits (a little) until the pool's server holds no connection.
    static func waitForNoConnections(_ pool: RemotePool) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while pool.connections.count > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(pool.connections.count == 0, "a connection to a worker host that is cut off stays open")
    }

    /// Waits until the pool has sent a worker host more than `count` chunks in all.
    static func waitForRemoteRuns(_ pool: RemotePool, above count: Int) async throws {
        let deadline = ContinuousClock.now + watchdog
        while pool.scheduler.remoteRuns.load(ordering: .relaxed) <= count {
            try #require(ContinuousClock.now < deadline, "no chunk went to the worker host")
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// A worker host with another key never connects (it stops, saying why); the pool sees no
    /// host and its work stays local.
    @Test func aWorkerHostWithAWrongKeyIsRefused() async throws {
        try await Self.withHosts { hosts in
            try await Self.withPool(hosts, local: 1) { pool in
                let worker = try hosts.startWorker(pool.address, processes: 1, name: "impostor", key: "not the key")
                defer { worker.end() }
                let line = try await RemoteHelper.waitForLine(worker.child, prefix: "FAIL", timeout: Self.watchdog)
                #expect(line?.contains("authentication failed") == true, "\(worker.child.output)")
                #expect(pool.workerHosts.isEmpty)
                #expect(try await pool.map(TestEntries.square, [1, 2, 3], timeout: Self.watchdog) == [1, 4, 9])
                #expect(pool.scheduler.remoteRuns.load(ordering: .relaxed) == 0)
            }
        }
    }

    /// terminate fails what runs remotely at once, and the worker host, told to, kills it;
    /// the host then dials the next pool on the same address (a restarted pool host).
    @Test func terminateEndsRemoteWorkAndTheWorkerHostFindsTheNextPool() async throws {
        let address = try RemoteObjectsTests.restartableAddress()
        defer { if address.description.hasPrefix("unix:") { unlink(String(address.description.dropFirst("unix:".count))) } }
        var first: RemotePool?
        for _ in 0..<20 where first == nil { first = try? await RemotePool.start(localProcesses: 0, address: address, authKey: Self.key) }
        let pool = try #require(first)
        let worker = try RemoteHelper.start(["pool-worker", pool.address.description, "pool secret", "1", "returning"])
        defer { worker.end() }
        try await pool.waitForWorkerHosts(1, timeout: Self.watchdog)
        let long = try pool.applyAsync(TestEntries.sleepsThenReportsPID, 600_000)
        try await Self.waitForRemoteRuns(pool, above: 0)
        await pool.terminate()
        await #expect(throws: PoolError.terminated) { _ = try await long.get(timeout: Self.watchdog) }

        var next: RemotePool?
        for _ in 0..<300 where next == nil {
            do { next = try await RemotePool.start(localProcesses: 0, address: address, authKey: Self.key) } catch {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        let again = try #require(next, "the address stayed taken:\n\(RemoteObjectsTests.socketsOnPort(of: address))")
        defer { Task { await again.terminate() } }
        try await again.waitForWorkerHosts(1, timeout: Self.watchdog)
        #expect(try await again.apply(TestEntries.square, 9, timeout: Self.watchdog) == 81)
    }

    /// `shmipc worker` (`shmipc-remote worker`) is a worker host: its local workers are the
    /// program it is given; SIGTERM ends it and its workers.
    @Test func theWorkerCommandIsAWorkerHost() async throws {
        let keyPath = try RemoteToolTests.keyFile("pool secret")
        defer { try? FileManager.default.removeItem(atPath: keyPath) }
        try await Self.withHosts { hosts in
            try await Self.withPool(hosts, local: 0) { pool in
                let command = try ChildProcess(
                    executable: "\(RemoteToolTests.directory)/shmipc",  // which hands over to shmipc-remote
                    arguments: ["worker", "--connect", pool.address.description, "--authkey-file", keyPath, "--processes", "2",
                                "--executable", RemoteHelper.path, "--name", "tool"])
                defer { if command.status == nil { _ = command.kill() } }
                try await pool.waitForWorkerHosts(1, timeout: Self.watchdog)
                #expect(pool.workerHosts == ["tool"])
                #expect(try await pool.map(TestEntries.square, Array(0..<10_000), timeout: Self.watchdog) == (0..<10_000).map { $0 * $0 })
                command.send(SIGTERM)
                #expect(command.wait(deadline: .after(Self.watchdog)) == .exited(0), "\(command.output)")
                try await Self.waitForNoHosts(pool)
            }
        }
    }

    /// Waits until the pool has noticed its worker host is gone.
    static func waitForNoHosts(_ pool: RemotePool) async throws {
        let deadline = ContinuousClock.now + watchdog
        while !pool.workerHosts.isEmpty {
            guard ContinuousClock.now < deadline else {
                Issue.record("the pool still lists \(pool.workerHosts)")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
