/// A task executor that runs tasks on this process's async waiter thread (`shmipc-async`), the
/// thread that resumes every suspended ShmIPC wait: a task that prefers it is resumed where
/// the wake-up lands, with no hop onto a thread of the cooperative pool.
///
/// A suspended wait is resumed by the waiter thread, which the peer's futex wake woke. On the
/// default executor the task then runs on a pool thread, which the resumption must wake in
/// turn: two wake-ups per resumption where a parked thread pays one. Preferring this executor
/// saves the second (`rtt.queue.spsc.async.park.waiter` against `rtt.queue.spsc.async.park`
/// in `shm-bench`):
///
/// ```swift
/// try await withTaskExecutorPreference(WaiterExecutor.shared) {
///     for try await request in requests.elements { try await replies.put(handle(request)) }
/// }
/// // or: Task(executorPreference: WaiterExecutor.shared) { … }
/// ```
///
/// The thread is one per process and serial: while a task runs on it, no other suspended
/// ShmIPC wait in the process is resumed, timed out or checked. Use it for the short
/// latency-critical steps between awaits (take, answer, await again), never for long work or
/// a blocking call; actor-isolated code still runs on its actor. Jobs a task queues on it
/// while it runs (a `Task.yield()`) run after the waiter has looked for completions again, so
/// deadlines and wake-ups are still reaped between them.
///
/// Where the process has no io_uring (an old kernel, io_uring disabled: see
/// <doc:AsyncAwait>), the executor hands its jobs to the global concurrent executor: the tasks
/// run as they would without the preference.
public final class WaiterExecutor: TaskExecutor {
    /// The executor of this process's waiter thread (a forked child's is its own thread).
    public static let shared = WaiterExecutor()

    private init() {}

    public func enqueue(_ job: consuming ExecutorJob) {
        let waiter = AsyncWaiter.shared
        guard waiter.runsJobs else { return globalConcurrentExecutor.enqueue(job) }
        waiter.enqueue(UnownedJob(job))
    }
}
