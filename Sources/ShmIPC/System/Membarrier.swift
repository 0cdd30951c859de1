public import Atomics
public import CShim

/// membarrier(2), for the asymmetric Dekker pairs of ``ParkingWord``: the rare parking side
/// issues `membarrier(GLOBAL_EXPEDITED)`, which runs a full barrier on every CPU running a
/// registered process, so the per-item fast side needs only a compiler barrier. Where the
/// kernel refuses it (seccomp, old kernels), both sides use sequentially consistent fences.
@usableFromInline
enum Membarrier {
    /// Whether this process registered for `membarrier(GLOBAL_EXPEDITED)` (once, on first use).
    static let available: Bool = shmipc_membarrier_register() == 0

    /// The fast side's barrier: a compiler barrier, or a fence where membarrier is unavailable.
    @inlinable @inline(__always)
    static func fastSideBarrier(_ fence: Bool) {
        if fence { atomicMemoryFence(ordering: .sequentiallyConsistent) } else { shmipc_compiler_barrier() }
    }

    /// The parking side's barrier: membarrier, or a fence where membarrier is unavailable.
    static func heavyBarrier(_ fence: Bool) {
        if fence || shmipc_membarrier_global() != 0 {
            atomicMemoryFence(ordering: .sequentiallyConsistent)
        }
    }
}
