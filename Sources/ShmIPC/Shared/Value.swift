public import Atomics
public import CShim
public import SystemPackage

/// A value of type `T` in shared memory. Python: `multiprocessing.Value` (`.value`,
/// `get_lock()`), and `RawValue` through ``withUnsafeMutablePointer(_:)``.
///
/// - Word-sized `T` (1, 2, 4 or 8 bytes, naturally aligned: integers, Bool, Double…) lives in
///   one atomic word: ``load()`` and ``store(_:)`` are single atomic instructions. Integers add
///   lock-free read-modify-write operations (`add`, `subtract`, `bitwiseAnd`/`Or`/`Xor`,
///   `exchange`, `compareExchange`); floating point adds by compare-exchange on the bits.
/// - Any other `BitwiseCopyable` `T` is double-buffered: a writer (serialized by the value's
///   lock) fills the buffer readers are not using, under a sequence counter, then flips the
///   current index. Reads are never torn and never block the writer; a read retries only if
///   two writes overlap it.
/// - Memory orderings (defaults, not parameters, because swift-atomics needs them constant):
///   loads acquire and stores release, so a value published with `store` also publishes what
///   the writer wrote before it; read-modify-writes are acquire-release; `addRelaxed` is for
///   pure counters whose value orders nothing.
/// - ``withLock(_:)`` runs a read-modify-write of any `T` under the value's process-shared lock
///   (Python's `with v.get_lock(): v.value += 1`). Lock-free operations do not take the lock:
///   mixing them with `withLock` on the same value races, as in Python.
/// - Peer death: a writer killed mid-store tears nothing readers see (word stores are single
///   instructions; wide values go to the inactive buffer). A process killed holding the lock is
///   detected as ``Lock``'s owner death; the value itself is always whole, so the lock is
///   marked consistent again automatically.
public final class Value<T: BitwiseCopyable>: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties over shared state designed for
    /// concurrent use by threads and processes.
    private let storage: SharedState<shmipc_value_state>
    @usableFromInline let state: UnsafeMutablePointer<shmipc_value_state>
    /// The first buffer (the value itself for word-sized `T`).
    @usableFromInline let buffer: UnsafeMutableRawPointer
    @usableFromInline let bufferStride: Int
    @usableFromInline let isWord: Bool

    static var layout: ObjectLayout {
        let stride = bufferStride
        return ObjectLayout(
            kind: .value, version: 1, element: TypeFingerprint(of: T.self), capacity: 1,
            stateSize: MemoryLayout<shmipc_value_state>.stride + (WordAccess.isWord(T.self) ? 1 : 2) * stride)
    }

    /// A buffer: the value's size rounded up to whole 8-byte words and to a cache-line pair.
    static var bufferStride: Int {
        let words = (max(MemoryLayout<T>.size, 1) + 7) / 8 * 8
        return (words + Int(SHMIPC_CACHE_PAIR) - 1) / Int(SHMIPC_CACHE_PAIR) * Int(SHMIPC_CACHE_PAIR)
    }

    /// Creates (holding `initial`) or attaches the named value `name`.
    public init(
        name: SegmentName, mode: CreationMode, initial: T,
        permissions: FilePermissions = SharedMemory.defaultPermissions
    ) throws(SharedObjectError) {
        storage = try SharedState(name: name, mode: mode, layout: Self.layout, permissions: permissions) {
            Self.initialize($0, initial)
        }
        (state, buffer, bufferStride, isWord) = Self.views(storage)
    }

    /// Creates an inheritable value holding `initial`.
    public init(_ initial: T) throws(SharedObjectError) {
        storage = try SharedState(inheritable: Self.layout) { Self.initialize($0, initial) }
        (state, buffer, bufferStride, isWord) = Self.views(storage)
    }

    /// Attaches an inheritable value.
    public init(inheriting descriptor: FileDescriptor) throws(SharedObjectError) {
        storage = try SharedState(inheriting: descriptor, layout: Self.layout)
        (state, buffer, bufferStride, isWord) = Self.views(storage)
    }

    private static func views(_ storage: SharedState<shmipc_value_state>)
        -> (UnsafeMutablePointer<shmipc_value_state>, UnsafeMutableRawPointer, Int, Bool) {
        (storage.state, storage.trailing, bufferStride, WordAccess.isWord(T.self))
    }

    private static func initialize(_ bytes: UnsafeMutableRawBufferPointer, _ initial: T) {
        // Zero-filled state: lock free, current = 0, sequences even. Buffer 0 holds `initial`.
        (bytes.baseAddress! + MemoryLayout<shmipc_value_state>.stride).storeBytes(of: initial, as: T.self)
    }

    // MARK: reading and writing

    /// The value, read atomically (never torn). Python: `v.value`.
    @inlinable
    public func load() -> T {
        if isWord { return WordAccess.loadAcquiring(buffer, as: T.self) }
        return loadBuffered()
    }

    /// Replaces the value atomically for readers. Python: `v.value = x` (without the lock).
    /// Wide values take the value's lock to serialize writers.
    @inlinable
    public func store(_ newValue: T) {
        if isWord { return WordAccess.storeReleasing(newValue, buffer) }
        storeBuffered(newValue)
    }

    /// The value; setting stores it. Python: `.value`.
    @inlinable
    public var value: T {
        get { load() }
        set { store(newValue) }
    }

    /// Runs `body` on the value holding the value's lock, and publishes what it leaves in
    /// `value`. Python: `with v.get_lock(): ...`.
    public func withLock<Result>(_ body: (inout T) throws -> Result) throws -> Result {
        let lock = self.lock
        try lock.lockSelfHealing(Sys.currentThreadID)  // the value is always whole
        defer { lock.unlockHeld() }
        var current = load()
        let result = try body(&current)
        if isWord { WordAccess.storeReleasing(current, buffer) } else { writeBuffered(current) }
        return result
    }

    /// Calls `body` with the value's raw storage: no atomicity, no lock. Python: `RawValue`.
    /// For word-sized `T` the pointer is the value; for wide `T` it is the *current* buffer,
    /// valid only while no writer runs.
    public func withUnsafeMutablePointer<Result>(_ body: (UnsafeMutablePointer<T>) throws -> Result) rethrows -> Result {
        let current = isWord ? 0 : Int(currentIndex.load(ordering: .acquiring)) & 1  // & 1: a forged index stays in bounds
        return try body((buffer + current * bufferStride).assumingMemoryBound(to: T.self))
    }

    /// The descriptor to hand to a child process (`sharing:`); `nil` for a named object.
    public var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }
    /// Removes the object's name (only the process that created it may); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try storage.unlink() }

    // MARK: double buffering (wide T)

    /// The value's lock (Python's `get_lock()`), as a view.
    var lock: LockCore {
        LockCore(state: UnsafeMutableRawPointer(state).assumingMemoryBound(to: shmipc_lock_state.self))
    }

    @usableFromInline var currentIndex: UnsafeAtomic<UInt32> {
        WordAccess.atomic(UnsafeMutableRawPointer(state) + 16, UInt32.self)
    }

    @usableFromInline func sequence(_ index: Int) -> UnsafeAtomic<UInt64> {
        WordAccess.atomic(UnsafeMutableRawPointer(state) + 24 + 8 * index, UInt64.self)
    }

    /// Reads the current buffer under its sequence counter; retries if a writer overlapped.
    /// After ``optimisticReads`` failed tries (writers never let up, or a peer forged an odd
    /// sequence) it reads under the value's lock instead: a read never spins forever.
    @usableFromInline
    func loadBuffered() -> T {
        for _ in 0..<Self.optimisticReads {
            // Acquire: pairs with the releasing flip in writeBuffered().
            let index = Int(currentIndex.load(ordering: .acquiring)) & 1  // & 1: never another buffer
            let sequence = self.sequence(index)
            let before = sequence.load(ordering: .acquiring)  // pairs with the closing store
            guard before & 1 == 0 else { continue }
            let source = buffer + index * bufferStride
            // The bytes land in a local T (its first read is only storage to overwrite).
            var result = source.loadUnaligned(as: T.self)
            Swift.withUnsafeMutableBytes(of: &result) { Self.copyWords(from: source, to: $0) }
            // Acquire fence: the word loads above happen before the re-read below.
            atomicMemoryFence(ordering: .acquiring)
            if sequence.load(ordering: .relaxed) == before { return result }
        }
        return loadLocked()
    }

    /// Tries of ``loadBuffered()`` before it takes the lock.
    static var optimisticReads: Int { 100_000 }

    /// Reads the current buffer holding the value's lock (writers hold it too, so the read
    /// is whole).
    @inline(never)
    func loadLocked() -> T {
        let lock = self.lock
        do throws(SyncError) {
            try lock.lockSelfHealing(Sys.currentThreadID)
        } catch {
            preconditionFailure("Value.load inside withLock on the same value (\(error)): read the inout value instead")
        }
        defer { lock.unlockHeld() }
        let index = Int(currentIndex.load(ordering: .relaxed)) & 1  // relaxed: ordered by the lock
        let source = buffer + index * bufferStride
        var result = source.loadUnaligned(as: T.self)
        Swift.withUnsafeMutableBytes(of: &result) { Self.copyWords(from: source, to: $0) }
        return result
    }

    /// Copies a value's bytes out of a buffer with relaxed 8-byte atomic loads (the buffer is
    /// padded to whole words; the last word's extra bytes are dropped).
    private static func copyWords(from source: UnsafeMutableRawPointer, to destination: UnsafeMutableRawBufferPointer) {
        var offset = 0
        while offset < destination.count {
            // Relaxed: the sequence re-check in loadBuffered() validates the whole copy.
            let word = WordAccess.atomic(source + offset, UInt64.self).load(ordering: .relaxed)
            let length = min(8, destination.count - offset)
            withUnsafeBytes(of: word) { bytes in
                destination.baseAddress!.advanced(by: offset).copyMemory(from: bytes.baseAddress!, byteCount: length)
            }
            offset += 8
        }
    }

    @usableFromInline
    func storeBuffered(_ newValue: T) {
        let lock = self.lock
        do throws(SyncError) {
            try lock.lockSelfHealing(Sys.currentThreadID)  // a dead writer tore only the inactive buffer
        } catch {
            preconditionFailure("Value.store inside withLock on the same value (\(error)): assign to the inout value instead")
        }
        writeBuffered(newValue)
        lock.unlockHeld()
    }

    /// Fills the inactive buffer under its sequence counter, then makes it current. The caller
    /// holds the value's lock.
    func writeBuffered(_ newValue: T) {
        let target = 1 - (Int(currentIndex.load(ordering: .relaxed)) & 1)  // relaxed: only lock holders write it; & 1: a forged index stays in bounds
        let sequence = self.sequence(target)
        // Odd while filling; a different odd value even after a writer that died mid-fill.
        let opened = (sequence.load(ordering: .relaxed) | 1) &+ 2
        sequence.store(opened, ordering: .relaxed)
        // Release fence: readers that see any new word below also see the odd sequence.
        atomicMemoryFence(ordering: .releasing)
        let destination = buffer + target * bufferStride
        Swift.withUnsafeBytes(of: newValue) { bytes in
            var offset = 0
            while offset < bytes.count {
                var word: UInt64 = 0  // the last word is zero-padded
                let length = min(8, bytes.count - offset)
                withUnsafeMutableBytes(of: &word) { $0.baseAddress!.copyMemory(from: bytes.baseAddress! + offset, byteCount: length) }
                // Relaxed: the sequence and the flip below publish the words.
                WordAccess.atomic(destination + offset, UInt64.self).store(word, ordering: .relaxed)
                offset += 8
            }
        }
        sequence.store(opened &+ 1, ordering: .releasing)  // pairs with the reader's acquire
        currentIndex.store(UInt32(target), ordering: .releasing)  // pairs with the reader's acquire
    }
}

