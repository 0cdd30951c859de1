internal import Atomics
internal import CShim

/// One end of a ``Pipe``: Python's `multiprocessing.connection.Connection`.
///
/// - Byte messages: ``send(bytes:timeout:)-(UnsafeRawBufferPointer,_)``, ``receive(timeout:)``, ``receive(into:timeout:)``
///   (a too-small buffer throws ``ChannelError/bufferTooSmall(needed:)`` and leaves the message
///   in place), ``receiveInPlace(timeout:_:)`` (reads the message where it lies), ``poll(timeout:)``.
/// - Values: ``send(_:timeout:)`` and ``receive(as:timeout:)`` through ``coder``.
/// - Zero-copy: ``loan(capacity:timeout:)`` lends space in the ring to write a message in
///   place; ``send(_:count:)`` publishes it.
/// - Back-pressure: a full ring blocks a sender per ``waitStrategy`` and its timeout;
///   ``trySend(bytes:)`` fails instead. A message over the limit fails at once.
/// - Ends: ``close()`` (also on deinit) ends the stream: the peer receives what was sent, then
///   ``ChannelError/endOfStream``, and its sends throw ``ChannelError/brokenPipe``. A peer
///   that dies counts as closed once its death is seen (within ~25 ms of waiting).
/// - Safety: every length and offset read from shared memory is validated before use; what a
///   hostile peer can do is send wrong bytes, or make this end throw
///   ``ChannelError/corrupted(_:)`` (from then on, always).
///
/// Not `Sendable`: like Python's, a connection is used by one thread at a time (each end is a
/// single producer and a single consumer); move it to another thread, or give each thread its
/// own pipe.
public final class Connection {
    let pipe: Pipe
    /// Which end of the pipe this is.
    public let end: Pipe.End
    /// How this end waits for room or messages.
    public let waitStrategy: WaitStrategy
    /// Encodes and decodes values for ``send(_:timeout:)`` and ``receive(as:timeout:)``.
    public var coder: any MessageCoder = BinaryMessageCoder()

    @exclusivity(unchecked) var sender: RingProducer?
    @exclusivity(unchecked) var receiver: RingConsumer?
    /// Whether ``close()`` was called.
    public private(set) var isClosed: Bool {
        get { closed }
        set { closed = newValue }
    }
    // Unchecked exclusivity: a Connection is not Sendable (one thread at a time), and these
    // are read on every call, where dynamic access checks cost more than the work.
    @exclusivity(unchecked) private var closed = false { didSet { updateReadiness() } }
    @exclusivity(unchecked) var loanOutstanding = false { didSet { updateReadiness() } }
    /// Set once the shared memory was found corrupted: every later call throws it.
    @exclusivity(unchecked) var corruption: ChannelError? { didSet { updateReadiness() } }
    /// Whether a send (a receive) has nothing to check but the ring: this end has the ring, is
    /// open, found no corruption, and (sending) lends nothing. Kept in step by the properties
    /// above, so the fast paths test one flag where ``checkUsable(sending:)`` tests four (and
    /// copies the optional error out).
    @exclusivity(unchecked) private var sendReady = false
    @exclusivity(unchecked) private var receiveReady = false

    private func updateReadiness() {
        let usable = !closed && corruption == nil
        sendReady = usable && sender != nil && !loanOutstanding
        receiveReady = usable && receiver != nil
    }

    init(pipe: Pipe, end: Pipe.End, waitStrategy: WaitStrategy) throws(ChannelError) {
        self.pipe = pipe
        self.end = end
        self.waitStrategy = waitStrategy
        // Ring 0 carries second → first; ring 1 (duplex only) first → second.
        let receiveRing: Int? = end == .first ? 0 : (pipe.isDuplex ? 1 : nil)
        let sendRing: Int? = end == .second ? 0 : (pipe.isDuplex ? 1 : nil)
        if let receiveRing {
            let control = pipe.ring(receiveRing)
            try Self.claim(control, producer: false)
            do throws(ChannelError) { receiver = try RingConsumer(control: control, geometry: pipe.geometry) } catch {
                control.releaseRole(producer: false)
                throw error
            }
        }
        if let sendRing {
            let control = pipe.ring(sendRing)
            do throws(ChannelError) {
                try Self.claim(control, producer: true)
                do throws(ChannelError) { sender = try RingProducer(control: control, geometry: pipe.geometry) } catch {
                    control.releaseRole(producer: true)
                    throw error
                }
            } catch {
                receiver?.control.releaseRole(producer: false)
                throw error
            }
        }
        updateReadiness()
    }

