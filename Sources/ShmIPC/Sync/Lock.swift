public import CShim
public import SystemPackage

/// A process-shared mutual-exclusion lock that survives the death of its holder.
///
/// Python: `multiprocessing.Lock`. Differences: the lock is owned by the thread that acquired
/// it (release by another thread is ``SyncError/notOwner``), and re-acquiring it from the
/// holding thread is ``SyncError/wouldDeadlock`` instead of a deadlock.
///
/// - Sharing: named (any process attaches by name; the header's kind check rejects other
///   objects) or inheritable (hand ``inheritableDescriptor`` to a child, which attaches with
///   ``init(inheriting:waitStrategy:)``). One `Lock` object may be used by many threads.
/// - Cost: uncontended `acquire` + `release` is one CAS and one exchange on shared memory.
/// - Waiting: per ``WaitStrategy``; `release` makes a wake-up syscall only if somebody parked.
/// - Peer death: if the holder dies, the next acquirer (or a parked waiter, within about
///   100 ms (the park slice) of the death) gets the lock with
///   ``LockAcquisition/previousOwnerDied``, and so does every acquirer after it until one calls
///   ``markConsistent()``. A waiter's death affects nobody. Caveats: the owner is identified by
///   its kernel thread id; a dead owner whose id is reused by a new thread before a waiter looks
///   is taken for alive (ids are reused only after pid_max others, 4 194 304 by default).
public final class Lock: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties; the shared state is designed for
    /// concurrent use by threads and processes (see ``LockCore``).
    private let storage: SharedState<shmipc_lock_state>
    /// `storage.state`, cached for the inlinable fast paths. Valid while `storage` lives,
    /// which is as long as this object.
    @usableFromInline let state: UnsafeMutablePointer<shmipc_lock_state>
    /// How this process's threads wait for the lock.
    public let waitStrategy: WaitStrategy

    static let layout = ObjectLayout(
        kind: .lock, version: 1, element: .none, capacity: 0, stateSize: MemoryLayout<shmipc_lock_state>.stride)

    /// Creates or attaches the named lock `name` (see ``CreationMode``).
    public init(
        name: SegmentName, mode: CreationMode,
        permissions: FilePermissions = SharedMemory.defaultPermissions, waitStrategy: WaitStrategy = .default
    ) throws(SharedObjectError) {
        storage = try SharedState(name: name, mode: mode, layout: Self.layout, permissions: permissions) {
            LockCore.initialize($0.baseAddress!.bindMemory(to: shmipc_lock_state.self, capacity: 1))
        }
        state = storage.state
        self.waitStrategy = waitStrategy
    }

    /// Creates an inheritable lock (no name; see ``inheritableDescriptor``).
    public init(waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        storage = try SharedState(inheritable: Self.layout) {
            LockCore.initialize($0.baseAddress!.bindMemory(to: shmipc_lock_state.self, capacity: 1))
        }
        state = storage.state
        self.waitStrategy = waitStrategy
    }

    /// Attaches an inheritable lock through a descriptor this process inherited.
    public init(inheriting descriptor: FileDescriptor, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        storage = try SharedState(inheriting: descriptor, layout: Self.layout)
        state = storage.state
        self.waitStrategy = waitStrategy
    }

    private var core: LockCore { LockCore(state: state) }

    /// Acquires the lock, waiting at most `timeout` (`nil`: forever; zero or negative: one try).
    ///
    /// - Returns: ``LockAcquisition/previousOwnerDied`` if a holder died with the lock.
    /// - Throws: ``SyncError/timedOut``, or ``SyncError/wouldDeadlock`` if this thread holds it.
    @inlinable
    public func acquire(timeout: Duration? = nil) throws(SyncError) -> LockAcquisition {
        let me = shmipc_thread_id()
        if LockWord.tryLock(state, me) { return LockWord.acquisitionResult(state) }
        return try acquireContended(me, timeout)
    }

    /// Out of line: waiting, dead-owner detection and errors.
    @usableFromInline @inline(never)
    func acquireContended(_ me: Int32, _ timeout: Duration?) throws(SyncError) -> LockAcquisition {
        try core.lock(me, timeout: timeout, strategy: waitStrategy)
    }

    /// Acquires the lock if it is free, without waiting; `nil` if it is held (even by a thread
    /// that died: only the waiting ``acquire(timeout:)`` detects a dead owner).
    /// Python: `acquire(block=False)`.
    @inlinable
    public func tryAcquire() -> LockAcquisition? {
        LockWord.tryLock(state, shmipc_thread_id()) ? LockWord.acquisitionResult(state) : nil
    }

    /// Releases the lock. Throws ``SyncError/notLocked`` or ``SyncError/notOwner`` when the
    /// calling thread does not hold it.
    @inlinable
    public func release() throws(SyncError) {
        if !LockWord.tryUnlock(state, shmipc_thread_id()) { throw LockWord.notHeldError(state) }
    }

    /// Marks the protected state repaired after ``LockAcquisition/previousOwnerDied``; only the
    /// holder may.
    public func markConsistent() throws(SyncError) {
        try core.markConsistent(Sys.currentThreadID)
    }

    /// Whether some thread holds the lock (a snapshot).
    public var isLocked: Bool { core.isLocked }

    /// Runs `body` holding the lock.
    ///
    /// If a previous owner died holding the lock, `recovering` runs first (holding the lock) to
    /// repair the protected state, then the lock is marked consistent and `body` runs. Without
    /// `recovering`, the lock is released untouched and ``SyncError/previousOwnerDied`` thrown.
    public func withLock<Result>(
        timeout: Duration? = nil, recovering: (() throws -> Void)? = nil, _ body: () throws -> Result
    ) throws -> Result {
        let me = Sys.currentThreadID
        let core = self.core
        let acquisition = try core.lock(me, timeout: timeout, strategy: waitStrategy)
        defer { try? core.unlock(me) }  // cannot fail: this thread holds the lock
        try acquisition.recover(recovering) { () throws(SyncError) in try core.markConsistent(me) }
        return try body()
    }

    /// The descriptor to hand to a child; `nil` for named locks.
    public var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }

    /// Removes the lock's name (creator only); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try storage.unlink() }
}
