internal import Foundation
internal import GRPCCore
import ShmIPC
import Synchronization

/// What an export can do, with its types erased: closures made where the types were known,
/// or the object itself for the kinds that are not generic.
struct Exported: Sendable {
    enum Kind: String, Sendable {
        case queue, joinableQueue = "joinable_queue", messageQueue = "message_queue", dictionary, list, namespace
        case lock, rlock, value, event, semaphore

        /// The kinds the queue calls serve.
        var isQueue: Bool { self == .queue || self == .joinableQueue || self == .messageQueue }
        /// The kinds the lock calls serve.
        var isLock: Bool { self == .lock || self == .rlock }
    }

    let kind: Kind
    var valueType = ""
    var keyType = ""
    let count: @Sendable () -> Int
    var capacity = 0
    /// A queue's element stride in the raw form (``RawForm``); 0: none.
    var rawStride = 0
    var queue: QueueCalls?
    var tasks: TaskCalls?
    var dictionary: DictionaryCalls?
    var list: ListCalls?
    var namespace: Namespace?
    var value: ValueCalls?
    var lock: LeaseLock?
    var event: Event?
    var semaphore: ShmIPC.Semaphore?

    struct QueueCalls: Sendable {
        let put: @Sendable (Data, Duration?) async throws -> Void
        let get: @Sendable (Duration?) async throws -> [UInt8]
        /// Decodes the items (`skipping` the first ones), then puts them in order, each
        /// waiting for room as long as the call lasts; `didPut` hears how many each time some
        /// were put (a cancelled wait puts no more).
        let putAll: @Sendable (_ items: Batch, _ skipping: Int, _ didPut: (Int) -> Void) async throws -> Void
        /// Waits for an item, then takes it and what else is there, at most `maxCount`.
        let take: @Sendable (_ maxCount: Int, _ form: Batch.Form) async throws -> Batch
    }

    /// A batch of items in the binary Codable form: one encoding each, or the array of them.
    enum Batch: Sendable {
        case items([Data])
        case packed(Data)
        /// The items' memory (a raw element type's; ``RawForm``).
        case raw(Data)

        enum Form: Sendable { case items, packed, raw }
    }

    /// A joinable queue's tasks: each answers the unfinished tasks after it.
    struct TaskCalls: Sendable {
        let taskDone: @Sendable () throws -> Int
        let join: @Sendable (Duration?) async throws -> Int
    }

    /// A list's calls, each with the list's length after it.
    struct ListCalls: Sendable {
        let get: @Sendable (Int) throws -> ([UInt8], Int)
        let set: @Sendable (Int, Data) throws -> ([UInt8], Int)
        let insert: @Sendable (Int, Data) throws -> Int
        let append: @Sendable ([Data]) throws -> Int
        let remove: @Sendable (Int) throws -> ([UInt8], Int)
        let popLast: @Sendable () throws -> ([UInt8]?, Int)
        let snapshot: @Sendable () throws -> [[UInt8]]
    }

    struct DictionaryCalls: Sendable {
        let get: @Sendable (Data) throws -> [UInt8]?
        let set: @Sendable (Data, Data) throws -> [UInt8]?
        let remove: @Sendable (Data) throws -> [UInt8]?
        let keys: @Sendable () throws -> [[UInt8]]
    }

    struct ValueCalls: Sendable {
        let load: @Sendable () throws -> [UInt8]
        /// Stores the decoded value; the encoded one it replaced.
        let exchange: @Sendable (Data) throws -> [UInt8]
    }

    /// What a queue of `Element`s does, for ``queueCalls(_:)``: a typed queue's items travel
    /// in the binary Codable form, a message queue's as the raw messages.
    struct QueueOps<Element: Codable & Sendable>: Sendable {
        let tryPut: @Sendable (Element) throws -> Bool
        let put: @Sendable (Element, Duration?) async throws -> Void
        /// Puts what fits now of the items, in order, without waiting; how many.
        let tryPutSome: @Sendable (ArraySlice<Element>) throws -> Int
        let tryGet: @Sendable () throws -> Element?
        let get: @Sendable (Duration?) async throws -> Element
        let decode: @Sendable (Data) throws -> Element
        let encode: @Sendable (Element) throws -> [UInt8]

        /// The ops with the items in `coder`'s form.
        static func typed(
            _ coder: BinaryMessageCoder, tryPut: @escaping @Sendable (Element) throws -> Bool,
            put: @escaping @Sendable (Element, Duration?) async throws -> Void,
            tryPutSome: (@Sendable (ArraySlice<Element>) throws -> Int)? = nil,
            tryGet: @escaping @Sendable () throws -> Element?, get: @escaping @Sendable (Duration?) async throws -> Element
        ) -> QueueOps {
            QueueOps(
                tryPut: tryPut, put: put, tryPutSome: tryPutSome ?? { try putEach($0, tryPut) }, tryGet: tryGet, get: get,
                decode: { try Exported.decode(Element.self, $0, coder) }, encode: { try coder.encode($0) })
        }

