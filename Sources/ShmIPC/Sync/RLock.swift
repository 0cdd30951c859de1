public import CShim
public import SystemPackage

/// A process-shared recursive lock: the owning thread may acquire it again; it is released
/// when every acquisition has been released.
///
/// Python: `multiprocessing.RLock`. The owner is a thread of a process; release by any other
/// thread is ``SyncError/notOwner``, release when not held ``SyncError/notLocked``.
///
/// Sharing, waiting and cost as ``Lock``; a nested acquire is a load and a plain increment.
/// Peer death: as ``Lock``: the next acquirer gets ``LockAcquisition/previousOwnerDied`` with a
/// recursion depth of 1, whatever depth the dead owner had reached.
public final class RLock: @unchecked Sendable {
    /// `@unchecked Sendable`: as ``Lock``.
    private let storage: SharedState<shmipc_lock_state>
    /// `storage.state`, cached for the inlinable fast paths. Valid while `storage` lives,
    /// which is as long as this object.
    @usableFromInline let state: UnsafeMutablePointer<shmipc_lock_state>
    /// How this process's threads wait on the object.
    public let waitStrategy: WaitStrategy

    static let layout = ObjectLayout(
        kind: .recursiveLock, version: 1, element: .none, capacity: 0,
        stateSize: MemoryLayout<shmipc_lock_state>.stride)

    /// Creates or attaches the named lock `name`.
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

    /// Creates an inheritable lock.
    public init(waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        storage = try SharedState(inheritable: Self.layout) {
            LockCore.initialize($0.baseAddress!.bindMemory(to: shmipc_lock_state.self, capacity: 1))
        }
        state = storage.state
        self.waitStrategy = waitStrategy
    }

    /// Attaches an inheritable lock through an inherited descriptor.
    public init(inheriting descriptor: FileDescriptor, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        storage = try SharedState(inheriting: descriptor, layout: Self.layout)
        state = storage.state
        self.waitStrategy = waitStrategy
    }

    var core: RecursiveLockCore { RecursiveLockCore(lock: LockCore(state: state)) }

    /// Acquires (or re-enters) the lock, waiting at most `timeout` (`nil`: forever).
    @inlinable
    public func acquire(timeout: Duration? = nil) throws(SyncError) -> LockAcquisition {
        let me = shmipc_thread_id()
        if LockWord.owner(state) == me {
            // Re-entry: the depth is written by the owner only (plain accesses).
            precondition(state.pointee.recursion < UInt32.max, "RLock recursion overflow")
            state.pointee.recursion += 1
            return LockWord.acquisitionResult(state)
        }
        if LockWord.tryLock(state, me) {
            state.pointee.recursion = 1
            return LockWord.acquisitionResult(state)
        }
        return try acquireContended(me, timeout)
    }

    /// Out of line: waiting, dead-owner detection and errors.
    @usableFromInline @inline(never)
    func acquireContended(_ me: Int32, _ timeout: Duration?) throws(SyncError) -> LockAcquisition {
        try core.lock(me, timeout: timeout, strategy: waitStrategy)
    }

    /// Acquires or re-enters without waiting; `nil` if another thread holds it.
    public func tryAcquire() -> LockAcquisition? {
        try? core.lock(Sys.currentThreadID, deadline: Deadline(uptimeNanoseconds: 0), strategy: .park)
    }

    /// Releases one level of acquisition.
    @inlinable
    public func release() throws(SyncError) {
        let me = shmipc_thread_id()
        guard LockWord.owner(state) == me else { throw LockWord.notHeldError(state) }
        let depth = state.pointee.recursion
        if depth > 1 {
            state.pointee.recursion = depth - 1
        } else {
            // The depth stays 1: only an owner reads it, and the next owner sets it.
            _ = LockWord.tryUnlock(state, me)
        }
    }

    /// Marks the protected state repaired after ``LockAcquisition/previousOwnerDied``.
    public func markConsistent() throws(SyncError) {
        try core.lock.markConsistent(Sys.currentThreadID)
    }

    /// Whether the calling thread holds the lock.
    public var isOwnedByCurrentThread: Bool { core.lock.owner == Sys.currentThreadID }

    /// The calling thread's recursion depth (0 if it does not hold the lock).
    public var recursionDepth: Int { isOwnedByCurrentThread ? Int(core.lock.recursion) : 0 }

    /// Runs `body` holding the lock; see ``Lock/withLock(timeout:recovering:_:)``.
    public func withLock<Result>(
        timeout: Duration? = nil, recovering: (() throws -> Void)? = nil, _ body: () throws -> Result
    ) throws -> Result {
        let me = Sys.currentThreadID
        let core = self.core
        let acquisition = try core.lock(me, timeout: timeout, strategy: waitStrategy)
        defer { try? core.unlock(me) }  // cannot fail: this thread holds the lock
        try acquisition.recover(recovering) { () throws(SyncError) in try core.lock.markConsistent(me) }
        return try body()
    }

    /// The descriptor to hand to a child process (`sharing:`); `nil` for a named object.
    public var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }

    /// Removes the object's name (only the process that created it may); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try storage.unlink() }
}

/// Recursion on top of ``LockCore``, shared by ``RLock`` and ``Condition``.
struct RecursiveLockCore {
    let lock: LockCore

    @inline(__always)
    func lock(_ me: Int32, deadline: Deadline, strategy: WaitStrategy) throws(SyncError) -> LockAcquisition {
        if lock.owner == me { return reenter() }
        let acquisition = try lock.lock(me, deadline: deadline, strategy: strategy)
        lock.recursion = 1
        return acquisition
    }

    /// As ``lock(_:deadline:strategy:)``, computing the deadline only when it must wait.
    @inline(__always)
    func lock(_ me: Int32, timeout: Duration?, strategy: WaitStrategy) throws(SyncError) -> LockAcquisition {
        if lock.owner == me { return reenter() }
        let acquisition = try lock.lock(me, timeout: timeout, strategy: strategy)
        lock.recursion = 1
        return acquisition
    }

    @inline(__always)
    private func reenter() -> LockAcquisition {
        let depth = lock.recursion
        precondition(depth < UInt32.max, "RLock recursion overflow")
        lock.recursion = depth + 1
        return lock.acquisitionResult()
    }

    @inline(__always)
    func unlock(_ me: Int32) throws(SyncError) {
        guard lock.owner == me else { throw lock.notHeldError() }
        let depth = lock.recursion
        if depth > 1 {
            lock.recursion = depth - 1
        } else {
            // The depth stays 1: it is read only by an owner, and the next one sets it.
            lock.unlockHeld()
        }
    }

    /// Releases every level (for a Condition wait); returns the depth to restore.
    func unlockFully(_ me: Int32) throws(SyncError) -> UInt32 {
        let owner = lock.owner
        guard owner == me else { throw owner == 0 ? .notLocked : .notOwner }
        let depth = lock.recursion
        lock.unlockHeld()
        return depth
    }

    /// Re-acquires and restores a depth saved by ``unlockFully(_:)``.
    func relock(_ me: Int32, depth: UInt32, strategy: WaitStrategy) -> LockAcquisition {
        // No deadline: a Condition waiter must hold the lock again before it returns, as in
        // Python; a dead holder is detected and taken over meanwhile, so this cannot hang on one.
        let acquisition = (try? lock.lock(me, deadline: .distantFuture, strategy: strategy)) ?? .acquired
        lock.recursion = depth
        return acquisition
    }
}
