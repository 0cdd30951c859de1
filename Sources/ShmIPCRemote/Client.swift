internal import Foundation
internal import GRPCCore
internal import GRPCNIOTransportHTTP2
import ShmIPC

/// Opens connections to a ``Listener`` (Python's
/// `multiprocessing.connection.Client(address, authkey=…)`).
///
/// ```swift
/// let connection = try await Client.connect(to: RemoteAddress("10.0.0.2:6000"), authKey: AuthKey("secret"))
/// defer { connection.close() }
/// try await connection.send(Job(id: 1))
/// let result: JobResult = try await connection.receive(timeout: .seconds(30))
/// ```
public enum Client {
    /// How long each of the handshake's two calls may take by default before
    /// ``RemoteError/timedOut``.
    public static let defaultHandshakeTimeout: Duration = .seconds(30)

    /// Connects to the listener at `address`: the authkey handshake (both ends prove they hold
    /// `authKey`), then a connection. Throws ``RemoteError/authenticationFailed`` if the keys
    /// differ (or the server's answer does not check), ``RemoteError/unavailable(_:)`` if
    /// nothing listens there (or the TLS handshake failed), ``RemoteError/timedOut``. With
    /// `tls` (``RemoteTLS/client(trustRoots:certificateChain:privateKey:verifyHostname:)``),
    /// the connection is TLS or mTLS.
    public static func connect(
        to address: RemoteAddress, authKey: AuthKey, maxMessageSize: Int = 16 << 20,
        handshakeTimeout: Duration = defaultHandshakeTimeout, tls: RemoteTLS? = nil
    ) async throws -> RemoteConnection {
        precondition(maxMessageSize > 0, "a message limit must be positive")
        let (client, session) = try await open(address, authKey: authKey, timeout: handshakeTimeout, tls: tls)
        let connection = RemoteConnection(maxMessageSize: maxMessageSize) {
            client.beginGracefulShutdown()
        }
        var options = CallOptions.defaults
        options.maxRequestMessageBytes = maxMessageSize + Listener.frameOverhead
        options.maxResponseMessageBytes = maxMessageSize + Listener.frameOverhead
        let connections = Shmipc_Remote_V1_Connections.Client(wrapping: client)
        Task {
            do {
                try await connections.connect(metadata: [Handshake.sessionKey: .string(session)], options: options) { writer in
                    // The request stream is what this end sends: open until it closes (or
                    // the response side below ends the stream).
                    connection.attach(writer)
                    await connection.untilClosed()
                } onResponse: { response in
                    await connection.pump(response.messages)
                }
            } catch {
                connection.finishStream(RemoteConnection.remoteError(error))
            }
            connection.finishStream()
            client.beginGracefulShutdown()
        }
        return connection
    }

    /// A gRPC client of the server at `address`, its connections running, and a session from
    /// the handshake (the client shut down again if the handshake fails).
    static func open(
        _ address: RemoteAddress, authKey: AuthKey, timeout: Duration, tls: RemoteTLS? = nil
    ) async throws -> (GRPCClient<HTTP2ClientTransport.Posix>, String) {
        let transport: HTTP2ClientTransport.Posix
        do {
            transport = try .http2NIOPosix(target: address.target(), transportSecurity: tls.clientSecurity, config: Transports.client)
        } catch {
            throw RemoteError.invalidAddress("\(address): \(error)")
        }
        let client = GRPCClient(transport: transport)
        Task { try? await client.runConnections() }
        do {
            return (client, try await authenticate(client, authKey: authKey, timeout: timeout))
        } catch {
            client.beginGracefulShutdown()
            throw error
        }
    }

    /// The handshake: a challenge, the answer and the server's answer; the session token.
    static func authenticate(
        _ client: GRPCClient<HTTP2ClientTransport.Posix>, authKey: AuthKey, timeout: Duration
    ) async throws -> String {
        let auth = Shmipc_Remote_V1_Auth.Client(wrapping: client)
        var options = CallOptions.defaults
        options.timeout = timeout
        do {
            let challenge = try await auth.begin(.with { $0.protocol = Handshake.protocolName }, options: options)
            let serverNonce = Array(challenge.serverNonce)
            guard serverNonce.count == Handshake.nonceSize else { throw RemoteError.protocolError("a challenge of \(serverNonce.count) bytes") }
            let clientNonce = Handshake.nonce()
            let answer = try await auth.prove(.with {
                $0.serverNonce = Data(serverNonce)
                $0.clientNonce = Data(clientNonce)
                $0.proof = Data(Handshake.clientProof(key: authKey, serverNonce: serverNonce, clientNonce: clientNonce))
            }, options: options)
            guard Handshake.checkServer(Array(answer.proof), key: authKey, serverNonce: serverNonce, clientNonce: clientNonce) else {
                throw RemoteError.authenticationFailed  // the server does not hold our key: an impostor
            }
            return String(decoding: answer.session, as: UTF8.self)
        } catch {
            throw RemoteConnection.remoteError(error)
        }
    }
}
