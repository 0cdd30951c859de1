internal import Atomics
internal import CShim
internal import SystemPackage

/// What every heap-backed structure (``SharedDictionary``, ``SharedList``, ``Namespace``) has in
/// common: its segment, the control block (`shmipc_store_state`), the heap after it, the
/// writers' lock, the readers' sequence counter, and the repair after a writer's death.
///
/// - Writers are serialized by a process-shared lock (``LockCore``: owner death detected).
///   Their structural changes run inside ``mutating(_:)``, which makes the sequence odd.
/// - Readers take no lock (``read(_:)``): they read under the sequence and retry when a writer
///   overlapped; after a few failed attempts (a writer hogging the structure, or one that died
///   with the sequence odd) they read under the lock instead, which also repairs.
/// - Every change is published by one aligned atomic store; what else a writer updates is
///   derived. A writer that takes the lock from a dead one calls the structure's `repair`,
///   which re-derives it from the published structure (``SharedHeap/rebuild(live:)``).
///
/// A final class shared by the structure object's threads. `@unchecked Sendable`: immutable
/// stored properties; the shared state is designed for concurrent use (see above).
@usableFromInline
final class SharedStore: @unchecked Sendable {
    let storage: SharedState<shmipc_store_state>
    let heap: SharedHeap
    let waitStrategy: WaitStrategy
    /// Re-derives the structure's derived state after a writer died (a static function of the
    /// structure, so it captures nothing).
    let repair: (SharedStore) throws(ManagerError) -> Void

    var state: UnsafeMutablePointer<shmipc_store_state> { storage.state }

    /// The default heap size of a structure: 1 MiB.
    static let defaultCapacity = 1 << 20
    /// The smallest heap: 4 KiB.
    static let minimumCapacity = 4096
    /// Optimistic read attempts before a reader takes the lock.
    static let optimisticAttempts = 64

    // MARK: layout

    static func layout(kind: ObjectKind, element: TypeFingerprint, units: UInt32) -> ObjectLayout {
        ObjectLayout(
            kind: kind, version: 1, element: element, capacity: Int(units) * SharedHeap.unitSize,
            stateSize: MemoryLayout<shmipc_store_state>.stride + Int(units) * SharedHeap.unitSize)
    }

    /// The heap's units for a requested capacity in bytes (clamped to the supported range).
    static func units(forCapacity bytes: Int) -> UInt32 {
        let clamped = min(max(bytes, minimumCapacity), Int(SharedHeap.maximumUnits) * SharedHeap.unitSize)
        return UInt32((clamped + SharedHeap.unitSize - 1) / SharedHeap.unitSize)
    }

    /// The layout for a capacity read from an object's header (any value: checked first).
    static func layout(kind: ObjectKind, element: TypeFingerprint, headerCapacity: UInt64) throws(SharedObjectError) -> ObjectLayout {
        let unit = UInt64(SharedHeap.unitSize)
        guard headerCapacity % unit == 0, headerCapacity / unit >= UInt64(minimumCapacity) / unit,
              headerCapacity / unit <= UInt64(SharedHeap.maximumUnits) else {
            throw .corrupted(field: "capacity", value: headerCapacity)
        }
        return layout(kind: kind, element: element, units: UInt32(headerCapacity / unit))
    }

    // MARK: creating and attaching

    /// Creates (or, per `mode`, attaches) a named structure; `format` lays out an empty one.
    convenience init(
        name: SegmentName, mode: CreationMode, kind: ObjectKind, element: TypeFingerprint, capacity: Int,
        permissions: FilePermissions, waitStrategy: WaitStrategy,
        format: (SharedHeap) -> Void, repair: @escaping (SharedStore) throws(ManagerError) -> Void
    ) throws(SharedObjectError) {
        let units = Self.units(forCapacity: capacity)
        let segment: SharedObjectSegment
        switch mode {
        case .openExisting:
            segment = try SharedObjectSegment.attach(name: name) { (capacity) throws(SharedObjectError) in
                try Self.layout(kind: kind, element: element, headerCapacity: capacity)
            }
        case .createExclusive, .openOrCreate:
            do {
                segment = try SharedObjectSegment.create(
                    name: name, mode: .createExclusive, layout: Self.layout(kind: kind, element: element, units: units),
                    permissions: permissions) { Self.format($0, units: units, format) }
            } catch .segment(.alreadyExists) where mode == .openOrCreate {
                // Another process created it: attach with its capacity.
                try self.init(name: name, mode: .openExisting, kind: kind, element: element, capacity: capacity,
                              permissions: permissions, waitStrategy: waitStrategy, format: format, repair: repair)
                return
            }
        }
        try self.init(segment, waitStrategy: waitStrategy, repair: repair)
    }

