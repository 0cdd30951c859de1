internal import DequeModule
internal import Synchronization
internal import SystemPackage
#if canImport(Glibc)
internal import Glibc
#endif

/// Where a submitted job's chunk results go: filled by whichever thread drives the pool, read
/// by the thread that waits for them (or handed to a callback).
@usableFromInline
final class PoolJob: Sendable {
    private let results = Mutex<[Int: Result<[UInt8], PoolError>]>([:])
    /// Called (on the driving thread) with each chunk's result instead of storing it.
    private let callback: (@Sendable (Int, Result<[UInt8], PoolError>) -> Void)?

    @usableFromInline init(callback: (@Sendable (Int, Result<[UInt8], PoolError>) -> Void)? = nil) {
        self.callback = callback
    }

    @usableFromInline func deliver(_ chunk: Int, _ result: Result<[UInt8], PoolError>) {
        if let callback { callback(chunk, result) } else { results.withLock { $0[chunk] = result } }
    }

    @usableFromInline func has(_ chunk: Int) -> Bool { results.withLock { $0[chunk] != nil } }
    @usableFromInline var count: Int { results.withLock { $0.count } }
    @usableFromInline var isEmpty: Bool { results.withLock { $0.isEmpty } }
    @usableFromInline func take(_ chunk: Int) -> Result<[UInt8], PoolError>? { results.withLock { $0.removeValue(forKey: chunk) } }
    @usableFromInline func takeAny() -> (chunk: Int, result: Result<[UInt8], PoolError>)? {
        results.withLock { results in
            guard let chunk = results.keys.min() else { return nil }
            return (chunk, results.removeValue(forKey: chunk)!)
        }
    }
}

/// A task waiting for, or running in, a worker: one chunk of one job.
@usableFromInline
struct PoolTask: Sendable {
    /// The task message (`PoolWire`); its id is written at submission.
    var message: [UInt8]
    let job: PoolJob
    @usableFromInline let chunk: Int
    var id: UInt64 = 0

    @usableFromInline init(message: [UInt8], job: PoolJob, chunk: Int) {
        self.message = message
        self.job = job
        self.chunk = chunk
    }
}

/// What a `Pool` needs to start a worker.
@usableFromInline
struct PoolSettings: Sendable {
    var processes: Int
    var maxTasksPerChild: Int?
    var initializer: String?
    var initializerArgument: [UInt8]
    var startMethod: StartMethod
    var executable: String?
    @usableFromInline var maxMessageSize: Int
    var ringCapacity: Int
    var waitStrategy: WaitStrategy
}

/// A ``Pool``'s machinery. Tasks go to each worker through its own duplex ``Pipe`` (a dead
/// worker can stall nothing but its own pipe), at most `window` at a time; results come back
/// the same way, and each worker rings one shared ``Doorbell`` so a single thread can wait for
/// all of them.
///
/// Nobody runs in the background by default: a thread that waits for results *drives* the
/// pool (dispatches pending tasks, collects results, replaces dead workers) while it waits,
/// holding the driver role (one thread at a time). Async and callback submissions start one
/// background thread that drives while they are outstanding.
@usableFromInline
final class PoolCore: @unchecked Sendable {
    /// `@unchecked Sendable`: `shared` is behind a mutex; the driver-owned properties below are
    /// touched only by the thread that holds `driving`.
    @usableFromInline let settings: PoolSettings
    let doorbell: Doorbell
    let shared = Mutex(Shared())
    private let driving = Atomic<Bool>(false)

    enum Phase { case open, closed, terminated }

    struct Shared {
        var phase = Phase.open
        var pending = Deque<PoolTask>()
        var nextTaskID: UInt64 = 1
        /// Tasks submitted whose result (or failure) has not been delivered yet: pending,
        /// in a worker, or being delivered. Lowered only after a delivery, so `join` never
        /// returns before a task's result is in its job.
        var outstanding = 0
        /// Jobs whose results a callback (the background driver) waits for.
        var detachedChunks = 0
        var backgroundDriver = false
        /// Set once the initializer failed in too many new workers in a row: every pending and
        /// future task fails with it.
        var failure: PoolError?
    }

