import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import ShmIPC
@testable import ShmIPCRemote
import Testing

/// Listener/Client over loopback: messages both ways, the authkey handshake, limits and ends.
@Suite struct RemoteConnectionTests {
    struct Job: Codable, Equatable, Sendable {
        var id: Int
        var name: String
        var weights: [Double]
    }

    static let key = try! AuthKey("a shared secret")
    static let loopback = try! RemoteAddress("127.0.0.1:0")
    /// Every wait in these tests, the handshake's included: long enough never to fail a slow
    /// machine (in CI the rest of the suite, in the same process, starves the cooperative pool
    /// for tens of seconds at a time), short enough to turn a hang into a failure.
    static let watchdog: Duration = .seconds(600)

    /// A listener on loopback, a client connected to it and the listener's end of that
    /// connection, all closed after `body`.
    static func withPair(
        _ body: (_ listener: Listener, _ client: RemoteConnection, _ server: RemoteConnection) async throws -> Void
    ) async throws {
        let listener = try await Listener.bind(loopback, authKey: key)
        defer { listener.close() }
        let client = try await Client.connect(to: listener.address, authKey: key, handshakeTimeout: watchdog)
        defer { client.close() }
        let server = try await listener.accept(timeout: watchdog)
        defer { server.close() }
        try await body(listener, client, server)
    }

