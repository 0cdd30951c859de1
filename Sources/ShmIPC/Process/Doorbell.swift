internal import Atomics
internal import CShim
internal import SystemPackage

/// A shared counter a waiter can sleep on until it moves: how one thread waits for "anything
/// happened" across many rings (a ``Pool``'s driver waiting on all its workers' result rings
/// and on new submissions at once). Rings never block: `ring()` is one atomic add, plus a
/// futex wake only when somebody sleeps.
final class Doorbell: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties over shared atomic state.
    private let storage: SharedState<shmipc_event_state>

    static let layout = ObjectLayout(
        kind: .doorbell, version: 1, element: .none, capacity: 0, stateSize: MemoryLayout<shmipc_event_state>.stride)

    /// Creates an inheritable doorbell.
    init() throws(SharedObjectError) {
        storage = try SharedState(inheritable: Self.layout) { _ in }
    }

    /// Attaches an inherited doorbell.
    init(inheriting descriptor: FileDescriptor) throws(SharedObjectError) {
        storage = try SharedState(inheriting: descriptor, layout: Self.layout)
    }

    var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }

    private var epoch: SharedWord { SharedWord(UnsafeMutableRawPointer(storage.state).assumingMemoryBound(to: UInt32.self)) }
    private var sleepers: SharedWord { SharedWord((UnsafeMutableRawPointer(storage.state) + 4).assumingMemoryBound(to: UInt32.self)) }

    /// The current count: read it before looking for work, then `wait(seen:)` with it.
    var current: UInt32 { epoch.loadAcquiring() }  // acquire: pairs with ring()

    /// Moves the count and wakes every sleeper.
    func ring() {
        // Sequentially consistent: the Dekker pair of wait()'s registration (as in EventCore),
        // and a release for what the ringer published before.
        epoch.atomic.wrappingIncrement(ordering: .sequentiallyConsistent)
        if sleepers.atomic.load(ordering: .sequentiallyConsistent) > 0 { epoch.futex.wakeAll() }
    }

    /// Waits until the count differs from `seen` or `deadline` passes: spins per `strategy`,
    /// then sleeps. Whether it moved.
    @discardableResult
    func wait(seen: UInt32, deadline: Deadline, strategy: WaitStrategy) -> Bool {
        while true {
            if strategy.spin({ current != seen }) { return true }
            if deadline.hasPassed { return current != seen }
            guard strategy.parks else { continue }
            sleepers.atomic.wrappingIncrement(ordering: .sequentiallyConsistent)
            if epoch.atomic.load(ordering: .sequentiallyConsistent) == seen {
                _ = epoch.futex.wait(expected: seen, deadline: deadline)
            }
            sleepers.atomic.wrappingDecrement(ordering: .relaxed)  // relaxed: only a hint for ring()
            if current != seen { return true }
        }
    }
}
