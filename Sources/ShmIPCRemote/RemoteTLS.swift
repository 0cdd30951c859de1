internal import GRPCNIOTransportHTTP2

/// Transport security for the remote layer: TLS (the server proves who it is with a
/// certificate, and the traffic is encrypted) or mTLS (clients prove who they are too), with
/// certificates and keys from PEM files. The authkey handshake runs inside it either way: TLS
/// protects what the handshake does not (the session token, every value on the wire), and the
/// key still decides who may touch an object.
///
/// ```swift
/// let manager = RemoteManager(address: address, authKey: key,
///                             tls: .server(certificateChain: "server.pem", privateKey: "server.key", clientCA: "clients-ca.pem"))
/// let client = try await RemoteManager.connect(to: address, authKey: key,
///                             tls: .client(trustRoots: "ca.pem", certificateChain: "client.pem", privateKey: "client.key"))
/// ```
public struct RemoteTLS: Sendable {
    enum Side: Sendable {
        case server(certificateChain: String, privateKey: String, clientCA: String?)
        case client(trustRoots: String?, certificateChain: String?, privateKey: String?, verifyHostname: Bool)
    }
    let side: Side

    /// A server's TLS: its certificate chain and private key (PEM files). With `clientCA`, mTLS:
    /// a client must present a certificate that this CA (a PEM file) signed, or its connection
    /// fails before any call.
    public static func server(certificateChain: String, privateKey: String, clientCA: String? = nil) -> RemoteTLS {
        RemoteTLS(side: .server(certificateChain: certificateChain, privateKey: privateKey, clientCA: clientCA))
    }

    /// A client's TLS: the CA certificates (a PEM file) it trusts the server's certificate to
    /// come from (`nil`: the system's), and for mTLS its own certificate chain and key. With
    /// `verifyHostname` false, the server's certificate must still chain to a trusted root but
    /// need not name the host the client dialled (an address by IP, a test's certificate).
    public static func client(
        trustRoots: String? = nil, certificateChain: String? = nil, privateKey: String? = nil, verifyHostname: Bool = true
    ) -> RemoteTLS {
        precondition((certificateChain == nil) == (privateKey == nil), "an mTLS client gives its certificate and its key")
        return RemoteTLS(
            side: .client(trustRoots: trustRoots, certificateChain: certificateChain, privateKey: privateKey, verifyHostname: verifyHostname))
    }

    var serverSecurity: HTTP2ServerTransport.Posix.TransportSecurity {
        guard case .server(let chain, let key, let clientCA) = side else {
            preconditionFailure("a client's TLS given to a server")
        }
        let chainSource: [TLSConfig.CertificateSource] = [.file(path: chain, format: .pem)]
        let keySource: TLSConfig.PrivateKeySource = .file(path: key, format: .pem)
        guard let clientCA else { return .tls(.defaults(certificateChain: chainSource, privateKey: keySource)) }
        return .mTLS(certificateChain: chainSource, privateKey: keySource) {
            $0.trustRoots = .certificates([.file(path: clientCA, format: .pem)])
            $0.clientCertificateVerification = .noHostnameVerification  // a client is not a host name
        }
    }

    var clientSecurity: HTTP2ClientTransport.Posix.TransportSecurity {
        guard case .client(let roots, let chain, let key, let verifyHostname) = side else {
            preconditionFailure("a server's TLS given to a client")
        }
        return .tls(.defaults {
            if let roots { $0.trustRoots = .certificates([.file(path: roots, format: .pem)]) }
            if let chain, let key {
                $0.certificateChain = [.file(path: chain, format: .pem)]
                $0.privateKey = .file(path: key, format: .pem)
            }
            $0.serverCertificateVerification = verifyHostname ? .fullVerification : .noHostnameVerification
        })
    }
}

extension Optional where Wrapped == RemoteTLS {
    var serverSecurity: HTTP2ServerTransport.Posix.TransportSecurity { map(\.serverSecurity) ?? .plaintext }
    var clientSecurity: HTTP2ClientTransport.Posix.TransportSecurity { map(\.clientSecurity) ?? .plaintext }
}