    @Test func messagesGoBothWaysInOrderAsBytesAndValues() async throws {
        try await Self.withPair { _, client, server in
            for k in 0..<100 { try await client.send(bytes: [UInt8(k), 1, 2, 3]) }
            for k in 0..<100 { #expect(try await server.receiveBytes(timeout: Self.watchdog) == [UInt8(k), 1, 2, 3]) }
            let job = Job(id: 7, name: "résumé", weights: [0.5, -1, .infinity])
            try await server.send(job)
            try await server.send("done")
            #expect(try await client.receive(Job.self, timeout: Self.watchdog) == job)
            #expect(try await client.receive(String.self, timeout: Self.watchdog) == "done")
            try await client.send(bytes: [])
            #expect(try await server.receiveBytes(timeout: Self.watchdog) == [])
        }
    }

    @Test func aValueReceivedAsAnotherTypeIsATypedErrorAndNothingIsDecoded() async throws {
        try await Self.withPair { _, client, server in
            try await client.send(42)
            try await client.send(bytes: [1, 2])
            try await client.send(43)
            await #expect(throws: RemoteError.typeMismatch(expected: String(reflecting: String.self), found: String(reflecting: Int.self))) {
                _ = try await server.receive(String.self, timeout: Self.watchdog)
            }
            await #expect(throws: RemoteError.typeMismatch(expected: String(reflecting: Int.self), found: "message of raw bytes")) {
                _ = try await server.receive(Int.self, timeout: Self.watchdog)
            }
            #expect(try await server.receive(Int.self, timeout: Self.watchdog) == 43)
        }
    }

    @Test func pollWaitsForAMessageAndTimeoutsAreTyped() async throws {
        try await Self.withPair { listener, client, server in
            #expect(try await server.poll() == false)
            let before = Deadline.after(.milliseconds(50))
            await #expect(throws: RemoteError.timedOut) { _ = try await server.receiveBytes(timeout: .milliseconds(50)) }
            #expect(before.hasPassed)
            try await client.send(bytes: [9])
            #expect(try await server.poll(timeout: Self.watchdog))
            #expect(try await server.receiveBytes() == [9])
            await #expect(throws: RemoteError.timedOut) { _ = try await listener.accept(timeout: .milliseconds(20)) }
        }
    }

    @Test func closingEndsThePeersStreamAfterWhatWasSent() async throws {
        let listener = try await Listener.bind(Self.loopback, authKey: Self.key)
        defer { listener.close() }
        let client = try await Client.connect(to: listener.address, authKey: Self.key, handshakeTimeout: Self.watchdog)
        let server = try await listener.accept(timeout: Self.watchdog)
        defer { server.close() }
        try await client.send(bytes: [1])
        try await client.send(bytes: [2])
        client.close()
        await #expect(throws: RemoteError.closed) { try await client.send(bytes: [3]) }
        await #expect(throws: RemoteError.closed) { _ = try await client.receiveBytes(timeout: Self.watchdog) }
        #expect(try await server.receiveBytes(timeout: Self.watchdog) == [1])
        #expect(try await server.receiveBytes(timeout: Self.watchdog) == [2])
        await #expect(throws: RemoteError.endOfStream) { _ = try await server.receiveBytes(timeout: Self.watchdog) }
        #expect(try await server.poll())  // at the end, poll says so (a receive would not wait)
        await #expect(throws: RemoteError.brokenPipe) { try await server.send(bytes: [4]) }

        // The other way round: the server closes, the client sees the end.
        let second = try await Client.connect(to: listener.address, authKey: Self.key, handshakeTimeout: Self.watchdog)
        defer { second.close() }
        let accepted = try await listener.accept(timeout: Self.watchdog)
        try await accepted.send("last")
        accepted.close()
        #expect(try await second.receive(String.self, timeout: Self.watchdog) == "last")
        await #expect(throws: RemoteError.endOfStream) { _ = try await second.receiveBytes(timeout: Self.watchdog) }
    }

    @Test func aWrongKeyIsRefusedBeforeAnyConnectionAndTheListenerKeepsServing() async throws {
        let listener = try await Listener.bind(Self.loopback, authKey: Self.key)
        defer { listener.close() }
        await #expect(throws: RemoteError.authenticationFailed) {
            _ = try await Client.connect(to: listener.address, authKey: try AuthKey("another secret"), handshakeTimeout: Self.watchdog)
        }
        await #expect(throws: RemoteError.timedOut) { _ = try await listener.accept(timeout: .milliseconds(200)) }
        let client = try await Client.connect(to: listener.address, authKey: Self.key, handshakeTimeout: Self.watchdog)
        defer { client.close() }
        let server = try await listener.accept(timeout: Self.watchdog)
        defer { server.close() }
        try await client.send(bytes: [1])
        #expect(try await server.receiveBytes(timeout: Self.watchdog) == [1])
    }

    /// A peer that skips the handshake (no session, or a made-up one) is refused by the
    /// server before its stream reaches the listener.
    @Test func aCallWithoutAnOpenSessionIsRefusedBeforeAnyConnectionIsMade() async throws {
        let listener = try await Listener.bind(Self.loopback, authKey: Self.key)
        defer { listener.close() }
        let transport = try HTTP2ClientTransport.Posix(target: listener.address.target(), transportSecurity: .plaintext)
        try await withGRPCClient(transport: transport) { client in
            let connections = Shmipc_Remote_V1_Connections.Client(wrapping: client)
            for metadata: Metadata in [[:], [Handshake.sessionKey: "00ff00ff"]] {
                var code: RPCError.Code?
                do {
                    try await connections.connect(metadata: metadata) { writer in
                        try await writer.write(.with { $0.data = Data([1]) })
                    } onResponse: { response in
                        for try await _ in response.messages {}
                    }
                } catch let error as RPCError {
                    code = error.code
                }
                #expect(code == .unauthenticated, "\(metadata)")
            }
        }
        await #expect(throws: RemoteError.timedOut) { _ = try await listener.accept(timeout: .milliseconds(200)) }
    }

    @Test func aMessageOverTheLimitIsRefusedOnBothSides() async throws {
        let listener = try await Listener.bind(Self.loopback, authKey: Self.key, maxMessageSize: 1024)
        defer { listener.close() }
        let client = try await Client.connect(to: listener.address, authKey: Self.key, maxMessageSize: 1024, handshakeTimeout: Self.watchdog)
        defer { client.close() }
        let server = try await listener.accept(timeout: Self.watchdog)
        defer { server.close() }
        await #expect(throws: RemoteError.messageTooLarge(size: 1025, limit: 1024)) { try await client.send(bytes: .init(repeating: 0, count: 1025)) }
        try await client.send(bytes: .init(repeating: 7, count: 1024))
        #expect(try await server.receiveBytes(timeout: Self.watchdog).count == 1024)

        // A client that allows itself more than the listener: the listener refuses the frame
        // (its stream fails), and goes on serving others.
        let greedy = try await Client.connect(to: listener.address, authKey: Self.key, maxMessageSize: 1 << 20, handshakeTimeout: Self.watchdog)
        defer { greedy.close() }
        let greedyServer = try await listener.accept(timeout: Self.watchdog)
        defer { greedyServer.close() }
        try? await greedy.send(bytes: .init(repeating: 1, count: 1 << 19))
        await #expect(throws: RemoteError.self) { _ = try await greedyServer.receiveBytes(timeout: Self.watchdog) }
        try await client.send(bytes: [5])
        #expect(try await server.receiveBytes(timeout: Self.watchdog) == [5])
    }

    @Test func aUnixSocketAddressWorksAsAHostPortDoes() async throws {
        let path = "/tmp/shmipc-remote-test-\(getpid())-\(UInt32.random(in: 0 ... .max)).sock"
        defer { unlink(path) }
        let address = try RemoteAddress("unix:\(path)")
        let listener = try await Listener.bind(address, authKey: Self.key)
        defer { listener.close() }
        #expect(listener.address == address)
        let client = try await Client.connect(to: address, authKey: Self.key, handshakeTimeout: Self.watchdog)
        defer { client.close() }
        let server = try await listener.accept(timeout: Self.watchdog)
        defer { server.close() }
        try await client.send("over a unix socket")
        #expect(try await server.receive(String.self, timeout: Self.watchdog) == "over a unix socket")
    }

    @Test func nothingListeningIsUnavailableNotAHang() async throws {
        // A port that was just free: bind one, close it, connect to it.
        let listener = try await Listener.bind(Self.loopback, authKey: Self.key)
        let address = listener.address
        listener.close()
        try await Task.sleep(for: .milliseconds(100))
        await #expect(throws: RemoteError.self) { _ = try await Client.connect(to: address, authKey: Self.key, handshakeTimeout: Self.watchdog) }
    }
}

