package import GRPCNIOTransportHTTP2
internal import NIOCore
import Synchronization

/// How every client and server of the remote layer configures gRPC's HTTP/2 transport.
package enum Transports {
    /// Flush coalescing off: on by default, it holds each flush up to 100 µs to gather writes,
    /// and a round trip pays it on both ends. Keepalive on: a ping after 30 s without reads,
    /// answered within 10 s, calls in progress or not, so a wait on a peer that vanished (a
    /// pulled cable sends no reset) ends as `unavailable` instead of lasting forever.
    package static var client: HTTP2ClientTransport.Posix.Config {
        .defaults {
            $0.connection.flushCoalescing = nil
            $0.connection.keepalive = .init(time: .seconds(30), timeout: .seconds(10), allowWithoutCalls: true)
        }
    }

    /// The server's side of ``client``: no flush coalescing; clients' pings allowed every
    /// 10 s with or without calls (the default refuses pings without calls, and closes the
    /// connection of a client that sends them); and pings of its own after 30 s without reads,
    /// answered within 10 s (the default waits two hours), so a client that vanished (a worker
    /// host cut off mid-chunk, a caller waiting on a queue) is known gone within 40 s; and a
    /// grace of 5 s for a connection's graceful close (the GOAWAY a keepalive timeout or a
    /// shutdown sends), after which it is closed outright (the default waits for its streams
    /// forever). gRPC starts that grace only when the peer answers the GOAWAY's ping: for a
    /// peer that answers nothing, the server closes the connection itself (``ServerConnections``).
    /// `connections`, if given, learns of every connection the server accepts.
    package static func server(maxRequestBytes: Int, connections: ServerConnections? = nil) -> HTTP2ServerTransport.Posix.Config {
        .defaults {
            if let connections {
                $0.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
                    connections.track(channel)
                    return channel.eventLoop.makeSucceededVoidFuture()
                }
            }
            $0.rpc.maxRequestPayloadSize = maxRequestBytes
            $0.connection.flushCoalescing = nil
            $0.connection.keepalive.clientBehavior = .init(minPingIntervalWithoutCalls: .seconds(10), allowWithoutCalls: true)
            $0.connection.keepalive.time = .seconds(30)
            $0.connection.keepalive.timeout = .seconds(10)
            $0.connection.maxGraceTime = .seconds(5)
        }
    }
}

/// A server's open connections, so that they can be closed outright.
///
/// gRPC's graceful close of a connection (a shutdown's, or a keepalive timeout's) sends a
/// GOAWAY with a ping and starts its grace timer only when the ping is answered; it also stops
/// the connection's keepalive. A peer the network dropped answers nothing, so its connection,
/// and every stream on it whose last writes wait for flow-control credit it will never give,
/// stays open for good, and `GRPCServer.serve()` (which waits for every stream, cancelled or
/// not) never returns. A server that must stop closes what is left itself.
package final class ServerConnections: Sendable {
    private let open = Mutex<[ObjectIdentifier: any Channel]>([:])

    package init() {}

    func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        open.withLock { $0[id] = channel }
        channel.closeFuture.whenComplete { [self] _ in open.withLock { _ = $0.removeValue(forKey: id) } }
    }

    /// How many connections are open.
    package var count: Int { open.withLock { $0.count } }

    /// Closes every open connection now (their streams end with an error).
    package func closeAll() {
        for channel in open.withLock({ Array($0.values) }) { channel.close(mode: .all, promise: nil) }
    }

    /// Closes the TCP connection whose peer is `peer` (a `ServerContext.remotePeer`:
    /// `ipv4:ADDRESS:PORT` or `ipv6:[ADDRESS]:PORT`), if exactly one matches; whether one did.
    /// A Unix socket's peers have no names of their own, and are never closed this way.
    @discardableResult
    package func close(peer: String) -> Bool {
        let matching = open.withLock { $0.values.filter { Self.describe($0.remoteAddress) == peer } }
        guard matching.count == 1 else { return false }
        matching[0].close(mode: .all, promise: nil)
        return true
    }

    /// `address` as gRPC's `ServerContext.remotePeer` writes a TCP peer; nil for others.
    static func describe(_ address: NIOCore.SocketAddress?) -> String? {
        guard let address, let host = address.ipAddress, let port = address.port else { return nil }
        switch address {
        case .v4: return "ipv4:\(host):\(port)"
        case .v6: return "ipv6:[\(host)]:\(port)"
        case .unixDomainSocket: return nil
        }
    }
}
