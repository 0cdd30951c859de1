package import GRPCNIOTransportHTTP2

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
    /// shutdown sends), after which it is closed outright: the default waits for its streams
    /// forever, and a peer the network dropped never ends them, so a shutdown never finished.
    package static func server(maxRequestBytes: Int) -> HTTP2ServerTransport.Posix.Config {
        .defaults {
            $0.rpc.maxRequestPayloadSize = maxRequestBytes
            $0.connection.flushCoalescing = nil
            $0.connection.keepalive.clientBehavior = .init(minPingIntervalWithoutCalls: .seconds(10), allowWithoutCalls: true)
            $0.connection.keepalive.time = .seconds(30)
            $0.connection.keepalive.timeout = .seconds(10)
            $0.connection.maxGraceTime = .seconds(5)
        }
    }
}