@Suite struct RemoteAddressAndKeyTests {
    @Test func addressesParseAndPrint() throws {
        #expect(try RemoteAddress("127.0.0.1:6000").kind == .host("127.0.0.1", port: 6000))
        #expect(try RemoteAddress("[::1]:80").kind == .host("::1", port: 80))
        #expect(try RemoteAddress("[::1]:80").description == "[::1]:80")
        #expect(try RemoteAddress("example.org:443").kind == .host("example.org", port: 443))
        #expect(try RemoteAddress("unix:/run/x.sock").kind == .unixSocket(path: "/run/x.sock"))
        #expect(try RemoteAddress("/run/x.sock").description == "unix:/run/x.sock")
        for bad in ["", "host", "host:", ":80", "host:70000", "host:-1", "::1:80", "[::1]80", "unix:"] {
            #expect(throws: RemoteError.invalidAddress(bad)) { _ = try RemoteAddress(bad) }
        }
        #expect(throws: RemoteError.self) { _ = try RemoteAddress("example.org:1").bindAddress() }
    }

    @Test func keysComeFromBytesStringsAndFiles() throws {
        #expect(throws: RemoteError.self) { _ = try AuthKey([UInt8]()) }
        let path = "/tmp/shmipc-authkey-\(getpid())"
        defer { unlink(path) }
        try Data("secret\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try AuthKey(contentsOfFile: path).bytes == Array("secret".utf8))
        #expect(throws: RemoteError.self) { _ = try AuthKey(contentsOfFile: path + ".missing") }
    }

    @Test func eachSidesProofChecksOnlyAsItsOwn() throws {
        let key = try AuthKey("k"), other = try AuthKey("l")
        let server = Handshake.nonce(), client = Handshake.nonce()
        #expect(server != client && server.count == 32)
        let proof = Handshake.clientProof(key: key, serverNonce: server, clientNonce: client)
        #expect(Handshake.checkClient(proof, key: key, serverNonce: server, clientNonce: client))
        #expect(!Handshake.checkClient(proof, key: other, serverNonce: server, clientNonce: client))
        #expect(!Handshake.checkServer(proof, key: key, serverNonce: server, clientNonce: client))  // labels differ
        #expect(!Handshake.checkClient(proof, key: key, serverNonce: client, clientNonce: server))
        #expect(!Handshake.checkClient(Array(proof.dropLast()), key: key, serverNonce: server, clientNonce: client))
    }

    @Test func aChallengeIsGoodForOneAnswerOnly() throws {
        let key = try AuthKey("k")
        let sessions = Sessions(key: key)
        let challenge = sessions.challenge(), client = Handshake.nonce()
        let proof = Handshake.clientProof(key: key, serverNonce: challenge, clientNonce: client)
        let first = try #require(sessions.prove(serverNonce: challenge, proof: proof, clientNonce: client))
        #expect(Handshake.checkServer(first.proof, key: key, serverNonce: challenge, clientNonce: client))
        #expect(sessions.admits(first.session))
        #expect(sessions.prove(serverNonce: challenge, proof: proof, clientNonce: client) == nil)  // replayed
        #expect(!sessions.admits("not a session"))
        // A wrong answer uses the challenge up too.
        let second = sessions.challenge()
        #expect(sessions.prove(serverNonce: second, proof: proof, clientNonce: client) == nil)
        let right = Handshake.clientProof(key: key, serverNonce: second, clientNonce: client)
        #expect(sessions.prove(serverNonce: second, proof: right, clientNonce: client) == nil)
    }
}
