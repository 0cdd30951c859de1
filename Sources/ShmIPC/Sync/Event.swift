internal import Atomics
internal import CShim
public import SystemPackage

/// A process-shared event flag: threads wait until some thread sets it.
///
/// Python: `multiprocessing.Event` (`set`, `clear`, `is_set`, `wait(timeout)`).
///
/// - Waiting: per ``WaitStrategy``; `set` makes a wake-up syscall only if somebody waits.
/// - Peer death: nothing to detect: a waiter whose setter died waits for its timeout.
public final class Event: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties over shared atomic state.
    private let storage: SharedState<shmipc_event_state>
    /// How this process's threads wait on the object.
    public let waitStrategy: WaitStrategy

    static let layout = ObjectLayout(
        kind: .event, version: 1, element: .none, capacity: 0, stateSize: MemoryLayout<shmipc_event_state>.stride)

    /// Creates (clear) or attaches the named event `name`.
    public init(
        name: SegmentName, mode: CreationMode,
        permissions: FilePermissions = SharedMemory.defaultPermissions, waitStrategy: WaitStrategy = .default
    ) throws(SharedObjectError) {
        storage = try SharedState(name: name, mode: mode, layout: Self.layout, permissions: permissions) { _ in }
        self.waitStrategy = waitStrategy
    }

    /// Creates an inheritable event, clear.
    public init(waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        storage = try SharedState(inheritable: Self.layout) { _ in }
        self.waitStrategy = waitStrategy
    }

    /// Attaches an inheritable event.
    public init(inheriting descriptor: FileDescriptor, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        storage = try SharedState(inheriting: descriptor, layout: Self.layout)
        self.waitStrategy = waitStrategy
    }

    var core: EventCore { EventCore(state: storage.state) }

    /// Sets the flag and wakes every waiter.
    public func set() { core.set() }

    /// Clears the flag.
    public func clear() { core.clear() }

    /// Whether the flag is set (a snapshot).
    public var isSet: Bool { core.isSet }

    /// Waits until the flag is set or `timeout` passes (`nil`: forever); returns whether it is set.
    @discardableResult
    public func wait(timeout: Duration? = nil) -> Bool {
        core.isSet || core.wait(deadline: .after(timeout), strategy: waitStrategy)
    }

    /// The descriptor to hand to a child process (`sharing:`); `nil` for a named object.
    public var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }

    /// Removes the object's name (only the process that created it may); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try storage.unlink() }
}

/// The event algorithm as a view on a `shmipc_event_state`, for ``Event`` and for objects that
/// embed an event in their own state.
///
/// `@unchecked Sendable`: a pointer into shared memory designed for concurrent access (an
/// async wait's check reads it on the async waiter's thread; the mapping outlives the wait).
struct EventCore: @unchecked Sendable {
    let state: UnsafeMutablePointer<shmipc_event_state>

    /// The flag (1 set, 0 clear) and its waiter count.
    var flag: ParkingWord {
        ParkingWord(state, offset: MemoryLayout<shmipc_event_state>.offset(of: \.flag)!)
    }

    func set() {
        // Sequentially consistent: the store half of the parking word's Dekker pair, and the
        // release that pairs with the acquiring load in isSet.
        flag.value.store(1, ordering: .sequentiallyConsistent)
        flag.wakeIfParked()
    }

    func clear() {
        flag.value.store(0, ordering: .relaxed)  // relaxed: clearing publishes nothing
    }

    var isSet: Bool { flag.value.load(ordering: .acquiring) == 1 }  // acquire: pairs with set()

    func wait(deadline: Deadline, strategy: WaitStrategy) -> Bool {
        while true {
            if strategy.spin({ isSet }) { return true }
            if deadline.hasPassed { return isSet }
            guard strategy.parks else { continue }
            flag.park(deadline: deadline) { $0 != 0 }
            if isSet { return true }
        }
    }
}
