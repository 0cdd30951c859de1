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

    private var value: SharedWord { SharedWord(UnsafeMutableRawPointer(storage.state).assumingMemoryBound(to: UInt32.self)) }
    private var waiters: SharedWord { SharedWord((UnsafeMutableRawPointer(storage.state) + 4).assumingMemoryBound(to: UInt32.self)) }
    private var maximum: UInt32 { storage.state.pointee.maximum }  // immutable after creation

    /// Decrements the count, waiting at most `timeout` (`nil`: forever) while it is zero.
    public func acquire(timeout: Duration? = nil) throws(SyncError) {
        if tryAcquire() { return }
        let deadline = Deadline.after(timeout)
        while true {
            if waitStrategy.spin(until: deadline, { value.loadRelaxed() > 0 && tryAcquire() }) { return }
            if deadline.hasPassed { throw .timedOut }
            guard waitStrategy.parks else { continue }
            // Dekker pattern with release(): the waiter count and the value are each written
            // then the other read, sequentially consistent on both sides, so either release()
            // sees us counted or we see its increment (and the futex re-checks the value).
            waiters.atomic.wrappingIncrement(ordering: .sequentiallyConsistent)
            if value.atomic.load(ordering: .sequentiallyConsistent) == 0 {
                _ = value.futex.wait(expected: 0, deadline: deadline)
            }
            waiters.atomic.wrappingDecrement(ordering: .relaxed)  // relaxed: only a hint for release()
            if tryAcquire() { return }
        }
    }

    /// Decrements the count if it is positive, without waiting. Python: `acquire(block=False)`.
    public func tryAcquire() -> Bool {
        var current = value.loadRelaxed()
        while current > 0 {
            // Acquire: pairs with the releasing increment in release(), so what the releaser
            // wrote before releasing is visible to the acquirer.
            let (exchanged, original) = value.atomic.weakCompareExchange(
                expected: current, desired: current - 1, successOrdering: .acquiring, failureOrdering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Increments the count by `count`, waking up to `count` waiters.
    /// Throws ``SyncError/overReleased(maximum:)`` if a bound would be passed (nothing changes).
    public func release(_ count: Int = 1) throws(SyncError) {
        precondition(count >= 1, "release count must be positive")
        let bound = maximum
        let delta = UInt32(clamping: count)
        var current = value.loadRelaxed()
        while true {
            let (sum, overflow) = current.addingReportingOverflow(delta)
            if overflow || sum > bound { throw .overReleased(maximum: Int(bound)) }
            // Sequentially consistent: the Dekker pair of acquire()'s waiter registration;
            // it is also the release that pairs with the acquiring CAS in tryAcquire().
            let (exchanged, original) = value.atomic.weakCompareExchange(
                expected: current, desired: sum, successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed)
            if exchanged { break }
            current = original
        }
        if waiters.atomic.load(ordering: .sequentiallyConsistent) > 0 {
            value.futex.wake(count: count)
        }
    }

    /// The current count (a snapshot). Python: `get_value()`.
    public var currentValue: Int { Int(value.loadRelaxed()) }

    public var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }

    public func unlink() throws(SharedMemoryError) { try storage.unlink() }

    /// Invalid arguments are programming errors (Python raises ValueError), so they trap.
    private static func validated(value: Int, maximum: Int?) -> UInt32 {
        let bound = maximum ?? maximumValue
        precondition(bound >= 1 && bound <= maximumValue, "semaphore maximum must be in 1...\(maximumValue)")
        precondition(value >= 0 && value <= bound, "semaphore value must be in 0...\(bound)")
        return UInt32(value)
    }

    private static func initialize(_ state: UnsafeMutableRawBufferPointer, value: UInt32, maximum: Int?) {
        state.baseAddress!.bindMemory(to: shmipc_semaphore_state.self, capacity: 1).initialize(
            to: shmipc_semaphore_state(value: value, waiters: 0, maximum: UInt32(maximum ?? maximumValue), reserved: 0))
    }
}