    deinit {
        if !isClosed { close() }
        sender?.control.releaseRole(producer: true)
        receiver?.control.releaseRole(producer: false)
    }

    private static func claim(_ control: RingControl, producer: Bool) throws(ChannelError) {
        do { try control.claimRole(producer: producer) } catch {
            if case .roleTaken(let pid) = error { throw .endTaken(pid: pid) }
            throw .corrupted("\(error)")
        }
    }

    /// Whether this end can receive (a one-way pipe's first end, or either end of a duplex pipe).
    public var isReadable: Bool { receiver != nil }
    /// Whether this end can send.
    public var isWritable: Bool { sender != nil }
    /// The largest message, in bytes.
    public var maxMessageSize: Int { pipe.geometry.limit }

    /// Ends this connection: the peer receives what was already sent, then
    /// ``ChannelError/endOfStream``; its sends fail with ``ChannelError/brokenPipe``. A loan
    /// still out can no longer be sent. Idempotent.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        sender?.control.close()
        receiver?.control.close()
    }

    // MARK: sending

    /// Sends `bytes` as one message, waiting at most `timeout` (`nil`: forever) for room.
    public func send(bytes: UnsafeRawBufferPointer, timeout: Duration? = nil) throws(ChannelError) {
        // The fast path: room now, nothing to report. Everything else (waiting, and every
        // error) takes the checked path, which looks at it all again.
        if _fastPath(sendReady), let reservation = sender!.reserveIfRoom(bytes.count) {
            publish(bytes, in: reservation)
            return
        }
        publish(bytes, in: try reserve(bytes.count, timeout: timeout, waits: true)!)
    }

    /// Sends `bytes` as one message, waiting at most `timeout` for room.
    public func send(bytes: [UInt8], timeout: Duration? = nil) throws(ChannelError) {
        try withBytes(of: bytes) { buffer throws(ChannelError) in try send(bytes: buffer, timeout: timeout) }
    }

    /// Sends every message of `messages` in order, waiting at most `timeout` (`nil`: forever,
    /// for the whole batch) for room. Each record is published by its own commit word, as a
    /// single send's is; the ring's tail, its message count and the wake-up check are made
    /// once per run of messages that fit (all of them, when the ring has room).
    ///
    /// A batch is all or a prefix: after a throw, or a sender killed in the middle, the
    /// receiver gets a prefix of `messages`, each whole and in order, and nothing after it.
    public func send(contentsOf messages: some Sequence<UnsafeRawBufferPointer>, timeout: Duration? = nil) throws(ChannelError) {
        var deadline: Deadline?
        var pending = false
        defer { if pending { sender!.publishTail() } }
        for bytes in messages {
            if _fastPath(sendReady), let reservation = sender!.reserveIfRoom(bytes.count) {
                copy(bytes, into: reservation)
                sender!.commitRecord(reservation, length: bytes.count)
                pending = true
                continue
            }
            if pending { sender!.publishTail(); pending = false }  // publish and wake before we wait
            if deadline == nil { deadline = .after(timeout) }
            try send(bytes: bytes, timeout: deadline! == .distantFuture ? nil : deadline!.remaining)
        }
    }

    /// Sends every message of `messages` in order; see the buffer variant (all or a prefix).
    public func send(contentsOf messages: some Sequence<[UInt8]>, timeout: Duration? = nil) throws(ChannelError) {
        var deadline: Deadline?
        var pending = false
        defer { if pending { sender!.publishTail() } }
        for message in messages {
            var sent = false
            if _fastPath(sendReady), let reservation = sender!.reserveIfRoom(message.count) {
                message.withUnsafeBytes { copy($0, into: reservation) }
                sender!.commitRecord(reservation, length: message.count)
                pending = true
                sent = true
            }
            if sent { continue }
            if pending { sender!.publishTail(); pending = false }
            if deadline == nil { deadline = .after(timeout) }
            try send(bytes: message, timeout: deadline! == .distantFuture ? nil : deadline!.remaining)
        }
    }

    /// Sends `bytes` if the ring has room now; false if it is full.
    public func trySend(bytes: UnsafeRawBufferPointer) throws(ChannelError) -> Bool {
        guard let reservation = try reserve(bytes.count, timeout: nil, waits: false) else { return false }
        publish(bytes, in: reservation)
        return true
    }

    /// Copies `bytes` into `reservation` and publishes it.
    private func publish(_ bytes: UnsafeRawBufferPointer, in reservation: RingProducer.Reservation) {
        copy(bytes, into: reservation)
        sender!.commit(reservation, length: bytes.count)
    }

    private func copy(_ bytes: UnsafeRawBufferPointer, into reservation: RingProducer.Reservation) {
        if let source = bytes.baseAddress, !bytes.isEmpty {
            reservation.payload.copyMemory(from: source, byteCount: bytes.count)
        }
    }

    /// Sends `value` encoded by ``coder``, waiting at most `timeout` for room.
    public func send(_ value: some Encodable, timeout: Duration? = nil) throws(ChannelError) {
        try send(bytes: try coder.encode(value), timeout: timeout)
    }

    /// Lends `capacity` bytes of the ring for a message written in place; waits at most
    /// `timeout` for room. Send the loan with ``send(_:count:)`` or end it with
    /// ``MessageLoan/giveBack()``; until then this connection sends nothing else. A loan
    /// dropped without either is given back.
    public func loan(capacity: Int, timeout: Duration? = nil) throws(ChannelError) -> MessageLoan {
        let reservation = try reserve(capacity, timeout: timeout, waits: true)!
        loanOutstanding = true
        return MessageLoan(connection: self, reservation: reservation)
    }

    /// Like ``loan(capacity:timeout:)``, without waiting: nil if the ring is full.
    public func tryLoan(capacity: Int) throws(ChannelError) -> MessageLoan? {
        guard let reservation = try reserve(capacity, timeout: nil, waits: false) else { return nil }
        loanOutstanding = true
        return MessageLoan(connection: self, reservation: reservation)
    }

    /// Publishes a loan's first `count` bytes (all of them by default) as one message.
    public func send(_ loan: consuming MessageLoan, count: Int? = nil) throws(ChannelError) {
        precondition(loan.connection === self, "a loan is sent through the connection that lent it")
        let length = count ?? loan.capacity
        guard length >= 0, length <= loan.capacity else { throw .messageTooLarge(size: length, limit: loan.capacity) }
        if isClosed { throw .closed }
        if sender!.control.isClosed { throw .brokenPipe }
        sender!.commit(loan.reservation, length: length)
    }

    /// Reserves room for `length` payload bytes, waiting if `waits`; nil if full and not.
    private func reserve(_ length: Int, timeout: Duration?, waits: Bool) throws(ChannelError) -> RingProducer.Reservation? {
        try checkUsable(sending: true)
        guard length <= pipe.geometry.limit else { throw .messageTooLarge(size: length, limit: pipe.geometry.limit) }
        let control = sender!.control
        if control.isClosed { throw .brokenPipe }
        do throws(ChannelError) {
            if let reservation = try sender!.reserve(length) { return reservation }
            guard waits else { return nil }
            let deadline = Deadline.after(timeout)
            while true {
                let producer = sender!
                do {
                    try control.await(
                        consumers: false, deadline: deadline, strategy: waitStrategy,
                        peerGone: { Self.holderDied(control.consumerRole) }
                    ) { producer.hasRoom(for: length) }
                } catch {
                    throw error == .timedOut ? .timedOut : .brokenPipe
                }
                if let reservation = try sender!.reserve(length) { return reservation }
            }
        } catch {
            throw noting(error)
        }
    }

    // MARK: receiving

    /// Receives the next message as a new array, waiting at most `timeout` (`nil`: forever).
    public func receive(timeout: Duration? = nil) throws(ChannelError) -> [UInt8] {
        let message = try next(timeout: timeout, waits: true)!
        let bytes = [UInt8](message)
        receiver!.release(message.count)
        return bytes
    }

    /// Receives the next message into `buffer`, returning its length. A message longer than
    /// the buffer throws ``ChannelError/bufferTooSmall(needed:)`` and stays in the pipe.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, timeout: Duration? = nil) throws(ChannelError) -> Int {
        // The fast path: a whole, valid message that fits (see send(bytes:timeout:)).
        let message: UnsafeRawBufferPointer
        if _fastPath(receiveReady), let ready = receiver!.nextIfValid(), ready.count <= buffer.count {
            message = ready
        } else {
            message = try next(timeout: timeout, waits: true)!
        }
        guard message.count <= buffer.count else { throw .bufferTooSmall(needed: message.count) }
        if let source = message.baseAddress, !message.isEmpty {
            buffer.baseAddress!.copyMemory(from: source, byteCount: message.count)
        }
        receiver!.release(message.count)
        return message.count
    }

    /// Waits at most `timeout` (`nil`: forever) for a message, then receives up to `maxCount`
    /// of those ready, as new arrays, freeing them at once (one head store, one wake-up check).
    /// The batch ends early at the ring's end (its wrap marker) or at a record the fast path
    /// does not take (the next call reads it).
    public func receive(upTo maxCount: Int, timeout: Duration? = nil) throws(ChannelError) -> [[UInt8]] {
        var messages: [[UInt8]] = []
        _ = try receiveBatch(upTo: maxCount, timeout: timeout) { message in
            messages.append([UInt8](message))
            return true
        }
        return messages
    }

    /// Waits at most `timeout` for a message, then calls `body` with each of up to `maxCount`
    /// ready messages where they lie (no copy), and frees them all at once after the last
    /// (also if `body` throws: the messages it was given are consumed); returns how many.
    /// Every view stays valid until this call returns; a hostile peer could change its bytes
    /// meanwhile, never its bounds.
    public func receiveInPlace(upTo maxCount: Int, timeout: Duration? = nil, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        var failure: (any Error)?
        let count = try receiveBatch(upTo: maxCount, timeout: timeout) { message in
            do { try body(message) } catch {
                failure = error
                return false
            }
            return true
        }
        if let failure { throw failure }
        return count
    }

    /// The batch receive: the first message waited for, then the ready ones up to `maxCount`
    /// while `body` returns true, all freed at once at the end.
    private func receiveBatch(
        upTo maxCount: Int, timeout: Duration?, _ body: (UnsafeRawBufferPointer) -> Bool
    ) throws(ChannelError) -> Int {
        precondition(maxCount >= 1, "a batch receives at least one message")
        let first = try next(timeout: timeout, waits: true)!
        receiver!.advance(past: first.count)
        defer { receiver!.publishHead() }
        var count = 1
        guard body(first) else { return count }
        while count < maxCount, receiveReady, let message = receiver!.nextIfValid() {
            receiver!.advance(past: message.count)
            count += 1
            guard body(message) else { break }
        }
        return count
    }

    /// Receives the next message if one is ready; nil if none is.
    public func tryReceive() throws(ChannelError) -> [UInt8]? {
        guard let message = try next(timeout: nil, waits: false) else { return nil }
        let bytes = [UInt8](message)
        receiver!.release(message.count)
        return bytes
    }

    /// Calls `body` with the next message where it lies in shared memory (no copy), then frees
    /// it, also if `body` throws. The view is valid only inside `body`; a hostile peer could
    /// change its bytes meanwhile, never its bounds.
    public func receiveInPlace<Result>(
        timeout: Duration? = nil, _ body: (UnsafeRawBufferPointer) throws -> Result
    ) throws -> Result {
        let message = try next(timeout: timeout, waits: true)!
        defer { receiver!.release(message.count) }
        return try body(message)
    }

    /// Like ``receiveInPlace(timeout:_:)``, if a message is ready; nil (without calling `body`)
    /// if none is.
    public func tryReceiveInPlace<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) throws -> Result? {
        guard let message = try next(timeout: nil, waits: false) else { return nil }
        defer { receiver!.release(message.count) }
        return try body(message)
    }

    /// Receives the next message and decodes it as `type` with ``coder``. Bytes that do not
    /// decode throw ``ChannelError/decodingFailed(_:)`` (the message is consumed).
    public func receive<T: Decodable>(as type: T.Type, timeout: Duration? = nil) throws(ChannelError) -> T {
        let message = try next(timeout: timeout, waits: true)!
        defer { receiver!.release(message.count) }
        return try coder.decode(type, from: message)
    }

    /// Whether a receive would not wait: a message is ready, or the stream ended. Waits at
    /// most `timeout` (`nil`: forever; zero, the default: not at all).
    public func poll(timeout: Duration? = .zero) throws(ChannelError) -> Bool {
        if timeout == .zero { return try pollNow() }
        do {
            _ = try next(timeout: timeout, waits: true)
            return true
        } catch .endOfStream {
            return true
        } catch .timedOut {
            return false
        }
    }

    /// Whether a message is ready or the stream ended, without waiting.
    func pollNow() throws(ChannelError) -> Bool {
        do {
            if try next(timeout: nil, waits: false) != nil { return true }
            let control = receiver!.control
            return control.isClosed || Self.holderDied(control.producerRole)
        } catch .endOfStream {
            return true
        }
    }

    /// The next message, waiting per `waits`; nil only when not waiting and none is ready.
    private func next(timeout: Duration?, waits: Bool) throws(ChannelError) -> UnsafeRawBufferPointer? {
        try checkUsable(sending: false)
        do throws(ChannelError) {
            if let message = try receiver!.next() { return message }
            guard waits else { return nil }
            // Spin first, before reading the clock for a deadline (twice, in await): a reply
            // within the spin window then costs no clock read (~20–30 ns each here).
            let ring = receiver!
            if waitStrategy.spin({ ring.isPublished(at: ring.head) }), let message = try receiver!.next() { return message }
            let control = receiver!.control
            let deadline = Deadline.after(timeout)
            while true {
                let consumer = receiver!
                do {
                    try control.await(
                        consumers: true, deadline: deadline, strategy: waitStrategy,
                        peerGone: { Self.holderDied(control.producerRole) }
                    ) { consumer.isPublished(at: consumer.head) }
                } catch {
                    if error == .timedOut { throw .timedOut }
                    if let message = try receiver!.next() { return message }
                    throw .endOfStream
                }
                if let message = try receiver!.next() { return message }
            }
        } catch {
            throw noting(error)
        }
    }

    // MARK: state

    private func checkUsable(sending: Bool) throws(ChannelError) {
        if isClosed { throw .closed }
        if let corruption { throw corruption }
        if sending {
            if sender == nil { throw .wrongDirection }
            if loanOutstanding { throw .loanOutstanding }
        } else if receiver == nil {
            throw .wrongDirection
        }
    }

    /// Remembers a corruption, so every later call reports it; returns `error`.
    private func noting(_ error: ChannelError) -> ChannelError {
        if case .corrupted(let what) = error, corruption == nil {
            corruption = error
            logRecovery(.error, "a pipe's shared memory is corrupted; this end refuses every call from now on", ["what": "\(what)"])
        }
        return error
    }

    /// Whether the role word names a process that is gone.
    static func holderDied(_ role: UnsafeAtomic<UInt32>) -> Bool {
        let holder = role.load(ordering: .acquiring)  // pairs with claimRole's exchange
        return holder != 0 && !Sys.threadIsAlive(Int32(bitPattern: holder))
    }
}

