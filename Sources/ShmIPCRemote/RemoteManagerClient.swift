internal import Foundation
internal import GRPCCore
internal import GRPCNIOTransportHTTP2
import ShmIPC
import Synchronization

/// An exported object, as `RemoteManagerClient/list()` tells it.
public struct RemoteObjectInfo: Sendable, Hashable {
    public let name: String
    /// "queue", "joinable_queue", "message_queue", "dictionary", "list", "namespace", "lock",
    /// "rlock", "value", "event" or "semaphore".
    public let kind: String
    /// The element type of a queue, the value type of a dictionary (fully qualified Swift names).
    public let valueType: String
    /// A dictionary's key type; empty for a queue.
    public let keyType: String
    /// Items or entries (a snapshot).
    public let count: Int
    /// A queue's capacity; 0 for a dictionary.
    public let capacity: Int
    /// For a queue of a ``RawRemoteElement`` type, its stride: streamed batches travel as the
    /// elements' memory. 0 for every other object.
    public var rawStride: Int = 0
}

/// A connection to a ``RemoteManager``: proxies for its exported objects, with the local
/// types' method names (Python's `BaseManager.connect()` and its proxies). One gRPC connection
/// serves every proxy; close it when done.
public final class RemoteManagerClient: Sendable {
    private let client: GRPCClient<HTTP2ClientTransport.Posix>
    private let objects: Shmipc_Remote_V1_Objects.Client<HTTP2ClientTransport.Posix>
    private let authKey: AuthKey
    private let session: Mutex<String>
    private let handshakeTimeout: Duration
    /// The deadline of every call that does not wait for an object (a wait's deadline is its
    /// timeout plus ``RemoteQueue/grace``): a server that stopped answering is
    /// ``RemoteError/timedOut`` after it, never a hang.
    public let callTimeout: Duration
    let options: CallOptions
    let coder = BinaryMessageCoder()
    /// The stream every call but the queue streams goes over (made on first use).
    private let calls = Mutex<CallStream?>(nil)

    private init(
        client: GRPCClient<HTTP2ClientTransport.Posix>, authKey: AuthKey, session: String, maxMessageSize: Int,
        handshakeTimeout: Duration, callTimeout: Duration
    ) {
        self.client = client
        self.handshakeTimeout = handshakeTimeout
        self.callTimeout = callTimeout
        objects = Shmipc_Remote_V1_Objects.Client(wrapping: client)
        self.authKey = authKey
        self.session = Mutex(session)
        var options = CallOptions.defaults
        options.maxRequestMessageBytes = maxMessageSize + Listener.frameOverhead
        options.maxResponseMessageBytes = maxMessageSize + Listener.frameOverhead
        self.options = options
    }

    static func connect(
        to address: RemoteAddress, authKey: AuthKey, maxMessageSize: Int, handshakeTimeout: Duration, callTimeout: Duration,
        tls: RemoteTLS?
    ) async throws -> RemoteManagerClient {
        let (client, session) = try await Client.open(address, authKey: authKey, timeout: handshakeTimeout, tls: tls)
        return RemoteManagerClient(
            client: client, authKey: authKey, session: session, maxMessageSize: maxMessageSize, handshakeTimeout: handshakeTimeout,
            callTimeout: callTimeout)
    }

    /// Ends the connection (calls in flight fail as ``RemoteError/closed``).
    public func close() {
        calls.withLock { $0 }?.close()
        client.beginGracefulShutdown()
    }

    /// The current call stream, or a new one if there is none or it ended.
    private func callStream() -> CallStream {
        calls.withLock { stream in
            if let current = stream, !current.hasEnded { return current }
            let metadata: Metadata = [Handshake.sessionKey: .string(session.withLock { $0 })]
            let fresh = CallStream(objects: objects, metadata: metadata, options: options)
            stream = fresh
            return fresh
        }
    }

