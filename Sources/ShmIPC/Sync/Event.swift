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

    private var core: EventCore { EventCore(state: storage.state) }

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

    public var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }

    public func unlink() throws(SharedMemoryError) { try storage.unlink() }
}

/// The event algorithm as a view on a `shmipc_event_state`, for ``Event`` and for objects that
/// embed an event in their own state.
struct EventCore {
    let state: UnsafeMutablePointer<shmipc_event_state>

    private var flag: SharedWord { SharedWord(UnsafeMutableRawPointer(state).assumingMemoryBound(to: UInt32.self)) }
    private var waiters: SharedWord { SharedWord((UnsafeMutableRawPointer(state) + 4).assumingMemoryBound(to: UInt32.self)) }

    func set() {
        // Sequentially consistent: the Dekker pair of wait()'s registration (see
        // SemaphoreCore), and the release that pairs with the acquiring load in isSet.
        flag.atomic.store(1, ordering: .sequentiallyConsistent)
        if waiters.atomic.load(ordering: .sequentiallyConsistent) > 0 {
            flag.futex.wakeAll()
        }
    }

    func clear() {
        flag.storeRelaxed(0)  // relaxed: clearing publishes nothing
    }

    var isSet: Bool { flag.loadAcquiring() == 1 }  // acquire: pairs with set()

    func wait(deadline: Deadline, strategy: WaitStrategy) -> Bool {
        while true {
            if strategy.spin({ isSet }) { return true }
            if deadline.hasPassed { return isSet }
            guard strategy.parks else { continue }
            waiters.atomic.wrappingIncrement(ordering: .sequentiallyConsistent)
            if flag.atomic.load(ordering: .sequentiallyConsistent) == 0 {
                _ = flag.futex.wait(expected: 0, deadline: deadline)
            }
            waiters.atomic.wrappingDecrement(ordering: .relaxed)  // relaxed: only a hint for set()
            if isSet { return true }
        }
    }
}
