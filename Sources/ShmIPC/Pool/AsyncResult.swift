internal import Synchronization

/// The pending result of ``Pool/applyAsync(_:_:completion:)``. Python: `AsyncResult`.
public final class AsyncResult<Output: Sendable>: Sendable {
    private let state = Mutex<Result<Output, PoolError>?>(nil)
    private let done: Event?

    init() { done = try? Event(waitStrategy: .park) }

    func fulfill(_ result: Result<Output, PoolError>) {
        state.withLock { $0 = result }
        done?.set()
    }

    /// Whether the result is in. Python: `ready()`.
    public var isReady: Bool { state.withLock { $0 != nil } }

    /// Waits for the result (or `timeout`) and returns it. Python: `get(timeout)`.
    public func get(timeout: Duration? = nil) throws(PoolError) -> Output {
        let deadline = Deadline.after(timeout)
        while true {
            if let result = state.withLock({ $0 }) { return try result.get() }
            if deadline.hasPassed { throw .timedOut }
            if let done { done.wait(timeout: min(deadline.remaining, .milliseconds(100))) } else { Sys.sleep(.microseconds(100)) }
        }
    }
}
