internal import Foundation
internal import GRPCCore
import ShmIPC
import Synchronization

/// What an export can do, with its types erased: closures made where the types were known,
/// or the object itself for the kinds that are not generic.
struct Exported: Sendable {
    enum Kind: String, Sendable { case queue, dictionary, lock, value, event, semaphore }

    let kind: Kind
    var valueType = ""
    var keyType = ""
    let count: @Sendable () -> Int
    var capacity = 0
    var queue: QueueCalls?
    var dictionary: DictionaryCalls?
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
        let take: @Sendable (_ maxCount: Int, _ packed: Bool) async throws -> Batch
    }

    /// A batch of items in the binary Codable form: one encoding each, or the array of them.
    enum Batch: Sendable {
        case items([Data])
        case packed(Data)
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

    static func queue<Element: BitwiseCopyable & Codable & Sendable>(_ queue: Queue<Element>) -> Exported {
        let coder = BinaryMessageCoder()
        return Exported(
            kind: .queue, valueType: String(reflecting: Element.self), count: { queue.count }, capacity: queue.capacity,
            queue: QueueCalls(
                put: { data, timeout in
                    let item = try decode(Element.self, data, coder)
                    do {
                        if try queue.tryPut(item) { return }
                        try await cancellableByRPC { try await queue.put(item, timeout: timeout) }
                    } catch { throw rpcError(error) }
                },
                get: { timeout in
                    let item: Element
                    do {
                        if let next = try queue.tryGet() { item = next } else {
                            item = try await cancellableByRPC { try await queue.get(timeout: timeout) }
                        }
                    } catch { throw rpcError(error) }
                    return try coder.encode(item)
                },
                putAll: { batch, skipping, didPut in
                    var items: [Element]
                    switch batch {
                    case .items(let data): items = try data.dropFirst(skipping).map { try decode(Element.self, $0, coder) }
                    case .packed(let data):
                        items = try decode([Element].self, data, coder)
                        items.removeFirst(min(skipping, items.count))
                    }
                    var done = 0
                    do {
                        while done < items.count {
                            // What fits now in one go, then a wait for room for the next one.
                            let put = try queue.tryPut(contentsOf: items[done...])
                            if put > 0 { didPut(put) }
                            done += put
                            if done < items.count {
                                let next = items[done]
                                try await cancellableByRPC { try await queue.put(next) }
                                didPut(1)
                                done += 1
                            }
                        }
                    } catch { throw rpcError(error) }
                },
                take: { maxCount, packed in
                    var items: [Element]
                    do {
                        if let first = try queue.tryGet() { items = [first] } else {
                            items = [try await cancellableByRPC { try await queue.get() }]
                        }
                        items.reserveCapacity(maxCount)
                        while items.count < maxCount, let next = try queue.tryGet() { items.append(next) }
                    } catch { throw rpcError(error) }
                    return packed ? .packed(Data(try coder.encode(items))) : .items(try items.map { Data(try coder.encode($0)) })
                }))
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

    static func lock(_ lock: LeaseLock) -> Exported {
        Exported(kind: .lock, count: { lock.isLocked ? 1 : 0 }, lock: lock)
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
        case let error as SyncError:
            switch error {
            case .timedOut: return RPCError(code: .deadlineExceeded, message: "the wait ran out")
            default: return RPCError(code: .failedPrecondition, message: "\(error)")
            }
        case let error as LeaseLock.Failure:
            switch error {
            case .timedOut: return RPCError(code: .deadlineExceeded, message: "the wait ran out")
            case .leaseLost: return RPCError(code: .failedPrecondition, message: "lease lost")
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