    /// Runs `call` over the call stream, waiting at most `timeout` (`nil`: as long as it
    /// takes) for its answer, and returns what `result` finds in it. A stream the server
    /// refused as UNAUTHENTICATED (it restarted and forgot the session, or the session expired)
    /// ran nothing: the handshake runs again and the call once more.
    func invoke<T>(
        _ call: CallStream.Request.OneOf_Call, timeout: Duration?, _ result: (CallStream.Response.OneOf_Result) -> T?
    ) async throws -> T {
        for attempt in 0..<2 {
            let stream = callStream()
            do {
                let answer = try await stream.call(call, deadline: timeout.map { .after($0) })
                guard let value = result(answer) else { throw RemoteError.protocolError("an answer of another kind: \(answer)") }
                return value
            } catch RemoteError.authenticationFailed where attempt == 0 {
                let renewed = try await Client.authenticate(client, authKey: authKey, timeout: handshakeTimeout)
                session.withLock { $0 = renewed }
                calls.withLock { if $0 === stream { $0 = nil } }
            }
        }
        throw RemoteError.authenticationFailed
    }

    /// What the server exports.
    public func list() async throws -> [RemoteObjectInfo] {
        try await invoke(.list(.init()), timeout: callTimeout) { if case .list(let list) = $0 { list } else { nil } }.objects.map {
            RemoteObjectInfo(
                name: $0.name, kind: $0.kind, valueType: $0.valueType, keyType: $0.keyType, count: Int($0.count),
                capacity: Int($0.capacity), rawStride: Int($0.rawStride))
        }
    }

    /// The exported queue `name` of `Element`s. Throws ``RemoteError/notFound(_:)``,
    /// ``RemoteError/refused(_:)`` (not a queue) or ``RemoteError/typeMismatch(expected:found:)``.
    public func queue<Element: Codable & Sendable>(_ name: String, of _: Element.Type = Element.self) async throws -> RemoteQueue<Element> {
        let info = try await check(name, kind: "queue", valueType: String(reflecting: Element.self), keyType: "")
        return RemoteQueue(manager: self, name: name, rawStride: info.rawStride)
    }

    /// The exported dictionary `name` (see `queue(_:of:)`).
    public func dictionary<Key: Hashable & Codable & Sendable, Value: Codable & Sendable>(
        _ name: String, of _: [Key: Value].Type = [Key: Value].self
    ) async throws -> RemoteDictionary<Key, Value> {
        try await check(name, kind: "dictionary", valueType: String(reflecting: Value.self), keyType: String(reflecting: Key.self))
        return RemoteDictionary(manager: self, name: name)
    }

    @discardableResult
    func check(_ name: String, kind: String, valueType: String, keyType: String) async throws -> RemoteObjectInfo {
        guard let object = try await list().first(where: { $0.name == name }) else { throw RemoteError.notFound(name) }
        guard object.kind == kind else { throw RemoteError.refused("'\(name)' is a \(object.kind), not a \(kind)") }
        guard object.valueType == valueType else { throw RemoteError.typeMismatch(expected: valueType, found: object.valueType) }
        guard object.keyType == keyType else { throw RemoteError.typeMismatch(expected: keyType, found: object.keyType) }
        return object
    }

    /// Runs a call with the session; if the server no longer knows the session (it expired,
    /// or the server restarted), authenticates again and runs it once more: a refused call
    /// never reached an object, so nothing runs twice.
    func call<Result: Sendable>(
        timeout: Duration? = nil, _ body: @Sendable (Metadata, CallOptions) async throws -> Result
    ) async throws -> Result {
        var options = self.options
        options.timeout = timeout
        for attempt in 0..<2 {
            let metadata: Metadata = [Handshake.sessionKey: .string(session.withLock { $0 })]
            do {
                return try await body(metadata, options)
            } catch let error as RPCError where error.code == .unauthenticated && attempt == 0 {
                let renewed = try await Client.authenticate(client, authKey: authKey, timeout: handshakeTimeout)
                session.withLock { $0 = renewed }
            } catch {
                throw RemoteConnection.remoteError(error)
            }
        }
        throw RemoteError.authenticationFailed
    }

    func value<T: Encodable>(_ value: T) throws -> Shmipc_Remote_V1_Value {
        let data = try bytes(value)
        return .with {
            $0.type = String(reflecting: T.self)
            $0.data = data
        }
    }

