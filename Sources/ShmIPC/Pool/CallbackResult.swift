/// One result that a callback delivers (on the pool's driving thread) to a task awaiting it,
/// which may be cancelled first: it then resumes at once with `CancellationError`, and the
/// late result is dropped. Exactly one resume, whichever comes first.
final class CallbackResult<Output: Sendable>: Sendable {
    private enum Phase {
        case empty
        case delivered(Result<Output, PoolError>)
        case suspended(UnsafeContinuation<Output, any Error>)
        case cancelled
        case finished
    }
    private let phase = ThreadLock(Phase.empty)  // a lock ThreadSanitizer sees

    /// Hands the result over (once; later calls are ignored).
    func deliver(_ result: Result<Output, PoolError>) {
        settle(.delivered(result))?.resume(with: result.mapError { $0 })
    }

    /// Records `ending` (delivered, or cancelled) unless something came first; the task's
    /// continuation, if it is suspended and so is to be resumed by the caller.
    private func settle(_ ending: Phase) -> UnsafeContinuation<Output, any Error>? {
        phase.withLock { phase in
            switch phase {
            case .empty:
                phase = ending
                return nil
            case .suspended(let continuation):
                phase = .finished
                return continuation
            case .delivered, .cancelled, .finished:
                return nil
            }
        }
    }

    /// The result, suspending the task until it is delivered. Throws its error, or
    /// `CancellationError` if the task is cancelled first. Call once.
    func value() async throws -> Output {
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                let now: Result<Output, any Error>? = phase.withLock { phase in
                    switch phase {
                    case .empty:
                        phase = .suspended(continuation)
                        return nil
                    case .delivered(let result):
                        phase = .finished
                        return result.mapError { $0 }
                    case .cancelled:
                        phase = .finished
                        return .failure(CancellationError())
                    case .suspended, .finished:
                        preconditionFailure("CallbackResult awaited twice")
                    }
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            settle(.cancelled)?.resume(throwing: CancellationError())
        }
    }
}
