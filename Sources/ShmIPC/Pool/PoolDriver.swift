internal import DequeModule
internal import SystemPackage

/// The workers of a ``Pool`` and the rounds that keep them busy: collect results, bury dead
/// workers, start their successors, dispatch pending tasks. Only the thread holding
/// ``PoolCore``'s driver role calls it, so nothing here is locked (the ``PoolLedger`` is).
final class PoolDriver {
    /// Tasks in flight per worker: one running, the next ones queued in its ring (as far as it
    /// has room), so a worker finds its next task without waiting for the driver, and one
    /// wake-up of a parked worker serves many tasks. `pool.imap.chunk1` measured 400k tasks/s
    /// with 2, 440k with 64, 604k with 256, 646k with 1024 and no more with 4096. Tasks go to
    /// the least busy worker, so a few large chunks still spread over all workers.
    static let window = 1024
    /// How often the driver checks that its workers live (and reaps retired ones).
    static let deathCheckInterval: Duration = .milliseconds(25)

    final class Worker {
        let process: Process
        let connection: Connection
        var inFlight = Deque<PoolTask>()
        var sent = 0
        var retiring = false
        var broken = false
        /// Its initializer threw: the description it sent before exiting.
        var initializerFailure: String?
        /// Its ring had no room in this dispatch round.
        var full = false

        init(process: Process, connection: Connection) {
            self.process = process
            self.connection = connection
        }

        var acceptsTasks: Bool { !retiring && !broken && !full && inFlight.count < PoolDriver.window }
    }

    private let settings: PoolSettings
    private let doorbell: Doorbell
    private let ledger: PoolLedger
    private var workers: [Worker] = []
    private var retired: [Process] = []
    private var nextDeathCheck = Deadline.now
    /// Tasks sent to workers and not answered (mirrored in the ledger for other threads).
    private var running = 0 {
        didSet { ledger.running.store(running, ordering: .relaxed) }  // relaxed: a snapshot
    }
    /// New workers in a row whose initializer threw (reset when a worker answers a task).
    private var initializerFailures = 0
    /// How many such failures in a row make the pool give up: one per process, at least 3.
    private var initializerFailureLimit: Int { max(3, settings.processes) }

    init(settings: PoolSettings, doorbell: Doorbell, ledger: PoolLedger) {
        self.settings = settings
        self.doorbell = doorbell
        self.ledger = ledger
    }

    var workerPIDs: [ProcessID] { workers.compactMap(\.process.pid) }

    // MARK: lifetime

    func startWorkers() throws(PoolError) {
        while workers.count < settings.processes { try startWorker() }
    }

    /// The workers see their pipes close and exit; any that does not is killed.
    func endWorkers() {
        for worker in workers { worker.connection.close() }
        for worker in workers where !worker.process.join(timeout: .seconds(10)) { worker.process.kill() }
        for worker in workers { worker.process.join(timeout: .seconds(10)) }
        workers = []
        for process in retired { process.join(timeout: .seconds(10)) }
        retired = []
    }

    /// Ends every worker now, as Python's `terminate()`: SIGTERM, then SIGKILL for one still
    /// alive after ``terminateGrace``; their tasks fail with `terminated`.
    func killWorkers() {
        let processes = workers.map(\.process) + retired
        for process in processes { process.terminate() }
        let grace = Deadline.after(Self.terminateGrace)
        for process in processes where !process.join(timeout: grace.remaining) {
            process.kill()
            process.join(timeout: .seconds(10))
        }
        for worker in workers {
            worker.connection.close()
            for task in worker.inFlight { deliver(task, .failure(.terminated)) }
            running -= worker.inFlight.count
        }
        workers = []
        retired = []
    }

    /// How long `terminate()` lets workers end on SIGTERM before it kills them.
    static let terminateGrace: Duration = .seconds(1)

    // MARK: a round