    func bytes<T: Encodable>(_ value: T) throws -> Data {
        do { return Data(try coder.encode(value)) } catch { throw RemoteError.decodingFailed("\(value) did not encode: \(error)") }
    }

    /// Bytes of a batch the server tagged as `T` (the batch's tag was checked).
    func decode<T: Decodable>(_: T.Type, _ data: Data) throws -> T {
        do {
            return try data.withUnsafeBytes { bytes in try coder.decode(T.self, from: bytes) }
        } catch {
            throw RemoteError.decodingFailed("a \(String(reflecting: T.self)): \(error)")
        }
    }

    /// Runs a streaming call with the session, authenticating again once if the server refused
    /// it as UNAUTHENTICATED (before any handler ran); no deadline: a stream lasts as long as it
    /// is used.
    func stream<Result: Sendable>(_ body: @Sendable (Metadata, CallOptions) async throws -> Result) async throws -> Result {
        try await call(timeout: nil, body)
    }

    func decode<T: Decodable>(_: T.Type, _ value: Shmipc_Remote_V1_Value) throws -> T {
        let expected = String(reflecting: T.self)
        guard value.type == expected else { throw RemoteError.typeMismatch(expected: expected, found: value.type) }
        do {
            return try value.data.withUnsafeBytes { bytes in try coder.decode(T.self, from: bytes) }
        } catch {
            throw RemoteError.decodingFailed("a \(expected): \(error)")
        }
    }

    var objectsClient: Shmipc_Remote_V1_Objects.Client<HTTP2ClientTransport.Posix> { objects }
}

/// A queue another host exports (`RemoteManagerClient/queue(_:of:)`): `put` and `get` as
/// `Queue`'s async forms. A wait's timeout travels to the server, and the call's deadline
/// is that timeout plus ``RemoteQueue/grace``; with no timeout, the call waits as long as the
/// item does. A put that fails with ``RemoteError/timedOut`` did not put; one that fails with
/// ``RemoteError/unavailable(_:)`` may have (the answer was lost), as with any network call.
public struct RemoteQueue<Element: Codable & Sendable>: Sendable {
    let manager: RemoteManagerClient
    public let name: String
    /// The server's raw stride for the queue (0: none).
    var rawStride = 0
    /// Whether the streams move batches raw: the element type has a raw form here and the
    /// server's has the same stride.
    var movesRaw: Bool { rawStride > 0 && rawStride == RawForm.stride(Element.self) }
    /// What a call's deadline allows beyond its wait: the round trip.
    public static var grace: Duration { .seconds(10) }

    /// Puts `value`, waiting at most `timeout` (`nil`: forever) for room.
    public func put(_ value: Element, timeout: Duration? = nil) async throws {
        let request = try Shmipc_Remote_V1_QueuePutRequest.with {
            $0.name = name
            $0.item = try manager.value(value)
            if let timeout { $0.timeoutMs = Self.milliseconds(timeout) }
        }
        _ = try await manager.invoke(.queuePut(request), timeout: timeout.map { $0 + Self.grace }) {
            if case .queuePut(let done) = $0 { done } else { nil }
        }
    }

    /// Takes the next item, waiting at most `timeout` (`nil`: forever).
    public func get(timeout: Duration? = nil) async throws -> Element {
        let request = Shmipc_Remote_V1_QueueGetRequest.with {
            $0.name = name
            if let timeout { $0.timeoutMs = Self.milliseconds(timeout) }
        }
        let item = try await manager.invoke(.queueGet(request), timeout: timeout.map { $0 + Self.grace }) {
            if case .queueGet(let got) = $0 { got.item } else { nil }
        }
        return try manager.decode(Element.self, item)
    }

