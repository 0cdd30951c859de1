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
    private let sessions: Sessions
    private let exports = Mutex<[String: Exported]>([:])
    private let bound = AsyncBuffer<RemoteAddress>(capacity: 1)

    /// A manager that will listen at `address` for clients holding `authKey` once run.
    public init(address: RemoteAddress, authKey: AuthKey, maxMessageSize: Int = 16 << 20) {
        precondition(maxMessageSize > 0, "a message limit must be positive")
        self.address = address
        self.maxMessageSize = maxMessageSize
        sessions = Sessions(key: authKey)
    }

    /// Exports `queue` as `name` (replacing what had that name).
    public func export<Element: BitwiseCopyable & Codable & Sendable>(_ name: String, _ queue: Queue<Element>) {
        exports.withLock { $0[name] = .queue(queue) }
    }

    /// Exports `dictionary` as `name` (replacing what had that name).
    public func export<Key: Hashable & Codable & Sendable, Value: Codable & Sendable>(
        _ name: String, _ dictionary: SharedDictionary<Key, Value>
    ) {
        exports.withLock { $0[name] = .dictionary(dictionary) }
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

    /// Serves until graceful shutdown (or cancellation); calls in flight finish first.
    /// Throws ``RemoteError/invalidAddress(_:)`` or ``RemoteError/unavailable(_:)`` if it cannot
    /// listen (and ``listeningAddress`` then throws the same).
    public func run() async throws {
        do {
            let transport: HTTP2ServerTransport.Posix = .http2NIOPosix(
                address: try address.bindAddress(), transportSecurity: .plaintext,
                config: .defaults { $0.rpc.maxRequestPayloadSize = maxMessageSize + Listener.frameOverhead })
            let server = GRPCServer(
                transport: transport, services: [AuthService(sessions: sessions), ObjectService(manager: self)],
                interceptors: [AuthInterceptor(sessions: sessions)])
            try await withGracefulShutdownHandler {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await server.serve() }
                    let listening: GRPCNIOTransportCore.SocketAddress?
                    do { listening = try await server.listeningAddress } catch {
                        throw RemoteError.unavailable("cannot listen at \(address): \(error)")
                    }
                    guard let listening, let reported = RemoteAddress(listening) else {
                        throw RemoteError.unavailable("cannot listen at \(address)")
                    }
                    _ = bound.tryPut(reported)
                    try await group.next()
                }
            } onGracefulShutdown: {
                server.beginGracefulShutdown()
            }
        } catch {
            bound.finish(RemoteConnection.remoteError(error))  // askers of the address learn it too
            throw error
        }
        bound.finish(.closed)
    }

    /// The export of `name`, or NOT_FOUND.
    func exported(_ name: String) throws -> Exported {
        guard let object = exports.withLock({ $0[name] }) else {
            throw RPCError(code: .notFound, message: "no object named '\(name)'")
        }
        return object
    }

    var allExports: [(String, Exported)] { exports.withLock { $0.sorted { $0.key < $1.key } } }

    /// Connects to the manager at `address` (the authkey handshake first; each of its two calls
    /// may take `handshakeTimeout`).
    public static func connect(
        to address: RemoteAddress, authKey: AuthKey, maxMessageSize: Int = 16 << 20,
        handshakeTimeout: Duration = Client.defaultHandshakeTimeout
    ) async throws -> RemoteManagerClient {
        try await RemoteManagerClient.connect(
            to: address, authKey: authKey, maxMessageSize: maxMessageSize, handshakeTimeout: handshakeTimeout)
    }
}

/// What an export can do, with its types erased: closures made where the types were known.
struct Exported: Sendable {
    let kind: String
    let valueType: String
    let keyType: String
    let count: @Sendable () -> Int
    let capacity: Int
    let queue: QueueCalls?
    let dictionary: DictionaryCalls?

    struct QueueCalls: Sendable {
        let put: @Sendable (Data, Duration?) async throws -> Void
        let get: @Sendable (Duration?) async throws -> [UInt8]
    }

    struct DictionaryCalls: Sendable {
        let get: @Sendable (Data) throws -> [UInt8]?
        let set: @Sendable (Data, Data) throws -> [UInt8]?
        let remove: @Sendable (Data) throws -> [UInt8]?
        let keys: @Sendable () throws -> [[UInt8]]
    }

    static func queue<Element: BitwiseCopyable & Codable & Sendable>(_ queue: Queue<Element>) -> Exported {
        let coder = BinaryMessageCoder()
        return Exported(
            kind: "queue", valueType: String(reflecting: Element.self), keyType: "", count: { queue.count },
            capacity: queue.capacity,
            queue: QueueCalls(
                put: { data, timeout in
                    let item = try decode(Element.self, data, coder)
                    do { try await queue.put(item, timeout: timeout) } catch { throw rpcError(error) }
                },
                get: { timeout in
                    let item: Element
                    do { item = try await queue.get(timeout: timeout) } catch { throw rpcError(error) }
                    return try coder.encode(item)
                }),
            dictionary: nil)
    }