    /// Creates an inheritable structure.
    convenience init(
        inheritable kind: ObjectKind, element: TypeFingerprint, capacity: Int, waitStrategy: WaitStrategy,
        format: (SharedHeap) -> Void, repair: @escaping (SharedStore) throws(ManagerError) -> Void
    ) throws(SharedObjectError) {
        let units = Self.units(forCapacity: capacity)
        let segment = try SharedObjectSegment.createInheritable(
            layout: Self.layout(kind: kind, element: element, units: units)) { Self.format($0, units: units, format) }
        try self.init(segment, waitStrategy: waitStrategy, repair: repair)
    }

    /// Attaches an inherited structure (its capacity comes from its header).
    convenience init(
        inheriting descriptor: FileDescriptor, kind: ObjectKind, element: TypeFingerprint, waitStrategy: WaitStrategy,
        repair: @escaping (SharedStore) throws(ManagerError) -> Void
    ) throws(SharedObjectError) {
        let segment = try SharedObjectSegment.attach(inheriting: descriptor) { (capacity) throws(SharedObjectError) in
            try Self.layout(kind: kind, element: element, headerCapacity: capacity)
        }
        try self.init(segment, waitStrategy: waitStrategy, repair: repair)
    }

    private init(
        _ segment: consuming SharedObjectSegment, waitStrategy: WaitStrategy,
        repair: @escaping (SharedStore) throws(ManagerError) -> Void
    ) throws(SharedObjectError) {
        // The heap's size comes from the validated layout, never from the shared control block.
        let units = UInt32(segment.layout.capacity / SharedHeap.unitSize)
        storage = SharedState(segment)
        heap = SharedHeap(
            state: storage.state, base: UnsafeMutableRawPointer(storage.state) + MemoryLayout<shmipc_store_state>.stride,
            units: units)
        self.waitStrategy = waitStrategy
        self.repair = repair
    }

    private static func format(_ bytes: UnsafeMutableRawBufferPointer, units: UInt32, _ format: (SharedHeap) -> Void) {
        // Zero-filled: lock free, sequence 0 (even), counts 0.
        let state = bytes.baseAddress!.bindMemory(to: shmipc_store_state.self, capacity: 1)
        state.pointee.heap_units = UInt64(units)
        let heap = SharedHeap(state: state, base: bytes.baseAddress! + MemoryLayout<shmipc_store_state>.stride, units: units)
        heap.format()
        format(heap)
    }

    // MARK: words of the control block

    private func word64(_ field: KeyPath<shmipc_store_state, UInt64>) -> UnsafeAtomic<UInt64> {
        WordAccess.atomic(UnsafeMutableRawPointer(state) + MemoryLayout<shmipc_store_state>.offset(of: field)!, UInt64.self)
    }

    var sequence: UnsafeAtomic<UInt64> { word64(\.sequence) }
    /// The structure's root word: its commit point.
    var root: UnsafeAtomic<UInt64> { word64(\.root) }
    var count: UnsafeAtomic<UInt64> { word64(\.count) }
    var tombstones: UnsafeAtomic<UInt64> { word64(\.tombstones) }
    var recoveries: UnsafeAtomic<UInt64> { word64(\.recoveries) }

    private var lock: LockCore {
        LockCore(state: UnsafeMutableRawPointer(state).assumingMemoryBound(to: shmipc_lock_state.self))
    }

    // MARK: reading

