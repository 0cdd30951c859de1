internal import CShim
#if canImport(Glibc)
internal import Glibc
#endif

/// The one thread per process that sleeps for every suspended task: each task that would park
/// on a futex word hands the word to this waiter and suspends; no task blocks a thread of
/// Swift's cooperative pool, and a thousand suspended tasks cost one thread.
///
/// The waiter parks on an io_uring (`IORING_OP_FUTEX_WAIT`, Linux 6.7): one request per
/// suspended task, any number of them (`futex_waitv` stops at 128 words). A futex wake from any
/// process completes the task's request; the thread reaping completions resumes the task. A
/// deadline is kept here: when it passes, the request is cancelled and the task resumes with
/// ``Outcome/timedOut``. A cancelled task resumes at once with `CancellationError`, its request
/// cancelled. Each suspension is resumed exactly once: whoever removes it from the table under
/// the lock resumes it.
///
/// Without io_uring futex waits (an older kernel, io_uring disabled), each suspension sleeps on
/// a thread of its own instead (correct, not scalable); ``isScalable`` tells which.
///
/// Wake-up accounting is the caller's, as for a thread: it registers in the word's waiter
/// count (and issues the heavy barrier, for the asymmetric words) before handing the word
/// over, so wakers make the syscall exactly as they would for a parked thread.
final class AsyncWaiter: @unchecked Sendable {
    /// `@unchecked Sendable`: `ring` is used by submitters only under `state`'s lock and by
    /// the one reaping thread for completions, which io_uring allows concurrently.

    /// How a wait ended (besides cancellation, which throws).
    enum Outcome: Sendable, Equatable {
        /// Woken, or the word no longer held the expected value: re-check.
        case woken
        /// The deadline passed first.
        case timedOut
    }

    /// This process's waiter (a forked child makes its own).
    static var shared: AsyncWaiter {
        let pid = getpid()
        return instance.withLock { current in
            if let current, current.pid == pid { return current }
            // A forked child inherits its parent's waiter, without the reaping thread: its
            // ring is the parent's, and its tasks are not here. Let it go, and make a new one.
            current?.forsakeInForkedChild()
            let made = AsyncWaiter(pid: pid)
            current = made
            return made
        }
    }
    private static let instance = ThreadLock<AsyncWaiter?>(nil)

    /// Whether waits go through one io_uring (false: a thread per wait).
    let isScalable: Bool
    /// The reaping thread's name (`/proc/<pid>/task/*/comm`).
    static let threadName = "shmipc-async"
    /// Tasks suspended here now.
    var suspendedCount: Int { state.withLock { $0.pending.count } }
    /// Tasks suspended here now on the futex word at `word`.
    func suspendedCount(on word: UnsafeMutableRawPointer) -> Int {
        state.withLock { state in state.pending.values.count { $0.word.map(UnsafeMutableRawPointer.init) == word } }
    }
    private let pid: Int32
    private let ring: OpaquePointer?
    private let state = ThreadLock(State())

    private struct State {
        var nextID: UInt64 = 1  // 0: requests nobody waits for (cancels, no-ops)
        var pending: [UInt64: Suspension] = [:]
        var deadlines = DeadlineHeap()
        /// When the reaping thread wakes by itself next.
        var reaperWakes = Deadline.distantFuture
        var reaperStarted = false
        /// The words of futex waits cancelled for a cancelled task, until their requests
        /// complete: one that completes woken took a wake-up meant for another waiter, and
        /// the reaper passes it on.
        var forwarding: [UInt64: UInt] = [:]  // id: the word's address
        /// Jobs of tasks that prefer ``WaiterExecutor``, run by the reaping thread between
        /// reaps, in the order they came.
        var jobs: [UnownedJob] = []
        /// A no-op request is on its way to wake the reaping thread for `jobs`.
        var jobsWakeQueued = false
        /// The reaping thread's id, once it runs (0 before).
        var reaperThread: Int32 = 0
    }