        /// `tryPut` for each item until one does not fit.
        static func putEach(_ items: ArraySlice<Element>, _ tryPut: (Element) throws -> Bool) throws -> Int {
            var count = 0
            for item in items {
                guard try tryPut(item) else { break }
                count += 1
            }
            return count
        }
    }

    static func queue<Element: BitwiseCopyable & Codable & Sendable>(_ queue: Queue<Element>) -> Exported {
        let ops = QueueOps<Element>.typed(
            BinaryMessageCoder(), tryPut: { try queue.tryPut($0) }, put: { try await queue.put($0, timeout: $1) },
            tryPutSome: { try queue.tryPut(contentsOf: $0) }, tryGet: { try queue.tryGet() }, get: { try await queue.get(timeout: $0) })
        return Exported(
            kind: .queue, valueType: String(reflecting: Element.self), count: { queue.count }, capacity: queue.capacity,
            rawStride: RawForm.stride(Element.self), queue: queueCalls(ops))
    }

    static func joinableQueue<Element: BitwiseCopyable & Codable & Sendable>(_ queue: JoinableQueue<Element>) -> Exported {
        let ops = QueueOps<Element>.typed(
            BinaryMessageCoder(), tryPut: { try queue.tryPut($0) }, put: { try await queue.put($0, timeout: $1) },
            tryGet: { try queue.tryGet() }, get: { try await queue.get(timeout: $0) })
        return Exported(
            kind: .joinableQueue, valueType: String(reflecting: Element.self), count: { queue.count }, capacity: queue.capacity,
            rawStride: RawForm.stride(Element.self), queue: queueCalls(ops),
            tasks: TaskCalls(
                taskDone: {
                    do { try queue.taskDone() } catch { throw rpcError(error) }
                    return queue.unfinishedTasks
                },
                join: { timeout in
                    if queue.unfinishedTasks > 0 {
                        do { try await cancellableByRPC { try await queue.join(timeout: timeout) } } catch { throw rpcError(error) }
                    }
                    return queue.unfinishedTasks
                }))
    }

    /// The type name a message queue's items travel under: they are raw messages.
    static let messageType = "bytes"

    static func messageQueue(_ queue: MessageQueue) -> Exported {
        let ops = QueueOps<[UInt8]>(
            tryPut: { message in try message.withUnsafeBytes { try queue.tryPut(bytes: $0) } },
            put: { try await queue.put(bytes: $0, timeout: $1) },
            tryPutSome: { messages in
                try QueueOps<[UInt8]>.putEach(messages) { message in try message.withUnsafeBytes { try queue.tryPut(bytes: $0) } }
            },
            tryGet: { try queue.tryGet() }, get: { try await queue.get(timeout: $0) },
            decode: { [UInt8]($0) }, encode: { $0 })
        return Exported(
            kind: .messageQueue, valueType: messageType, count: { queue.count }, capacity: queue.capacity, queue: queueCalls(ops))
    }

    /// A queue's calls over `ops` (a batch packed is the binary Codable form of `[Element]`).
    static func queueCalls<Element: Codable & Sendable>(_ ops: QueueOps<Element>) -> QueueCalls {
        let coder = BinaryMessageCoder()
        return QueueCalls(
            put: { data, timeout in
                let item = try ops.decode(data)
                do {
                    if try ops.tryPut(item) { return }
                    try await cancellableByRPC { try await ops.put(item, timeout) }
                } catch { throw rpcError(error) }
            },
            get: { timeout in
                let item: Element
                do {
                    if let next = try ops.tryGet() { item = next } else {
                        item = try await cancellableByRPC { try await ops.get(timeout) }
                    }
                } catch { throw rpcError(error) }
                return try ops.encode(item)
            },
            putAll: { batch, skipping, didPut in
                var items: [Element]
                switch batch {
                case .items(let data): items = try data.dropFirst(skipping).map { try ops.decode($0) }
                case .packed(let data):
                    items = try decode([Element].self, data, coder)
                    items.removeFirst(min(skipping, items.count))
                case .raw(let data):
                    guard RawForm.stride(Element.self) > 0, let raw = RawForm.items(Element.self, data) else {
                        throw RPCError(code: .invalidArgument, message: "\(data.count) raw bytes are not items of \(String(reflecting: Element.self))")
                    }
                    items = Array(raw.dropFirst(skipping))
                }
                var done = 0
                do {
                    while done < items.count {
                        // What fits now in one go, then a wait for room for the next one.
                        let put = try ops.tryPutSome(items[done...])
                        if put > 0 { didPut(put) }
                        done += put
                        if done < items.count {
                            let next = items[done]
                            try await cancellableByRPC { try await ops.put(next, nil) }
                            didPut(1)
                            done += 1
                        }
                    }
                } catch { throw rpcError(error) }
            },
            take: { maxCount, form in
                var items: [Element]
                do {
                    if let first = try ops.tryGet() { items = [first] } else {
                        items = [try await cancellableByRPC { try await ops.get(nil) }]
                    }
                    items.reserveCapacity(maxCount)
                    while items.count < maxCount, let next = try ops.tryGet() { items.append(next) }
                } catch { throw rpcError(error) }
                switch form {
                case .raw where RawForm.stride(Element.self) > 0: return .raw(RawForm.bytes(items))
                case .raw: throw RPCError(code: .invalidArgument, message: "\(String(reflecting: Element.self)) has no raw form")
                case .packed: return .packed(Data(try coder.encode(items)))
                case .items: return .items(try items.map { Data(try ops.encode($0)) })
                }
            })
    }