// MARK: lock-free operations for integers

extension Value where T: AtomicInteger {
    @inlinable var atomic: UnsafeAtomic<T> {
        UnsafeAtomic(at: buffer.assumingMemoryBound(to: T.AtomicRepresentation.self))
    }

    /// Adds `delta` (wrapping) and returns the previous value; acquire-release.
    @inlinable @discardableResult
    public func add(_ delta: T) -> T { atomic.loadThenWrappingIncrement(by: delta, ordering: .acquiringAndReleasing) }

    /// Adds `delta` (wrapping) and returns the previous value; relaxed: for counters whose
    /// value orders no other memory.
    @inlinable @discardableResult
    public func addRelaxed(_ delta: T) -> T { atomic.loadThenWrappingIncrement(by: delta, ordering: .relaxed) }

    /// Subtracts `delta` (wrapping) and returns the previous value; acquire-release.
    @inlinable @discardableResult
    public func subtract(_ delta: T) -> T { atomic.loadThenWrappingDecrement(by: delta, ordering: .acquiringAndReleasing) }

    /// Bitwise AND with `operand`; returns the previous value; acquire-release.
    @inlinable @discardableResult
    public func bitwiseAnd(_ operand: T) -> T { atomic.loadThenBitwiseAnd(with: operand, ordering: .acquiringAndReleasing) }
    /// Bitwise OR with `operand`; returns the previous value; acquire-release.
    @inlinable @discardableResult
    public func bitwiseOr(_ operand: T) -> T { atomic.loadThenBitwiseOr(with: operand, ordering: .acquiringAndReleasing) }
    /// Bitwise XOR with `operand`; returns the previous value; acquire-release.
    @inlinable @discardableResult
    public func bitwiseXor(_ operand: T) -> T { atomic.loadThenBitwiseXor(with: operand, ordering: .acquiringAndReleasing) }