    /// One wait: its id, deadline, check, and where it stands (`phase`, changed only under
    /// `state`'s lock).
    private final class Suspension: @unchecked Sendable {
        enum Phase { case created, registered(UnsafeContinuation<Outcome, any Error>), cancelled, finished }
        let id: UInt64
        let deadline: Deadline
        let check: (@Sendable () -> Bool)?
        /// The futex word of a futex wait (nil for a poll).
        let word: UnsafeMutablePointer<UInt32>?
        var phase = Phase.created
        /// Its check is running on the reaping thread, outside the lock: a completion or a
        /// cancellation meanwhile is kept in `deferred` and delivered after the check (the
        /// task, and the memory its check reads, stay put until then).
        var checking = false
        var deferred: Result<Outcome, CancellationError>?
        init(id: UInt64, deadline: Deadline, check: (@Sendable () -> Bool)?, word: UnsafeMutablePointer<UInt32>?) {
            self.word = word
            self.id = id
            self.deadline = deadline
            self.check = check
        }
    }

    /// How often a suspension's check runs (on the reaping thread, the task left suspended):
    /// the role of a parked thread's 100 ms slice, ten times less often, so that a thousand
    /// idle tasks cost little CPU (at 100 ms, 1,000 checks a second measured 14% of a core in
    /// a debug build). A peer that dies between publishing and waking costs a task up to this.
    static let checkInterval: Duration = .seconds(1)

    private init(pid: Int32) {
        self.pid = pid
        let ring = shmipc_uring_create(256, 8192)
        self.ring = ring
        isScalable = ring.map(Self.supportsFutexWait) ?? false
    }

    /// In a forked child: unmaps and closes the inherited ring (the parent's stays open in
    /// the parent). Nothing else of this waiter is used again.
    private func forsakeInForkedChild() {
        if let ring { shmipc_uring_destroy(ring) }
    }

    /// Whether the kernel runs io_uring futex waits: one on a word that does not hold the
    /// expected value completes with -EAGAIN (and with -EINVAL where the opcode is unknown).
    private static func supportsFutexWait(_ ring: OpaquePointer) -> Bool {
        var word: UInt32 = 1
        guard shmipc_uring_futex_wait(ring, &word, 0, 0) == 0, shmipc_uring_submit(ring) == 1 else { return false }
        var userData: UInt64 = 0, result: Int32 = 0
        for _ in 0..<100 where shmipc_uring_wait(ring, 10_000_000, &userData, &result, 1) == 1 {
            return result == -EAGAIN
        }
        return false
    }

    // MARK: waiting

    /// Suspends the calling task while the futex `word` holds `expected`, until woken (by
    /// any process), `deadline`, or cancellation (`CancellationError`). The word must stay
    /// mapped until this returns.
    ///
    /// `check`, if given, runs every ``checkInterval`` on the reaping thread while the task
    /// stays suspended; when it returns true the task resumes (``Outcome/woken``). It stands
    /// for what a parked thread does after each slice: finding an item a peer published and
    /// died before waking, repairing a slot a dead peer held, noticing a peer gone. It must be
    /// cheap, and safe to run on another thread while the task waits.
    ///
    /// With `cancellable` false, cancellation is ignored: for the waits a cancelled task must
    /// still finish (a condition's waiter re-taking its lock to leave).
    func wait(
        _ word: UnsafeMutablePointer<UInt32>, expected: UInt32, deadline: Deadline, check: (@Sendable () -> Bool)? = nil,
        cancellable: Bool = true
    ) async throws -> Outcome {
        guard isScalable, ring != nil else {
            return try await waitOnAThread(word, expected: expected, deadline: deadline, cancellable: cancellable)
        }
        return try await suspend(deadline: deadline, check: check, word: word, cancellable: cancellable) { ring, id in
            shmipc_uring_futex_wait(ring, word, expected, id)
        }
    }

    /// Suspends the calling task until `descriptor` is readable (a pidfd: its process ended),
    /// `deadline`, or cancellation.
    func waitReadable(_ descriptor: Int32, deadline: Deadline) async throws -> Outcome {
        guard isScalable, ring != nil else {
            // Without io_uring: look every 10 ms (a process's end is not a hot path).
            while !deadline.hasPassed {
                var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                if poll(&entry, 1, 0) > 0 { return .woken }
                try await Task.sleep(for: .milliseconds(10))
            }
            return .timedOut
        }
        return try await suspend(deadline: deadline, check: nil, word: nil) { ring, id in shmipc_uring_poll(ring, descriptor, id) }
    }

