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

    /// The count and its sleeper count.
    private var epoch: ParkingWord {
        ParkingWord(storage.state, offset: MemoryLayout<shmipc_event_state>.offset(of: \.flag)!)
    }

    /// The current count: read it before looking for work, then `wait(seen:)` with it.
    var current: UInt32 { epoch.value.load(ordering: .acquiring) }  // acquire: pairs with ring()

    /// Moves the count and wakes every sleeper.
    func ring() {
        // Sequentially consistent: the parking word's Dekker pair with wait(), and a release
        // for what the ringer published before.
        epoch.value.wrappingIncrement(ordering: .sequentiallyConsistent)
        epoch.wakeIfParked()
    }

    /// Waits until the count differs from `seen` or `deadline` passes: spins per `strategy`,
    /// then sleeps. Whether it moved.
    @discardableResult
    func wait(seen: UInt32, deadline: Deadline, strategy: WaitStrategy) -> Bool {
        while true {
            if strategy.spin({ current != seen }) { return true }
            if deadline.hasPassed { return current != seen }
            guard strategy.parks else { continue }
            epoch.park(deadline: deadline) { $0 != seen }
            if current != seen { return true }
        }
    }
}
