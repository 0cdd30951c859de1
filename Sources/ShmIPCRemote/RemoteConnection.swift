internal import Foundation
package import GRPCCore
import ShmIPC
import Synchronization

/// One end of a remote connection: whole messages, either way, in order (Python's
/// `multiprocessing.connection.Connection`, over a gRPC bidirectional stream). From
/// ``Listener/accept(timeout:)`` on the serving side and ``Client/connect(to:authKey:maxMessageSize:handshakeTimeout:tls:)``
/// on the other.
///
/// Messages are raw bytes (``send(bytes:)``, ``receiveBytes(timeout:)``) or `Codable` values in
/// ShmIPC's binary form, tagged with their type's name (``send(_:)``, ``receive(_:timeout:)``): a
/// value received as another type is ``RemoteError/typeMismatch(expected:found:)`` and is not
/// decoded. One task sends at a time and one receives at a time (as with Python's connection
/// objects); the two may be different tasks. Received messages wait in a bounded buffer
/// (``inboundCapacity`` messages); past that the sender is slowed by gRPC's flow control.
///
/// Close a connection when done with it (``close()``): its stream, and a client's connection
/// to the server, live until either end closes.
public final class RemoteConnection: Sendable {
    /// Messages received and not yet taken, at most.
    public static let inboundCapacity = 64
    /// The largest message either end accepts, in bytes (the two ends' limits should match).
    public let maxMessageSize: Int

    package typealias Frame = Shmipc_Remote_V1_Frame
    let inbox = AsyncBuffer<Frame>(capacity: RemoteConnection.inboundCapacity)
    private let coder = BinaryMessageCoder()

    private struct Outbound {
        var writer: RPCWriter<Frame>?
        var writerWaiters: [CheckedContinuation<Void, Never>] = []
        /// The stream's task waits here until the connection is done.
        var doneWaiter: CheckedContinuation<Void, Never>?
        var done = false
        var closedLocally = false
    }
    private let outbound = Mutex(Outbound())
    /// Runs once, when this end closes (a client's shuts its gRPC client down).
    private let onClose: Mutex<(@Sendable () -> Void)?>

    package init(maxMessageSize: Int, onClose: (@Sendable () -> Void)? = nil) {
        self.maxMessageSize = maxMessageSize
        self.onClose = Mutex(onClose)
    }

    // MARK: sending

    /// Sends `bytes` as one message. Throws ``RemoteError/messageTooLarge(size:limit:)``,
    /// ``RemoteError/closed`` or ``RemoteError/brokenPipe``.
    public func send(bytes: [UInt8]) async throws {
        try await send(Frame.with { $0.data = Data(bytes) })
    }

    /// Sends `value` in ShmIPC's binary Codable form, tagged with its type's name.
    public func send<Value: Encodable>(_ value: Value) async throws {
        let bytes: [UInt8]
        do { bytes = try coder.encode(value) } catch { throw RemoteError.decodingFailed("\(value) did not encode: \(error)") }
        try await send(Frame.with {
            $0.data = Data(bytes)
            $0.type = String(reflecting: Value.self)
        })
    }

    private func send(_ frame: Frame) async throws {
        guard frame.data.count <= maxMessageSize else { throw RemoteError.messageTooLarge(size: frame.data.count, limit: maxMessageSize) }
        let writer = try await self.writer()
        do {
            try await writer.write(frame)
        } catch {
            throw isClosed ? RemoteError.closed : RemoteError.brokenPipe
        }
    }