    /// Registers the request `queue` makes (given the ring and the suspension's id) and
    /// suspends until it completes, `deadline`, a true `check`, or cancellation.
    private func suspend(
        deadline: Deadline, check: (@Sendable () -> Bool)?, word: UnsafeMutablePointer<UInt32>?, cancellable: Bool = true,
        _ queue: (OpaquePointer, UInt64) -> Int32
    ) async throws -> Outcome {
        if deadline.hasPassed { return .timedOut }
        let suspension = makeSuspension(deadline: deadline, check: check, word: word)
        guard cancellable else { return try await register(suspension, queue) }
        return try await withTaskCancellationHandler {
            try await register(suspension, queue)
        } onCancel: {
            cancel(suspension)
        }
    }

    private func makeSuspension(deadline: Deadline, check: (@Sendable () -> Bool)?, word: UnsafeMutablePointer<UInt32>?) -> Suspension {
        state.withLock { state in
            defer { state.nextID &+= 1 }
            return Suspension(id: state.nextID, deadline: deadline, check: check, word: word)
        }
    }

    /// Queues the suspension's request and suspends until it is finished (by the reaping
    /// thread, or by cancellation).
    private func register(_ suspension: Suspension, _ queue: (OpaquePointer, UInt64) -> Int32) async throws -> Outcome {
        guard let ring else { return .timedOut }
        let deadline = suspension.deadline
        let firstWake = suspension.check == nil ? deadline : min(deadline, Self.nextCheck(after: .now))
        return try await withUnsafeThrowingContinuation { continuation in
            let cancelled: Bool = state.withLock { state in
                if case .cancelled = suspension.phase { return true }
                // Queue, submit and record under one lock: the completion cannot be
                // reaped before the suspension is in the table.
                if queue(ring, suspension.id) != 0 {
                    _ = shmipc_uring_submit(ring)  // a full queue: make room, then queue
                    _ = queue(ring, suspension.id)
                }
                if firstWake < state.reaperWakes {
                    state.reaperWakes = firstWake
                    _ = shmipc_uring_nop(ring, 0)  // the reaper re-reads its deadline
                }
                _ = shmipc_uring_submit(ring)
                suspension.phase = .registered(continuation)
                state.pending[suspension.id] = suspension
                if firstWake != .distantFuture { state.deadlines.push(firstWake, suspension.id) }
                startReaperIfNeeded(&state)
                return false
            }
            if cancelled { continuation.resume(throwing: CancellationError()) }
        }
    }

    /// Resumes `suspension` with `CancellationError` if it is registered (cancelling its
    /// request), or marks it so that it does not register; nothing once it finished.
    private func cancel(_ suspension: Suspension) {
        let continuation: UnsafeContinuation<Outcome, any Error>? = state.withLock { state in
            switch suspension.phase {
            case .created:
                suspension.phase = .cancelled
                return nil
            case .registered(let continuation):
                if let ring {
                    _ = shmipc_uring_cancel(ring, suspension.id, 0)
                    _ = shmipc_uring_submit(ring)
                }
                if let word = suspension.word { state.forwarding[suspension.id] = UInt(bitPattern: word) }
                if suspension.checking {
                    suspension.deferred = .failure(CancellationError())
                    return nil
                }
                suspension.phase = .finished
                state.pending[suspension.id] = nil
                return continuation
            case .cancelled, .finished:
                return nil
            }
        }
        continuation?.resume(throwing: CancellationError())
    }

    /// When a check registered at `now` next runs: a ``checkInterval`` on, rounded up to a
    /// tenth of it, so that the checks of many suspensions run together and the reaping
    /// thread wakes at most ten times per interval for them (one wake-up per suspension
    /// measured ~1% of a core for a thousand idle tasks).
    static func nextCheck(after now: Deadline) -> Deadline {
        let grid = UInt64(checkInterval.components.seconds) * 100_000_000 + UInt64(checkInterval.components.attoseconds / 10_000_000_000)
        let due = now.advanced(by: checkInterval).uptimeNanoseconds
        return Deadline(uptimeNanoseconds: (due / grid &+ 1) &* grid)
    }

    /// Takes the continuation of the pending wait `id`, if it is still pending.
    /// (While its check runs, the completion is deferred instead, and nil returned.)
    private static func finish(_ id: UInt64, in state: inout State) -> UnsafeContinuation<Outcome, any Error>? {
        guard let suspension = state.pending[id], case .registered(let continuation) = suspension.phase else { return nil }
        if suspension.checking {
            if suspension.deferred == nil { suspension.deferred = .success(.woken) }
            return nil
        }
        state.pending[id] = nil
        suspension.phase = .finished
        return continuation
    }