    /// Puts every value, in order, over one stream in batches of `batchSize` (the throughput
    /// path: batches are written without waiting for each other's answer, and HTTP/2's flow
    /// control and the queue's room pace them). Returns when the server has put them all; the
    /// count put. A failure part-way (the connection broke, the queue closed) throws, and
    /// then a prefix of the values was put, as a loop of `put(_:timeout:)` would leave it.
    @discardableResult
    public func put(contentsOf values: some Sequence<Element> & Sendable, batchSize: Int = 256) async throws -> Int {
        precondition(batchSize > 0, "a batch holds at least one item")
        let (name, type, manager) = (name, String(reflecting: Element.self), manager)
        return try await manager.stream { metadata, options in
            try await manager.objectsClient.queuePutStream(metadata: metadata, options: options) { writer in
                var batch = Shmipc_Remote_V1_QueuePutBatch.with {
                    $0.name = name
                    $0.type = type
                    $0.firstSequence = 1
                }
                // Each batch packed (the array of its items as one value, one encoding) or, for
                // a raw element type, its items' memory.
                var chunk: [Element] = []
                chunk.reserveCapacity(batchSize)
                let raw = movesRaw
                func send() async throws {
                    if raw { batch.raw = RawForm.bytes(chunk) } else { batch.packed = try manager.bytes(chunk) }
                    try await writer.write(batch)
                    batch.firstSequence += UInt64(chunk.count)
                    chunk.removeAll(keepingCapacity: true)
                    batch.name = ""
                    batch.type = ""
                }
                for value in values {
                    chunk.append(value)
                    if chunk.count == batchSize { try await send() }
                }
                if !chunk.isEmpty { try await send() }
            } onResponse: { response in
                var through: UInt64 = 0
                for try await ack in response.messages { through = ack.throughSequence }
                return Int(through)
            }
        }
    }

    /// The queue's items as they come, taken by the server in batches of up to `maxBatch` over
    /// one stream (the throughput path). The server takes an item when it sends it: items it
    /// sent that this end never read (the iteration ended early, the connection broke) are
    /// lost with the stream, at most once. Ends by throwing the failure: a closed queue is
    /// ``RemoteError/refused(_:)``.
    public func elements(maxBatch: Int = 256) -> Elements {
        precondition(maxBatch > 0 && maxBatch <= 65_536, "a batch of 1 to 65,536 items")
        return Elements(queue: self, maxBatch: maxBatch)
    }

    /// ``elements(maxBatch:)``'s sequence: each iterator opens a stream of its own.
    public struct Elements: AsyncSequence, Sendable {
        let queue: RemoteQueue
        let maxBatch: Int

        public func makeAsyncIterator() -> Iterator { Iterator(stream: Stream(queue: queue, maxBatch: maxBatch)) }

        public struct Iterator: AsyncIteratorProtocol {
            let stream: Stream
            var batch: [Element] = []
            var index = 0

            public mutating func next() async throws -> Element? {
                if index == batch.count {
                    guard let next = try await stream.nextBatch() else { return nil }
                    (batch, index) = (next, 0)
                }
                defer { index += 1 }
                return batch[index]
            }
        }

        /// The stream behind an iterator: started on first use, cancelled when the iterator
        /// goes away. Batches wait in a buffer of two, so a slow reader slows the server.
        final class Stream: Sendable {
            private let buffer = AsyncBuffer<[Element]>(capacity: 2)
            private let task: Mutex<Task<Void, Never>?> = Mutex(nil)
            let queue: RemoteQueue
            let maxBatch: Int

            init(queue: RemoteQueue, maxBatch: Int) {
                self.queue = queue
                self.maxBatch = maxBatch
            }

            deinit { task.withLock { $0?.cancel() } }

