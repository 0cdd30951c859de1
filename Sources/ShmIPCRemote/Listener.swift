internal import GRPCCore
internal import GRPCNIOTransportHTTP2
import ShmIPC
import Synchronization

/// Accepts remote connections at an address, from clients holding the same authkey (Python's
/// `multiprocessing.connection.Listener(address, authkey=…)`), over gRPC.
///
/// ```swift
/// let listener = try await Listener.bind(RemoteAddress("0.0.0.0:6000"), authKey: AuthKey("secret"))
/// let connection = try await listener.accept()
/// let job: Job = try await connection.receive()
/// try await connection.send(run(job))
/// ```
///
/// A client whose key differs is refused by the handshake before it can open a connection
/// (``RemoteError/authenticationFailed`` on its side); the listener never sees it. Connections
/// not yet accepted wait in a backlog of ``backlog``; past that, new ones are refused.
public final class Listener: Sendable {
    /// The address it listens on (with the port it got, if asked for port 0).
    public let address: RemoteAddress
    /// Connections opened and not yet accepted, at most.
    public static let backlog = 64

    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let accepted: AsyncBuffer<RemoteConnection>

    private init(address: RemoteAddress, server: GRPCServer<HTTP2ServerTransport.Posix>, accepted: AsyncBuffer<RemoteConnection>) {
        self.address = address
        self.server = server
        self.accepted = accepted
    }

    /// Listens at `address` for clients holding `authKey`; messages are limited to
    /// `maxMessageSize` bytes (give the clients the same limit). With `tls`
    /// (``RemoteTLS/server(certificateChain:privateKey:clientCA:)``), connections are TLS or mTLS.
    public static func bind(
        _ address: RemoteAddress, authKey: AuthKey, maxMessageSize: Int = 16 << 20, tls: RemoteTLS? = nil
    ) async throws -> Listener {
        precondition(maxMessageSize > 0, "a message limit must be positive")
        let sessions = Sessions(key: authKey)
        let accepted = AsyncBuffer<RemoteConnection>(capacity: backlog)
        let transport: HTTP2ServerTransport.Posix = .http2NIOPosix(
            address: try address.bindAddress(), transportSecurity: tls.serverSecurity,
            config: Transports.server(maxRequestBytes: maxMessageSize + Self.frameOverhead))
        let server = GRPCServer(
            transport: transport,
            services: [AuthService(sessions: sessions), ConnectionService(accepted: accepted, maxMessageSize: maxMessageSize)],
            interceptors: [AuthInterceptor(sessions: sessions)])
        Task { try? await server.serve() }
        let bound: GRPCNIOTransportCore.SocketAddress?
        do {
            bound = try await server.listeningAddress
        } catch {
            server.beginGracefulShutdown()
            throw RemoteError.unavailable("cannot listen at \(address): \(error)")
        }
        guard let bound, let reported = RemoteAddress(bound) else {
            server.beginGracefulShutdown()
            throw RemoteError.unavailable("cannot listen at \(address)")
        }
        return Listener(address: reported, server: server, accepted: accepted)
    }

    /// The bytes a frame adds to its message (the protobuf field tags and lengths, the type's
    /// name): the transport's limit is the message limit plus this.
    static let frameOverhead = 4096

    /// Waits at most `timeout` (`nil`: forever) for the next connection. Throws
    /// ``RemoteError/timedOut``, or ``RemoteError/closed`` once the listener is closed.
    public func accept(timeout: Duration? = nil) async throws -> RemoteConnection {
        try await accepted.take(deadline: timeout.map(Deadline.after))
    }

    /// Stops listening: no new connection is accepted, and those not accepted yet are closed.
    /// Connections already accepted stay open until either end closes them.
    public func close() {
        for connection in accepted.close(.closed) { connection.close() }
        server.beginGracefulShutdown()
    }
}

/// The serving side of `Connections.Connect`: each stream becomes a connection to accept.
struct ConnectionService: Shmipc_Remote_V1_Connections.SimpleServiceProtocol {
    let accepted: AsyncBuffer<RemoteConnection>
    let maxMessageSize: Int

    func connect(
        request: RPCAsyncSequence<Shmipc_Remote_V1_Frame, any Error>, response: RPCWriter<Shmipc_Remote_V1_Frame>,
        context: ServerContext
    ) async throws {
        let connection = RemoteConnection(maxMessageSize: maxMessageSize)
        // Room in the backlog now, or the connection is refused (a client that opens
        // connections nobody accepts cannot hold the server's memory).
        guard accepted.tryPut(connection) else {
            throw RPCError(code: .resourceExhausted, message: "the listener's backlog is full, or it is closed")
        }
        await connection.run(writer: response, inbound: request)
    }
}
