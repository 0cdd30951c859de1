internal import Synchronization
internal import SystemPackage

/// A ``Pool``'s machinery. Tasks go to each worker through its own duplex ``Pipe`` (a dead
/// worker can stall nothing but its own pipe), at most `window` at a time; results come back
/// the same way, and each worker rings one shared ``Doorbell`` so a single thread can wait for
/// all of them.
///
/// Nobody runs in the background by default: a thread that waits for results *drives* the
/// pool (``PoolDriver``: dispatches pending tasks, collects results, replaces dead workers)
/// while it waits, holding the driver role (one thread at a time). Async and callback
/// submissions start one background thread that drives while they are outstanding.
///
/// Here: submission and waiting (any thread), the pool's lifetime, the driver role and the
/// background driver. The tasks' bookkeeping is ``PoolLedger``'s; the workers are the
/// ``PoolDriver``'s.
@usableFromInline
final class PoolCore: @unchecked Sendable {
    /// `@unchecked Sendable`: `driver` is touched only by the thread that holds `driving`.
    @usableFromInline let settings: PoolSettings
    let doorbell: Doorbell
    let ledger = PoolLedger()
    private let driver: PoolDriver
    private let driving = Atomic<Bool>(false)

    /// Tasks in flight per worker (see ``PoolDriver``).
    @usableFromInline static let window = PoolDriver.window

    init(settings: PoolSettings) throws(PoolError) {
        self.settings = settings
        do { doorbell = try Doorbell() } catch { throw .startFailed(.sharedObject(error)) }
        driver = PoolDriver(settings: settings, doorbell: doorbell, ledger: ledger)
        try withDriverRole { () throws(PoolError) in try driver.startWorkers() }
    }

    // MARK: submitting and waiting (any thread)

    /// Queues `tasks` (their messages carry id 0; ids are given here).
    @usableFromInline func submit(_ tasks: [PoolTask], detached: Bool = false) throws(PoolError) {
        if detached { try startBackgroundDriver() }
        try ledger.submit(tasks, detached: detached)
        doorbell.ring()
    }

    /// Drives the pool (or lets another thread drive it) until `done()` or the deadline.
    @usableFromInline func wait(until done: () -> Bool, deadline: Deadline) throws(PoolError) {
        var pause: Duration = .microseconds(20)
        while !done() {
            if deadline.hasPassed { throw .timedOut }
            if driving.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
                let seen = doorbell.current
                let progress = driver.driveRound()
                driving.store(false, ordering: .releasing)  // pairs with the acquiring exchange above
                if progress || done() { continue }
                let nap = Deadline.after(PoolDriver.deathCheckInterval)
                doorbell.wait(seen: seen, deadline: deadline < nap ? deadline : nap, strategy: settings.waitStrategy)
            } else {
                Sys.sleep(pause)  // another thread drives; it wakes us by finishing our job
                pause = min(pause * 2, .milliseconds(1))
            }
        }
    }

    /// No more submissions.
    func close() {
        ledger.withState { if $0.phase == .open { $0.phase = .closed } }
    }

    /// Waits for every submitted task, then ends the workers (they see their pipe close).
    func join(deadline: Deadline) throws(PoolError) {
        close()
        try wait(
            until: { ledger.withState { $0.outstanding == 0 || $0.phase == .terminated } },
            deadline: deadline)
        withDriverRole { driver.endWorkers() }
        doorbell.ring()
    }

    /// Ends the workers now (SIGKILL); every pending and running task fails with `terminated`.
    func terminate() {
        ledger.withState { $0.phase = .terminated }
        for task in ledger.takePending() { driver.deliver(task, .failure(.terminated)) }
        withDriverRole { driver.killWorkers() }
        doorbell.ring()
    }

    /// Tasks sent to workers and not answered (a snapshot, for tests and monitoring).
    var runningTasks: Int { ledger.running.load(ordering: .relaxed) }  // relaxed: a snapshot

    /// The pids of the current workers (a snapshot, for tests and monitoring).
    var workerPIDs: [ProcessID] { withDriverRole { driver.workerPIDs } }

    private func withDriverRole<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        var pause: Duration = .microseconds(10)
        while !driving.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            Sys.sleep(pause)
            pause = min(pause * 2, .milliseconds(1))
        }
        defer { driving.store(false, ordering: .releasing) }  // pairs with the exchange above
        return try body()
    }

    // MARK: the background driver (async and callback submissions)

    /// Called by a detached job's callback wrapper when one of its chunks is delivered.
    func detachedChunkDone() { ledger.withState { $0.detachedChunks -= 1 } }

    private func startBackgroundDriver() throws(PoolError) {
        let start = ledger.withState { state -> Bool in
            guard !state.backgroundDriver else { return false }
            state.backgroundDriver = true
            return true
        }
        guard start else { return }
        let started = Sys.startDetachedThread { [self] in
            while true {
                let (phase, outstanding) = ledger.withState { ($0.phase, $0.detachedChunks) }
                if phase == .terminated { break }
                if outstanding == 0 {
                    if phase != .open { break }
                    let seen = doorbell.current
                    if ledger.withState({ $0.detachedChunks }) == 0 {
                        doorbell.wait(seen: seen, deadline: .after(.milliseconds(100)), strategy: .park)
                    }
                    continue
                }
                try? wait(
                    until: { ledger.withState { $0.detachedChunks == 0 || $0.phase == .terminated } },
                    deadline: .after(.milliseconds(100)))
            }
            ledger.withState { $0.backgroundDriver = false }
        }
        if case .failure(let error) = started {
            ledger.withState { $0.backgroundDriver = false }
            throw .startFailed(.thread(error))
        }
    }
}