/// Space lent by ``Connection/loan(capacity:timeout:)``: write the message in place, then send
/// it with ``Connection/send(_:count:)`` or end it with ``giveBack()``. Non-copyable, so it is
/// sent or given back at most once; dropping it gives it back (the ring space was only
/// reserved, never taken).
public struct MessageLoan: ~Copyable {
    let connection: Connection
    let reservation: RingProducer.Reservation

    init(connection: Connection, reservation: RingProducer.Reservation) {
        self.connection = connection
        self.reservation = reservation
    }

    deinit { connection.loanOutstanding = false }

    /// The bytes lent.
    public var capacity: Int { reservation.length }

    /// Calls `body` with the lent bytes in shared memory, to write the message.
    public func withUnsafeMutableBytes<Result, Failure: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeMutableRawBufferPointer(start: reservation.payload, count: reservation.length))
    }

    /// Ends the loan without sending anything.
    public consuming func giveBack() {}
}

// MARK: - async forms
//
// A Connection is not Sendable (one user at a time), so its async forms take the caller's
// isolation: the connection never leaves the caller's actor (or task), and the compiler can
// see that. They live in this file so that `publish`, `checkUsable` and `noting` stay
// private: made internal (for a file of their own), rtt.connection.64B measured +4% to +7%
// against the base in two sittings, and within 1.3% once private again.

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

        /// The iterator: each `next` receives one message.
        public func makeAsyncIterator() -> Iterator { Iterator(connection: connection, receive: receive) }

        /// Receives the connection's messages one by one.
        public struct Iterator: AsyncIteratorProtocol {
            let connection: Connection
            let receive: (Connection, isolated (any Actor)?) async throws -> Element

            /// The next message; nil at the end of the stream.
            public mutating func next(isolation actor: isolated (any Actor)?) async throws -> Element? {
                do { return try await receive(connection, actor) } catch ChannelError.endOfStream { return nil }
            }

            /// The next message, received from a nonisolated context; nil at the end of the stream.
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
