internal import Atomics
public import SystemPackage

/// A ``Queue`` that also counts unfinished tasks: every put adds one, every ``taskDone()``
/// removes one, and ``join(timeout:)-8p9ma`` waits until none is left.
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
    private var control: RingControl { queue.control }

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

    var tasks: TaskCount { TaskCount(control.state) }

    /// Puts `value` and counts one more unfinished task (see ``Queue/put(_:timeout:)-1n64j``).
    public func put(_ value: Element, timeout: Duration? = nil) throws(QueueError) {
        tasks.add()
        do { try queue.put(value, timeout: timeout) } catch {
            tasks.finish()
            throw error
        }
    }

    /// Puts `value` if there is room; see ``Queue/tryPut(_:)``.
    public func tryPut(_ value: Element) throws(QueueError) -> Bool {
        tasks.add()
        let done: Bool
        do { done = try queue.tryPut(value) } catch {
            tasks.finish()
            throw error
        }
        if !done { tasks.finish() }
        return done
    }

    /// Takes the next element; see ``Queue/get(timeout:)-8zcgi``. Call ``taskDone()`` when its work is done.
    public func get(timeout: Duration? = nil) throws(QueueError) -> Element { try queue.get(timeout: timeout) }

    /// Takes the next element without waiting; see ``Queue/tryGet()``.
    public func tryGet() throws(QueueError) -> Element? { try queue.tryGet() }

    /// Marks one task done. Throws ``QueueError/taskDoneTooManyTimes`` if none is unfinished.
    /// Python: `task_done()`.
    public func taskDone() throws(QueueError) {
        guard tasks.finish() else { throw .taskDoneTooManyTimes }
    }

    /// Waits until every task put so far is done, at most `timeout` (`nil`: forever).
    /// Throws ``QueueError/timedOut``. Python: `join()`.
    public func join(timeout: Duration? = nil) throws(QueueError) {
        guard tasks.join(deadline: .after(timeout)) else { throw .timedOut }
    }

    /// Items lost with a producer or consumer that died moving them (see ``Queue/abandoned``).
    public var abandoned: Int { queue.abandoned }

    /// Unfinished tasks (a snapshot).
    public var unfinishedTasks: Int { tasks.value }

    /// Items in the queue (a snapshot).
    public var count: Int { queue.count }
    /// Whether it holds nothing (a snapshot).
    public var isEmpty: Bool { queue.isEmpty }
    /// How many elements it holds at most.
    public var capacity: Int { queue.capacity }
    /// Closes it: puts fail from now on; gets take what is left, then fail.
    public func close() { queue.close() }
    /// The descriptor to hand to a child process (`sharing:`); `nil` for a named object.
    public var inheritableDescriptor: FileDescriptor? { queue.inheritableDescriptor }
    /// Removes the object's name (only the process that created it may); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try queue.unlink() }
}
