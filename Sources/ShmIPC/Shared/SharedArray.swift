public import Atomics
internal import CShim
public import SystemPackage

/// Errors of ``SharedArray``'s checked accessors.
public enum SharedArrayError: Error, Hashable, Sendable, CustomStringConvertible {
    /// An index outside `0..<count`.
    case indexOutOfRange(index: Int, count: Int)
    /// A range outside `0...count`.
    case rangeOutOfRange(lower: Int, upper: Int, count: Int)

    /// A description for people: logs and error messages.
    public var description: String {
        switch self {
        case .indexOutOfRange(let index, let count): "index \(index) is out of range 0..<\(count)"
        case .rangeOutOfRange(let lower, let upper, let count): "range \(lower)..<\(upper) is out of range 0..<\(count)"
        }
    }
}

/// A fixed-size array of `T` in shared memory. Python: `multiprocessing.Array` (with
/// `get_lock()`: ``withLock(_:)``) and `RawArray` (the unsafe buffer accessors).
///
/// - Elements of a word-sized `T` (1, 2, 4 or 8 bytes, naturally aligned) are read and written
///   atomically by the subscript (acquire loads, release stores); integer elements add lock-free
///   read-modify-writes (`add(_:at:)`…). Wider elements are copied without atomicity: guard
///   them with ``withLock(_:)`` (or use a ``Value`` per element).
/// - Indices are bounds-checked: the subscripts trap with the index and the count, the
///   `element(at:)` family throws ``SharedArrayError``.
/// - Peer death: as ``Value``; a process killed inside `withLock` is reported to the next
///   locker as ``Lock``'s owner death would be, and the lock marked consistent (elements are
///   whole words or were never guaranteed atomic).
public final class SharedArray<T: BitwiseCopyable>: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties over shared memory.
    private let storage: SharedState<shmipc_value_state>
    @usableFromInline let elements: UnsafeMutableRawPointer
    @usableFromInline let isWord: Bool
    /// The number of elements.
    public let count: Int

    static func layout(_ count: Int) -> ObjectLayout {
        ObjectLayout(
            kind: .array, version: 1, element: TypeFingerprint(of: T.self), capacity: count,
            stateSize: MemoryLayout<shmipc_value_state>.stride + max(count, 1) * MemoryLayout<T>.stride)
    }

    /// Creates (every element `repeating`) or attaches the named array `name` of `count` elements.
    public init(
        name: SegmentName, mode: CreationMode, count: Int, repeating initial: T,
        permissions: FilePermissions = SharedMemory.defaultPermissions
    ) throws(SharedObjectError) {
        precondition(count >= 0, "a SharedArray's count cannot be negative")
        storage = try SharedState(name: name, mode: mode, layout: Self.layout(count), permissions: permissions) {
            Self.fill($0, count, initial)
        }
        (elements, isWord, self.count) = (storage.trailing, WordAccess.isWord(T.self), count)
    }

    /// Creates an inheritable array.
    public init(count: Int, repeating initial: T) throws(SharedObjectError) {
        precondition(count >= 0, "a SharedArray's count cannot be negative")
        storage = try SharedState(inheritable: Self.layout(count)) { Self.fill($0, count, initial) }
        (elements, isWord, self.count) = (storage.trailing, WordAccess.isWord(T.self), count)
    }

    /// Attaches an inheritable array; `count` must match the creator's.
    public init(inheriting descriptor: FileDescriptor, count: Int) throws(SharedObjectError) {
        storage = try SharedState(inheriting: descriptor, layout: Self.layout(count))
        (elements, isWord, self.count) = (storage.trailing, WordAccess.isWord(T.self), count)
    }

    private static func fill(_ bytes: UnsafeMutableRawBufferPointer, _ count: Int, _ initial: T) {
        let base = bytes.baseAddress! + MemoryLayout<shmipc_value_state>.stride
        for index in 0..<count { (base + index * MemoryLayout<T>.stride).storeBytes(of: initial, as: T.self) }
    }

    @inlinable @inline(__always)
    func address(_ index: Int) -> UnsafeMutableRawPointer {
        precondition(index >= 0 && index < count, "SharedArray index \(index) is out of range 0..<\(count)")
        return elements + index &* MemoryLayout<T>.stride
    }

    /// The element at `index` (atomic for word-sized `T`). Traps if out of range.
    @inlinable
    public subscript(index: Int) -> T {
        get {
            let at = address(index)
            return isWord ? WordAccess.loadAcquiring(at, as: T.self) : at.loadUnaligned(as: T.self)
        }
        set {
            let at = address(index)
            if isWord { WordAccess.storeReleasing(newValue, at) } else { at.storeBytes(of: newValue, as: T.self) }
        }
    }

    /// The elements in `range`, copied out. Python: `a[2:5]`. Traps if out of range.
    public subscript(range: Range<Int>) -> [T] {
        precondition(range.lowerBound >= 0 && range.upperBound <= count,
                     "SharedArray range \(range) is out of range 0..<\(count)")
        return range.map { self[$0] }
    }

    /// The element at `index`, or ``SharedArrayError/indexOutOfRange(index:count:)``.
    public func element(at index: Int) throws(SharedArrayError) -> T {
        guard index >= 0 && index < count else { throw .indexOutOfRange(index: index, count: count) }
        return self[index]
    }

    /// Sets the element at `index`, or throws ``SharedArrayError/indexOutOfRange(index:count:)``.
    public func setElement(_ value: T, at index: Int) throws(SharedArrayError) {
        guard index >= 0 && index < count else { throw .indexOutOfRange(index: index, count: count) }
        self[index] = value
    }

    /// The elements in `range`, or ``SharedArrayError/rangeOutOfRange(lower:upper:count:)``.
    public func elements(in range: Range<Int>) throws(SharedArrayError) -> [T] {
        guard range.lowerBound >= 0 && range.upperBound <= count else {
            throw .rangeOutOfRange(lower: range.lowerBound, upper: range.upperBound, count: count)
        }
        return self[range]
    }

    /// Bulk access without atomicity or lock (Python: `RawArray`); the buffer is valid only
    /// inside `body`.
    public func withUnsafeMutableBufferPointer<Result>(_ body: (UnsafeMutableBufferPointer<T>) throws -> Result) rethrows -> Result {
        try body(UnsafeMutableBufferPointer(start: elements.assumingMemoryBound(to: T.self), count: count))
    }

    /// Runs `body` on the elements holding the array's lock. Python: `with a.get_lock(): ...`.
    public func withLock<Result>(_ body: (UnsafeMutableBufferPointer<T>) throws -> Result) throws -> Result {
        let lock = LockCore(state: UnsafeMutableRawPointer(storage.state).assumingMemoryBound(to: shmipc_lock_state.self))
        try lock.lockSelfHealing(Sys.currentThreadID)  // elements were never guaranteed atomic together
        defer { lock.unlockHeld() }
        return try withUnsafeMutableBufferPointer(body)
    }

    /// The descriptor to hand to a child process (`sharing:`); `nil` for a named object.
    public var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }
    /// Removes the object's name (only the process that created it may); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try storage.unlink() }
}

