internal import Foundation
internal import GRPCCore
internal import GRPCNIOTransportHTTP2
public import ServiceLifecycle
public import ShmIPC
import Synchronization

/// Serves local objects by name to other hosts (Python's
/// `BaseManager(address=…, authkey=…).get_server().serve_forever()`): a swift-service-lifecycle
/// `Service`, so it runs in a `ServiceGroup` and stops on graceful shutdown.
///
/// ```swift
/// let jobs = try Queue<UInt64>(name: "jobs", mode: .openOrCreate, capacity: 1024)
/// let manager = RemoteManager(address: try RemoteAddress("0.0.0.0:6001"), authKey: try AuthKey("secret"))
/// manager.export("jobs", jobs)
/// try await ServiceGroup(services: [manager], logger: logger).run()
/// ```
///
/// Only exported names are reachable: a client asking for another is
/// ``RemoteError/notFound(_:)``. Every call passes the authkey handshake first (the same as
/// ``Listener``'s). Values travel in ShmIPC's binary Codable form tagged with their type's name,
/// and the server checks the name against the object's type before it decodes anything: a
/// client that sends another type is ``RemoteError/typeMismatch(expected:found:)``, and the
/// object is untouched. Each call is one gRPC request on the client's connection.
public final class RemoteManager: Service, Sendable {
    /// Where it listens (as given; ``listeningAddress`` says which port a port 0 got).
    public let address: RemoteAddress
    public let maxMessageSize: Int
    /// Its TLS, if any.
    public let tls: RemoteTLS?
    private let sessions: Sessions
    private let exports = Mutex<[String: Exported]>([:])
    private let bound = AsyncBuffer<RemoteAddress>(capacity: 1)
    /// What numbered put streams have put (deduplication of resent batches).
    let sequences = SequenceTable()
    /// The long-lived streams in progress, which a graceful shutdown ends.
    let streams = StreamRegistry()

    /// A manager that will listen at `address` for clients holding `authKey` once run; with
    /// `tls` (``RemoteTLS/server(certificateChain:privateKey:clientCA:)``), over TLS or mTLS.
    public init(address: RemoteAddress, authKey: AuthKey, maxMessageSize: Int = 16 << 20, tls: RemoteTLS? = nil) {
        precondition(maxMessageSize > 0, "a message limit must be positive")
        self.tls = tls
        self.address = address
        self.maxMessageSize = maxMessageSize
        sessions = Sessions(key: authKey)
    }

    /// Exports `queue` as `name` (replacing what had that name).
    public func export<Element: BitwiseCopyable & Codable & Sendable>(_ name: String, _ queue: Queue<Element>) {
        exports.withLock { $0[name] = .queue(queue) }
    }

    /// Exports `queue` as `name` (replacing what had that name): each remote put counts a task,
    /// and clients mark tasks done and join (``RemoteJoinableQueue``).
    public func export<Element: BitwiseCopyable & Codable & Sendable>(_ name: String, _ queue: JoinableQueue<Element>) {
        exports.withLock { $0[name] = .joinableQueue(queue) }
    }

    /// Exports `queue` as `name` (replacing what had that name): clients put and get its raw
    /// messages, or values in the queue's coder's form (``RemoteMessageQueue``).
    public func export(_ name: String, _ queue: MessageQueue) {
        exports.withLock { $0[name] = .messageQueue(queue) }
    }

    /// Exports `list` as `name` (replacing what had that name): ``RemoteList``.
    public func export<Element: Codable & Sendable>(_ name: String, _ list: SharedList<Element>) {
        exports.withLock { $0[name] = .list(list) }
    }

    /// Exports `namespace` as `name` (replacing what had that name): ``RemoteNamespace``. Its
    /// attributes may hold values of any type; a remote write is stored as a local `set` of
    /// the same type would be, so local and remote users read each other's writes.
    public func export(_ name: String, _ namespace: Namespace) {
        exports.withLock { $0[name] = .namespace(namespace) }
    }

    /// Exports `dictionary` as `name` (replacing what had that name).
    public func export<Key: Hashable & Codable & Sendable, Value: Codable & Sendable>(
        _ name: String, _ dictionary: SharedDictionary<Key, Value>
    ) {
        exports.withLock { $0[name] = .dictionary(dictionary) }
    }

    /// Exports `value` as `name` (replacing what had that name): clients load and store it
    /// (``RemoteValue``).
    public func export<T: BitwiseCopyable & Codable & Sendable>(_ name: String, _ value: ShmIPC.Value<T>) {
        exports.withLock { $0[name] = .value(value) }
    }

    /// Exports `lock` as `name` (replacing what had that name): clients hold it as leases with
    /// fencing tokens (``RemoteLock``; a reentrant one, the kind "rlock", through
    /// ``RemoteRLock``).
    public func export(_ name: String, _ lock: LeaseLock) {
        exports.withLock { $0[name] = .lock(lock) }
    }

    /// Exports `event` as `name` (replacing what had that name): ``RemoteEvent``.
    public func export(_ name: String, _ event: Event) {
        exports.withLock { $0[name] = .event(event) }
    }

    /// Exports `semaphore` as `name` (replacing what had that name): ``RemoteSemaphore``. A
    /// remote holder that vanishes keeps what it took, as a local one does; where that matters,
    /// use a ``LeaseLock``.
    public func export(_ name: String, _ semaphore: ShmIPC.Semaphore) {
        exports.withLock { $0[name] = .semaphore(semaphore) }
    }

