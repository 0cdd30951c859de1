package import Atomics

/// An atomic integer in shared memory, with the memory ordering spelled in each method's name
/// (no default ordering, as swift-atomics). `@inlinable`, so hot loops in other modules of
/// the package (shm-bench's floors) get the bare instruction, not a call.
package struct SharedAtomic<Value: AtomicInteger>: @unchecked Sendable {
    /// `@unchecked Sendable`: a view on shared memory meant for concurrent atomic access.
    package let pointer: UnsafeMutablePointer<Value>

    @inlinable
    package init(_ pointer: UnsafeMutablePointer<Value>) {
        self.pointer = pointer
    }

    /// The swift-atomics view, for operations not wrapped here; always pass an ordering.
    @inlinable
    package var atomic: UnsafeAtomic<Value> {
        UnsafeAtomic(at: UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: Value.AtomicRepresentation.self))
    }

    @inlinable package func loadAcquiring() -> Value { atomic.load(ordering: .acquiring) }
    @inlinable package func loadRelaxed() -> Value { atomic.load(ordering: .relaxed) }
    @inlinable package func storeReleasing(_ value: Value) { atomic.store(value, ordering: .releasing) }
    @inlinable package func storeRelaxed(_ value: Value) { atomic.store(value, ordering: .relaxed) }

    /// Adds `delta` (wrapping) and returns the previous value; acquire-release.
    @inlinable @discardableResult
    package func addAcquiringAndReleasing(_ delta: Value) -> Value {
        atomic.loadThenWrappingIncrement(by: delta, ordering: .acquiringAndReleasing)
    }

    /// Adds `delta` (wrapping) and returns the previous value; relaxed.
    @inlinable @discardableResult
    package func addRelaxed(_ delta: Value) -> Value {
        atomic.loadThenWrappingIncrement(by: delta, ordering: .relaxed)
    }
}

/// A 32-bit atomic word: the width a ``Futex`` sleeps on.
package typealias SharedWord = SharedAtomic<UInt32>
/// A 64-bit atomic word.
package typealias SharedWord64 = SharedAtomic<UInt64>

extension SharedAtomic where Value == UInt32 {
    /// The futex on this word.
    package var futex: Futex { Futex(pointer) }
}
