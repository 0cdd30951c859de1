// The async fast paths are `@inlinable @inline(__always)` and `nonisolated(nonsending)`, by
// measurement (`queue.get.ready.async`, an awaited get of an element already there):
// - a plain (non-inlinable) async get: 73.7 ns, against 10.5 ns for `tryGet`: unspecialized
//   generic code, an async frame allocated per call, and a hop to the generic executor;
// - `@inlinable`: 36.2 ns (specialized; the frame and the hop remain);
// - plus `nonisolated(nonsending)` (no hop: the caller's executor): 17.9 ns;
// - plus `@inline(__always)` (no frame: the get is part of the caller's): 7.6 ns, against 10.0
//   for `tryGet` in the same run (no Optional to unwrap).
// `nonisolated(nonsending)` also means a suspended get resumes on its caller's actor.
extension Queue {
    /// Takes the next element, suspending the task (never blocking a thread) while the queue
    /// is empty, at most `timeout` (`nil`: forever). An element already there is taken
    /// without suspending or allocating. Throws ``QueueError/timedOut``, ``QueueError/closed``
    /// once the queue is closed and empty, or `CancellationError` (nothing taken).
    @inlinable @inline(__always)
    nonisolated(nonsending) public func get(timeout: Duration? = nil) async throws -> Element {
        if let value = mpmc.mpmcTryGet(Element.self) {
            control.didGet()
            return value
        }
        return try await getSuspending(deadline: .after(timeout))
    }

    /// Puts `value`, suspending the task while the queue is full, at most `timeout`. Throws
    /// ``QueueError/timedOut``, ``QueueError/closed``, or `CancellationError` (nothing put).
    @inlinable @inline(__always)
    nonisolated(nonsending) public func put(_ value: Element, timeout: Duration? = nil) async throws {
        if !control.isClosed, mpmc.mpmcTryPut(value) {
            control.didPut()
            return
        }
        try await putSuspending(value, deadline: .after(timeout))
    }

    /// The elements as they arrive, until the queue is closed and drained: `for try await
    /// item in queue.elements`. Each iteration is an async ``get(timeout:)-qdf4``; several
    /// consumers iterating one queue share its elements.
    public var elements: Elements { Elements(queue: self) }

    /// An `AsyncSequence` of a queue's elements (``elements``).
    public struct Elements: AsyncSequence, Sendable {
        let queue: Queue

        /// The iterator: each `next` is an async get.
        public func makeAsyncIterator() -> Iterator { Iterator(queue: queue) }

        /// Takes the queue's elements one by one.
        public struct Iterator: AsyncIteratorProtocol {
            let queue: Queue
            /// The next element; nil once the queue is closed and empty.
            public mutating func next() async throws -> Element? {
                do { return try await queue.get() } catch QueueError.closed { return nil }
            }
        }
    }

    @usableFromInline
    nonisolated(nonsending) func getSuspending(deadline: Deadline) async throws -> Element {
        let check = mpmc.asyncCheck(consumers: true)
        while true {
            if let value = mpmc.mpmcTryGet(Element.self) {
                control.didGet()
                return value
            }
            try await control.awaitAsync(consumers: true, deadline: deadline, strategy: waitStrategy, check: check) { mpmc.mpmcLooksNonEmpty() }
        }
    }

    @usableFromInline
    nonisolated(nonsending) func putSuspending(_ value: Element, deadline: Deadline) async throws {
        let check = mpmc.asyncCheck(consumers: false)
        while true {
            if control.isClosed { throw QueueError.closed }
            if mpmc.mpmcTryPut(value) {
                control.didPut()
                return
            }
            try await control.awaitAsync(consumers: false, deadline: deadline, strategy: waitStrategy, check: check) { mpmc.mpmcLooksNotFull() }
        }
    }
}

extension JoinableQueue {
    /// Takes the next element, suspending the task while the queue is empty; see
    /// ``Queue/get(timeout:)-qdf4``. Call ``taskDone()`` when its work is done.
    public func get(timeout: Duration? = nil) async throws -> Element { try await queue.get(timeout: timeout) }