    /// One round: collect results, check for dead workers, replace them, dispatch. Whether
    /// anything happened.
    func driveRound() -> Bool {
        var progress = false
        for worker in workers { progress = collect(worker) || progress }
        if nextDeathCheck.hasPassed || workers.contains(where: \.broken) {
            progress = buryDeadWorkers() || progress
            nextDeathCheck = .after(Self.deathCheckInterval)
        }
        progress = replaceWorkers() || progress
        progress = dispatch() || progress
        return progress
    }

    /// Takes every result `worker` has sent, reading each where it lies in the ring.
    private func collect(_ worker: Worker) -> Bool {
        var delivered = 0
        while !worker.broken {
            let answered: (task: PoolTask, result: Result<[UInt8], PoolError>)??
            do {
                answered = try worker.connection.tryReceiveInPlace { message in
                    guard let reply = PoolWire.parseReply(message) else { return nil }
                    if reply.id == 0 && reply.status == .initializerFailed {
                        worker.initializerFailure = reply.text
                        return nil  // the worker is about to exit: bury it
                    }
                    // Answers come in order: the oldest task in flight, unless the worker lies.
                    let task: PoolTask
                    if worker.inFlight.first?.id == reply.id {
                        task = worker.inFlight.removeFirst()
                    } else if let index = worker.inFlight.firstIndex(where: { $0.id == reply.id }) {
                        task = worker.inFlight.remove(at: index)
                    } else {
                        return nil
                    }
                    return (task, reply.result)
                }
            } catch {
                worker.broken = true  // the worker closed its end, died, or corrupted its ring
                break
            }
            guard let answer = answered else { break }  // nothing more for now
            guard let (task, result) = answer else {
                worker.broken = true  // an answer to no task of ours: not a worker we can trust
                break
            }
            task.job.deliver(task.chunk, result)
            delivered += 1
            running -= 1
            initializerFailures = 0  // a worker got past its initializer
        }
        ledger.settle(delivered)  // one lock for the batch, after every delivery
        if worker.retiring && worker.inFlight.isEmpty, let index = workers.firstIndex(where: { $0 === worker }) {
            // Done with its quota: it exits by itself; reap it later, start its successor now.
            workers.remove(at: index)
            retired.append(worker.process)
            worker.connection.close()
        }
        return delivered > 0
    }

    /// Removes workers that ended: their oldest task (the one running) fails with
    /// `workerDied`, the ones still queued in their ring go back to the pending queue.
    private func buryDeadWorkers() -> Bool {
        var progress = false
        retired.removeAll { !$0.isAlive }
        // Each pass buries the workers found dead at its start, then looks again (one that died
        // meanwhile is buried in the next pass, never dropped with its tasks).
        while true {
            let dead = workers.filter { $0.broken || !$0.process.isAlive }
            if dead.isEmpty { break }
            for worker in dead { bury(worker) }
            workers.removeAll { worker in dead.contains { $0 === worker } }
            progress = true
        }
        if let failure = ledger.failure { failPending(failure) }
        return progress
    }

    /// Ends a dead worker: its oldest task (the one running) fails with `workerDied`, the ones
    /// still queued in its ring go back to the pending queue (all of them if its initializer
    /// failed: nothing ran).
    private func bury(_ worker: Worker) {
        // Answers sent before it died still count, and so does an initializer's report: read
        // what is left even if a send to it already found it broken.
        worker.broken = false
        _ = collect(worker)
        if worker.process.isAlive {
            worker.process.kill()  // broken but alive: a misbehaving worker
        }
        worker.process.join(timeout: .seconds(10))
        worker.connection.close()
        running -= worker.inFlight.count
        if let message = worker.initializerFailure {
            // No task ran in it: all of its tasks go back to the pending queue.
            initializerFailures += 1
            if initializerFailures >= initializerFailureLimit {
                ledger.withState { $0.failure = .initializerFailed(message) }
            }
        } else if let running = worker.inFlight.popFirst() {
            let pid = worker.process.pid ?? ProcessID(rawValue: 0)
            logRecovery(.warning, "a pool worker died; its running task failed, its queued ones go to another worker", [
                "pid": "\(pid.rawValue)", "exitCode": "\(worker.process.exitCode ?? 0)", "requeued": "\(worker.inFlight.count)",
            ])
            deliver(running, .failure(.workerDied(pid: pid, exitCode: worker.process.exitCode ?? 0)))
        }
        ledger.requeue(worker.inFlight)  // never started
        worker.inFlight = []
    }

