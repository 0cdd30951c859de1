// A Connection is not Sendable (one user at a time), so its async forms take the caller's
// isolation: the connection never leaves the caller's actor (or task), and the compiler can
// see that.

extension Connection {
    /// Receives the next message as a new array, suspending the task (never blocking a
    /// thread) until one arrives, at most `timeout` (`nil`: forever). A message already there
    /// takes no suspension. Throws ``ChannelError/endOfStream`` once the peer closed (or
    /// died) and everything sent was received, ``ChannelError/timedOut``, or
    /// `CancellationError` (nothing received).
    public func receive(timeout: Duration? = nil, isolation: isolated (any Actor)? = #isolation) async throws -> [UInt8] {
        let message = try await nextAsync(deadline: .after(timeout), isolation: isolation)
        let bytes = [UInt8](message)
        receiver!.release(message.count)
        return bytes
    }

    /// Receives the next message and decodes it as `type` with ``coder``, suspending as
    /// ``receive(timeout:isolation:)``.
    public func receive<T: Decodable>(
        as type: T.Type, timeout: Duration? = nil, isolation: isolated (any Actor)? = #isolation
    ) async throws -> T {
        let message = try await nextAsync(deadline: .after(timeout), isolation: isolation)
        defer { receiver!.release(message.count) }
        return try coder.decode(type, from: message)
    }

    /// Whether a receive would not suspend (a message is ready, or the stream ended),
    /// suspending the task at most `timeout` (`nil`: until one of them; zero, the default:
    /// not at all). Throws `CancellationError`.
    public func poll(timeout: Duration? = .zero, isolation: isolated (any Actor)? = #isolation) async throws -> Bool {
        if timeout == .zero { return try pollNow() }
        do {
            _ = try await nextAsync(deadline: .after(timeout), isolation: isolation)
            return true
        } catch ChannelError.endOfStream {
            return true
        } catch ChannelError.timedOut {
            return false
        }
    }

    /// Sends `bytes` as one message, suspending the task while the ring is full, at most
    /// `timeout`. Throws ``ChannelError/brokenPipe`` if the peer closed or died,
    /// ``ChannelError/messageTooLarge(size:limit:)``, ``ChannelError/timedOut``, or
    /// `CancellationError` (nothing sent).
    public func send(bytes: [UInt8], timeout: Duration? = nil, isolation: isolated (any Actor)? = #isolation) async throws {
        let reservation = try await reserveAsync(bytes.count, deadline: .after(timeout), isolation: isolation)
        bytes.withUnsafeBytes { publish($0, in: reservation) }
    }

    /// Encodes `value` with ``coder`` and sends it, suspending as
    /// ``send(bytes:timeout:isolation:)``.
    public func send(_ value: some Encodable, timeout: Duration? = nil, isolation: isolated (any Actor)? = #isolation) async throws {
        try await send(bytes: try coder.encode(value), timeout: timeout, isolation: isolation)
    }

    /// The messages as they arrive, as byte arrays, until the peer closes (or dies) and
    /// everything it sent was received: `for try await message in connection.messages`.
    public var messages: Messages<[UInt8]> {
        Messages(connection: self) { connection, isolation in try await connection.receive(isolation: isolation) }
    }

    /// The messages as they arrive, each decoded as `type` with ``coder``, until the end of
    /// the stream: `for try await order in connection.messages(as: Order.self)`. A message
    /// that does not decode throws ``ChannelError/decodingFailed(_:)``.
    public func messages<T: Decodable>(as type: T.Type) -> Messages<T> {
        Messages(connection: self) { connection, isolation in try await connection.receive(as: T.self, isolation: isolation) }
    }

    /// An `AsyncSequence` of a connection's messages (``messages`` and ``messages(as:)``).
    /// Like its connection, not `Sendable`: iterate it where the connection is used.
    public struct Messages<Element>: AsyncSequence {
        let connection: Connection
        let receive: (Connection, isolated (any Actor)?) async throws -> Element

        public func makeAsyncIterator() -> Iterator { Iterator(connection: connection, receive: receive) }

        public struct Iterator: AsyncIteratorProtocol {
            let connection: Connection
            let receive: (Connection, isolated (any Actor)?) async throws -> Element

            /// The next message; nil at the end of the stream.
            public mutating func next(isolation actor: isolated (any Actor)?) async throws -> Element? {
                do { return try await receive(connection, actor) } catch ChannelError.endOfStream { return nil }
            }

            public mutating func next() async throws -> Element? {
                try await next(isolation: nil)
            }
        }
    }

    // MARK: waiting

    /// The next message (not yet released), suspending until one is published.
    private func nextAsync(deadline: Deadline, isolation: isolated (any Actor)?) async throws -> UnsafeRawBufferPointer {
        try checkUsable(sending: false)
        do {
            if let message = try receiver!.next() { return message }
            let control = receiver!.control
            let role = control.producerRole
            while true {
                let (consumer, head) = (receiver!, receiver!.head)
                do {
                    try await control.awaitAsync(
                        consumers: true, deadline: deadline, strategy: waitStrategy, peerGone: { Self.holderDied(role) },
                        check: { consumer.isPublished(at: head) || control.isClosed || Self.holderDied(role) }
                    ) { consumer.isPublished(at: head) }
                } catch QueueError.timedOut {
                    throw ChannelError.timedOut
                } catch QueueError.closed {
                    if let message = try receiver!.next() { return message }
                    throw ChannelError.endOfStream
                }
                if let message = try receiver!.next() { return message }
            }
        } catch let error as ChannelError {
            throw noting(error)
        }
    }

    /// Room for `length` payload bytes, suspending until the receiver frees enough.
    private func reserveAsync(
        _ length: Int, deadline: Deadline, isolation: isolated (any Actor)?
    ) async throws -> RingProducer.Reservation {
        try checkUsable(sending: true)
        guard length <= pipe.geometry.limit else { throw ChannelError.messageTooLarge(size: length, limit: pipe.geometry.limit) }
        let control = sender!.control
        if control.isClosed { throw ChannelError.brokenPipe }
        do {
            if let reservation = try sender!.reserve(length) { return reservation }
            let role = control.consumerRole
            while true {
                let producer = sender!
                do {
                    try await control.awaitAsync(
                        consumers: false, deadline: deadline, strategy: waitStrategy, peerGone: { Self.holderDied(role) },
                        check: { producer.hasRoom(for: length) || control.isClosed || Self.holderDied(role) }
                    ) { producer.hasRoom(for: length) }
                } catch QueueError.timedOut {
                    throw ChannelError.timedOut
                } catch QueueError.closed {
                    throw ChannelError.brokenPipe
                }
                if let reservation = try sender!.reserve(length) { return reservation }
            }
        } catch let error as ChannelError {
            throw noting(error)
        }
    }
}
