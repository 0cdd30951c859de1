/// Why a ``Pool`` task did not produce its result.
public enum PoolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The task threw in the worker: the error's description there.
    case taskFailed(String)
    /// The worker running the task ended before it answered (a crash, a trap, SIGKILL); the
    /// pool replaced it. `exitCode` as ``Process/exitCode``.
    case workerDied(pid: Int32, exitCode: Int32)
    /// The pool was closed or terminated before the task was submitted.
    case closed
    /// The pool was terminated while the task was pending or running.
    case terminated
    /// A chunk of arguments (or of results) encodes to more than the pool's message limit:
    /// use smaller chunks or raise `maxMessageSize`.
    case messageTooLarge(size: Int, limit: Int)
    /// Arguments or results did not encode or decode.
    case coding(String)
    /// A worker could not be started (or could not start its entry point or initializer).
    case startFailed(String)
    /// The wait for a result timed out (the task may still run).
    case timedOut
    /// The pool's initializer threw in several new workers in a row (as many as the pool has
    /// processes, at least 3) and no worker ran a task in between: the pool stops starting
    /// workers and fails its pending and future tasks with this error. The message is the
    /// last worker's description of the initializer's error.
    case initializerFailed(String)

    public var description: String {
        switch self {
        case .taskFailed(let message): "the task failed in the worker: \(message)"
        case .workerDied(let pid, let code): "worker \(pid) died running the task (exit code \(code))"
        case .closed: "the pool is closed"
        case .terminated: "the pool was terminated"
        case .messageTooLarge(let size, let limit): "a chunk of \(size) bytes exceeds the pool's message limit of \(limit)"
        case .coding(let reason): "coding failed: \(reason)"
        case .startFailed(let reason): "a worker could not start: \(reason)"
        case .timedOut: "timed out waiting for a result"
        case .initializerFailed(let message): "the pool's initializer failed in every new worker: \(message)"
        }
    }
}
