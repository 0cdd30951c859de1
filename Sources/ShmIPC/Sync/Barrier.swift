internal import Atomics
internal import CShim
public import SystemPackage

/// A process-shared barrier for a fixed number of parties.
///
/// Python: `multiprocessing.Barrier(parties)` (`wait(timeout)`, `reset()`, `abort()`,
/// `broken`, `n_waiting`); the `action` argument has no equivalent (run it on the party whose
/// ``wait(timeout:)`` returns 0... or any chosen index).
///
/// `wait` returns the arrival index, 0 for the first party of a generation to arrive and
/// `parties - 1` for the last, which releases them all. The barrier is then ready for the next
/// generation.
///
/// Broken state: ``abort()``, a waiter's timeout, or a party's death break the barrier; every
/// waiter and every later `wait` throws ``SyncError/brokenBarrier`` until ``reset()``.
///
/// A waiter learns how *its own* generation ended, however late it runs again: the last 64
/// generations' outcomes are kept (one bit each), so a waiter descheduled (or stopped) through a
/// break, a reset and later generations still throws, and one whose generation tripped still
/// returns. One that slept through more than 64 generations cannot know and throws
/// ``SyncError/brokenBarrier``: it never proceeds as if all parties met when they may not have.
///
/// - Peer death: a party that dies while waiting is noticed by the other waiters within about
///   100 ms (the park slice) (each records its pid on arrival) and breaks the barrier. A
///   party that dies before it arrives cannot be told from a slow one: give `wait` a timeout.
///   The internal lock survives a dead holder as ``Lock`` does.
public final class Barrier: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties; the shared counters are accessed
    /// under the barrier's internal lock, the generation word atomically.
    let storage: SharedState<shmipc_barrier_state>
    /// How this process's threads wait on the object.
    public let waitStrategy: WaitStrategy
    /// The number of parties.
    public let parties: Int

    static func layout(parties: Int) -> ObjectLayout {
        ObjectLayout(
            kind: .barrier, version: 2, element: .none, capacity: parties,
            stateSize: MemoryLayout<shmipc_barrier_state>.stride + parties * MemoryLayout<Int32>.stride)
    }

    /// Creates or attaches the named barrier `name` for `parties` parties (attaching checks it).
    public init(
        name: SegmentName, mode: CreationMode, parties: Int,
        permissions: FilePermissions = SharedMemory.defaultPermissions, waitStrategy: WaitStrategy = .default
    ) throws(SharedObjectError) {
        precondition(parties >= 1 && parties <= Int(Int32.max) / 4, "a barrier needs at least one party")
        storage = try SharedState(name: name, mode: mode, layout: Self.layout(parties: parties), permissions: permissions) {
            Self.initialize($0, parties: parties)
        }
        self.parties = parties
        self.waitStrategy = waitStrategy
    }

    /// Creates an inheritable barrier.
    public init(parties: Int, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        precondition(parties >= 1 && parties <= Int(Int32.max) / 4, "a barrier needs at least one party")
        storage = try SharedState(inheritable: Self.layout(parties: parties)) { Self.initialize($0, parties: parties) }
        self.parties = parties
        self.waitStrategy = waitStrategy
    }

    /// Attaches an inheritable barrier; `parties` must match the creator's.
    public init(inheriting descriptor: FileDescriptor, parties: Int, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        storage = try SharedState(inheriting: descriptor, layout: Self.layout(parties: parties))
        self.parties = parties
        self.waitStrategy = waitStrategy
    }

    var lock: LockCore {
        LockCore(state: UnsafeMutableRawPointer(storage.state).assumingMemoryBound(to: shmipc_lock_state.self))
    }
    var generation: SharedWord {
        SharedWord((UnsafeMutableRawPointer(storage.state) + MemoryLayout<shmipc_barrier_state>.offset(of: \.generation)!).assumingMemoryBound(to: UInt32.self))
    }
    private var pids: UnsafeMutablePointer<Int32> { storage.trailing.assumingMemoryBound(to: Int32.self) }

    /// Waits until all parties have called `wait`, or `timeout` passes (`nil`: forever).
    ///
    /// - Returns: this party's arrival index in its generation, `0..<parties`.
    /// - Throws: ``SyncError/brokenBarrier`` if the barrier is or becomes broken, including
    ///   by this wait's own timeout (which breaks it for everyone, as in Python).
    @discardableResult
    public func wait(timeout: Duration? = nil) throws(SyncError) -> Int {
        let deadline = Deadline.after(timeout)
        let me = Sys.currentThreadID
        let (index, myGeneration) = try withInternalLock(me) { () throws(SyncError) in try arrive() }
        if index + 1 == parties { return index }

        var checkedPartiesAt = Deadline.now
        while true {
            if waitStrategy.spin({ generation.loadAcquiring() != myGeneration }) { break }
            if generation.loadAcquiring() != myGeneration { break }  // acquire: pairs with advance()
            if deadline.hasPassed {
                try breakIfStill(myGeneration, me)
                break
            }
            if waitStrategy.parks {
                _ = generation.futex.wait(expected: myGeneration, deadline: min(deadline, .after(WaitStrategy.parkSlice)))
            }
            // Every park slice (rate-limited for `.spin`): did a party that arrived die?
            if checkedPartiesAt.advanced(by: WaitStrategy.parkSlice).hasPassed {
                checkedPartiesAt = .now
                if generation.loadAcquiring() == myGeneration, arrivedPartyDied() {
                    try breakIfStill(myGeneration, me)
                    break
                }
            }
        }
        // The generation moved on: tripped, or broken while we waited.
        if try withInternalLock(me, { () throws(SyncError) in endedBroken(myGeneration) }) { throw .brokenBarrier }
        return index
    }

    /// Breaks the barrier: waiters and later `wait` calls throw ``SyncError/brokenBarrier``
    /// until ``reset()``.
    public func abort() {
        let me = Sys.currentThreadID
        try? withInternalLock(me) { () throws(SyncError) in
            storage.state.pointee.broken = 1
            breakGeneration()
        }
    }

    /// Returns the barrier to its initial state; current waiters throw ``SyncError/brokenBarrier``.
    public func reset() {
        let me = Sys.currentThreadID
        try? withInternalLock(me) { () throws(SyncError) in
            if storage.state.pointee.count > 0 { breakGeneration() }
            storage.state.pointee.broken = 0
        }
    }

    /// Whether the barrier is broken (a snapshot).
    public var isBroken: Bool {
        (try? withInternalLock(Sys.currentThreadID) { () throws(SyncError) in storage.state.pointee.broken != 0 }) ?? true
    }

    /// Parties waiting in the current generation (a snapshot). Python: `n_waiting`.
    public var waitingCount: Int {
        (try? withInternalLock(Sys.currentThreadID) { () throws(SyncError) in Int(storage.state.pointee.count) }) ?? 0
    }

    /// The descriptor to hand to a child process (`sharing:`); `nil` for a named object.
    public var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }

    /// Removes the object's name (only the process that created it may); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try storage.unlink() }

    // MARK: internal (the helpers below run with the internal lock held)

    /// Counts the calling party in: its arrival index and generation. The last party trips
    /// the barrier. Throws ``SyncError/brokenBarrier`` if it is broken.
    func arrive() throws(SyncError) -> (index: Int, generation: UInt32) {
        let state = storage.state
        if state.pointee.broken != 0 { throw .brokenBarrier }
        let index = Int(state.pointee.count)
        let current = generation.loadRelaxed()  // under the lock: only lock holders write it
        if index + 1 == parties {
            state.pointee.count = 0
            advance(broken: false)
            return (index, current)
        }
        state.pointee.count += 1
        pids[index] = Sys.currentPID
        return (index, current)
    }

    /// Whether generation `myGeneration`, now past, ended broken. How it ended is the bit
    /// `myGeneration % 64` of `outcomes`, valid while at most 64 generations ended since; a
    /// waiter descheduled through more cannot know, and reports broken (the safe answer: it
    /// never proceeds as if all parties met when they may not have).
    func endedBroken(_ myGeneration: UInt32) -> Bool {
        let passed = generation.loadRelaxed() &- myGeneration  // under the lock: only holders write it
        guard passed <= 64 else { return true }
        return storage.state.pointee.outcomes & (1 << UInt64(myGeneration % 64)) != 0
    }

    private func withInternalLock<R>(_ me: Int32, _ body: () throws(SyncError) -> R) throws(SyncError) -> R {
        // A dead holder's half-done update is repaired by breaking the barrier: the counts
        // cannot be trusted, and every waiter must learn it.
        let acquisition = try lock.lock(me, deadline: .distantFuture, strategy: waitStrategy)
        defer { try? lock.unlock(me) }
        try repairIfDied(acquisition, me)
        return try body()
    }

    /// With the internal lock just taken by `me`: if its previous holder died, breaks the
    /// barrier (the counts cannot be trusted) and marks the lock consistent.
    func repairIfDied(_ acquisition: LockAcquisition, _ me: Int32) throws(SyncError) {
        guard acquisition == .previousOwnerDied else { return }
        storage.state.pointee.broken = 1
        breakGeneration()
        try lock.markConsistent(me)
    }

    /// Breaks the barrier if generation `myGeneration` is still the current one.
    func breakIfCurrent(_ myGeneration: UInt32) {
        if generation.loadRelaxed() == myGeneration {  // under the lock: only holders write it
            storage.state.pointee.broken = 1
            breakGeneration()
        }
    }

    /// Ends the current generation (recording how: tripped, or broken), starts the next, and
    /// wakes every waiter of the one that ended.
    func advance(broken: Bool) {
        let state = storage.state
        let bit: UInt64 = 1 << UInt64(generation.loadRelaxed() % 64)  // under the lock
        state.pointee.outcomes = broken ? state.pointee.outcomes | bit : state.pointee.outcomes & ~bit
        // Release: pairs with the acquire loads of waiters, so what was written under the lock
        // is visible when they see the new generation (waiters read `outcomes` under the lock).
        generation.atomic.wrappingIncrement(ordering: .releasing)
        generation.futex.wakeAll()
    }

    /// Fails the waiters of the current generation and starts a new one.
    func breakGeneration() {
        storage.state.pointee.count = 0
        advance(broken: true)
    }

    private func breakIfStill(_ myGeneration: UInt32, _ me: Int32) throws(SyncError) {
        try withInternalLock(me) { () throws(SyncError) in breakIfCurrent(myGeneration) }
    }

    /// Whether a party that arrived in this generation is no longer alive. Reads the pid table
    /// without the lock: a stale entry can only name a live waiter of this generation or a
    /// process that did wait in it, so a false "dead" is impossible while the generation lasts.
    func arrivedPartyDied() -> Bool {
        let arrived = min(Int(storage.state.pointee.count), parties)
        for index in 0..<arrived where !Sys.threadIsAlive(pids[index]) {  // a pid is its main thread's id
            logRecovery(.warning, "a barrier party died waiting; the barrier is broken for the others", ["pid": "\(pids[index])"])
            return true
        }
        return false
    }

    private static func initialize(_ state: UnsafeMutableRawBufferPointer, parties: Int) {
        state.baseAddress!.bindMemory(to: shmipc_barrier_state.self, capacity: 1).pointee.parties = UInt32(parties)
    }
}
