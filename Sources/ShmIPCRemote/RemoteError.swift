/// Why a remote call failed: typed, whatever the transport said.
public enum RemoteError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The address is neither `host:port` nor a Unix socket path (`unix:/path` or `/path`).
    case invalidAddress(String)
    /// The authkey handshake failed: the peer does not hold the same key (or sent none).
    case authenticationFailed
    /// The peer could not be reached, or the connection to it broke.
    case unavailable(String)
    /// This end was closed.
    case closed
    /// The peer closed its end: nothing more will arrive. Python: `EOFError`.
    case endOfStream
    /// The peer closed its end: a send cannot be delivered. Python: `BrokenPipeError`.
    case brokenPipe
    /// The deadline passed first.
    case timedOut
    /// A message over the limit the two ends agreed on.
    case messageTooLarge(size: Int, limit: Int)
    /// A value of `found` arrived where `expected` was asked for (nothing was decoded).
    case typeMismatch(expected: String, found: String)
    /// The bytes did not decode as the type they were tagged with.
    case decodingFailed(String)
    /// The peer broke the protocol (its reason).
    case protocolError(String)
    /// An index past the end of a remote list (the server's message).
    case outOfRange(String)
    /// The server exports no object of that name.
    case notFound(String)
    /// The remote object refuses the call: a queue that was closed (its name), or a call its
    /// kind does not have.
    case refused(String)
    /// The lease on the remote lock of that name ran out (or was never this holder's): another
    /// client may hold the lock now.
    case leaseLost(String)

    public var description: String {
        switch self {
        case .invalidAddress(let address): "not an address: '\(address)' (host:port, unix:/path or /path)"
        case .authenticationFailed: "authentication failed: the peer does not hold the same authkey"
        case .unavailable(let reason): "the peer is unavailable: \(reason)"
        case .closed: "the connection was closed"
        case .endOfStream: "the peer closed the connection"
        case .brokenPipe: "the peer closed the connection; the message was not sent"
        case .timedOut: "timed out"
        case .messageTooLarge(let size, let limit): "a message of \(size) bytes is over the limit of \(limit)"
        case .typeMismatch(let expected, let found): "expected a \(expected), received a \(found)"
        case .decodingFailed(let reason): "the message did not decode: \(reason)"
        case .protocolError(let reason): "protocol error: \(reason)"
        case .outOfRange(let reason): "out of range: \(reason)"
        case .notFound(let name): "the server exports no object named '\(name)'"
        case .refused(let reason): "refused: \(reason)"
        case .leaseLost(let name): "the lease on the lock '\(name)' ran out; another holder may have it"
        }
    }
}