    /// Whether tasks can run on the reaping thread (``WaiterExecutor``): there is a ring to reap.
    var runsJobs: Bool { ring != nil }

    /// Queues `job` for the reaping thread (``WaiterExecutor``); a job queued from another
    /// thread wakes it with a no-op request, once until it takes the jobs. Requires ``runsJobs``.
    func enqueue(_ job: UnownedJob) {
        guard let ring else { preconditionFailure("ShmIPC: WaiterExecutor needs the async waiter's ring") }
        state.withLock { state in
            state.jobs.append(job)
            startReaperIfNeeded(&state)
            // The reaping thread queueing a job (a task it runs yielding, or a continuation it
            // resumes) runs it before it next sleeps: no request needed.
            guard !state.jobsWakeQueued, state.reaperThread != shmipc_thread_id() else { return }
            state.jobsWakeQueued = true
            _ = shmipc_uring_nop(ring, 0)
            _ = shmipc_uring_submit(ring)
        }
    }

    private func startReaperIfNeeded(_ state: inout State) {
        guard !state.reaperStarted else { return }
        state.reaperStarted = true
        if case .failure(let error) = Sys.startDetachedThread({ [self] in reap() }) {
            preconditionFailure("ShmIPC: the async waiter's thread could not start: \(error)")
        }
    }

    /// The reaping thread: waits for completions until the nearest deadline, resumes what
    /// completed or expired, and cancels the requests of expired waits.
    private func reap() {
        guard let ring else { return }
        _ = shmipc_set_thread_name(Self.threadName)
        let capacity = 256
        let userData = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        let results = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        var resumes: [(UnsafeContinuation<Outcome, any Error>, Result<Outcome, CancellationError>)] = []
        var due: [Suspension] = []
        var passed: [Bool] = []
        var forwards: [UInt] = []
        var jobs: [UnownedJob] = []
        state.withLock { $0.reaperThread = shmipc_thread_id() }
        while true {
            let (wakes, jobsWaiting) = state.withLock { ($0.reaperWakes, !$0.jobs.isEmpty) }
            // With jobs waiting (queued by the jobs run last round), only look for completions.
            let timeout: Int64 = jobsWaiting ? 0 : wakes == .distantFuture
                ? -1 : Int64(clamping: wakes.uptimeNanoseconds &- min(wakes.uptimeNanoseconds, Deadline.now.uptimeNanoseconds))
            let count = shmipc_uring_wait(ring, timeout, userData, results, Int32(capacity))
            let now = Deadline.now
            state.withLock { state in
                for k in 0..<Int(max(count, 0)) where userData[k] != 0 {
                    // 0 woken, -EAGAIN the value changed, -ECANCELED cancelled (already
                    // resumed: no longer pending), anything else: re-check as if woken.
                    if let word = state.forwarding.removeValue(forKey: userData[k]) {
                        if results[k] == 0 { forwards.append(word) }  // a cancelled task's wake-up
                        continue
                    }
                    if let continuation = Self.finish(userData[k], in: &state) { resumes.append((continuation, .success(.woken))) }
                }
                var cancels = false
                while let (wake, id) = state.deadlines.peek(), wake <= now {
                    state.deadlines.pop()
                    guard let suspension = state.pending[id] else { continue }
                    if suspension.deadline > now, suspension.check != nil {
                        suspension.checking = true  // run below, outside the lock
                        due.append(suspension)
                        continue
                    }
                    guard let continuation = Self.finish(id, in: &state) else { continue }
                    resumes.append((continuation, .success(.timedOut)))
                    cancels = true
                    cancelRequest(id, ring)
                }
                if cancels { _ = shmipc_uring_submit(ring) }
            }
            // The checks run unlocked (they may read /proc): tasks keep suspending meanwhile.
            for suspension in due { passed.append(suspension.check!()) }
            state.withLock { state in
                var cancels = false
                for (suspension, passed) in zip(due, passed) {
                    suspension.checking = false
                    guard case .registered(let continuation) = suspension.phase else { continue }
                    if passed || suspension.deferred != nil {
                        state.pending[suspension.id] = nil
                        suspension.phase = .finished
                        resumes.append((continuation, suspension.deferred ?? .success(.woken)))
                        if suspension.deferred == nil {
                            cancels = true
                            cancelRequest(suspension.id, ring)
                        }
                    } else {
                        state.deadlines.push(min(suspension.deadline, Self.nextCheck(after: now)), suspension.id)
                    }
                }
                if cancels { _ = shmipc_uring_submit(ring) }
                // Drop heap entries of waits no longer pending, then sleep until the next.
                while let (_, id) = state.deadlines.peek(), state.pending[id] == nil { state.deadlines.pop() }
                state.reaperWakes = state.deadlines.peek()?.0 ?? .distantFuture
            }
            due.removeAll(keepingCapacity: true)
            passed.removeAll(keepingCapacity: true)
            for (continuation, outcome) in resumes { continuation.resume(with: outcome.mapError { $0 }) }
            resumes.removeAll(keepingCapacity: true)
            // A wake-up that landed on a cancelled task goes to the next waiter, as a thread
            // woken and then leaving would not lose it. The word may be unmapped by now: the
            // kernel then fails the wake (EFAULT), and a word mapped anew meanwhile gets one
            // spurious wake-up, which every futex user tolerates.
            for word in forwards { _ = shmipc_futex_wake(UnsafeMutablePointer(bitPattern: word), 1) }
            forwards.removeAll(keepingCapacity: true)
            // The tasks that prefer this thread: those resumed above run here now, with no hop
            // onto another thread (one wake-up per resumption, as a parked thread's). The jobs
            // they queue meanwhile wait for the next round, so deadlines and completions are
            // reaped between rounds however often a task yields.
            state.withLock { state in
                jobs.append(contentsOf: state.jobs)
                state.jobs.removeAll(keepingCapacity: true)
                state.jobsWakeQueued = false
            }
            for job in jobs { job.runSynchronously(on: WaiterExecutor.shared.asUnownedTaskExecutor()) }
            jobs.removeAll(keepingCapacity: true)
        }
    }