    /// Stores `newValue` and returns the previous value; acquire-release.
    @inlinable @discardableResult
    public func exchange(_ newValue: T) -> T { atomic.exchange(newValue, ordering: .acquiringAndReleasing) }

    /// Stores `desired` if the value is `expected`; returns whether it did and the value seen.
    /// Acquire-release on success, acquire on failure.
    @inlinable
    public func compareExchange(expected: T, desired: T) -> (exchanged: Bool, original: T) {
        atomic.compareExchange(expected: expected, desired: desired, ordering: .acquiringAndReleasing)
    }
}

// MARK: floating point

extension Value where T: BinaryFloatingPoint {
    /// Adds `delta` atomically (compare-exchange on the bit pattern) and returns the new value.
    @discardableResult
    public func add(_ delta: T) -> T {
        precondition(isWord, "atomic add needs a word-sized floating-point type")
        while true {
            let current = WordAccess.loadAcquiring(buffer, as: T.self)
            let next = current + delta
            if compareExchangeBits(current, next) { return next }
        }
    }

    private func compareExchangeBits(_ expected: T, _ desired: T) -> Bool {
        switch MemoryLayout<T>.size {
        case 4:
            return WordAccess.atomic(buffer, UInt32.self).compareExchange(
                expected: unsafeBitCast(expected, to: UInt32.self), desired: unsafeBitCast(desired, to: UInt32.self),
                ordering: .acquiringAndReleasing).exchanged
        default:
            return WordAccess.atomic(buffer, UInt64.self).compareExchange(
                expected: unsafeBitCast(expected, to: UInt64.self), desired: unsafeBitCast(desired, to: UInt64.self),
                ordering: .acquiringAndReleasing).exchanged
        }
    }
}

