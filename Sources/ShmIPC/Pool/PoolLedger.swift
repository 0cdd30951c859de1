internal import DequeModule
internal import Synchronization

/// A ``Pool``'s bookkeeping that every thread touches, behind one lock: its phase, the tasks
/// waiting for a worker, and the count of tasks whose result has not been delivered.
final class PoolLedger: Sendable {
    enum Phase { case open, closed, terminated }

    struct State {
        var phase = Phase.open
        var pending = Deque<PoolTask>()
        var nextTaskID: UInt64 = 1
        /// Tasks submitted whose result (or failure) has not been delivered yet: pending,
        /// in a worker, or being delivered. Lowered only after a delivery, so `join` never
        /// returns before a task's result is in its job.
        var outstanding = 0
        /// Chunks of jobs whose results a callback (the background driver) waits for.
        var detachedChunks = 0
        var backgroundDriver = false
        /// Set once the initializer failed in too many new workers in a row: every pending and
        /// future task fails with it.
        var failure: PoolError?
    }

    private let state = ThreadLock(State())  // a lock ThreadSanitizer sees (Notes/0009)
    /// Tasks sent to workers and not answered: a snapshot for other threads (the driver
    /// keeps it; relaxed stores and loads).
    let running = Atomic<Int>(0)

    func withState<Result>(_ body: (inout State) -> Result) -> Result { state.withLock(body) }

    /// Queues `tasks`, giving each its id; throws if the pool no longer takes tasks.
    func submit(_ tasks: [PoolTask], detached: Bool) throws(PoolError) {
        try state.withLock { (state) throws(PoolError) in
            guard state.phase == .open else { throw .closed }
            if let failure = state.failure { throw failure }
            for var task in tasks {
                task.id = state.nextTaskID
                state.nextTaskID += 1
                PoolWire.stamp(&task.message, id: task.id)
                state.pending.append(task)
            }
            state.outstanding += tasks.count
            if detached { state.detachedChunks += tasks.count }
        }
    }

    /// Takes every pending task (to fail them).
    func takePending() -> Deque<PoolTask> {
        state.withLock { state in
            defer { state.pending = [] }
            return state.pending
        }
    }

    /// Puts tasks that never started back at the front, in order.
    func requeue(_ tasks: Deque<PoolTask>) {
        state.withLock { state in
            for task in tasks.reversed() { state.pending.prepend(task) }
        }
    }

    /// `count` delivered tasks no longer count as outstanding (after their delivery).
    func settle(_ count: Int) {
        if count > 0 { state.withLock { $0.outstanding -= count } }
    }

    var phase: Phase { state.withLock { $0.phase } }
    var failure: PoolError? { state.withLock { $0.failure } }
}
