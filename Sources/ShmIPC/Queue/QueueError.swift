/// Errors of queue operations.
public enum QueueError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The timeout passed before the queue had room (put) or an item (get).
    case timedOut
    /// The queue was closed: producers can no longer put; consumers get this once it is empty.
    case closed
    /// The single-producer or single-consumer role is held by the live process `pid`.
    case roleTaken(pid: Int32)
    /// `taskDone()` was called more times than items were put (JoinableQueue).
    case taskDoneTooManyTimes

    /// A description for people: logs and error messages.
    public var description: String {
        switch self {
        case .timedOut: "timed out"
        case .closed: "the queue is closed"
        case .roleTaken(let pid): "the role is held by process \(pid)"
        case .taskDoneTooManyTimes: "taskDone() called more times than items were put"
        }
    }
}