// MARK: Bool

extension Value where T == Bool {
    @inlinable var atomicBool: UnsafeAtomic<Bool> {
        UnsafeAtomic(at: buffer.assumingMemoryBound(to: Bool.AtomicRepresentation.self))
    }

    /// Stores `newValue`; returns the previous value. Acquire-release.
    @inlinable @discardableResult
    public func exchange(_ newValue: Bool) -> Bool { atomicBool.exchange(newValue, ordering: .acquiringAndReleasing) }

    /// Stores `desired` if the value is `expected`. Acquire-release on success, acquire on failure.
    @inlinable
    public func compareExchange(expected: Bool, desired: Bool) -> (exchanged: Bool, original: Bool) {
        atomicBool.compareExchange(expected: expected, desired: desired, ordering: .acquiringAndReleasing)
    }

    /// Logical AND with `operand`; returns the previous value; acquire-release.
    @inlinable @discardableResult
    public func logicalAnd(_ operand: Bool) -> Bool { atomicBool.loadThenLogicalAnd(with: operand, ordering: .acquiringAndReleasing) }
    /// Logical OR with `operand`; returns the previous value; acquire-release.
    @inlinable @discardableResult
    public func logicalOr(_ operand: Bool) -> Bool { atomicBool.loadThenLogicalOr(with: operand, ordering: .acquiringAndReleasing) }
    /// Logical XOR with `operand`; returns the previous value; acquire-release.
    @inlinable @discardableResult
    public func logicalXor(_ operand: Bool) -> Bool { atomicBool.loadThenLogicalXor(with: operand, ordering: .acquiringAndReleasing) }
}
