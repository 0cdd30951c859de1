public import Atomics

/// Single-copy-atomic access to a value of a word-sized type (1, 2, 4 or 8 bytes, naturally
/// aligned) through an unsigned atomic of the same width, whatever the type (Double, Int32,
/// Bool…). Shared by ``Value`` and ``SharedArray``.
@usableFromInline
enum WordAccess {
    /// Whether `T` fits one atomic word: its size is 1, 2, 4 or 8 and its alignment equal.
    @inlinable
    static func isWord<T>(_: T.Type) -> Bool {
        let size = MemoryLayout<T>.size
        return (size == 1 || size == 2 || size == 4 || size == 8) && MemoryLayout<T>.alignment == size
    }

    /// An acquiring load: it observes whatever the storing side wrote before its releasing store.
    @inlinable @inline(__always)
    static func loadAcquiring<T: BitwiseCopyable>(_ address: UnsafeMutableRawPointer, as _: T.Type) -> T {
        switch MemoryLayout<T>.size {
        case 1: return unsafeBitCast(atomic(address, UInt8.self).load(ordering: .acquiring), to: T.self)
        case 2: return unsafeBitCast(atomic(address, UInt16.self).load(ordering: .acquiring), to: T.self)
        case 4: return unsafeBitCast(atomic(address, UInt32.self).load(ordering: .acquiring), to: T.self)
        default: return unsafeBitCast(atomic(address, UInt64.self).load(ordering: .acquiring), to: T.self)
        }
    }

    /// A releasing store: pairs with ``loadAcquiring(_:as:)``.
    @inlinable @inline(__always)
    static func storeReleasing<T: BitwiseCopyable>(_ value: T, _ address: UnsafeMutableRawPointer) {
        switch MemoryLayout<T>.size {
        case 1: atomic(address, UInt8.self).store(unsafeBitCast(value, to: UInt8.self), ordering: .releasing)
        case 2: atomic(address, UInt16.self).store(unsafeBitCast(value, to: UInt16.self), ordering: .releasing)
        case 4: atomic(address, UInt32.self).store(unsafeBitCast(value, to: UInt32.self), ordering: .releasing)
        default: atomic(address, UInt64.self).store(unsafeBitCast(value, to: UInt64.self), ordering: .releasing)
        }
    }

    @inlinable @inline(__always)
    static func atomic<W: AtomicValue>(_ address: UnsafeMutableRawPointer, _: W.Type) -> UnsafeAtomic<W> {
        UnsafeAtomic(at: address.assumingMemoryBound(to: W.AtomicRepresentation.self))
    }
}