    /// Starts workers up to the pool's size, while the pool has or may get work.
    private func replaceWorkers() -> Bool {
        if workers.count >= settings.processes && !workers.contains(where: \.retiring) { return false }
        let (phase, hasWork, failed) = ledger.withState { ($0.phase, !$0.pending.isEmpty, $0.failure != nil) }
        guard !failed, phase == .open || (phase == .closed && hasWork) else { return false }
        var started = false
        while workers.filter({ !$0.retiring }).count < settings.processes {
            do { try startWorker() } catch {
                // Nothing can run: fail what waits rather than hang.
                if workers.isEmpty { failPending(error) }
                break
            }
            started = true
        }
        return started
    }

    private func startWorker() throws(PoolError) {
        let pipe: Pipe
        do { pipe = try Pipe(maxMessageSize: settings.maxMessageSize, capacity: settings.ringCapacity) } catch {
            throw .startFailed(.sharedObject(error))
        }
        let configuration = PoolWorkerConfiguration(
            maxMessageSize: settings.maxMessageSize, ringCapacity: settings.ringCapacity, maxTasks: settings.maxTasksPerChild,
            initializer: settings.initializer, initializerArgument: settings.initializerArgument)
        let connection: Connection
        do { connection = try pipe.connection(.first) } catch { throw .startFailed(.channel(error)) }
        do {
            let process = try Process(
                PoolWorker.entry, argument: configuration, name: nil, prefix: settings.startMethod.poolWorkerPrefix, daemon: true,
                sharing: [pipe.inheritableDescriptor!, doorbell.inheritableDescriptor!] + settings.sharing,
                startMethod: settings.startMethod, executable: settings.executable)
            try process.start()
            workers.append(Worker(process: process, connection: connection))
        } catch {
            throw .startFailed(.process(error))
        }
    }

    /// Sends pending tasks to workers with room in their window, each to the worker with the
    /// fewest in flight (so a few large chunks spread over all workers).
    private func dispatch() -> Bool {
        for worker in workers { worker.full = false }
        guard workers.contains(where: \.acceptsTasks) else { return false }
        // Tasks move from the pending queue into a worker's in-flight queue (no copies): the
        // lock is held while they are written into the rings, which never block.
        return ledger.withState { state -> Bool in
            var progress = false
            while !state.pending.isEmpty {
                var target: Worker?
                for worker in workers where worker.acceptsTasks {
                    if target == nil || worker.inFlight.count < target!.inFlight.count { target = worker }
                }
                guard let worker = target else { break }
                let sent: Bool
                do {
                    sent = try state.pending[0].message.withUnsafeBytes { bytes throws(ChannelError) in
                        try worker.connection.trySend(bytes: bytes)
                    }
                } catch {
                    worker.broken = true
                    continue
                }
                guard sent else {
                    worker.full = true
                    continue
                }
                worker.inFlight.append(state.pending.removeFirst())
                worker.sent += 1
                running += 1
                progress = true
                if let quota = settings.maxTasksPerChild, worker.sent >= quota { worker.retiring = true }
            }
            return progress
        }
    }

    private func failPending(_ error: PoolError) {
        for task in ledger.takePending() { deliver(task, .failure(error)) }
    }

    /// Hands `task`'s result to its job; then it no longer counts as outstanding.
    func deliver(_ task: PoolTask, _ result: Result<[UInt8], PoolError>) {
        task.job.deliver(task.chunk, result)
        ledger.settle(1)
    }
}
