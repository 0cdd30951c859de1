internal import Atomics
internal import CShim
public import SystemPackage

/// A process-shared condition variable with its own recursive lock.
///
/// Python: `multiprocessing.Condition()` (whose default lock is an RLock). Hold the lock
/// (``acquire(timeout:)`` / ``withLock(timeout:recovering:_:)``) around ``wait(timeout:)``,
/// ``wait(for:timeout:)``, ``notify(_:)`` and ``notifyAll()``; calling them without it is
/// ``SyncError/notOwner``.
///
/// `notify(n)` wakes exactly `min(n, waiting)` of the waiters registered when it is called:
/// the waiting count and pending notifications are kept under the condition's lock, and a
/// woken waiter returns `true` only by consuming one notification. Spurious futex wake-ups
/// never surface as notifications.
///
/// - Peer death: the lock behaves as ``RLock`` (a dead holder is taken over; the next
///   holder sees ``LockAcquisition/previousOwnerDied``; `wait` then throws
///   ``SyncError/previousOwnerDied`` with the lock held). A waiter that dies while waiting stays
///   counted, so a later `notify(n)` may spend one notification on it; `notifyAll()` is
///   unaffected.
public final class Condition: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties over shared state, whose plain
    /// counters are accessed only under the condition's lock.
    let storage: SharedState<shmipc_condition_state>
    /// How this process's threads wait on the object.
    public let waitStrategy: WaitStrategy

    static let layout = ObjectLayout(
        kind: .condition, version: 1, element: .none, capacity: 0,
        stateSize: MemoryLayout<shmipc_condition_state>.stride)

    /// Creates or attaches the named condition `name`.
    public init(
        name: SegmentName, mode: CreationMode,
        permissions: FilePermissions = SharedMemory.defaultPermissions, waitStrategy: WaitStrategy = .default
    ) throws(SharedObjectError) {
        storage = try SharedState(name: name, mode: mode, layout: Self.layout, permissions: permissions) { _ in }
        self.waitStrategy = waitStrategy
    }

    /// Creates an inheritable condition.
    public init(waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        storage = try SharedState(inheritable: Self.layout) { _ in }
        self.waitStrategy = waitStrategy
    }

    /// Attaches an inheritable condition.
    public init(inheriting descriptor: FileDescriptor, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        storage = try SharedState(inheriting: descriptor, layout: Self.layout)
        self.waitStrategy = waitStrategy
    }

    var lock: RecursiveLockCore {
        RecursiveLockCore(lock: LockCore(state: UnsafeMutableRawPointer(storage.state).assumingMemoryBound(to: shmipc_lock_state.self)))
    }
    var sequence: SharedWord {
        SharedWord((UnsafeMutableRawPointer(storage.state) + MemoryLayout<shmipc_condition_state>.offset(of: \.sequence)!).assumingMemoryBound(to: UInt32.self))
    }

    // MARK: the lock

    /// Acquires (or re-enters) the condition's lock.
    public func acquire(timeout: Duration? = nil) throws(SyncError) -> LockAcquisition {
        try lock.lock(Sys.currentThreadID, timeout: timeout, strategy: waitStrategy)
    }

    /// Releases one level of the condition's lock.
    public func release() throws(SyncError) {
        try lock.unlock(Sys.currentThreadID)
    }

    /// Marks the protected state repaired after ``LockAcquisition/previousOwnerDied``.
    public func markConsistent() throws(SyncError) {
        try lock.lock.markConsistent(Sys.currentThreadID)
    }

    /// Runs `body` holding the lock; see ``Lock/withLock(timeout:recovering:_:)``.
    public func withLock<Result>(
        timeout: Duration? = nil, recovering: (() throws -> Void)? = nil, _ body: () throws -> Result
    ) throws -> Result {
        let me = Sys.currentThreadID
        let lock = self.lock
        let acquisition = try lock.lock(me, timeout: timeout, strategy: waitStrategy)
        defer { try? lock.unlock(me) }  // cannot fail: this thread holds the lock
        try acquisition.recover(recovering) { () throws(SyncError) in try lock.lock.markConsistent(me) }
        return try body()
    }

    // MARK: waiting

    /// Releases the lock, waits for a notification or the timeout (`nil`: forever), and
    /// re-acquires the lock (at the same recursion depth) before returning.
    ///
    /// - Returns: `true` if notified, `false` if the timeout passed.
    /// - Throws: ``SyncError/notOwner`` without the lock; ``SyncError/previousOwnerDied`` (lock
    ///   held) if a holder died while this thread waited.
    public func wait(timeout: Duration? = nil) throws(SyncError) -> Bool {
        let me = Sys.currentThreadID
        let lock = self.lock
        guard lock.lock.owner == me else { throw lock.lock.owner == 0 ? .notLocked : .notOwner }
        let deadline = Deadline.after(timeout)
        let state = storage.state
        state.pointee.waiting += 1  // under the lock
        while true {
            // Read before unlocking: a notify between the unlock and the futex wait changes
            // it, and the wait then returns at once. Relaxed: the lock orders the counters.
            let seen = sequence.loadRelaxed()
            let depth = try lock.unlockFully(me)
            // Woken, timed out or spurious: the counters, read under the lock, decide.
            if !waitStrategy.spin({ sequence.loadRelaxed() != seen }), waitStrategy.parks, !deadline.hasPassed {
                _ = sequence.futex.wait(expected: seen, deadline: deadline)
            }
            let acquisition = lock.relock(me, depth: depth, strategy: waitStrategy)
            if state.pointee.signals > 0 {
                state.pointee.signals -= 1
                state.pointee.waiting -= 1
                if acquisition == .previousOwnerDied { throw .previousOwnerDied }
                return true
            }
            if acquisition == .previousOwnerDied {
                state.pointee.waiting -= 1
                throw .previousOwnerDied
            }
            if deadline.hasPassed {
                state.pointee.waiting -= 1
                return false
            }
            // No notification left for us (none came, or another waiter took it): wait again.
        }
    }

    /// Waits until `predicate` (evaluated with the lock held) is true or the timeout passes;
    /// returns the predicate's last value. Python: `wait_for(predicate, timeout)`.
    public func wait(for predicate: () throws -> Bool, timeout: Duration? = nil) throws -> Bool {
        let deadline = Deadline.after(timeout)
        var result = try predicate()
        while !result {
            if deadline.hasPassed { break }
            _ = try wait(timeout: deadline.remaining)
            result = try predicate()
        }
        return result
    }

    /// Wakes up to `count` waiters (each returns `true` from `wait`). Requires the lock.
    public func notify(_ count: Int = 1) throws(SyncError) {
        let me = Sys.currentThreadID
        let owner = lock.lock.owner
        guard owner == me else { throw owner == 0 ? .notLocked : .notOwner }
        let state = storage.state
        let unnotified = Int(state.pointee.waiting) - Int(state.pointee.signals)
        let waking = min(max(count, 0), unnotified)
        guard waking > 0 else { return }  // nobody to wake: no syscall
        state.pointee.signals += UInt32(waking)
        // Relaxed: waiters read the counters only under the lock; the bump only has to
        // change the futex word, which the kernel compares.
        sequence.atomic.wrappingIncrement(ordering: .relaxed)
        sequence.futex.wake(count: waking)
    }

    /// Wakes every waiter. Requires the lock. Python: `notify_all()`.
    public func notifyAll() throws(SyncError) {
        try notify(Int(Int32.max))
    }

    /// The descriptor to hand to a child process (`sharing:`); `nil` for a named object.
    public var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }

    /// Removes the object's name (only the process that created it may); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try storage.unlink() }
}
