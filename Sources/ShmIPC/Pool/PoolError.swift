public import SystemPackage

/// Why a ``Pool`` task did not produce its result.
public enum PoolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The task threw in the worker: the error's description there.
    case taskFailed(String)
    /// The worker running the task ended before it answered (a crash, a trap, SIGKILL); the
    /// pool replaced it. `exitCode` as ``Process/exitCode``.
    case workerDied(pid: ProcessID, exitCode: Int32)
    /// The pool was closed or terminated before the task was submitted.
    case closed
    /// The pool was terminated while the task was pending or running.
    case terminated
    /// A chunk of arguments (or of results) encodes to more than the pool's message limit:
    /// use smaller chunks or raise `maxMessageSize`.
    case messageTooLarge(size: Int, limit: Int)
    /// Arguments or results did not encode or decode.
    case coding(String)
    /// A worker (or the pool's machinery) could not be started: the underlying error.
    /// (Indirect: the payload is large, and every task result carries a `PoolError` slot;
    /// inline, it made `Result<[UInt8], PoolError>` larger and pool.apply.rtt ~6% slower.)
    indirect case startFailed(PoolStartError)
    /// The wait for a result timed out (the task may still run).
    case timedOut
    /// The pool's initializer threw in several new workers in a row (as many as the pool has
    /// processes, at least 3) and no worker ran a task in between: the pool stops starting
    /// workers and fails its pending and future tasks with this error. The message is the
    /// last worker's description of the initializer's error.
    case initializerFailed(String)
    /// The worker host running the task on another machine went away before it answered (it
    /// died, or the network between it and this pool host did), and the task's entry is not
    /// declared idempotent (``Entry/idempotent()``), so it was not run again: it may or may
    /// not have run. `task` is the chunk's id on this pool host, `host` the worker host's name.
    case workerLost(task: UInt64, host: String)

    /// A description for people: logs and error messages.
    public var description: String {
        switch self {
        case .taskFailed(let message): "the task failed in the worker: \(message)"
        case .workerDied(let pid, let code): "worker \(pid) died running the task (exit code \(code))"
        case .closed: "the pool is closed"
        case .terminated: "the pool was terminated"
        case .messageTooLarge(let size, let limit): "a chunk of \(size) bytes exceeds the pool's message limit of \(limit)"
        case .coding(let reason): "coding failed: \(reason)"
        case .startFailed(let error): "a worker could not start: \(error)"
        case .timedOut: "timed out waiting for a result"
        case .initializerFailed(let message): "the pool's initializer failed in every new worker: \(message)"
        case .workerLost(let task, let host): "worker host '\(host)' went away running task \(task) (not idempotent: not run again)"
        }
    }
}

/// What kept a ``Pool`` from starting a worker (``PoolError/startFailed(_:)``): the typed error
/// of the step that failed.
public enum PoolStartError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The worker process: fork refused in a multi-threaded process, an entry not registered
    /// (the pool worker's, or the initializer's), or a system call.
    case process(ProcessError)
    /// A shared object the pool needs (a worker's pipe, the pool's doorbell).
    case sharedObject(SharedObjectError)
    /// A worker's pipe could not be connected.
    case channel(ChannelError)
    /// The pool's background thread (for callbacks and `async` results).
    case thread(Errno)

    /// A description for people: logs and error messages.
    public var description: String {
        switch self {
        case .process(let error): "\(error)"
        case .sharedObject(let error): "\(error)"
        case .channel(let error): "\(error)"
        case .thread(let error): "pthread_create failed: \(error)"
        }
    }
}
