internal import Atomics
internal import CShim
public import SystemPackage

/// A process-shared counting semaphore.
///
/// Python: `multiprocessing.Semaphore`; with a bound, `BoundedSemaphore` (see
/// ``init(name:mode:value:maximum:permissions:waitStrategy:)``): releasing above the bound is
/// ``SyncError/overReleased(maximum:)``.
///
/// - Waiting: per ``WaitStrategy``; `release` makes a wake-up syscall only if somebody waits.
/// - Peer death: a semaphore has no owner, so nothing is detected: a process that dies between
///   `acquire` and `release` keeps its unit forever (as in Python). Waiters wait for their
///   timeout; give waits a timeout where that matters.
public final class Semaphore: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties over shared atomic state.
    private let storage: SharedState<shmipc_semaphore_state>
    /// How this process's threads wait on the object.
    public let waitStrategy: WaitStrategy

    /// The largest value a semaphore can hold.
    public static let maximumValue = Int(UInt32.max - 1)

    static func layout(bounded maximum: Int?) -> ObjectLayout {
        ObjectLayout(
            kind: maximum == nil ? .semaphore : .boundedSemaphore, version: 1, element: .none,
            capacity: maximum ?? 0, stateSize: MemoryLayout<shmipc_semaphore_state>.stride)
    }

    /// Creates or attaches a named semaphore. `value` is the initial count (used only when this
    /// call creates it); `maximum` makes it bounded (a BoundedSemaphore; attaching checks it).
    public init(
        name: SegmentName, mode: CreationMode, value: Int = 1, maximum: Int? = nil,
        permissions: FilePermissions = SharedMemory.defaultPermissions, waitStrategy: WaitStrategy = .default
    ) throws(SharedObjectError) {
        let initial = Self.validated(value: value, maximum: maximum)
        storage = try SharedState(name: name, mode: mode, layout: Self.layout(bounded: maximum), permissions: permissions) {
            Self.initialize($0, value: initial, maximum: maximum)
        }
        self.waitStrategy = waitStrategy
    }

    /// Creates an inheritable semaphore.
    public init(value: Int = 1, maximum: Int? = nil, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        let initial = Self.validated(value: value, maximum: maximum)
        storage = try SharedState(inheritable: Self.layout(bounded: maximum)) {
            Self.initialize($0, value: initial, maximum: maximum)
        }
        self.waitStrategy = waitStrategy
    }

    /// Attaches an inheritable semaphore; `maximum` must match the creator's.
    public init(inheriting descriptor: FileDescriptor, maximum: Int? = nil, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        storage = try SharedState(inheriting: descriptor, layout: Self.layout(bounded: maximum))
        self.waitStrategy = waitStrategy
    }

    var core: SemaphoreCore { SemaphoreCore(state: storage.state) }

    /// Decrements the count, waiting at most `timeout` (`nil`: forever) while it is zero.
    public func acquire(timeout: Duration? = nil) throws(SyncError) {
        if core.tryAcquire() { return }
        try core.acquire(deadline: .after(timeout), strategy: waitStrategy)
    }

    /// Decrements the count if it is positive, without waiting. Python: `acquire(block=False)`.
    public func tryAcquire() -> Bool { core.tryAcquire() }

    /// Increments the count by `count`, waking up to `count` waiters.
    /// Throws ``SyncError/overReleased(maximum:)`` if a bound would be passed (nothing changes).
    public func release(_ count: Int = 1) throws(SyncError) { try core.release(count) }

    /// The current count (a snapshot). Python: `get_value()`.
    public var currentValue: Int { core.value }

    /// The bound of a bounded semaphore (from the validated header); nil if unbounded.
    public var maximum: Int? {
        let layout = storage.segment.layout
        return layout.kind == .boundedSemaphore ? layout.capacity : nil
    }

    /// The descriptor to hand to a child process (`sharing:`); `nil` for a named object.
    public var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }

    /// Removes the object's name (only the process that created it may); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try storage.unlink() }

    /// Invalid arguments are programming errors (Python raises ValueError), so they trap.
    private static func validated(value: Int, maximum: Int?) -> UInt32 {
        let bound = maximum ?? maximumValue
        precondition(bound >= 1 && bound <= maximumValue, "semaphore maximum must be in 1...\(maximumValue)")
        precondition(value >= 0 && value <= bound, "semaphore value must be in 0...\(bound)")
        return UInt32(value)
    }

    private static func initialize(_ state: UnsafeMutableRawBufferPointer, value: UInt32, maximum: Int?) {
        SemaphoreCore.initialize(
            state.baseAddress!.bindMemory(to: shmipc_semaphore_state.self, capacity: 1),
            value: value, maximum: UInt32(maximum ?? maximumValue))
    }
}

/// The semaphore algorithm as a view on a `shmipc_semaphore_state`, for ``Semaphore`` and
/// for objects that embed a semaphore in their own state.
///
/// `@unchecked Sendable`: as ``EventCore``.
struct SemaphoreCore: @unchecked Sendable {
    let state: UnsafeMutablePointer<shmipc_semaphore_state>

    /// The count and its waiter count.
    var count: ParkingWord {
        ParkingWord(state, offset: MemoryLayout<shmipc_semaphore_state>.offset(of: \.value)!)
    }

    static func initialize(_ state: UnsafeMutablePointer<shmipc_semaphore_state>, value: UInt32, maximum: UInt32) {
        state.initialize(to: shmipc_semaphore_state(value: value, waiters: 0, maximum: maximum, reserved: 0))
    }

    var value: Int { Int(count.value.load(ordering: .relaxed)) }  // a snapshot

    func tryAcquire() -> Bool {
        var current = count.value.load(ordering: .relaxed)
        while current > 0 {
            // Acquire: pairs with the increment in release(), so what the releaser wrote
            // before releasing is visible to the acquirer.
            let (exchanged, original) = count.value.weakCompareExchange(
                expected: current, desired: current - 1, successOrdering: .acquiring, failureOrdering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func acquire(deadline: Deadline, strategy: WaitStrategy) throws(SyncError) {
        while true {
            if strategy.spin({ count.value.load(ordering: .relaxed) > 0 && tryAcquire() }) { return }
            if deadline.hasPassed { throw .timedOut }
            guard strategy.parks else { continue }
            // The parking word's Dekker pair with release(): it sleeps only on a count of 0.
            count.park(deadline: deadline) { $0 != 0 }
            if tryAcquire() { return }
        }
    }

    func release(_ amount: Int) throws(SyncError) {
        precondition(amount >= 1, "release count must be positive")
        let bound = state.pointee.maximum  // immutable after creation
        let delta = UInt32(clamping: amount)
        var current = count.value.load(ordering: .relaxed)
        while true {
            let (sum, overflow) = current.addingReportingOverflow(delta)
            if overflow || sum > bound { throw .overReleased(maximum: Int(bound)) }
            // Sequentially consistent: the Dekker pair of acquire()'s waiter registration;
            // also the release that pairs with the acquiring CAS in tryAcquire().
            let (exchanged, original) = count.value.weakCompareExchange(
                expected: current, desired: sum, successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed)
            if exchanged { break }
            current = original
        }
        count.wakeIfParked(count: amount)
    }
}
