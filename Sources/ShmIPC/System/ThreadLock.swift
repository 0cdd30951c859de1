#if canImport(Glibc)
internal import Glibc
#endif

/// A process-private lock over `State`, on a `pthread_mutex_t`: for the state of the async
/// waiter, where ThreadSanitizer must see the synchronization. `Synchronization.Mutex` locks
/// with raw futex calls in the (uninstrumented) standard library, so ThreadSanitizer reports
/// every access it orders as a race; a 15-line program shows it (Notes/0009).
final class ThreadLock<State>: @unchecked Sendable {
    /// `@unchecked Sendable`: `state` is accessed only with `mutex` held.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var state: State

    init(_ state: State) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
        self.state = state
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` on the state with the lock held.
    func withLock<Result, Failure: Error>(_ body: (inout State) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
