internal import GRPCNIOTransportHTTP2

/// Where a ``Listener`` listens and a ``Client`` connects: `host:port` (an IPv4 or IPv6
/// address, `[::1]:port`, or a name for a client) or a Unix socket path (`unix:/path`, or an
/// absolute `/path`). Port 0 asks the listener for any free port; ``Listener/address`` says
/// which.
public struct RemoteAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case host(String, port: Int)
        case unixSocket(path: String)
    }

    public let kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    /// Parses `host:port`, `[v6]:port`, `unix:/path` or `/path`.
    public init(_ text: String) throws(RemoteError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            guard !path.isEmpty else { throw .invalidAddress(text) }
            kind = .unixSocket(path: path)
            return
        }
        if text.hasPrefix("/") {
            kind = .unixSocket(path: text)
            return
        }
        var host: Substring, portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { throw .invalidAddress(text) }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { throw .invalidAddress(text) }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (0...65_535).contains(port) else { throw .invalidAddress(text) }
        kind = .host(String(host), port: port)
    }

    public var description: String {
        switch kind {
        case .host(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unixSocket(let path): "unix:\(path)"
        }
    }

    /// The address a server binds: IP literals (and `localhost`, as 127.0.0.1) only.
    func bindAddress() throws(RemoteError) -> GRPCNIOTransportCore.SocketAddress {
        switch kind {
        case .unixSocket(let path): return .unixDomainSocket(path: path)
        case .host(let host, let port):
            if host == "localhost" { return .ipv4(host: "127.0.0.1", port: port) }
            if Self.isIPv4(host) { return .ipv4(host: host, port: port) }
            if host.contains(":") { return .ipv6(host: host, port: port) }
            throw .invalidAddress("\(self): a listener binds an IP address (or localhost), not a name")
        }
    }

    /// The target a client resolves.
    func target() -> any ResolvableTarget {
        switch kind {
        case .unixSocket(let path): return .unixDomainSocket(path: path)
        case .host(let host, let port):
            if Self.isIPv4(host) { return .ipv4(address: host, port: port) }
            if host.contains(":") { return .ipv6(address: host, port: port) }
            return .dns(host: host, port: port)
        }
    }

    /// The address a bound server reports.
    init?(_ address: GRPCNIOTransportCore.SocketAddress) {
        if let ipv4 = address.ipv4 { kind = .host(ipv4.host, port: ipv4.port) }
        else if let ipv6 = address.ipv6 { kind = .host(ipv6.host, port: ipv6.port) }
        else if let unix = address.unixDomainSocket { kind = .unixSocket(path: unix.path) }
        else { return nil }
    }

    static func isIPv4(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in UInt8(part) != nil }
    }
}
