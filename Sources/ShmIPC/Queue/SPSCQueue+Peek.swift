/// Reading without taking, for a consumer that must not lose what it read if it dies before
/// it is done with it (a bridge that forwards elements and may take them only once the far
/// side has them): ``peek(from:into:)`` copies ready elements and leaves them in the ring,
/// where the producer cannot overwrite them, and ``discard(through:)`` takes them when they
/// are done with. A consumer killed between the two leaves them in the queue, for the next
/// consumer to read again; positions (``taken``) say which ones it had.
extension SPSCQueue.Consumer {
    /// How many elements consumers of this queue have taken since it was made: the position
    /// of the next element to take. It only grows, and a take is counted by the same store
    /// that makes it, so a consumer killed at any instant leaves it exact.
    public var taken: UInt64 { head }

    /// Copies up to `buffer.count` ready elements, from position `start` (at least
    /// ``taken``) on, into `buffer` without taking them; returns how many (0 if none is ready
    /// there).
    public mutating func peek(from start: UInt64, into buffer: UnsafeMutableBufferPointer<Element>) -> Int {
        precondition(start >= head, "a peek starts at or after the next element to take")
        // Acquire: pairs with the producer's release store of the tail: the slots are written.
        cachedTail = control.tail.load(ordering: .acquiring)
        guard cachedTail > start else { return 0 }
        let count = Int(min(cachedTail - start, UInt64(buffer.count)))
        for i in 0..<count {
            buffer.initializeElement(at: i, to: control.typedSlot(start &+ UInt64(i), Element.self).loadUnaligned(as: Element.self))
        }
        return count
    }

    /// Suspends the task (never blocking a thread) until an element at position `position`
    /// is ready, at most `timeout`. Throws ``QueueError/timedOut``, ``QueueError/closed``
    /// once the queue is closed with nothing there, or `CancellationError`.
    nonisolated(nonsending) public mutating func waitForElement(at position: UInt64, timeout: Duration? = nil) async throws {
        let control = self.control
        // Acquire: pairs with the producer's release store of the tail, so a peek after this
        // reads written slots.
        let ready: @Sendable () -> Bool = { control.tail.load(ordering: .acquiring) > position }
        if ready() { return }
        try await control.awaitAsync(
            consumers: true, deadline: .after(timeout), strategy: waitStrategy, check: { ready() || control.isClosed }) { ready() }
    }

    /// Takes every element before position `end` (they were peeked, and are done with),
    /// making their room the producer's.
    public mutating func discard(through end: UInt64) {
        precondition(end >= head, "discarded elements are not given back")
        // Acquire, as in peek (only a check here: the elements were read after an acquire).
        precondition(end <= control.tail.load(ordering: .acquiring), "only ready elements can be discarded")
        // The head's release store in release() pairs with the producer's acquire load of it:
        // our reads of these slots are done before the producer may overwrite them.
        let count = end - head
        guard count > 0 else { return }
        head = end
        release(Int(count))
    }
}
