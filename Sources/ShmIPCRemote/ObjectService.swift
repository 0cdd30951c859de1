internal import Foundation
internal import GRPCCore
import ShmIPC

/// The `Objects` service over a manager's exports.
struct ObjectService: Shmipc_Remote_V1_Objects.SimpleServiceProtocol {
    let manager: RemoteManager

    /// A batch of a get stream when the client does not say, and the most it may ask for.
    static let defaultBatch = 256
    static let maximumBatch = 65_536
    /// The longest stream id a put stream may give.
    static let maximumStreamID = 64

    /// The object `name`, checked to be of `kind` (`.queue`: any queue; `.lock`: either lock)
    /// and to hold values of `type` (the value's).
    func object(_ name: String, kind: Exported.Kind, valueType: String? = nil, keyType: String? = nil) throws -> Exported {
        let object = try manager.exported(name)
        guard object.kind == kind || (kind == .queue && object.kind.isQueue) || (kind == .lock && object.kind.isLock) else {
            throw RPCError(code: .failedPrecondition, message: "'\(name)' is a \(object.kind.rawValue), not a \(kind.rawValue)")
        }
        for (sent, held) in [(valueType, object.valueType), (keyType, object.keyType)] {
            if let sent, sent != held { throw Self.typeMismatch(name, held: held, sent: sent) }
        }
        return object
    }

    static func typeMismatch(_ name: String, held: String, sent: String) -> RPCError {
        RPCError(
            code: .invalidArgument, message: "type mismatch: '\(name)' holds \(held), not \(sent)",
            metadata: ["shmipc-expected": .string(held), "shmipc-found": .string(sent)])
    }

    static func timeout(_ present: Bool, _ milliseconds: UInt64) -> Duration? {
        present ? .milliseconds(Int64(clamping: milliseconds)) : nil
    }

