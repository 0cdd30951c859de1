internal import Crypto
#if canImport(Glibc)
internal import Glibc
#endif

/// The shared secret both ends of a remote connection hold (Python's `authkey`). It never
/// crosses the wire: each side proves it holds the key by answering the other's random
/// challenge with an HMAC-SHA256 of it (the handshake: Notes/0013).
public struct AuthKey: Sendable {
    let bytes: [UInt8]

    /// A key of these bytes (at least one).
    public init(_ bytes: some Sequence<UInt8>) throws(RemoteError) {
        let bytes = Array(bytes)
        guard !bytes.isEmpty else { throw .protocolError("an authkey needs at least one byte") }
        self.bytes = bytes
    }

    /// A key of the string's UTF-8 bytes (Python's `authkey=b'secret'`).
    public init(_ string: String) throws(RemoteError) {
        try self.init(Array(string.utf8))
    }

    /// The bytes of the file at `path`, less one trailing newline (a key written with `echo`).
    public init(contentsOfFile path: String) throws(RemoteError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .protocolError("cannot read the authkey file \(path): errno \(errno)") }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(descriptor, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw .protocolError("cannot read the authkey file \(path): errno \(errno)") }
            if count == 0 { break }
            bytes += chunk[..<count]
            guard bytes.count <= 1 << 20 else { throw .protocolError("the authkey file \(path) is over 1 MiB") }
        }
        if bytes.last == 0x0A { bytes.removeLast() }
        try self.init(bytes)
    }

    var symmetricKey: SymmetricKey { SymmetricKey(data: bytes) }
}

/// The authkey handshake, CPython 3.12's challenge–response made mutual in two calls:
/// 1. the client asks for a challenge; the server answers with a fresh 32-byte nonce, which it
///    remembers for ``challengeLifetime``, for one use;
/// 2. the client answers HMAC-SHA256(key, "shmipc.remote.v1 client" ‖ server nonce ‖ client
///    nonce) with a nonce of its own; the server checks it (in constant time) and answers
///    HMAC-SHA256(key, "shmipc.remote.v1 server" ‖ client nonce ‖ server nonce) and a session
///    token, which the client accepts only if that answer checks too.
///
/// The labels keep one side's answer from ever serving as the other's. The key proves both
/// ends hold it; it does not hide or protect the traffic after the handshake (use TLS for
/// that), exactly as with Python's authkey.
enum Handshake {
    static let protocolName = "shmipc.remote.v1"
    static let nonceSize = 32
    /// How long a challenge may be answered.
    static let challengeLifetime: Duration = .seconds(30)
    /// The metadata entry every call after the handshake carries (the session token, hex).
    static let sessionKey = "shmipc-session"

    static func nonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()  // getrandom(2): cryptographically secure
        return (0..<nonceSize).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    static func clientProof(key: AuthKey, serverNonce: [UInt8], clientNonce: [UInt8]) -> [UInt8] {
        proof(key: key, label: "\(protocolName) client", serverNonce + clientNonce)
    }

    static func serverProof(key: AuthKey, serverNonce: [UInt8], clientNonce: [UInt8]) -> [UInt8] {
        proof(key: key, label: "\(protocolName) server", clientNonce + serverNonce)
    }

    /// Whether `proof` is the client's (server side), in constant time.
    static func checkClient(_ proof: [UInt8], key: AuthKey, serverNonce: [UInt8], clientNonce: [UInt8]) -> Bool {
        check(proof, key: key, label: "\(protocolName) client", serverNonce + clientNonce)
    }

    /// Whether `proof` is the server's (client side), in constant time.
    static func checkServer(_ proof: [UInt8], key: AuthKey, serverNonce: [UInt8], clientNonce: [UInt8]) -> Bool {
        check(proof, key: key, label: "\(protocolName) server", clientNonce + serverNonce)
    }

    private static func proof(key: AuthKey, label: String, _ nonces: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(label.utf8) + nonces, using: key.symmetricKey))
    }

    private static func check(_ proof: [UInt8], key: AuthKey, label: String, _ nonces: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(proof, authenticating: Array(label.utf8) + nonces, using: key.symmetricKey)
    }
}