extension SharedArray where T: AtomicInteger {
    @inlinable func atomic(_ index: Int) -> UnsafeAtomic<T> {
        UnsafeAtomic(at: address(index).assumingMemoryBound(to: T.AtomicRepresentation.self))
    }

    /// Adds `delta` (wrapping) to the element at `index`; returns its previous value. Acquire-release.
    @inlinable @discardableResult
    public func add(_ delta: T, at index: Int) -> T {
        atomic(index).loadThenWrappingIncrement(by: delta, ordering: .acquiringAndReleasing)
    }

    /// Subtracts `delta` (wrapping); returns the previous value. Acquire-release.
    @inlinable @discardableResult
    public func subtract(_ delta: T, at index: Int) -> T {
        atomic(index).loadThenWrappingDecrement(by: delta, ordering: .acquiringAndReleasing)
    }

    /// Stores `newValue` at `index`; returns the previous value. Acquire-release.
    @inlinable @discardableResult
    public func exchange(_ newValue: T, at index: Int) -> T {
        atomic(index).exchange(newValue, ordering: .acquiringAndReleasing)
    }

    /// Compare-exchange at `index`. Acquire-release on success, acquire on failure.
    @inlinable
    public func compareExchange(expected: T, desired: T, at index: Int) -> (exchanged: Bool, original: T) {
        atomic(index).compareExchange(expected: expected, desired: desired, ordering: .acquiringAndReleasing)
    }
}
