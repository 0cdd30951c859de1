#if canImport(Glibc)
internal import Glibc
#endif
internal import SystemPackage

/// A futex: a 32-bit word in shared memory that processes can sleep on and wake each other
/// through. Always a shared (not `FUTEX_PRIVATE_FLAG`) futex, so it works across processes
/// that map the word at different addresses.
///
/// `Futex` is a view on a word it does not own: the mapping must outlive every call. Values of
/// the word are read and written by the caller's own atomics; the futex only sleeps and wakes.
///
/// Concurrency: any number of threads and processes may wait and wake on one word at once.
/// Peer death: a waiter whose waker died stays parked until its deadline; give every wait a
/// deadline where a peer can die.
public struct Futex: @unchecked Sendable {
    /// `@unchecked Sendable`: the word is shared memory, designed to be used from many
    /// threads and processes; the futex syscalls are safe to call concurrently on it.
    public let word: UnsafeMutablePointer<UInt32>

    /// A futex on `word`, which must be 4-byte aligned and stay mapped while in use.
    public init(_ word: UnsafeMutablePointer<UInt32>) {
        precondition(Int(bitPattern: word) % 4 == 0, "a futex word must be 4-byte aligned")
        self.word = word
    }

    /// How a ``wait(expected:deadline:)`` ended.
    public enum WaitResult: Sendable, Equatable {
        /// A ``wake(count:)`` woke this waiter (or, rarely, a spurious wake-up: re-check the word).
        case woken
        /// The deadline passed first.
        case timedOut
        /// The word did not hold `expected` when the wait began: no sleep happened.
        case valueChanged
    }

    /// Sleeps while the word holds `expected`, until woken or until `deadline`.
    ///
    /// The deadline is absolute (CLOCK_MONOTONIC): a signal interrupting the sleep does not
    /// extend it. After EINTR the wait resumes with the same deadline; if the word changed
    /// meanwhile it returns ``WaitResult/valueChanged``.
    public func wait(expected: UInt32, deadline: Deadline = .distantFuture) -> WaitResult {
        while true {
            switch Sys.futexWait(word, expected: expected, deadline: deadline) {
            case .success:
                return .woken
            case .failure(.resourceTemporarilyUnavailable):
                return .valueChanged
            case .failure(.timedOut):
                return .timedOut
            case .failure(.interrupted):
                if deadline.hasPassed { return .timedOut }
                continue  // same absolute deadline: the signal does not extend the timeout
            case .failure(let error):
                // EFAULT/EINVAL: an unmapped or misaligned word, which only a ShmIPC bug gives.
                preconditionFailure("ShmIPC: FUTEX_WAIT failed with \(error)")
            }
        }
    }

    /// Wakes at most `count` waiters; returns how many were woken.
    @discardableResult
    public func wake(count: Int = 1) -> Int {
        Sys.futexWake(word, count: Int32(clamping: count))
    }

    /// Wakes every waiter; returns how many were woken.
    @discardableResult
    public func wakeAll() -> Int {
        wake(count: Int(Int32.max))
    }
}
