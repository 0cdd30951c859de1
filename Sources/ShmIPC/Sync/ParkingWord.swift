public import Atomics

/// A futex word and, in the 4 bytes after it, the count of threads parked or about to park on
/// it: the one parking primitive of ShmIPC. Every shared object that sleeps on a word and
/// wakes only when somebody sleeps (``Event``, ``Semaphore``, ``Doorbell``, a
/// ``JoinableQueue``'s task count, a queue's or a ring's not-empty and not-full epochs) is a
/// view of this kind on its own C struct.
///
/// Two registrations, one per kind of fast path:
/// - **Symmetric** (``park(deadline:until:)`` with ``wakeIfParked(count:)``): both sides write
///   their word, then read the other's, sequentially consistent (Dekker): either the waker
///   sees the waiter counted or the waiter sees the new value (and the futex re-checks it in
///   the kernel). For primitives whose every change is an atomic read-modify-write anyway.
/// - **Asymmetric** (``parkAfterHeavyBarrier(seen:deadline:fence:ready:)`` with
///   ``bump(waking:)``): the fast path, which runs per item, issues only a compiler barrier
///   (``Membarrier/fastSideBarrier(_:)``) between publishing and reading ``waiters``, and bumps
///   only if somebody registered (``RingControl/didPut(count:)``); the rare parking side issues
///   `membarrier(GLOBAL_EXPEDITED)` (``Membarrier``), or both sides fence where membarrier is
///   unavailable. The word is an epoch the waker bumps; the waiter re-checks its own
///   condition (`ready`) after registering.
///
/// A view on memory it does not own: the mapping must outlive every call.
@usableFromInline
struct ParkingWord: @unchecked Sendable {
    /// `@unchecked Sendable`: a pointer into shared memory designed for concurrent access.
    @usableFromInline let word: UnsafeMutablePointer<UInt32>

    /// The word at `word`; its waiter count is the next 4 bytes.
    @inlinable @inline(__always)
    init(_ word: UnsafeMutablePointer<UInt32>) { self.word = word }

    /// The word at `offset` bytes into `base`.
    @inlinable @inline(__always)
    init(_ base: UnsafeMutableRawPointer, offset: Int) {
        word = (base + offset).assumingMemoryBound(to: UInt32.self)
    }

    @inlinable var value: UnsafeAtomic<UInt32> {
        UnsafeAtomic(at: UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }
    @inlinable var waiters: UnsafeAtomic<UInt32> {
        UnsafeAtomic(at: (UnsafeMutableRawPointer(word) + 4).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }
    @usableFromInline var futex: Futex { Futex(word) }

    // MARK: symmetric

    /// Registers as a waiter, reads the word (sequentially consistent), and sleeps while it
    /// holds that value, unless `done(value)` already holds, until woken or `deadline`. One
    /// sleep at most: the caller loops, re-checking its own condition.
    @discardableResult
    func park(deadline: Deadline, until done: (UInt32) -> Bool) -> Futex.WaitResult {
        waiters.wrappingIncrement(ordering: .sequentiallyConsistent)
        let current = value.load(ordering: .sequentiallyConsistent)
        let result = done(current) ? .valueChanged : futex.wait(expected: current, deadline: deadline)
        waiters.wrappingDecrement(ordering: .relaxed)  // relaxed: only a hint for wakers
        return result
    }

    /// After changing the word with a sequentially consistent operation: wakes up to `count`
    /// sleepers if any registered (no syscall otherwise).
    func wakeIfParked(count: Int = Int(Int32.max)) {
        if waiters.load(ordering: .sequentiallyConsistent) > 0 { futex.wake(count: count) }
    }

    // MARK: asymmetric (per-item fast paths)

    /// Bumps the epoch and wakes up to `count` sleepers (closing: everybody).
    @usableFromInline @inline(never)
    func bump(waking count: Int) {
        // Release: a parker that sees the new epoch also sees what was published before it.
        value.wrappingIncrement(ordering: .releasing)
        futex.wake(count: count)
    }

    /// The epoch to pass to ``parkAfterHeavyBarrier(seen:deadline:fence:ready:)``: read it
    /// before the final check of the condition.
    var epoch: UInt32 { value.load(ordering: .acquiring) }  // pairs with the releasing bump

    /// Registers, issues the heavy barrier, and sleeps on the epoch `seen` unless `ready()`
    /// now holds, until woken or `deadline`. Whether the sleep ran to its deadline.
    func parkAfterHeavyBarrier(seen: UInt32, deadline: Deadline, fence: Bool, ready: () -> Bool) -> Bool {
        waiters.wrappingIncrement(ordering: .relaxed)  // relaxed: ordered by the barrier below
        Membarrier.heavyBarrier(fence)
        var timedOut = false
        if !ready() { timedOut = futex.wait(expected: seen, deadline: deadline) == .timedOut }
        waiters.wrappingDecrement(ordering: .relaxed)  // relaxed: only a hint for wakers
        return timedOut
    }
}