    /// Puts `value` and counts one more unfinished task, suspending the task while the queue
    /// is full; see ``Queue/put(_:timeout:)-176yd``. A put that fails or is
    /// cancelled counts nothing.
    public func put(_ value: Element, timeout: Duration? = nil) async throws {
        tasks.add()
        do { try await queue.put(value, timeout: timeout) } catch {
            tasks.finish()
            throw error
        }
    }

    /// Suspends the task (never blocking a thread) until every task put so far is done, at
    /// most `timeout` (`nil`: forever). Throws ``QueueError/timedOut`` or `CancellationError`.
    /// Python: `await`-able `join()`.
    public func join(timeout: Duration? = nil) async throws {
        guard try await tasks.join(deadline: .after(timeout)) else { throw QueueError.timedOut }
    }
}

extension TaskCount {
    /// ``join(deadline:)`` for a task: the symmetric registration, as a parked thread's; the
    /// check covers a consumer killed between its decrement and its wake-up.
    func join(deadline: Deadline) async throws -> Bool {
        while true {
            if word.value.load(ordering: .sequentiallyConsistent) == 0 { return true }  // acquire: the tasks' effects
            if deadline.hasPassed { return false }
            try Task.checkCancellation()
            _ = try await word.park(deadline: deadline, check: { [self] in value == 0 }) { $0 == 0 }
        }
    }
}

extension MPMCControl {
    /// What a suspended waiter's check does every ``AsyncWaiter/checkInterval`` (a parked
    /// thread's slice): repair the slot waited on if a dead thread holds it, then say whether
    /// to look again.
    func asyncCheck(consumers: Bool) -> @Sendable () -> Bool {
        { [self] in
            // Relaxed: a hint of which slot to look at; the repair re-reads it.
            repairStalledSlot(at: slotWaitedOn((consumers ? ring.head : ring.tail).load(ordering: .relaxed), consumers: consumers))
            return ring.isClosed || (consumers ? mpmcLooksNonEmpty() : mpmcLooksNotFull())
        }
    }
}

extension SPSCQueue.Producer {
    /// Puts `value`, suspending the task (never blocking a thread) while the queue is full,
    /// at most `timeout`. Throws ``QueueError/timedOut``, ``QueueError/closed``, or
    /// `CancellationError` (nothing put).
    @inlinable @inline(__always)
    nonisolated(nonsending) public mutating func put(_ value: Element, timeout: Duration? = nil) async throws {
        if try tryPut(value) { return }
        try await putSuspending(value, timeout: timeout)
    }

    @usableFromInline
    nonisolated(nonsending) mutating func putSuspending(_ value: Element, timeout: Duration?) async throws {
        let deadline = Deadline.after(timeout)
        while true {
            let (next, control) = (tail, self.control)
            // Acquire: pairs with the consumer's release store of head, as in hasRoom().
            let room: @Sendable () -> Bool = { next &- control.head.load(ordering: .acquiring) < UInt64(control.capacity) }
            try await control.awaitAsync(consumers: false, deadline: deadline, strategy: waitStrategy, check: { room() || control.isClosed }) { room() }
            if try tryPut(value) { return }
        }
    }
}

extension SPSCQueue.Consumer {
    /// Takes the next element, suspending the task (never blocking a thread) while the queue
    /// is empty, at most `timeout`; an element already there costs no suspension. Throws
    /// ``QueueError/timedOut``, ``QueueError/closed`` once closed and empty, or
    /// `CancellationError` (nothing taken).
    @inlinable @inline(__always)
    nonisolated(nonsending) public mutating func get(timeout: Duration? = nil) async throws -> Element {
        if let value = try tryGet() { return value }
        return try await getSuspending(timeout: timeout)
    }

    @usableFromInline
    nonisolated(nonsending) mutating func getSuspending(timeout: Duration?) async throws -> Element {
        let deadline = Deadline.after(timeout)
        while true {
            let (next, control) = (head, self.control)
            // Acquire: pairs with the producer's release store of the tail.
            let ready: @Sendable () -> Bool = { control.tail.load(ordering: .acquiring) != next }
            try await control.awaitAsync(consumers: true, deadline: deadline, strategy: waitStrategy, check: { ready() || control.isClosed }) { ready() }
            if let value = try tryGet() { return value }
        }
    }
}