    /// Stops exporting `name`.
    public func unexport(_ name: String) {
        exports.withLock { $0[name] = nil }
    }

    /// The address it listens on, once ``run()`` bound it (waits until then; throws what
    /// ``run()`` failed with if it could not listen).
    public var listeningAddress: RemoteAddress {
        get async throws {
            let address = try await bound.take(deadline: nil)
            _ = bound.tryPut(address)  // for the next asker
            return address
        }
    }

    /// Serves until graceful shutdown, which gives calls in flight 5 s to finish and then
    /// closes the connections left, or until cancellation, which closes them at once.
    /// Throws ``RemoteError/invalidAddress(_:)`` or ``RemoteError/unavailable(_:)`` if it cannot
    /// listen (and ``listeningAddress`` then throws the same).
    public func run() async throws {
        do {
            let connections = ServerConnections()
            let transport: HTTP2ServerTransport.Posix = .http2NIOPosix(
                address: try address.bindAddress(), transportSecurity: tls.serverSecurity,
                config: Transports.server(maxRequestBytes: maxMessageSize + Listener.frameOverhead, connections: connections))
            let server = GRPCServer(
                transport: transport, services: [AuthService(sessions: sessions), ObjectService(manager: self)],
                interceptors: [AuthInterceptor(sessions: sessions)])
            // serve() runs in a task of its own, never cancelled: NIO traps when a listener is
            // cancelled while it holds a connection accepted but not yet handed out
            // (apple/swift-nio#2813). A cancelled run() shuts the server down instead, and at
            // once: gRPC would wait for every stream, and a stream to a client the network
            // dropped never ends (see ServerConnections).
            let serving = Task { try await server.serve() }
            try await withTaskCancellationHandler {
                try await withGracefulShutdownHandler {
                    let listening: GRPCNIOTransportCore.SocketAddress?
                    do { listening = try await server.listeningAddress } catch {
                        server.beginGracefulShutdown()
                        _ = await serving.result
                        throw RemoteError.unavailable("cannot listen at \(address): \(error)")
                    }
                    guard let listening, let reported = RemoteAddress(listening) else {
                        server.beginGracefulShutdown()
                        _ = await serving.result
                        throw RemoteError.unavailable("cannot listen at \(address)")
                    }
                    _ = bound.tryPut(reported)
                    try await serving.value
                } onGracefulShutdown: {
                    server.beginGracefulShutdown()
                    self.streams.end()
                    // Calls in flight get a grace; then what is left (a client the network dropped
                    // answers no GOAWAY, see ServerConnections) is closed, so that serving ends.
                    Task {
                        try? await Task.sleep(for: Self.shutdownGrace)
                        connections.closeAll()
                    }
                }
            } onCancel: {
                server.beginGracefulShutdown()
                self.streams.end()
                connections.closeAll()
            }
        } catch {
            bound.finish(RemoteConnection.remoteError(error))  // askers of the address learn it too
            throw error
        }
        bound.finish(.closed)
    }

    /// How long a graceful shutdown lets connections close before it closes them.
    static let shutdownGrace: Duration = .seconds(5)

    /// The export of `name`, or NOT_FOUND.
    func exported(_ name: String) throws -> Exported {
        guard let object = exports.withLock({ $0[name] }) else {
            throw RPCError(code: .notFound, message: "no object named '\(name)'")
        }
        return object
    }

    var allExports: [(String, Exported)] { exports.withLock { $0.sorted { $0.key < $1.key } } }

    /// Connects to the manager at `address` (the authkey handshake first; each of its two calls
    /// may take `handshakeTimeout`). Calls that wait for nothing end as
    /// ``RemoteError/timedOut`` after `callTimeout`; the connection comes back by itself after
    /// a broken network or a restarted server (calls in the gap fail as
    /// ``RemoteError/unavailable(_:)``, and a server that forgot the session is answered with
    /// a new handshake).
    public static func connect(
        to address: RemoteAddress, authKey: AuthKey, maxMessageSize: Int = 16 << 20,
        handshakeTimeout: Duration = Client.defaultHandshakeTimeout, callTimeout: Duration = .seconds(30), tls: RemoteTLS? = nil
    ) async throws -> RemoteManagerClient {
        try await RemoteManagerClient.connect(
            to: address, authKey: authKey, maxMessageSize: maxMessageSize, handshakeTimeout: handshakeTimeout, callTimeout: callTimeout,
            tls: tls)
    }
}


/// Streams in progress, each with how to end it; once ended, a stream that registers is ended
/// at once.
final class StreamRegistry: Sendable {
    private struct State { var enders: [UInt64: @Sendable () -> Void] = [:]; var next: UInt64 = 0; var ended = false }
    private let state = Mutex(State())

    func add(_ end: @escaping @Sendable () -> Void) -> UInt64 {
        let (id, endNow) = state.withLock { state -> (UInt64, Bool) in
            defer { state.next += 1 }
            if !state.ended { state.enders[state.next] = end }
            return (state.next, state.ended)
        }
        if endNow { end() }
        return id
    }

    func remove(_ id: UInt64) { state.withLock { _ = $0.enders.removeValue(forKey: id) } }

    func end() {
        let enders = state.withLock { state -> [@Sendable () -> Void] in
            state.ended = true
            defer { state.enders.removeAll() }
            return Array(state.enders.values)
        }
        for end in enders { end() }
    }
}