    static func dictionary<Key: Hashable & Codable & Sendable, Value: Codable & Sendable>(
        _ dictionary: SharedDictionary<Key, Value>
    ) -> Exported {
        let coder = BinaryMessageCoder()
        return Exported(
            kind: .dictionary, valueType: String(reflecting: Value.self), keyType: String(reflecting: Key.self),
            count: { dictionary.count },
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

    static func value<T: BitwiseCopyable & Codable & Sendable>(_ value: ShmIPC.Value<T>) -> Exported {
        let coder = BinaryMessageCoder()
        return Exported(
            kind: .value, valueType: String(reflecting: T.self), count: { 1 },
            value: ValueCalls(
                load: { try coder.encode(value.load()) },
                exchange: { data in
                    let new = try decode(T.self, data, coder)
                    let old: T
                    do {
                        old = try value.withLock { stored in
                            defer { stored = new }
                            return stored
                        }
                    } catch { throw rpcError(error) }
                    return try coder.encode(old)
                }))
    }

    static func list<Element: Codable & Sendable>(_ list: SharedList<Element>) -> Exported {
        let coder = BinaryMessageCoder()
        return Exported(
            kind: .list, valueType: String(reflecting: Element.self), count: { list.count },
            list: ListCalls(
                get: { index in try withStatus { (try coder.encode(try list.element(at: index)), list.count) } },
                set: { index, data in
                    let new = try decode(Element.self, data, coder)
                    // The old element and the new one stored under one hold of the list's lock.
                    return try withStatus {
                        let old = try list.modify(at: index) { element in
                            defer { element = new }
                            return element
                        }
                        return (try coder.encode(old), list.count)
                    }
                },
                insert: { index, data in
                    let new = try decode(Element.self, data, coder)
                    return try withStatus {
                        try list.insert(new, at: index)
                        return list.count
                    }
                },
                append: { data in
                    let new = try data.map { try decode(Element.self, $0, coder) }
                    return try withStatus {
                        try list.append(contentsOf: new)
                        return list.count
                    }
                },
                remove: { index in try withStatus { (try coder.encode(try list.remove(at: index)), list.count) } },
                popLast: { try withStatus { (try list.popLast().map { try coder.encode($0) }, list.count) } },
                snapshot: { try withStatus { try list.snapshot().map { try coder.encode($0) } } }))
    }

    static func namespace(_ namespace: Namespace) -> Exported {
        Exported(kind: .namespace, count: { (try? namespace.names().count) ?? 0 }, namespace: namespace)
    }

    static func lock(_ lock: LeaseLock) -> Exported {
        Exported(kind: lock.isReentrant ? .rlock : .lock, count: { lock.isLocked ? 1 : 0 }, lock: lock)
    }

    static func event(_ event: Event) -> Exported {
        Exported(kind: .event, count: { event.isSet ? 1 : 0 }, event: event)
    }

    static func semaphore(_ semaphore: ShmIPC.Semaphore) -> Exported {
        Exported(kind: .semaphore, count: { semaphore.currentValue }, capacity: semaphore.maximum ?? 0, semaphore: semaphore)
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

    /// `body`'s result, or its error as the call's status.
    static func withStatus<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw rpcError(error) }
    }

    /// A local object's error as the call's status.
    static func rpcError(_ error: any Error) -> RPCError {
        if let error = error as? RPCError { return error }
        switch error {
        case let error as QueueError:
            switch error {
            case .timedOut: return RPCError(code: .deadlineExceeded, message: "the wait ran out")
            case .closed: return RPCError(code: .failedPrecondition, message: "closed")
            case .taskDoneTooManyTimes: return RPCError(code: .failedPrecondition, message: "\(error)")
            default: return RPCError(code: .internalError, message: "\(error)")
            }
        case let error as ChannelError:
            switch error {
            case .timedOut: return RPCError(code: .deadlineExceeded, message: "the wait ran out")
            case .closed, .endOfStream, .brokenPipe: return RPCError(code: .failedPrecondition, message: "closed")
            case .messageTooLarge: return RPCError(code: .invalidArgument, message: "\(error)")
            default: return RPCError(code: .internalError, message: "\(error)")
            }
        case let error as ManagerError:
            switch error {
            case .indexOutOfRange: return RPCError(code: .outOfRange, message: "\(error)")
            case .attributeType: return RPCError(code: .invalidArgument, message: "\(error)")
            case .decodingFailed: return RPCError(code: .invalidArgument, message: "\(error)")
            case .noSpace: return RPCError(code: .failedPrecondition, message: "\(error)")
            default: return RPCError(code: .internalError, message: "\(error)")
            }
        case let error as SyncError:
            switch error {
            case .timedOut: return RPCError(code: .deadlineExceeded, message: "the wait ran out")
            default: return RPCError(code: .failedPrecondition, message: "\(error)")
            }
        case let error as LeaseLock.Failure:
            switch error {
            case .timedOut: return RPCError(code: .deadlineExceeded, message: "the wait ran out")
            case .leaseLost: return RPCError(code: .failedPrecondition, message: "lease lost")
            case .notReentrant: return RPCError(code: .failedPrecondition, message: "the lock is not reentrant")
            }
        case is CancellationError: return RPCError(code: .cancelled, message: "cancelled")
        default: return RPCError(code: .internalError, message: "\(error)")
        }
    }
}

/// Runs `body` in a task of its own that the call's cancellation cancels: a client that went
/// away, or whose deadline passed, ends the server's wait (gRPC says so through the context's
/// handle, not by cancelling the handler's task, so a bare wait would outlive its client and
/// take an item, a lock or a permit for no one). The handler's own cancellation (a server
/// shutting down) cancels it too. Only for waits: the calls that need none do not pay the hop.
func cancellableByRPC<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let task = Task { try await body() }
    return try await withTaskCancellationHandler {
        try await withRPCCancellationHandler {
            try await task.value
        } onCancelRPC: {
            task.cancel()
        }
    } onCancel: {
        task.cancel()
    }
}