    /// The stream's writer, once the stream is open.
    private func writer() async throws -> RPCWriter<Frame> {
        while true {
            let (writer, failure) = outbound.withLock { state -> (RPCWriter<Frame>?, RemoteError?) in
                if state.closedLocally { return (nil, .closed) }
                if state.done { return (nil, .brokenPipe) }
                return (state.writer, nil)
            }
            if let failure { throw failure }
            if let writer { return writer }
            await withCheckedContinuation { continuation in
                let now = outbound.withLock { state -> Bool in
                    if state.writer != nil || state.done || state.closedLocally { return true }
                    state.writerWaiters.append(continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        }
    }

    // MARK: receiving

    /// Receives the next message's bytes (a value's binary form, for a value), waiting at most
    /// `timeout` (`nil`: forever). Throws ``RemoteError/endOfStream`` once the peer closed and
    /// everything it sent was received, ``RemoteError/timedOut``, ``RemoteError/closed``.
    public func receiveBytes(timeout: Duration? = nil) async throws -> [UInt8] {
        Array(try await inbox.take(deadline: timeout.map(Deadline.after)).data)
    }

    /// Receives the next message as a `Value` (see ``receiveBytes(timeout:)``). A message that
    /// is not a `Value` (another type, or raw bytes) throws
    /// ``RemoteError/typeMismatch(expected:found:)`` and is consumed, undecoded.
    public func receive<Value: Decodable>(_ type: Value.Type = Value.self, timeout: Duration? = nil) async throws -> Value {
        let frame = try await inbox.take(deadline: timeout.map(Deadline.after))
        let expected = String(reflecting: Value.self)
        guard frame.type == expected else {
            throw RemoteError.typeMismatch(expected: expected, found: frame.type.isEmpty ? "message of raw bytes" : frame.type)
        }
        do {
            return try frame.data.withUnsafeBytes { bytes in try coder.decode(Value.self, from: bytes) }
        } catch {
            throw RemoteError.decodingFailed("a \(expected): \(error)")
        }
    }

    /// Whether a message (or the end of the stream) is there to receive, waiting at most
    /// `timeout` (0: just look). Python: `poll(timeout)`.
    public func poll(timeout: Duration = .zero) async throws -> Bool {
        try await inbox.poll(deadline: .after(timeout))
    }

    // MARK: closing

    /// Closes this end: the peer receives what was already sent, then
    /// ``RemoteError/endOfStream``. Messages received and not taken are dropped. Idempotent.
    public func close() {
        let (waiters, done) = outbound.withLock { state -> ([CheckedContinuation<Void, Never>], CheckedContinuation<Void, Never>?) in
            state.closedLocally = true
            defer { state.writerWaiters = []; state.doneWaiter = nil }
            return (state.writerWaiters, state.doneWaiter)
        }
        _ = inbox.close(.closed)
        waiters.forEach { $0.resume() }
        done?.resume()
        onClose.withLock { action in defer { action = nil }; return action }?()
    }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { outbound.withLock { $0.closedLocally } }

    // MARK: the stream (the listener's handler or the client's call)

    /// Runs the connection over a stream (the listener's side): `writer` for what it sends,
    /// `inbound` for what it receives. Returns once this end closed or the peer ended.
    func run(writer: RPCWriter<Frame>, inbound: some AsyncSequence<Frame, any Error> & Sendable) async {
        attach(writer)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in await pump(inbound) }
            group.addTask { [self] in await untilClosed() }
            await group.next()
            group.cancelAll()  // the peer ended, or this end closed: stop the other half
        }
        finishStream()
    }

    /// Gives the connection the stream's writer: sends waiting for it go ahead.
    package func attach(_ writer: RPCWriter<Frame>) {
        let waiters = outbound.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.writer = writer
            defer { state.writerWaiters = [] }
            return state.writerWaiters
        }
        waiters.forEach { $0.resume() }
    }

    /// Puts what the peer sends into the inbox until its stream ends (``RemoteError/endOfStream``)
    /// or fails (the failure, for the receiver), or this end closes.
    /// The stream is marked over before the receiver learns it ended, so a send after a
    /// receive saw the end fails as a broken pipe.
    package func pump(_ inbound: some AsyncSequence<Frame, any Error>) async {
        do {
            for try await frame in inbound {
                guard frame.data.count <= maxMessageSize else {
                    finishStream(.messageTooLarge(size: frame.data.count, limit: maxMessageSize))
                    return
                }
                guard await inbox.put(frame) else { return }
            }
            finishStream(.endOfStream)
        } catch {
            finishStream(Self.remoteError(error))
        }
    }

    /// Marks the stream over: sends fail from now on, `untilClosed()` returns, and the
    /// receiver gets `end` once it took what had arrived (the first end counts).
    func finishStream(_ end: RemoteError = .endOfStream) {
        let (waiters, done) = outbound.withLock { state -> ([CheckedContinuation<Void, Never>], CheckedContinuation<Void, Never>?) in
            state.done = true
            state.writer = nil
            defer { state.writerWaiters = []; state.doneWaiter = nil }
            return (state.writerWaiters, state.doneWaiter)
        }
        inbox.finish(end)
        waiters.forEach { $0.resume() }
        done?.resume()
    }

    /// Returns once this end closed or the stream is over (or the task is cancelled).
    package func untilClosed() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = outbound.withLock { state -> Bool in
                    if state.closedLocally || state.done || Task.isCancelled { return true }
                    state.doneWaiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = outbound.withLock { state in defer { state.doneWaiter = nil }; return state.doneWaiter }
            waiter?.resume()
        }
    }

    /// A transport failure as the error a receiver sees.
    static func remoteError(_ error: any Error) -> RemoteError {
        if let error = error as? RemoteError { return error }
        if let error = error as? RPCError {
            switch error.code {
            case .unauthenticated: return .authenticationFailed
            case .unavailable: return .unavailable(error.message)
            case .resourceExhausted: return .protocolError("the peer refused a message: \(error.message)")
            case .deadlineExceeded: return .timedOut
            case .cancelled: return .endOfStream
            case .notFound: return .notFound(error.message)
            case .failedPrecondition: return .refused(error.message)
            case .outOfRange: return .outOfRange(error.message)
            case .invalidArgument:
                if let expected = error.metadata[stringValues: "shmipc-expected"].first(where: { _ in true }),
                   let found = error.metadata[stringValues: "shmipc-found"].first(where: { _ in true }) {
                    return .typeMismatch(expected: expected, found: found)
                }
                return .decodingFailed(error.message)
            default: return .protocolError("\(error.code): \(error.message)")
            }
        }
        return .unavailable("\(error)")
    }
}