    static func dictionary<Key: Hashable & Codable & Sendable, Value: Codable & Sendable>(
        _ dictionary: SharedDictionary<Key, Value>
    ) -> Exported {
        let coder = BinaryMessageCoder()
        return Exported(
            kind: "dictionary", valueType: String(reflecting: Value.self), keyType: String(reflecting: Key.self),
            count: { dictionary.count }, capacity: 0, queue: nil,
            dictionary: DictionaryCalls(
                get: { key in
                    let key = try decode(Key.self, key, coder)
                    do { return try dictionary.value(forKey: key).map { try coder.encode($0) } } catch { throw rpcError(error) }
                },
                set: { key, value in
                    let (key, value) = (try decode(Key.self, key, coder), try decode(Value.self, value, coder))
                    do { return try dictionary.updateValue(value, forKey: key).map { try coder.encode($0) } } catch { throw rpcError(error) }
                },
                remove: { key in
                    let key = try decode(Key.self, key, coder)
                    do { return try dictionary.removeValue(forKey: key).map { try coder.encode($0) } } catch { throw rpcError(error) }
                },
                keys: {
                    do { return try dictionary.keys().map { try coder.encode($0) } } catch { throw rpcError(error) }
                }))
    }

    /// Bytes a client sent, decoded as `T` (the type name was checked before): INVALID_ARGUMENT
    /// if they do not decode.
    static func decode<T: Decodable>(_: T.Type, _ data: Data, _ coder: BinaryMessageCoder) throws -> T {
        do {
            return try data.withUnsafeBytes { bytes in try coder.decode(T.self, from: bytes) }
        } catch {
            throw RPCError(code: .invalidArgument, message: "the bytes do not decode as \(String(reflecting: T.self)): \(error)")
        }
    }

    /// A local object's error as the call's status.
    static func rpcError(_ error: any Error) -> RPCError {
        if let error = error as? RPCError { return error }
        switch error {
        case let error as QueueError:
            switch error {
            case .timedOut: return RPCError(code: .deadlineExceeded, message: "the wait ran out")
            case .closed: return RPCError(code: .failedPrecondition, message: "closed")
            default: return RPCError(code: .internalError, message: "\(error)")
            }
        case is CancellationError: return RPCError(code: .cancelled, message: "cancelled")
        default: return RPCError(code: .internalError, message: "\(error)")
        }
    }
}

/// The `Objects` service over a manager's exports.
struct ObjectService: Shmipc_Remote_V1_Objects.SimpleServiceProtocol {
    let manager: RemoteManager

    /// The object `name`, checked to be of `kind` and to hold values of `type` (the value's).
    private func object(_ name: String, kind: String, valueType: String? = nil, keyType: String? = nil) throws -> Exported {
        let object = try manager.exported(name)
        guard object.kind == kind else {
            throw RPCError(code: .failedPrecondition, message: "'\(name)' is a \(object.kind), not a \(kind)")
        }
        for (sent, held) in [(valueType, object.valueType), (keyType, object.keyType)] {
            if let sent, sent != held {
                throw RPCError(
                    code: .invalidArgument, message: "type mismatch: '\(name)' holds \(held), not \(sent)",
                    metadata: ["shmipc-expected": .string(held), "shmipc-found": .string(sent)])
            }
        }
        return object
    }

    private static func timeout(_ present: Bool, _ milliseconds: UInt64) -> Duration? {
        present ? .milliseconds(Int64(clamping: milliseconds)) : nil
    }

    private static func value(_ type: String, _ bytes: [UInt8]) -> Shmipc_Remote_V1_Value {
        .with {
            $0.type = type
            $0.data = Data(bytes)
        }
    }

    func list(request: Shmipc_Remote_V1_ListRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_ListResponse {
        .with {
            $0.objects = manager.allExports.map { name, object in
                .with {
                    $0.name = name
                    $0.kind = object.kind
                    $0.valueType = object.valueType
                    $0.keyType = object.keyType
                    $0.count = Int64(object.count())
                    $0.capacity = Int64(object.capacity)
                }
            }
        }
    }

    func queuePut(request: Shmipc_Remote_V1_QueuePutRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_QueuePutResponse {
        let object = try object(request.name, kind: "queue", valueType: request.item.type)
        try await object.queue!.put(request.item.data, Self.timeout(request.hasTimeoutMs, request.timeoutMs))
        return .init()
    }

    func queueGet(request: Shmipc_Remote_V1_QueueGetRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_QueueGetResponse {
        let object = try object(request.name, kind: "queue")
        let bytes = try await object.queue!.get(Self.timeout(request.hasTimeoutMs, request.timeoutMs))
        return .with { $0.item = Self.value(object.valueType, bytes) }
    }

    func dictGet(request: Shmipc_Remote_V1_DictKeyRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_DictValueResponse {
        let object = try object(request.name, kind: "dictionary", keyType: request.key.type)
        return Self.response(object, try object.dictionary!.get(request.key.data))
    }

    func dictSet(request: Shmipc_Remote_V1_DictSetRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_DictValueResponse {
        let object = try object(request.name, kind: "dictionary", valueType: request.value.type, keyType: request.key.type)
        return Self.response(object, try object.dictionary!.set(request.key.data, request.value.data))
    }

    func dictRemove(request: Shmipc_Remote_V1_DictKeyRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_DictValueResponse {
        let object = try object(request.name, kind: "dictionary", keyType: request.key.type)
        return Self.response(object, try object.dictionary!.remove(request.key.data))
    }

    func dictKeys(request: Shmipc_Remote_V1_ObjectRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_DictKeysResponse {
        let object = try object(request.name, kind: "dictionary")
        let keys = try object.dictionary!.keys()
        return .with { $0.keys = keys.map { Self.value(object.keyType, $0) } }
    }

    private static func response(_ object: Exported, _ bytes: [UInt8]?) -> Shmipc_Remote_V1_DictValueResponse {
        .with { response in if let bytes { response.value = value(object.valueType, bytes) } }
    }
}
