internal import SystemPackage
internal import Synchronization

/// Where a submitted job's chunk results go: filled by whichever thread drives the pool, read
/// by the thread that waits for them (or handed to a callback).
@usableFromInline
final class PoolJob: Sendable {
    private let results = ThreadLock<[Int: Result<[UInt8], PoolError>]>([:])  // a lock ThreadSanitizer sees
    /// Called (on the driving thread) with each chunk's result instead of storing it.
    private let callback: (@Sendable (Int, Result<[UInt8], PoolError>) -> Void)?

    @usableFromInline init(callback: (@Sendable (Int, Result<[UInt8], PoolError>) -> Void)? = nil) {
        self.callback = callback
    }

    @usableFromInline func deliver(_ chunk: Int, _ result: Result<[UInt8], PoolError>) {
        if let callback { callback(chunk, result) } else { results.withLock { $0[chunk] = result } }
    }

    @usableFromInline func has(_ chunk: Int) -> Bool { results.withLock { $0[chunk] != nil } }
    @usableFromInline var count: Int { results.withLock { $0.count } }
    @usableFromInline var isEmpty: Bool { results.withLock { $0.isEmpty } }
    @usableFromInline func take(_ chunk: Int) -> Result<[UInt8], PoolError>? { results.withLock { $0.removeValue(forKey: chunk) } }
    @usableFromInline func takeAny() -> (chunk: Int, result: Result<[UInt8], PoolError>)? {
        results.withLock { results in
            guard let chunk = results.keys.min() else { return nil }
            return (chunk, results.removeValue(forKey: chunk)!)
        }
    }
}

/// A task waiting for, or running in, a worker: one chunk of one job.
@usableFromInline
struct PoolTask: Sendable {
    /// The task message (`PoolWire`); its id is written at submission.
    var message: [UInt8]
    let job: PoolJob
    @usableFromInline let chunk: Int
    var id: UInt64 = 0

    @usableFromInline init(message: [UInt8], job: PoolJob, chunk: Int) {
        self.message = message
        self.job = job
        self.chunk = chunk
    }
}

/// What a `Pool` needs to start a worker.
@usableFromInline
struct PoolSettings: Sendable {
    var processes: Int
    var maxTasksPerChild: Int?
    var initializer: String?
    var initializerArgument: [UInt8]
    var startMethod: StartMethod
    var executable: String?
    @usableFromInline var maxMessageSize: Int
    var ringCapacity: Int
    var waitStrategy: WaitStrategy
    /// Descriptors every worker receives after its own (pipe, doorbell).
    var sharing: [FileDescriptor]
    /// The shared objects the initializer's argument carries (their descriptors are in
    /// `sharing`): kept alive, descriptors open, while workers may be started.
    var sharedObjects: [any AnyObject & Sendable] = []
}

