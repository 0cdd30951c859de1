import Foundation
@testable import ShmIPC
@testable import ShmIPCRemote
import Testing

/// TLS and mTLS with certificates from files: made for the test by `openssl` (a CA, a server
/// certificate for 127.0.0.1 and localhost, a client certificate, and a second CA that trusts
/// neither); skipped, saying why, where openssl is missing.
@Suite struct RemoteTLSTests {
    static let openssl = ["/usr/bin/openssl", "/bin/openssl", "/usr/local/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// The test's certificates, made once per process in a temporary directory.
    static let certificates: String? = {
        guard let openssl else { return nil }
        let directory = NSTemporaryDirectory() + "shmipc-tls-\(getpid())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func run(_ arguments: [String]) -> Bool {
            guard let child = try? ChildProcess(executable: openssl, arguments: arguments) else { return false }
            guard let status = child.wait(deadline: .after(.seconds(120))) else { _ = child.kill(); return false }
            return status == .exited(0)
        }
        let extensions = directory + "/server.ext"
        try? Data("subjectAltName=IP:127.0.0.1,DNS:localhost\n".utf8).write(to: URL(fileURLWithPath: extensions))
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(directory)/ca.key", "-out", "\(directory)/ca.pem", "-days", "2", "-subj", "/CN=shmipc test CA"],
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(directory)/other-ca.key", "-out", "\(directory)/other-ca.pem", "-days", "2", "-subj", "/CN=another CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(directory)/server.key", "-out", "\(directory)/server.csr", "-subj", "/CN=localhost"],
            ["x509", "-req", "-in", "\(directory)/server.csr", "-CA", "\(directory)/ca.pem", "-CAkey", "\(directory)/ca.key", "-CAcreateserial",
             "-out", "\(directory)/server.pem", "-days", "2", "-extfile", extensions],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(directory)/client.key", "-out", "\(directory)/client.csr", "-subj", "/CN=client"],
            ["x509", "-req", "-in", "\(directory)/client.csr", "-CA", "\(directory)/ca.pem", "-CAkey", "\(directory)/ca.key", "-CAcreateserial",
             "-out", "\(directory)/client.pem", "-days", "2"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(directory)/stranger.key", "-out", "\(directory)/stranger.csr", "-subj", "/CN=stranger"],
            ["x509", "-req", "-in", "\(directory)/stranger.csr", "-CA", "\(directory)/other-ca.pem", "-CAkey", "\(directory)/other-ca.key",
             "-CAcreateserial", "-out", "\(directory)/stranger.pem", "-days", "2"],
        ]
        for step in steps where !run(step) { return nil }
        return directory
    }()

    /// A manager over `tls` exporting a queue while `body` runs; the directory removed after.
    static func withManager(tls: RemoteTLS, _ body: (RemoteAddress, Queue<UInt64>) async throws -> Void) async throws {
        let queue = try Queue<UInt64>(capacity: 8)
        let manager = RemoteManager(address: try RemoteAddress("127.0.0.1:0"), authKey: RemoteObjectsTests.key, tls: tls)
        manager.export("items", queue)
        let serving = Task { try await manager.run() }
        defer { serving.cancel() }
        try await body(try await manager.listeningAddress, queue)
    }

    /// Whether a client over `tls` (nil: plaintext) can put into the manager's queue.
    static func canPut(_ address: RemoteAddress, tls: RemoteTLS?) async -> Result<Void, RemoteError> {
        do {
            let client = try await RemoteManager.connect(to: address, authKey: RemoteObjectsTests.key, handshakeTimeout: .seconds(30), tls: tls)
            defer { client.close() }
            try await client.queue("items", of: UInt64.self).put(1, timeout: .seconds(5))
            return .success(())
        } catch let error as RemoteError {
            return .failure(error)
        } catch {
            return .failure(.unavailable("\(error)"))
        }
    }

    @Test(.enabled(if: certificates != nil, "openssl is not installed (the test makes its certificates with it)"))
    func tlsServesClientsThatTrustItsCertificateOnly() async throws {
        let d = Self.certificates!
        try await Self.withManager(tls: .server(certificateChain: "\(d)/server.pem", privateKey: "\(d)/server.key")) { address, queue in
            let trusted = await Self.canPut(address, tls: .client(trustRoots: "\(d)/ca.pem"))
            #expect((try? trusted.get()) != nil, "\(trusted)")
            #expect(queue.count == 1)
            // By name: the certificate names localhost, and its hostname is checked.
            let port = address.description.split(separator: ":").last!
            let byName = await Self.canPut(try RemoteAddress("localhost:\(port)"), tls: .client(trustRoots: "\(d)/ca.pem"))
            #expect((try? byName.get()) != nil, "\(byName)")
            // Refused: a client trusting another CA, and one speaking plaintext to a TLS server.
            #expect((try? await Self.canPut(address, tls: .client(trustRoots: "\(d)/other-ca.pem")).get()) == nil)
            #expect((try? await Self.canPut(address, tls: nil).get()) == nil)
            #expect(queue.count == 2)
        }
    }

    @Test(.enabled(if: certificates != nil, "openssl is not installed (the test makes its certificates with it)"))
    func mtlsServesOnlyClientsWithACertificateItsCASigned() async throws {
        let d = Self.certificates!
        let tls = RemoteTLS.server(certificateChain: "\(d)/server.pem", privateKey: "\(d)/server.key", clientCA: "\(d)/ca.pem")
        try await Self.withManager(tls: tls) { address, queue in
            let signed = await Self.canPut(
                address, tls: .client(trustRoots: "\(d)/ca.pem", certificateChain: "\(d)/client.pem", privateKey: "\(d)/client.key"))
            #expect((try? signed.get()) != nil, "\(signed)")
            #expect((try? await Self.canPut(address, tls: .client(trustRoots: "\(d)/ca.pem")).get()) == nil)  // no certificate
            let stranger = RemoteTLS.client(trustRoots: "\(d)/ca.pem", certificateChain: "\(d)/stranger.pem", privateKey: "\(d)/stranger.key")
            #expect((try? await Self.canPut(address, tls: stranger).get()) == nil)  // signed by another CA
            #expect(queue.count == 1)
        }
    }
}
