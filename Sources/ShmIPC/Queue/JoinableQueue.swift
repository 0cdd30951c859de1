internal import Atomics
public import SystemPackage

/// A ``Queue`` that also counts unfinished tasks: every put adds one, every ``taskDone()``
/// removes one, and ``join(timeout:)`` waits until none is left.
///
/// Python: `multiprocessing.JoinableQueue` (`task_done`, `join`). Its kind differs from a plain
/// ``Queue``'s, so the two cannot attach to each other's segments by mistake.
///
/// - Peer death: as ``Queue``'s; an item lost with a producer or consumer killed while moving
///   it also ends its task. A consumer that dies after `get` returned and before `taskDone`
///   leaves its task unfinished forever (as in Python), and so does a producer killed inside
///   `put` after counting its task and before claiming a slot: give `join` a timeout where that
///   matters.
public final class JoinableQueue<Element: BitwiseCopyable>: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties; see ``Queue``.
    public let queue: Queue<Element>
    private var control: QueueControl { queue.control }

    /// Creates or attaches the named joinable queue `name`.
    public init(
        name: SegmentName, mode: CreationMode, capacity: Int,
        permissions: FilePermissions = SharedMemory.defaultPermissions, waitStrategy: WaitStrategy = .default
    ) throws(SharedObjectError) {
        queue = try Queue(name: name, mode: mode, capacity: capacity, permissions: permissions,
                          waitStrategy: waitStrategy, initialIndex: 0, kind: .joinableQueue)
    }

    /// Creates an inheritable joinable queue.
    public init(capacity: Int, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        queue = try Queue(capacity: capacity, waitStrategy: waitStrategy, initialIndex: 0, kind: .joinableQueue)
    }

    /// Attaches an inheritable joinable queue.
    public init(inheriting descriptor: FileDescriptor, capacity: Int, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        queue = try Queue(inheriting: descriptor, capacity: capacity, waitStrategy: waitStrategy, kind: .joinableQueue)
    }

    private var unfinished: SharedWord {
        SharedWord((UnsafeMutableRawPointer(control.state) + 512).assumingMemoryBound(to: UInt32.self))
    }
    private var joinWaiters: SharedWord {
        SharedWord((UnsafeMutableRawPointer(control.state) + 516).assumingMemoryBound(to: UInt32.self))
    }

    /// Puts `value` and counts one more unfinished task (see ``Queue/put(_:timeout:)``).
    public func put(_ value: Element, timeout: Duration? = nil) throws(QueueError) {
        // Counted before the element is published (the slot's release store orders it), so a
        // consumer's taskDone() can never see the count below its own task.
        unfinished.atomic.wrappingIncrement(ordering: .relaxed)
        do { try queue.put(value, timeout: timeout) } catch {
            finishOne()
            throw error
        }
    }

    /// Puts `value` if there is room; see ``Queue/tryPut(_:)``.
    public func tryPut(_ value: Element) throws(QueueError) -> Bool {
        unfinished.atomic.wrappingIncrement(ordering: .relaxed)
        let done: Bool
        do { done = try queue.tryPut(value) } catch {
            finishOne()
            throw error
        }
        if !done { finishOne() }
        return done
    }

    /// Takes the next element; see ``Queue/get(timeout:)``. Call ``taskDone()`` when its work is done.
    public func get(timeout: Duration? = nil) throws(QueueError) -> Element { try queue.get(timeout: timeout) }

    /// Takes the next element without waiting; see ``Queue/tryGet()``.
    public func tryGet() throws(QueueError) -> Element? { try queue.tryGet() }

    /// Marks one task done. Throws ``QueueError/taskDoneTooManyTimes`` if none is unfinished.
    /// Python: `task_done()`.
    public func taskDone() throws(QueueError) {
        var current = unfinished.loadRelaxed()
        while true {
            if current == 0 { throw .taskDoneTooManyTimes }
            // Sequentially consistent: the Dekker pair of join()'s waiter registration, and
            // the release that lets a joiner see the task's effects.
            let (exchanged, original) = unfinished.atomic.weakCompareExchange(
                expected: current, desired: current - 1, successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed)
            if exchanged { break }
            current = original
        }
        if current == 1, joinWaiters.atomic.load(ordering: .sequentiallyConsistent) > 0 {
            unfinished.futex.wakeAll()
        }
    }

    /// Waits until every task put so far is done, at most `timeout` (`nil`: forever).
    /// Throws ``QueueError/timedOut``. Python: `join()`.
    public func join(timeout: Duration? = nil) throws(QueueError) {
        let deadline = Deadline.after(timeout)
        while true {
            if unfinished.atomic.load(ordering: .sequentiallyConsistent) == 0 { return }  // acquire: the tasks' effects
            if deadline.hasPassed { throw .timedOut }
            joinWaiters.atomic.wrappingIncrement(ordering: .sequentiallyConsistent)
            let current = unfinished.atomic.load(ordering: .sequentiallyConsistent)
            if current != 0 { _ = unfinished.futex.wait(expected: current, deadline: deadline) }
            joinWaiters.atomic.wrappingDecrement(ordering: .relaxed)  // relaxed: only a hint for taskDone()
        }
    }

    /// Items lost with a producer or consumer that died moving them (see ``Queue/abandoned``).
    public var abandoned: Int { queue.abandoned }

    /// Unfinished tasks (a snapshot).
    public var unfinishedTasks: Int { Int(unfinished.loadRelaxed()) }

    public var count: Int { queue.count }
    public var isEmpty: Bool { queue.isEmpty }
    public var capacity: Int { queue.capacity }
    public func close() { queue.close() }
    public var inheritableDescriptor: FileDescriptor? { queue.inheritableDescriptor }
    public func unlink() throws(SharedMemoryError) { try queue.unlink() }

    /// Undoes the count of a put that failed.
    private func finishOne() {
        if unfinished.atomic.loadThenWrappingDecrement(ordering: .sequentiallyConsistent) == 1,
           joinWaiters.atomic.load(ordering: .sequentiallyConsistent) > 0 {
            unfinished.futex.wakeAll()
        }
    }
}
