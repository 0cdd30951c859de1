internal import Synchronization

/// The pending result of ``Pool/applyAsync(_:_:completion:)`` and
/// ``Pool/mapAsync(_:_:chunkSize:callback:errorCallback:)``. Python: `AsyncResult`.
public final class AsyncResult<Output: Sendable>: Sendable {
    private let state = Mutex<Result<Output, PoolError>?>(nil)
    private let done: Event?

    package init() { done = try? Event(waitStrategy: .park) }

    package func fulfill(_ result: Result<Output, PoolError>) {
        state.withLock { $0 = result }
        done?.set()
    }

    /// Whether the result is in. Python: `ready()`.
    public var isReady: Bool { state.withLock { $0 != nil } }

    /// Whether the task succeeded; nil while it is not ready (Python's `successful()` raises
    /// ValueError then).
    public var isSuccessful: Bool? {
        state.withLock { result in
            switch result {
            case .success?: true
            case .failure?: false
            case nil: nil
            }
        }
    }

    /// Waits until the result is in or `timeout` passes (nil: no limit); whether it is in.
    /// Python: `wait(timeout)` (which returns None; check `ready()`).
    @discardableResult
    public func wait(timeout: Duration? = nil) -> Bool {
        let deadline = Deadline.after(timeout)
        while !isReady {
            if deadline.hasPassed { return false }
            if let done { done.wait(timeout: min(deadline.remaining, .milliseconds(100))) } else { Sys.sleep(.microseconds(100)) }
        }
        return true
    }

    /// Suspends the task (never blocking a thread) until the result is in or `timeout`
    /// passes; whether it is in. Throws `CancellationError` if the task is cancelled.
    @discardableResult
    public func wait(timeout: Duration? = nil) async throws -> Bool {
        let deadline = Deadline.after(timeout)
        while !isReady {
            if deadline.hasPassed { return false }
            if let done { _ = try await done.core.wait(deadline: deadline) } else { try await Task.sleep(for: .microseconds(100)) }
        }
        return true
    }

    /// Suspends the task until the result is in (or `timeout`) and returns it; throws the
    /// task's error, ``PoolError/timedOut``, or `CancellationError`.
    public func get(timeout: Duration? = nil) async throws -> Output {
        guard try await wait(timeout: timeout), let result = state.withLock({ $0 }) else { throw PoolError.timedOut }
        return try result.get()
    }

    /// Waits for the result (or `timeout`) and returns it. Python: `get(timeout)`.
    public func get(timeout: Duration? = nil) throws(PoolError) -> Output {
        guard wait(timeout: timeout), let result = state.withLock({ $0 }) else { throw .timedOut }
        return try result.get()
    }
}
