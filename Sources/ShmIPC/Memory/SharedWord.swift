internal import Atomics

/// An atomic 32-bit word in shared memory, with the memory ordering spelled in each method's
/// name (no default ordering, as swift-atomics). Also the word a ``Futex`` sleeps on.
package struct SharedWord: @unchecked Sendable {
    /// `@unchecked Sendable`: a view on shared memory meant for concurrent atomic access.
    package let pointer: UnsafeMutablePointer<UInt32>

    package init(_ pointer: UnsafeMutablePointer<UInt32>) {
        self.pointer = pointer
    }

    private var atomic: UnsafeAtomic<UInt32> {
        UnsafeAtomic(at: UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }

    package func loadAcquiring() -> UInt32 { atomic.load(ordering: .acquiring) }
    package func loadRelaxed() -> UInt32 { atomic.load(ordering: .relaxed) }
    package func storeReleasing(_ value: UInt32) { atomic.store(value, ordering: .releasing) }
    package func storeRelaxed(_ value: UInt32) { atomic.store(value, ordering: .relaxed) }

    @discardableResult
    package func addAcquiringAndReleasing(_ delta: UInt32) -> UInt32 {
        atomic.loadThenWrappingIncrement(by: delta, ordering: .acquiringAndReleasing)
    }

    package var futex: Futex { Futex(pointer) }
}

/// An atomic 64-bit word in shared memory; see ``SharedWord``.
package struct SharedWord64: @unchecked Sendable {
    /// `@unchecked Sendable`: a view on shared memory meant for concurrent atomic access.
    package let pointer: UnsafeMutablePointer<UInt64>

    package init(_ pointer: UnsafeMutablePointer<UInt64>) {
        self.pointer = pointer
    }

    private var atomic: UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }

    package func loadAcquiring() -> UInt64 { atomic.load(ordering: .acquiring) }
    package func loadRelaxed() -> UInt64 { atomic.load(ordering: .relaxed) }
    package func storeReleasing(_ value: UInt64) { atomic.store(value, ordering: .releasing) }
    package func storeRelaxed(_ value: UInt64) { atomic.store(value, ordering: .relaxed) }

    @discardableResult
    package func addRelaxed(_ delta: UInt64) -> UInt64 {
        atomic.loadThenWrappingIncrement(by: delta, ordering: .relaxed)
    }
}