            func nextBatch() async throws -> [Element]? {
                task.withLock { task in
                    guard task == nil else { return }
                    let (buffer, queue, maxBatch) = (buffer, queue, maxBatch)
                    task = Task {
                        do {
                            let request = Shmipc_Remote_V1_QueueGetStreamRequest.with {
                                $0.name = queue.name
                                $0.maxBatch = UInt32(maxBatch)
                                $0.packed = true
                                $0.raw = queue.movesRaw
                            }
                            try await queue.manager.stream { metadata, options in
                                try await queue.manager.objectsClient.queueGetStream(request, metadata: metadata, options: options) { response in
                                    for try await batch in response.messages {
                                        let type = String(reflecting: Element.self)
                                        guard batch.type == type else { throw RemoteError.typeMismatch(expected: type, found: batch.type) }
                                        let items: [Element]
                                        if !batch.raw.isEmpty {
                                            guard queue.movesRaw, let raw = RawForm.items(Element.self, batch.raw) else {
                                                throw RemoteError.decodingFailed("\(batch.raw.count) raw bytes are not items of \(type)")
                                            }
                                            items = raw
                                        } else if !batch.packed.isEmpty {
                                            items = try queue.manager.decode([Element].self, batch.packed)
                                        } else {
                                            items = try batch.items.map { try queue.manager.decode(Element.self, $0) }
                                        }
                                        guard await buffer.put(items) else { return }
                                    }
                                }
                            }
                            buffer.finish(.endOfStream)
                        } catch {
                            buffer.finish(RemoteConnection.remoteError(error))
                        }
                    }
                }
                do { return try await buffer.take(deadline: nil) } catch RemoteError.endOfStream { return nil }
            }
        }
    }

    static func milliseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds)) * 1000 + UInt64(max(0, attoseconds) / 1_000_000_000_000_000)
    }
}

/// A dictionary another host exports (`RemoteManagerClient/dictionary(_:of:)`), with
/// `SharedDictionary`'s method names; each call is one request, run by the server on the
/// dictionary under its own lock.
public struct RemoteDictionary<Key: Hashable & Codable & Sendable, Value: Codable & Sendable>: Sendable {
    let manager: RemoteManagerClient
    public let name: String

    /// The value for `key`, if any.
    public func value(forKey key: Key) async throws -> Value? {
        try await keyCall(key) { .dictGet($0) }
    }

    /// Sets the value for `key`.
    public func setValue(_ value: Value, forKey key: Key) async throws {
        _ = try await updateValue(value, forKey: key)
    }

    /// Sets the value for `key`; returns the value it replaced, if any.
    @discardableResult
    public func updateValue(_ value: Value, forKey key: Key) async throws -> Value? {
        let request = try Shmipc_Remote_V1_DictSetRequest.with {
            $0.name = name
            $0.key = try manager.value(key)
            $0.value = try manager.value(value)
        }
        let response = try await manager.invoke(.dictSet(request), timeout: manager.callTimeout, Self.dictValue)
        return try response.hasValue ? manager.decode(Value.self, response.value) : nil
    }

    /// Removes `key`; returns its value, if it had one.
    @discardableResult
    public func removeValue(forKey key: Key) async throws -> Value? {
        try await keyCall(key) { .dictRemove($0) }
    }

    /// A call on one key that answers with the key's value, if any.
    private func keyCall(
        _ key: Key, _ call: (Shmipc_Remote_V1_DictKeyRequest) -> CallStream.Request.OneOf_Call
    ) async throws -> Value? {
        let request = try Shmipc_Remote_V1_DictKeyRequest.with {
            $0.name = name
            $0.key = try manager.value(key)
        }
        let response = try await manager.invoke(call(request), timeout: manager.callTimeout, Self.dictValue)
        return try response.hasValue ? manager.decode(Value.self, response.value) : nil
    }

    private static func dictValue(_ result: CallStream.Response.OneOf_Result) -> Shmipc_Remote_V1_DictValueResponse? {
        if case .dictValue(let value) = result { value } else { nil }
    }

    /// The keys, in the dictionary's order.
    public func keys() async throws -> [Key] {
        let request = Shmipc_Remote_V1_ObjectRequest.with { $0.name = name }
        let response = try await manager.invoke(.dictKeys(request), timeout: manager.callTimeout) {
            if case .dictKeys(let keys) = $0 { keys } else { nil }
        }
        return try response.keys.map { try manager.decode(Key.self, $0) }
    }

    /// Entries in the dictionary (a snapshot).
    public var count: Int {
        get async throws {
            guard let object = try await manager.list().first(where: { $0.name == name }) else { throw RemoteError.notFound(name) }
            return object.count
        }
    }
}