    /// Runs `body` (which only reads) without the lock, under the sequence: it runs again if a
    /// writer overlapped it, so it may see a torn structure and must only read checked bounds
    /// (its errors count only if no writer overlapped). After ``optimisticAttempts`` it runs
    /// under the lock instead.
    @inline(__always)
    func read<R>(_ body: () throws(ManagerError) -> R) throws(ManagerError) -> R {
        let sequence = self.sequence
        for _ in 0..<Self.optimisticAttempts {
            // Acquire: pairs with the releasing close in mutating(), so a reader that sees an
            // even value sees every write of the change it closed.
            let before = sequence.load(ordering: .acquiring)
            if before & 1 == 0 {
                let result = Result { () throws(ManagerError) -> R in try body() }
                // Acquire fence: the loads in `body` happen before the re-read below.
                atomicMemoryFence(ordering: .acquiring)
                if sequence.load(ordering: .relaxed) == before { return try result.get() }
            }
            shmipc_cpu_relax()
        }
        return try readLocked(body)
    }

    @inline(never)
    private func readLocked<R>(_ body: () throws(ManagerError) -> R) throws(ManagerError) -> R {
        try acquire()
        defer { release() }
        return try body()
    }

    // MARK: writing

    /// Runs `body` holding the writers' lock (repairing first if a writer died holding it).
    @inline(__always)
    func write<R>(_ body: () throws(ManagerError) -> R) throws(ManagerError) -> R {
        try acquire()
        defer { release() }
        return try body()
    }

    /// Takes the writers' lock, waiting as long as a live holder keeps it; repairs the
    /// structure if the previous holder died. Pair with ``release()``.
    func acquire() throws(ManagerError) {
        let me = Sys.currentThreadID
        let acquisition: LockAcquisition
        do { acquisition = try lock.lock(me, deadline: .distantFuture, strategy: waitStrategy) } catch { throw .lock(error) }
        if acquisition == .previousOwnerDied { try recover(me) }
    }

    func release() { lock.unlockHeld() }

    @inline(never)
    private func recover(_ me: Int32) throws(ManagerError) {
        do {
            try mutating { () throws(ManagerError) in try repair(self) }
        } catch {
            release()  // still inconsistent: the next writer tries again
            throw error
        }
        recoveries.wrappingIncrement(ordering: .relaxed)  // relaxed: a statistic
        logRecovery(.warning, "a shared structure was repaired: a writer died in the middle of a change")
        try? lock.markConsistent(me)  // cannot fail: this thread holds the lock
    }

    /// Runs a structural change: the sequence is odd while `body` runs, so readers overlapping
    /// it retry. Caller holds the lock.
    @inline(__always)
    func mutating<R>(_ body: () throws(ManagerError) -> R) throws(ManagerError) -> R {
        let sequence = self.sequence
        // Odd, and above any value a reader saw, even after a writer that died while odd.
        let opened = (sequence.load(ordering: .relaxed) | 1) &+ 2  // relaxed: only lock holders write it
        sequence.store(opened, ordering: .relaxed)
        // Release fence: a reader that sees any write below also sees the odd sequence.
        atomicMemoryFence(ordering: .releasing)
        defer { sequence.store(opened &+ 1, ordering: .releasing) }  // pairs with the acquire in read()
        return try body()
    }

    // MARK: facts

    /// Heap statistics (a snapshot).
    var statistics: SharedHeapStatistics {
        SharedHeapStatistics(
            capacity: (Int(heap.units) - 2) * SharedHeap.unitSize,
            used: Int(clamping: heap.usedUnits.load(ordering: .relaxed)) * SharedHeap.unitSize,  // relaxed: a statistic
            recoveries: Int(clamping: recoveries.load(ordering: .relaxed)))  // relaxed: a statistic
    }
}

/// How full a shared structure's heap is, and how often it was repaired (a snapshot).
public struct SharedHeapStatistics: Hashable, Sendable {
    /// Bytes the heap can hand out (its capacity less two sentinel units).
    public var capacity: Int
    /// Bytes in allocated blocks (payload, heads and rounding to 16 bytes).
    public var used: Int
    /// Times a writer repaired the structure after another died in the middle of a change.
    public var recoveries: Int
}