    // Driver-owned.
    private var workers: [Worker] = []
    private var retired: [Process] = []
    private var nextDeathCheck = Deadline.now
    /// Tasks sent to workers and not answered (mirrored in `runningCount` for other threads).
    private var running = 0 {
        didSet { runningCount.store(running, ordering: .relaxed) }  // relaxed: a snapshot
    }
    let runningCount = Atomic<Int>(0)
    private var started = 0
    /// New workers in a row whose initializer threw (reset when a worker answers a task).
    private var initializerFailures = 0
    /// How many such failures in a row make the pool give up: one per process, at least 3.
    private var initializerFailureLimit: Int { max(3, settings.processes) }

    /// Tasks in flight per worker: one running, the next ones queued in its ring (as far as it
    /// has room), so a worker finds its next task without waiting for the driver, and one
    /// wake-up of a parked worker serves many tasks. `pool.imap.chunk1` measured 400k tasks/s
    /// with 2, 440k with 64, 604k with 256, 646k with 1024 and no more with 4096. Tasks go to
    /// the least busy worker, so a few large chunks still spread over all workers.
    @usableFromInline static let window = 1024
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
    }

    init(settings: PoolSettings) throws(PoolError) {
        self.settings = settings
        do { doorbell = try Doorbell() } catch { throw .startFailed("the doorbell: \(error)") }
        try withDriverRole { () throws(PoolError) in
            while workers.count < settings.processes { try startWorker() }
        }
    }

    // MARK: submitting and waiting (any thread)

    /// Queues `tasks` (their messages carry id 0; ids are given here).
    @usableFromInline func submit(_ tasks: [PoolTask], detached: Bool = false) throws(PoolError) {
        try shared.withLock { (shared) throws(PoolError) in
            guard shared.phase == .open else { throw .closed }
            if let failure = shared.failure { throw failure }
            for var task in tasks {
                let id = shared.nextTaskID
                shared.nextTaskID += 1
                task.id = id
                task.message.withUnsafeMutableBytes { $0.storeBytes(of: id.littleEndian, as: UInt64.self) }
                shared.pending.append(task)
            }
            shared.outstanding += tasks.count
            if detached { shared.detachedChunks += tasks.count }
        }
        doorbell.ring()
        if detached { startBackgroundDriver() }
    }

    /// Drives the pool (or lets another thread drive it) until `done()` or the deadline.
    @usableFromInline func wait(until done: () -> Bool, deadline: Deadline) throws(PoolError) {
        var pause: Duration = .microseconds(20)
        while !done() {
            if deadline.hasPassed { throw .timedOut }
            if driving.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
                let seen = doorbell.current
                let progress = driveRound()
                driving.store(false, ordering: .releasing)  // pairs with the acquiring exchange above
                if progress || done() { continue }
                let nap = Deadline.after(Self.deathCheckInterval)
                doorbell.wait(seen: seen, deadline: deadline < nap ? deadline : nap, strategy: settings.waitStrategy)
            } else {
                Sys.sleep(pause)  // another thread drives; it wakes us by finishing our job
                pause = min(pause * 2, .milliseconds(1))
            }
        }
    }

    /// No more submissions.
    func close() {
        shared.withLock { if $0.phase == .open { $0.phase = .closed } }
    }

    /// Waits for every submitted task, then ends the workers (they see their pipe close).
    func join(deadline: Deadline) throws(PoolError) {
        close()
        try wait(
            until: { shared.withLock { $0.outstanding == 0 || $0.phase == .terminated } },
            deadline: deadline)
        withDriverRole {
            for worker in workers { worker.connection.close() }
            for worker in workers where !worker.process.join(timeout: .seconds(10)) { worker.process.kill() }
            for worker in workers { worker.process.join(timeout: .seconds(10)) }
            workers = []
            for process in retired { process.join(timeout: .seconds(10)) }
            retired = []
        }
        doorbell.ring()
    }

    /// Ends the workers now (SIGKILL); every pending and running task fails with `terminated`.
    func terminate() {
        let dropped = shared.withLock { shared -> Deque<PoolTask> in
            shared.phase = .terminated
            defer { shared.pending = [] }
            return shared.pending
        }
        for task in dropped { deliver(task, .failure(.terminated)) }
        withDriverRole {
            for worker in workers { worker.process.kill() }
            for worker in workers {
                worker.process.join(timeout: .seconds(10))
                worker.connection.close()
                for task in worker.inFlight { deliver(task, .failure(.terminated)) }
                running -= worker.inFlight.count
            }
            workers = []
            for process in retired { process.kill(); process.join(timeout: .seconds(10)) }
            retired = []
        }
        doorbell.ring()
    }

    /// The pids of the current workers (a snapshot, for tests and monitoring).
    var workerPIDs: [Int32] { withDriverRole { workers.compactMap(\.process.pid) } }

    // MARK: driving (the driver role only)

    private func withDriverRole<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        var pause: Duration = .microseconds(10)
        while !driving.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            Sys.sleep(pause)
            pause = min(pause * 2, .milliseconds(1))
        }
        defer { driving.store(false, ordering: .releasing) }  // pairs with the exchange above
        return try body()
    }

    /// One round: collect results, check for dead workers, replace them, dispatch. Whether
    /// anything happened.
    private func driveRound() -> Bool {
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
        var progress = false
        var delivered = 0
        while !worker.broken {
            let answered: (task: PoolTask, result: Result<[UInt8], PoolError>)??
            do {
                answered = try worker.connection.tryReceiveInPlace { message in
                    guard message.count >= 9, let id = PoolWire.taskID(of: message) else { return nil }
                    if id == 0 && message[8] == PoolWire.initializerFailed {
                        worker.initializerFailure = String(decoding: UnsafeRawBufferPointer(rebasing: message[9...]), as: UTF8.self)
                        return nil  // the worker is about to exit: bury it
                    }
                    // Answers come in order: the oldest task in flight, unless the worker lies.
                    let task: PoolTask
                    if worker.inFlight.first?.id == id {
                        task = worker.inFlight.removeFirst()
                    } else if let index = worker.inFlight.firstIndex(where: { $0.id == id }) {
                        task = worker.inFlight.remove(at: index)
                    } else {
                        return nil
                    }
                    let payload = [UInt8](UnsafeRawBufferPointer(rebasing: message[9...]))
                    switch message[8] {
                    case PoolWire.ok: return (task, .success(payload))
                    case PoolWire.threw: return (task, .failure(.taskFailed(String(decoding: payload, as: UTF8.self))))
                    default: return (task, .failure(.coding(String(decoding: payload, as: UTF8.self))))
                    }
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
            progress = true
            task.job.deliver(task.chunk, result)
            delivered += 1
            running -= 1
            initializerFailures = 0  // a worker got past its initializer
        }
        settle(delivered)  // one lock for the batch, after every delivery
        if worker.retiring && worker.inFlight.isEmpty, let index = workers.firstIndex(where: { $0 === worker }) {
            // Done with its quota: it exits by itself; reap it later, start its successor now.
            workers.remove(at: index)
            retired.append(worker.process)
            worker.connection.close()
        }
        return progress
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
            bury(dead)
            workers.removeAll { worker in dead.contains { $0 === worker } }
            progress = true
        }
        if let failure = shared.withLock({ $0.failure }) { failPending(failure) }
        return progress
    }

    /// Ends `dead` workers: the oldest task of each (the one running) fails with `workerDied`,
    /// the ones still queued in its ring go back to the pending queue (all of them if its
    /// initializer failed: nothing ran).
    private func bury(_ dead: [Worker]) {
        for worker in dead {
            // Answers sent before it died still count, and so does an initializer's report:
            // read what is left even if a send to it already found it broken.
            worker.broken = false
            _ = collect(worker)
            if worker.process.isAlive {
                worker.process.kill()  // broken but alive: a misbehaving worker
            }
            worker.process.join(timeout: .seconds(10))
            worker.connection.close()
            let pid = worker.process.pid ?? 0, code = worker.process.exitCode ?? 0
            let lost = worker.inFlight.count
            if let message = worker.initializerFailure {
                // No task ran in it: all of its tasks go back to the pending queue.
                initializerFailures += 1
                if initializerFailures >= initializerFailureLimit {
                    shared.withLock { $0.failure = .initializerFailed(message) }
                }
            } else if let running = worker.inFlight.popFirst() {
                deliver(running, .failure(.workerDied(pid: pid, exitCode: code)))
            }
            shared.withLock { shared in
                for task in worker.inFlight.reversed() { shared.pending.prepend(task) }  // never started
            }
            running -= lost
            worker.inFlight = []
        }
    }

    /// Starts workers up to the pool's size, while the pool has or may get work.
    private func replaceWorkers() -> Bool {
        if workers.count >= settings.processes && !workers.contains(where: \.retiring) { return false }
        let (phase, hasWork, failed) = shared.withLock { ($0.phase, !$0.pending.isEmpty, $0.failure != nil) }
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
            throw .startFailed("a pipe: \(error)")
        }
        started += 1
        let configuration = PoolWorkerConfiguration(
            maxMessageSize: settings.maxMessageSize, ringCapacity: settings.ringCapacity, maxTasks: settings.maxTasksPerChild,
            initializer: settings.initializer, initializerArgument: settings.initializerArgument)
        do {
            let process = try Process(
                PoolWorker.entry, argument: configuration, name: "PoolWorker-\(started)", daemon: true,
                sharing: [pipe.inheritableDescriptor!, doorbell.inheritableDescriptor!],
                startMethod: settings.startMethod, executable: settings.executable)
            let connection = try pipe.connection(.first)
            try process.start()
            workers.append(Worker(process: process, connection: connection))
        } catch {
            throw .startFailed("\(error)")
        }
    }

    /// Sends pending tasks to workers with room in their window, each to the worker with the
    /// fewest in flight (so a few large chunks spread over all workers).
    private func dispatch() -> Bool {
        let room = workers.reduce(0) { $0 + (($1.retiring || $1.broken) ? 0 : Self.window - $1.inFlight.count) }
        guard room > 0 else { return false }
        for worker in workers { worker.full = false }
        // Tasks move from the pending queue into a worker's in-flight queue (no copies): the
        // lock is held while they are written into the rings, which never block.
        return shared.withLock { shared -> Bool in
            var progress = false
            while !shared.pending.isEmpty {
                var target: Worker?
                for worker in workers where !worker.retiring && !worker.broken && !worker.full && worker.inFlight.count < Self.window {
                    if target == nil || worker.inFlight.count < target!.inFlight.count { target = worker }
                }
                guard let worker = target else { break }
                let sent: Bool
                do {
                    sent = try shared.pending[0].message.withUnsafeBytes { bytes throws(ChannelError) in
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
                worker.inFlight.append(shared.pending.removeFirst())
                worker.sent += 1
                running += 1
                progress = true
                if let quota = settings.maxTasksPerChild, worker.sent >= quota { worker.retiring = true }
            }
            return progress
        }
    }

    private func failPending(_ error: PoolError) {
        let dropped = shared.withLock { shared -> Deque<PoolTask> in
            defer { shared.pending = [] }
            return shared.pending
        }
        for task in dropped { deliver(task, .failure(error)) }
    }

    /// Hands `task`'s result to its job; then it no longer counts as outstanding.
    private func deliver(_ task: PoolTask, _ result: Result<[UInt8], PoolError>) {
        task.job.deliver(task.chunk, result)
        settle(1)
    }

    /// `count` delivered tasks no longer count as outstanding (after their delivery).
    private func settle(_ count: Int) {
        if count > 0 { shared.withLock { $0.outstanding -= count } }
    }

    // MARK: the background driver (async and callback submissions)

    /// Called by a detached job's callback wrapper when one of its chunks is delivered.
    func detachedChunkDone() { shared.withLock { $0.detachedChunks -= 1 } }

    private func startBackgroundDriver() {
        let start = shared.withLock { shared -> Bool in
            guard !shared.backgroundDriver else { return false }
            shared.backgroundDriver = true
            return true
        }
        guard start else { return }
        BackgroundThread.start { [self] in
            while true {
                let (phase, outstanding) = shared.withLock { ($0.phase, $0.detachedChunks) }
                if phase == .terminated { break }
                if outstanding == 0 {
                    if phase != .open { break }
                    let seen = doorbell.current
                    if shared.withLock({ $0.detachedChunks }) == 0 {
                        doorbell.wait(seen: seen, deadline: .after(.milliseconds(100)), strategy: .park)
                    }
                    continue
                }
                try? wait(until: { shared.withLock { $0.detachedChunks == 0 || $0.phase == .terminated } }, deadline: .after(.milliseconds(100)))
            }
            shared.withLock { $0.backgroundDriver = false }
        }
    }
}

/// A detached pthread running a closure (ShmIPC has no Foundation `Thread`).
enum BackgroundThread {
    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    static func start(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let code = pthread_create(&thread, nil, { context in
            let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        precondition(code == 0, "ShmIPC: pthread_create failed with \(code)")
        pthread_detach(thread)
    }
}
