extension Queue {
    /// Takes the next element, suspending the task (never blocking a thread) while the queue
    /// is empty, at most `timeout` (`nil`: forever). An element already there is taken
    /// without suspending or allocating. Throws ``QueueError/timedOut``, ``QueueError/closed``
    /// once the queue is closed and empty, or `CancellationError` (nothing taken).
    public func get(timeout: Duration? = nil) async throws -> Element {
        if let value = mpmc.mpmcTryGet(Element.self) {
            control.didGet()
            return value
        }
        return try await getSuspending(deadline: .after(timeout))
    }

    /// Puts `value`, suspending the task while the queue is full, at most `timeout`. Throws
    /// ``QueueError/timedOut``, ``QueueError/closed``, or `CancellationError` (nothing put).
    public func put(_ value: Element, timeout: Duration? = nil) async throws {
        if !control.isClosed, mpmc.mpmcTryPut(value) {
            control.didPut()
            return
        }
        try await putSuspending(value, deadline: .after(timeout))
    }

    /// The elements as they arrive, until the queue is closed and drained: `for try await
    /// item in queue.elements`. Each iteration is an async ``get(timeout:)``; several
    /// consumers iterating one queue share its elements.
    public var elements: Elements { Elements(queue: self) }

    /// An `AsyncSequence` of a queue's elements (``elements``).
    public struct Elements: AsyncSequence, Sendable {
        let queue: Queue

        public func makeAsyncIterator() -> Iterator { Iterator(queue: queue) }

        public struct Iterator: AsyncIteratorProtocol {
            let queue: Queue
            /// The next element; nil once the queue is closed and empty.
            public mutating func next() async throws -> Element? {
                do { return try await queue.get() } catch QueueError.closed { return nil }
            }
        }
    }

    /// What a suspended waiter's check does every ``AsyncWaiter/checkInterval`` (a parked
    /// thread's slice): repair the slot waited on if a dead thread holds it, then say whether
    /// to look again.
    private func check(consumers: Bool) -> @Sendable () -> Bool {
        let mpmc = self.mpmc
        return {
            let ring = mpmc.ring
            // Relaxed: a hint of which slot to look at; the repair re-reads it.
            mpmc.repairStalledSlot(at: mpmc.slotWaitedOn((consumers ? ring.head : ring.tail).load(ordering: .relaxed), consumers: consumers))
            return ring.isClosed || (consumers ? mpmc.mpmcLooksNonEmpty() : mpmc.mpmcLooksNotFull())
        }
    }

    private func getSuspending(deadline: Deadline) async throws -> Element {
        let check = check(consumers: true)
        while true {
            if let value = mpmc.mpmcTryGet(Element.self) {
                control.didGet()
                return value
            }
            try await control.awaitAsync(consumers: true, deadline: deadline, check: check) { mpmc.mpmcLooksNonEmpty() }
        }
    }

    private func putSuspending(_ value: Element, deadline: Deadline) async throws {
        let check = check(consumers: false)
        while true {
            if control.isClosed { throw QueueError.closed }
            if mpmc.mpmcTryPut(value) {
                control.didPut()
                return
            }
            try await control.awaitAsync(consumers: false, deadline: deadline, check: check) { mpmc.mpmcLooksNotFull() }
        }
    }
}