    /// Queues the cancellation of request `id` (making room if the queue is full).
    private func cancelRequest(_ id: UInt64, _ ring: OpaquePointer) {
        if shmipc_uring_cancel(ring, id, 0) != 0 {
            _ = shmipc_uring_submit(ring)
            _ = shmipc_uring_cancel(ring, id, 0)
        }
    }

    /// Without io_uring futex waits: the sleep runs on a thread of its own.
    private func waitOnAThread(
        _ word: UnsafeMutablePointer<UInt32>, expected: UInt32, deadline: Deadline, cancellable: Bool
    ) async throws -> Outcome {
        if cancellable { try Task.checkCancellation() }
        let address = UInt(bitPattern: word)
        // Cancellation is noticed at the next slice: the thread sleeps at most 100 ms at once.
        let slice = min(deadline, .after(.milliseconds(100)))
        let outcome: Outcome = await withUnsafeContinuation { continuation in
            let started = Sys.startDetachedThread {
                let futex = Futex(UnsafeMutablePointer(bitPattern: address)!)
                continuation.resume(returning: futex.wait(expected: expected, deadline: slice) == .timedOut ? .timedOut : .woken)
            }
            if case .failure = started { continuation.resume(returning: .timedOut) }
        }
        if cancellable { try Task.checkCancellation() }
        return outcome == .timedOut && !deadline.hasPassed ? .woken : outcome
    }
}

/// A binary min-heap of (deadline, id).
struct DeadlineHeap {
    private var items: [(Deadline, UInt64)] = []

    func peek() -> (Deadline, UInt64)? { items.first }

    mutating func push(_ deadline: Deadline, _ id: UInt64) {
        items.append((deadline, id))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].0 < items[parent].0 else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count && items[left].0 < items[smallest].0 { smallest = left }
            if right < items.count && items[right].0 < items[smallest].0 { smallest = right }
            if smallest == parent { return }
            items.swapAt(parent, smallest)
            parent = smallest
        }
    }
}

/// Diagnostics of the async waiter, for tests.
package enum AsyncDiagnostics {
    /// Tasks suspended in this process's waiter now.
    package static var suspended: Int { AsyncWaiter.shared.suspendedCount }
    /// Whether waits go through one io_uring (false: a thread per wait).
    package static var isScalable: Bool { AsyncWaiter.shared.isScalable }
    /// Tasks suspended here now on the futex word at `word`.
    package static func suspended(on word: UnsafeMutableRawPointer) -> Int { AsyncWaiter.shared.suspendedCount(on: word) }
}
