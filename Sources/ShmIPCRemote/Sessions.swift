internal import Foundation
internal import GRPCCore
import ShmIPC
import Synchronization

/// A server's challenges and sessions (``Handshake``): challenges are single use and expire;
/// sessions expire when idle. Both tables are bounded, so a client that only asks for
/// challenges cannot grow the server's memory.
final class Sessions: Sendable {
    let key: AuthKey
    /// How long a session lives without a call.
    static let idleTimeout: Duration = .seconds(600)
    /// At most this many challenges and sessions are kept (the oldest go first).
    static let limit = 4096

    private struct State {
        var challenges: [[UInt8]: Deadline] = [:]
        var sessions: [String: Deadline] = [:]
    }
    private let state = Mutex(State())

    init(key: AuthKey) { self.key = key }

    /// A fresh challenge, remembered for ``Handshake/challengeLifetime``.
    func challenge() -> [UInt8] {
        let nonce = Handshake.nonce()
        state.withLock { state in
            Self.evict(&state.challenges)
            state.challenges[nonce] = .after(Handshake.challengeLifetime)
        }
        return nonce
    }

    /// Checks the client's answer to `serverNonce` (used up whatever the answer) and, if it is
    /// right, opens a session: the server's answer and the session's token.
    func prove(serverNonce: [UInt8], proof: [UInt8], clientNonce: [UInt8]) -> (proof: [UInt8], session: String)? {
        let issued = state.withLock { $0.challenges.removeValue(forKey: serverNonce) }
        guard let issued, !issued.hasPassed, clientNonce.count == Handshake.nonceSize,
              Handshake.checkClient(proof, key: key, serverNonce: serverNonce, clientNonce: clientNonce) else { return nil }
        let session = Self.hex(Handshake.nonce())
        state.withLock { state in
            Self.evict(&state.sessions)
            state.sessions[session] = .after(Self.idleTimeout)
        }
        return (Handshake.serverProof(key: key, serverNonce: serverNonce, clientNonce: clientNonce), session)
    }

    /// Whether `session` is open (and, if it is, keeps it open for another idle timeout).
    func admits(_ session: String) -> Bool {
        state.withLock { state in
            guard let expiry = state.sessions[session], !expiry.hasPassed else {
                state.sessions[session] = nil
                return false
            }
            state.sessions[session] = .after(Self.idleTimeout)
            return true
        }
    }

    /// Drops expired entries, then the soonest to expire while the table is full.
    private static func evict<Key>(_ table: inout [Key: Deadline]) {
        guard table.count >= limit else { return }
        table = table.filter { !$0.value.hasPassed }
        while table.count >= limit, let soonest = table.min(by: { $0.value < $1.value }) { table[soonest.key] = nil }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes { text.append(digits[Int(byte >> 4)]); text.append(digits[Int(byte & 0xF)]) }
        return String(decoding: text, as: UTF8.self)
    }
}

/// The server's side of ``Handshake``.
struct AuthService: Shmipc_Remote_V1_Auth.SimpleServiceProtocol {
    let sessions: Sessions

    func begin(request: Shmipc_Remote_V1_BeginRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_BeginResponse {
        guard request.protocol == Handshake.protocolName else {
            throw RPCError(code: .failedPrecondition, message: "this server speaks \(Handshake.protocolName), not '\(request.protocol)'")
        }
        return .with { $0.serverNonce = Data(sessions.challenge()) }
    }

    func prove(request: Shmipc_Remote_V1_ProveRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_ProveResponse {
        guard let (proof, session) = sessions.prove(
            serverNonce: Array(request.serverNonce), proof: Array(request.proof), clientNonce: Array(request.clientNonce))
        else { throw RPCError(code: .unauthenticated, message: "authentication failed") }
        return .with {
            $0.proof = Data(proof)
            $0.session = Data(session.utf8)
            $0.idleTimeoutMs = UInt64(Sessions.idleTimeout.components.seconds) * 1000
        }
    }
}

/// Refuses every call but the handshake's unless it carries an open session: before any
/// handler, so no object is touched for an unauthenticated peer.
struct AuthInterceptor: ServerInterceptor {
    let sessions: Sessions

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        if context.descriptor.service == Shmipc_Remote_V1_Auth.descriptor {
            return try await next(request, context)
        }
        let presented = request.metadata[stringValues: Handshake.sessionKey].first(where: { _ in true })
        guard let presented, sessions.admits(presented) else {
            throw RPCError(code: .unauthenticated, message: "authentication failed: no open session")
        }
        return try await next(request, context)
    }
}
