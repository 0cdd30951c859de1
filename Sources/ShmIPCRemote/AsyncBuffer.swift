internal import DequeModule
import ShmIPC
import Synchronization

/// A bounded first-in first-out buffer between one producing task and one consuming task,
/// with deadlines and cancellation: a connection's inbound messages (the stream's pump puts,
/// `receive` takes) and a listener's accepted connections. A full buffer makes the producer
/// wait, so a reader that does not keep up slows the peer down (gRPC's flow control) instead of
/// growing memory.
final class AsyncBuffer<Element: Sendable>: Sendable {
    let capacity: Int

    private struct Waiter { let id: UInt64; let continuation: CheckedContinuation<Void, Never> }
    private struct State {
        var elements = Deque<Element>()
        /// Why nothing more will come (set once): the peer ended, or this end closed.
        var end: RemoteError?
        var consumer: Waiter?
        var producer: Waiter?
        /// Waits in progress, and those of them woken before they registered (a timer or a
        /// cancellation that came first).
        var active: Set<UInt64> = []
        var wokenEarly: Set<UInt64> = []
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = capacity }

    // MARK: producing

    /// Appends `element`, waiting for room; false once the buffer ended (the element dropped).
    func put(_ element: Element) async -> Bool {
        while true {
            let (stored, consumer) = state.withLock { state -> (Bool?, Waiter?) in
                if state.end != nil { return (false, nil) }
                guard state.elements.count < capacity else { return (nil, nil) }
                state.elements.append(element)
                defer { state.consumer = nil }
                return (true, state.consumer)
            }
            consumer?.continuation.resume()
            if let stored { return stored }
            await wait(producer: true, deadline: nil)
        }
    }

    /// Appends `element` if there is room now; false if the buffer is full or ended.
    func tryPut(_ element: Element) -> Bool {
        let (stored, consumer) = state.withLock { state -> (Bool, Waiter?) in
            guard state.end == nil, state.elements.count < capacity else { return (false, nil) }
            state.elements.append(element)
            defer { state.consumer = nil }
            return (true, state.consumer)
        }
        consumer?.continuation.resume()
        return stored
    }

    /// Ends the buffer: what is in it can still be taken, then `end` is thrown. The first end
    /// counts.
    func finish(_ end: RemoteError) {
        let (consumer, producer) = state.withLock { state -> (Waiter?, Waiter?) in
            if state.end == nil { state.end = end }
            defer { state.consumer = nil; state.producer = nil }
            return (state.consumer, state.producer)
        }
        consumer?.continuation.resume()
        producer?.continuation.resume()
    }

    /// Ends the buffer and drops what is in it (this end closed): the takers get `end` at once.
    func close(_ end: RemoteError) -> [Element] {
        let (dropped, consumer, producer) = state.withLock { state -> ([Element], Waiter?, Waiter?) in
            state.end = end
            let dropped = Array(state.elements)
            state.elements.removeAll()
            defer { state.consumer = nil; state.producer = nil }
            return (dropped, state.consumer, state.producer)
        }
        consumer?.continuation.resume()
        producer?.continuation.resume()
        return dropped
    }

    // MARK: consuming

    /// Takes the first element, waiting until `deadline` (`nil`: forever). Throws the buffer's
    /// end once it is empty and ended, ``RemoteError/timedOut``, or `CancellationError`.
    func take(deadline: Deadline?) async throws -> Element {
        while true {
            let (result, producer) = state.withLock { state -> (Result<Element, RemoteError>?, Waiter?) in
                if let element = state.elements.popFirst() {
                    defer { state.producer = nil }
                    return (.success(element), state.producer)
                }
                return (state.end.map { .failure($0) }, nil)
            }
            producer?.continuation.resume()
            if let result { return try result.get() }
            try Task.checkCancellation()
            if let deadline, deadline.hasPassed { throw RemoteError.timedOut }
            await wait(producer: false, deadline: deadline)
        }
    }

    /// Takes the first element if there is one now (nil if none, or ended and empty).
    func tryTake() -> Element? {
        let (element, producer) = state.withLock { state -> (Element?, Waiter?) in
            guard let element = state.elements.popFirst() else { return (nil, nil) }
            defer { state.producer = nil }
            return (element, state.producer)
        }
        producer?.continuation.resume()
        return element
    }

    /// Waits until an element or the end is there (true) or `deadline` passes (false), taking
    /// nothing. Throws `CancellationError`.
    func poll(deadline: Deadline?) async throws -> Bool {
        while true {
            if state.withLock({ !$0.elements.isEmpty || $0.end != nil }) { return true }
            try Task.checkCancellation()
            if let deadline, deadline.hasPassed { return false }
            await wait(producer: false, deadline: deadline)
        }
    }

    // MARK: waiting

    /// Sleeps until the other side changes something, `deadline` passes, or the task is
    /// cancelled; the caller re-checks.
    private func wait(producer: Bool, deadline: Deadline?) async {
        let id = state.withLock { state -> UInt64 in
            state.nextID &+= 1
            state.active.insert(state.nextID)
            return state.nextID
        }
        let timer = deadline.map { deadline in
            Task { [self] in
                try? await Task.sleep(for: deadline.remaining)
                wake(id)
            }
        }
        defer {
            timer?.cancel()
            state.withLock { state in
                state.active.remove(id)
                state.wokenEarly.remove(id)
            }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.wokenEarly.remove(id) != nil { return true }
                    let ready = producer ? state.elements.count < capacity || state.end != nil
                        : !state.elements.isEmpty || state.end != nil
                    if ready { return true }
                    if producer { state.producer = Waiter(id: id, continuation: continuation) }
                    else { state.consumer = Waiter(id: id, continuation: continuation) }
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            wake(id)
        }
    }

    /// Resumes the wait `id` if it is registered, or marks it to return at once if not yet.
    private func wake(_ id: UInt64) {
        let waiter = state.withLock { state -> Waiter? in
            if state.consumer?.id == id { defer { state.consumer = nil }; return state.consumer }
            if state.producer?.id == id { defer { state.producer = nil }; return state.producer }
            if state.active.contains(id) { state.wokenEarly.insert(id) }  // not registered yet
            return nil
        }
        waiter?.continuation.resume()
    }
}