    static func value(_ type: String, _ bytes: [UInt8]) -> Shmipc_Remote_V1_Value {
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
                    $0.kind = object.kind.rawValue
                    $0.valueType = object.valueType
                    $0.keyType = object.keyType
                    $0.count = Int64(object.count())
                    $0.capacity = Int64(object.capacity)
                    $0.rawStride = UInt32(object.rawStride)
                }
            }
        }
    }

    // MARK: queues

    func queuePut(request: Shmipc_Remote_V1_QueuePutRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_QueuePutResponse {
        let object = try object(request.name, kind: .queue, valueType: request.item.type)
        try await object.queue!.put(request.item.data, Self.timeout(request.hasTimeoutMs, request.timeoutMs))
        return .init()
    }

    func queueGet(request: Shmipc_Remote_V1_QueueGetRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_QueueGetResponse {
        let object = try object(request.name, kind: .queue)
        let bytes = try await object.queue!.get(Self.timeout(request.hasTimeoutMs, request.timeoutMs))
        return .with { $0.item = Self.value(object.valueType, bytes) }
    }

    func queuePutStream(
        request: RPCAsyncSequence<Shmipc_Remote_V1_QueuePutBatch, any Error>, response: RPCWriter<Shmipc_Remote_V1_QueueAck>,
        context: ServerContext
    ) async throws {
        try await endedByShutdown { try await servePutStream(request: request, response: response, context: context) }
    }

    private func servePutStream(
        request: RPCAsyncSequence<Shmipc_Remote_V1_QueuePutBatch, any Error>, response: RPCWriter<Shmipc_Remote_V1_QueueAck>,
        context: ServerContext
    ) async throws {
        var opened: (name: String, type: String, object: Exported, dedup: (entry: SequenceTable.Entry, owner: UInt64)?)?
        for try await batch in request {
            if let opened {
                guard batch.name.isEmpty || batch.name == opened.name else {
                    throw RPCError(code: .invalidArgument, message: "a put stream serves one queue ('\(opened.name)'), not '\(batch.name)'")
                }
                guard batch.type.isEmpty || batch.type == opened.type else {
                    throw Self.typeMismatch(opened.name, held: opened.type, sent: batch.type)
                }
            } else {
                guard !batch.name.isEmpty, !batch.type.isEmpty else {
                    throw RPCError(code: .invalidArgument, message: "a put stream's first batch names the queue and the items' type")
                }
                guard batch.streamID.count <= Self.maximumStreamID else {
                    throw RPCError(code: .invalidArgument, message: "a stream id of \(batch.streamID.count) bytes (at most \(Self.maximumStreamID))")
                }
                let object = try object(batch.name, kind: .queue, valueType: batch.type)
                let dedup = batch.streamID.isEmpty ? nil : try await manager.sequences.claim(queue: batch.name, stream: batch.streamID)
                opened = (batch.name, batch.type, object, dedup)
            }
            let (object, dedup) = (opened!.object, opened!.dedup)
            let first = batch.firstSequence
            guard [!batch.packed.isEmpty, !batch.items.isEmpty, !batch.raw.isEmpty].filter({ $0 }).count <= 1 else {
                throw RPCError(code: .invalidArgument, message: "a batch gives its items, packs them or sends them raw: one of those")
            }
            // A numbered batch's length, for what it skips: a packed one's array count (its
            // first 4 bytes; the decoding checks the rest), a raw one's bytes over the stride.
            let items: Exported.Batch, count: Int
            if !batch.raw.isEmpty {
                guard object.rawStride > 0 else {
                    throw RPCError(code: .invalidArgument, message: "'\(opened!.name)' holds \(object.valueType), which has no raw form")
                }
                (items, count) = (.raw(batch.raw), batch.raw.count / object.rawStride)
            } else if !batch.packed.isEmpty {
                (items, count) = (.packed(batch.packed), Self.packedCount(batch.packed))
            } else {
                (items, count) = (.items(batch.items), batch.items.count)
            }
            guard dedup == nil || first > 0 else {
                throw RPCError(code: .invalidArgument, message: "a numbered stream's sequences start at 1")
            }
            var skipped = 0
            if let (entry, owner) = dedup {
                try await entry.turn.take(deadline: nil)
                do {
                    let last = try entry.state.withLock { state in
                        guard state.owner == owner else {
                            throw RPCError(code: .failedPrecondition, message: "superseded: a newer stream took this stream id over")
                        }
                        return state.last
                    }
                    skipped = last >= first ? Int(min(UInt64(count), last - first + 1)) : 0
                    var done = UInt64(skipped)
                    try await object.queue!.putAll(items, skipped) { count in
                        done += UInt64(count)
                        let through = first + done - 1
                        entry.state.withLock { $0.last = max($0.last, through) }
                    }
                } catch {
                    _ = entry.turn.tryPut(())
                    throw error
                }
                _ = entry.turn.tryPut(())
            } else {
                try await object.queue!.putAll(items, 0) { _ in }
            }
            try await response.write(.with {
                $0.throughSequence = count == 0 ? (first > 0 ? first - 1 : 0) : first + UInt64(count) - 1
                $0.duplicates = UInt64(skipped)
            })
        }
    }

    /// The element count a packed batch starts with (0 if it is too short to have one).
    private static func packedCount(_ packed: Data) -> Int {
        guard packed.count >= 4 else { return 0 }
        return packed.prefix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
    }

    func queueGetStream(
        request: Shmipc_Remote_V1_QueueGetStreamRequest, response: RPCWriter<Shmipc_Remote_V1_QueueBatch>, context: ServerContext
    ) async throws {
        try await endedByShutdown { try await serveGetStream(request: request, response: response, context: context) }
    }

    /// Runs a long-lived stream's handler in a task the manager's graceful shutdown cancels:
    /// the server's own graceful shutdown waits for every call in progress to end, and a
    /// stream (a client's call stream, an idle get stream) would not end by itself. Waits in
    /// progress end as cancelled, taking nothing.
    func endedByShutdown(_ body: @escaping @Sendable () async throws -> Void) async throws {
        let task = Task { try await body() }
        let id = manager.streams.add { task.cancel() }
        defer { manager.streams.remove(id) }
        try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    private func serveGetStream(
        request: Shmipc_Remote_V1_QueueGetStreamRequest, response: RPCWriter<Shmipc_Remote_V1_QueueBatch>, context: ServerContext
    ) async throws {
        let object = try object(request.name, kind: .queue)
        let maxBatch = request.maxBatch == 0 ? Self.defaultBatch : Int(request.maxBatch)
        guard maxBatch <= Self.maximumBatch else {
            throw RPCError(code: .invalidArgument, message: "a batch of \(maxBatch) (at most \(Self.maximumBatch))")
        }
        while true {
            let batch: Exported.Batch
            guard !request.raw || object.rawStride > 0 else {
                throw RPCError(code: .invalidArgument, message: "'\(request.name)' holds \(object.valueType), which has no raw form")
            }
            let form: Exported.Batch.Form = request.raw ? .raw : request.packed ? .packed : .items
            do { batch = try await object.queue!.take(maxBatch, form) } catch let error as RPCError where error.code == .cancelled {
                return  // the client ended the stream
            }
            try await response.write(.with {
                $0.type = object.valueType
                switch batch {
                case .items(let items): $0.items = items
                case .packed(let packed): $0.packed = packed
                case .raw(let raw): $0.raw = raw
                }
            })
        }
    }

    // MARK: dictionaries

    func dictGet(request: Shmipc_Remote_V1_DictKeyRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_DictValueResponse {
        let object = try object(request.name, kind: .dictionary, keyType: request.key.type)
        return Self.response(object, try object.dictionary!.get(request.key.data))
    }

    func dictSet(request: Shmipc_Remote_V1_DictSetRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_DictValueResponse {
        let object = try object(request.name, kind: .dictionary, valueType: request.value.type, keyType: request.key.type)
        return Self.response(object, try object.dictionary!.set(request.key.data, request.value.data))
    }

    func dictRemove(request: Shmipc_Remote_V1_DictKeyRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_DictValueResponse {
        let object = try object(request.name, kind: .dictionary, keyType: request.key.type)
        return Self.response(object, try object.dictionary!.remove(request.key.data))
    }

    func dictKeys(request: Shmipc_Remote_V1_ObjectRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_DictKeysResponse {
        let object = try object(request.name, kind: .dictionary)
        let keys = try object.dictionary!.keys()
        return .with { $0.keys = keys.map { Self.value(object.keyType, $0) } }
    }

    private static func response(_ object: Exported, _ bytes: [UInt8]?) -> Shmipc_Remote_V1_DictValueResponse {
        .with { response in if let bytes { response.value = value(object.valueType, bytes) } }
    }

    // MARK: lease locks

    func lockAcquire(request: Shmipc_Remote_V1_LockAcquireRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_LockGrant {
        let lock = try object(request.name, kind: .lock).lock!
        let lease = request.leaseMs == 0 ? nil : Duration.milliseconds(Int64(clamping: request.leaseMs))
        let timeout = Self.timeout(request.hasTimeoutMs, request.timeoutMs)
        do {
            if request.holding != 0 { return Self.grant(try lock.reacquire(request.holding, lease: lease)) }
            let deadline: Deadline? = timeout.map { .after($0) }
            return Self.grant(try await cancellableByRPC { try await lock.acquire(lease: lease, deadline: deadline) })
        } catch { throw Exported.rpcError(error) }
    }

    func lockRenew(request: Shmipc_Remote_V1_LockTokenRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_LockGrant {
        let lock = try object(request.name, kind: .lock).lock!
        do { return Self.grant(try lock.renew(request.token)) } catch { throw Exported.rpcError(error) }
    }

    func lockRelease(request: Shmipc_Remote_V1_LockTokenRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_LockReleaseResponse {
        let lock = try object(request.name, kind: .lock).lock!
        let depth: UInt32
        do { depth = try lock.release(request.token) } catch { throw Exported.rpcError(error) }
        return .with { $0.depth = depth }
    }

    private static func grant(_ grant: LeaseLock.Grant) -> Shmipc_Remote_V1_LockGrant {
        .with {
            $0.token = grant.token
            $0.depth = grant.depth
            $0.leaseMs = UInt64(grant.lease.components.seconds) * 1000 + UInt64(grant.lease.components.attoseconds / 1_000_000_000_000_000)
        }
    }

    // MARK: values, events, semaphores

    func valueGet(request: Shmipc_Remote_V1_ObjectRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_ValueResponse {
        let object = try object(request.name, kind: .value)
        let bytes = try object.value!.load()
        return .with { $0.value = Self.value(object.valueType, bytes) }
    }

    func valueSet(request: Shmipc_Remote_V1_ValueSetRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_ValueResponse {
        let object = try object(request.name, kind: .value, valueType: request.value.type)
        let old = try object.value!.exchange(request.value.data)
        return .with { $0.value = Self.value(object.valueType, old) }
    }

    func eventSet(request: Shmipc_Remote_V1_ObjectRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_EventResponse {
        let event = try object(request.name, kind: .event).event!
        event.set()
        return .with { $0.isSet = event.isSet }
    }

    func eventClear(request: Shmipc_Remote_V1_ObjectRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_EventResponse {
        let event = try object(request.name, kind: .event).event!
        event.clear()
        return .with { $0.isSet = event.isSet }
    }

    func eventWait(request: Shmipc_Remote_V1_WaitRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_EventResponse {
        let event = try object(request.name, kind: .event).event!
        let isSet: Bool
        let timeout = Self.timeout(request.hasTimeoutMs, request.timeoutMs)
        do { isSet = event.isSet ? true : try await cancellableByRPC { try await event.wait(timeout: timeout) } } catch {
            throw Exported.rpcError(error)
        }
        return .with { $0.isSet = isSet }
    }

    func semaphoreAcquire(request: Shmipc_Remote_V1_WaitRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_SemaphoreResponse {
        let semaphore = try object(request.name, kind: .semaphore).semaphore!
        let timeout = Self.timeout(request.hasTimeoutMs, request.timeoutMs)
        do {
            if !semaphore.tryAcquire() { try await cancellableByRPC { try await semaphore.acquire(timeout: timeout) } }
        } catch {
            throw Exported.rpcError(error)
        }
        return .with { $0.value = Int64(semaphore.currentValue) }
    }

    func semaphoreRelease(request: Shmipc_Remote_V1_SemaphoreReleaseRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_SemaphoreResponse {
        let semaphore = try object(request.name, kind: .semaphore).semaphore!
        do { try semaphore.release(Int(max(1, request.count))) } catch { throw Exported.rpcError(error) }
        return .with { $0.value = Int64(semaphore.currentValue) }
    }
}