/// The sequence numbers a manager has put per (queue, stream id): what makes a resent batch
/// (a bridge restarted after a crash) put nothing twice. One stream at a time owns an id; a
/// newer stream with the same id takes it over, and the older one's next batch is refused.
/// Bounded: past `capacity` ids the least recently used is forgotten (a stream that comes back
/// after that is deduplicated no more; the note in the contract says how many are kept).
final class SequenceTable: Sendable {
    static let capacity = 4096

    final class Entry: Sendable {
        /// Held while a batch of this id is put: a takeover waits for the batch in flight.
        let turn = AsyncBuffer<Void>(capacity: 1)
        struct State { var last: UInt64 = 0; var owner: UInt64 = 0; var used: UInt64 = 0 }
        let state = Mutex(State())
        init() { _ = turn.tryPut(()) }
    }

    private struct Key: Hashable { let queue: String; let stream: Data }
    private struct State { var entries: [Key: Entry] = [:]; var clock: UInt64 = 0 }
    private let state = Mutex(State())

    /// The entry of `stream` on `queue`, made if new, and an owner number for the caller that
    /// makes every older owner's batches refused.
    func claim(queue: String, stream: Data) async throws -> (Entry, owner: UInt64) {
        let entry = state.withLock { state -> Entry in
            state.clock += 1
            let key = Key(queue: queue, stream: stream)
            let entry = state.entries[key] ?? Entry()
            if state.entries[key] == nil, state.entries.count >= Self.capacity,
                let oldest = state.entries.min(by: { $0.value.state.withLock { $0.used } < $1.value.state.withLock { $0.used } })
            {
                state.entries[oldest.key] = nil
            }
            state.entries[key] = entry
            let now = state.clock
            entry.state.withLock { $0.used = now }
            return entry
        }
        try await entry.turn.take(deadline: nil)
        defer { _ = entry.turn.tryPut(()) }
        let owner = entry.state.withLock { state in
            state.owner += 1
            return state.owner
        }
        return (entry, owner)
    }
}
