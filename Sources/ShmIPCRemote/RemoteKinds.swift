internal import Foundation
internal import GRPCCore
public import ShmIPC
import Synchronization

extension RemoteManagerClient {
    /// The exported `JoinableQueue` `name` of `Element`s (see `queue(_:of:)`).
    public func joinableQueue<Element: Codable & Sendable>(
        _ name: String, of _: Element.Type = Element.self
    ) async throws -> RemoteJoinableQueue<Element> {
        let info = try await check(name, kind: "joinable_queue", valueType: String(reflecting: Element.self), keyType: "")
        return RemoteJoinableQueue(queue: RemoteQueue(manager: self, name: name, rawStride: info.rawStride))
    }

    /// The exported `MessageQueue` `name`.
    public func messageQueue(_ name: String) async throws -> RemoteMessageQueue {
        try await check(name, kind: "message_queue", valueType: Exported.messageType, keyType: "")
        return RemoteMessageQueue(manager: self, name: name)
    }

    /// The exported `SharedList` `name` of `Element`s (see `queue(_:of:)`).
    public func list<Element: Codable & Sendable>(_ name: String, of _: Element.Type = Element.self) async throws -> RemoteList<Element> {
        try await check(name, kind: "list", valueType: String(reflecting: Element.self), keyType: "")
        return RemoteList(manager: self, name: name)
    }

    /// The exported `Namespace` `name`.
    public func namespace(_ name: String) async throws -> RemoteNamespace {
        try await check(name, kind: "namespace", valueType: "", keyType: "")
        return RemoteNamespace(manager: self, name: name)
    }

    /// The exported reentrant lease lock `name` (a ``LeaseLock`` made with `reentrant: true`).
    public func rlock(_ name: String) async throws -> RemoteRLock {
        try await check(name, kind: "rlock", valueType: "", keyType: "")
        return RemoteRLock(lock: RemoteLock(manager: self, name: name))
    }
}

/// A `JoinableQueue` another host exports (`RemoteManagerClient/joinableQueue(_:of:)`): a
/// ``RemoteQueue`` whose every put counts a task on the server, with `taskDone` and `join`.
/// As with a local one, a consumer that vanishes between its `get` and its `taskDone` leaves
/// the task unfinished: give `join` a timeout where that matters.
public struct RemoteJoinableQueue<Element: Codable & Sendable>: Sendable {
    /// The queue's puts and gets, and its streams (each item put by a stream counts a task).
    public let queue: RemoteQueue<Element>
    public var name: String { queue.name }

    /// Puts `value` (one more unfinished task), waiting at most `timeout` (`nil`: forever) for room.
    public func put(_ value: Element, timeout: Duration? = nil) async throws { try await queue.put(value, timeout: timeout) }

    /// Takes the next item, waiting at most `timeout` (`nil`: forever). Call `taskDone()`
    /// when its work is done.
    public func get(timeout: Duration? = nil) async throws -> Element { try await queue.get(timeout: timeout) }

    /// Marks one task done; the tasks still unfinished. Throws ``RemoteError/refused(_:)`` if
    /// none was. Python: `task_done()`.
    @discardableResult
    public func taskDone() async throws -> Int {
        let request = Shmipc_Remote_V1_ObjectRequest.with { $0.name = name }
        return try await queue.manager.invoke(.queueTaskDone(request), timeout: queue.manager.callTimeout, Self.unfinished)
    }

    /// Waits at most `timeout` (`nil`: forever) until every task put so far is done. Throws
    /// ``RemoteError/timedOut``. Python: `join()`.
    public func join(timeout: Duration? = nil) async throws {
        let request = Shmipc_Remote_V1_WaitRequest.with {
            $0.name = name
            if let timeout { $0.timeoutMs = RemoteQueue<Int>.milliseconds(timeout) }
        }
        _ = try await queue.manager.invoke(.queueJoin(request), timeout: RemoteManagerClient.deadline(timeout), Self.unfinished)
    }

    private static func unfinished(_ result: CallStream.Response.OneOf_Result) -> Int? {
        if case .queueTasks(let tasks) = result { Int(tasks.unfinished) } else { nil }
    }
}

/// A `MessageQueue` another host exports (`RemoteManagerClient/messageQueue(_:)`): whole
/// messages of bytes, or values in a coder's form (the queue's own coder on the server side,
/// `BinaryMessageCoder` unless it was made with another; pass the same one here).
public struct RemoteMessageQueue: Sendable {
    let manager: RemoteManagerClient
    public let name: String

    /// Puts the message `bytes`, waiting at most `timeout` (`nil`: forever) for room. A
    /// message over the queue's limit is ``RemoteError/decodingFailed(_:)`` with the reason.
    public func put(bytes: [UInt8], timeout: Duration? = nil) async throws {
        let request = Shmipc_Remote_V1_QueuePutRequest.with {
            $0.name = name
            $0.item = .with {
                $0.type = Exported.messageType
                $0.data = Data(bytes)
            }
            if let timeout { $0.timeoutMs = RemoteQueue<Int>.milliseconds(timeout) }
        }
        _ = try await manager.invoke(.queuePut(request), timeout: RemoteManagerClient.deadline(timeout)) {
            if case .queuePut(let done) = $0 { done } else { nil }
        }
    }

    /// Takes the next message, waiting at most `timeout` (`nil`: forever).
    public func get(timeout: Duration? = nil) async throws -> [UInt8] {
        let request = Shmipc_Remote_V1_QueueGetRequest.with {
            $0.name = name
            if let timeout { $0.timeoutMs = RemoteQueue<Int>.milliseconds(timeout) }
        }
        let item = try await manager.invoke(.queueGet(request), timeout: RemoteManagerClient.deadline(timeout)) {
            if case .queueGet(let got) = $0 { got.item } else { nil }
        }
        guard item.type == Exported.messageType else { throw RemoteError.typeMismatch(expected: Exported.messageType, found: item.type) }
        return [UInt8](item.data)
    }

    /// Puts `value` encoded by `coder`.
    public func put(_ value: some Encodable, coder: some MessageCoder = BinaryMessageCoder(), timeout: Duration? = nil) async throws {
        let bytes: [UInt8]
        do { bytes = try coder.encode(value) } catch { throw RemoteError.decodingFailed("\(value) did not encode: \(error)") }
        try await put(bytes: bytes, timeout: timeout)
    }

    /// Takes the next message and decodes it as `type` with `coder` (the message is taken also
    /// if it does not decode: ``RemoteError/decodingFailed(_:)``).
    public func get<T: Decodable>(
        as type: T.Type, coder: some MessageCoder = BinaryMessageCoder(), timeout: Duration? = nil
    ) async throws -> T {
        let bytes = try await get(timeout: timeout)
        do { return try bytes.withUnsafeBytes { raw throws(ChannelError) in try coder.decode(T.self, from: raw) } } catch {
            throw RemoteError.decodingFailed("a \(String(reflecting: T.self)): \(error)")
        }
    }
}

/// A `SharedList` another host exports (`RemoteManagerClient/list(_:of:)`), with its method
/// names; each call is one request, run by the server under the list's lock. An index past the
/// end is ``RemoteError/outOfRange(_:)``.
public struct RemoteList<Element: Codable & Sendable>: Sendable {
    let manager: RemoteManagerClient
    public let name: String

    private func call(_ call: CallStream.Request.OneOf_Call) async throws -> Shmipc_Remote_V1_ListValueResponse {
        try await manager.invoke(call, timeout: manager.callTimeout) { if case .listValue(let value) = $0 { value } else { nil } }
    }

    private func element(_ response: Shmipc_Remote_V1_ListValueResponse) throws -> Element? {
        response.hasValue ? try manager.decode(Element.self, response.value) : nil
    }

    private func indexRequest(_ index: Int) -> Shmipc_Remote_V1_ListIndexRequest {
        .with {
            $0.name = name
            $0.index = Int64(index)
        }
    }

    private func setRequest(_ element: Element, _ index: Int) throws -> Shmipc_Remote_V1_ListSetRequest {
        try .with {
            $0.name = name
            $0.index = Int64(index)
            $0.value = try manager.value(element)
        }
    }

    /// The element at `index`.
    public func element(at index: Int) async throws -> Element {
        guard let element = try element(try await call(.listGet(indexRequest(index)))) else {
            throw RemoteError.protocolError("a list read answered with no element")
        }
        return element
    }

    /// Replaces the element at `index`; returns the one it replaced.
    @discardableResult
    public func setElement(_ element: Element, at index: Int) async throws -> Element {
        guard let old = try self.element(try await call(.listSet(setRequest(element, index)))) else {
            throw RemoteError.protocolError("a list write answered with no element")
        }
        return old
    }

    /// Inserts `element` at `index` (0...count).
    public func insert(_ element: Element, at index: Int) async throws {
        _ = try await call(.listInsert(setRequest(element, index)))
    }

    /// Appends `element`.
    public func append(_ element: Element) async throws { try await append(contentsOf: [element]) }

    /// Appends the elements, in order, in one request (under one hold of the list's lock).
    public func append(contentsOf elements: some Sequence<Element>) async throws {
        let request = try Shmipc_Remote_V1_ListAppendRequest.with {
            $0.name = name
            $0.values = try elements.map { try manager.value($0) }
        }
        _ = try await call(.listAppend(request))
    }

    /// Removes the element at `index` and returns it.
    @discardableResult
    public func remove(at index: Int) async throws -> Element {
        guard let old = try element(try await call(.listRemove(indexRequest(index)))) else {
            throw RemoteError.protocolError("a list removal answered with no element")
        }
        return old
    }

    /// Removes the last element and returns it; nil if the list is empty. Python: `pop()`.
    public func popLast() async throws -> Element? {
        try element(try await call(.listPop(.with { $0.name = name })))
    }

    /// Every element, in order (one consistent snapshot).
    public func snapshot() async throws -> [Element] {
        let request = Shmipc_Remote_V1_ObjectRequest.with { $0.name = name }
        let values = try await manager.invoke(.listSnapshot(request), timeout: manager.callTimeout) {
            if case .listSnapshot(let snapshot) = $0 { snapshot.values } else { nil }
        }
        return try values.map { try manager.decode(Element.self, $0) }
    }

    /// The number of elements (a snapshot).
    public var count: Int {
        get async throws {
            guard let object = try await manager.list().first(where: { $0.name == name }) else { throw RemoteError.notFound(name) }
            return object.count
        }
    }
}

/// A `Namespace` another host exports (`RemoteManagerClient/namespace(_:)`): attributes by
/// name, each a value of any Codable type, read as the type it was written with (another type
/// is ``RemoteError/typeMismatch(expected:found:)``). A remote write is stored as a local
/// `set(_:to:)` of the same type, so local and remote users read each other's writes.
public struct RemoteNamespace: Sendable {
    let manager: RemoteManagerClient
    public let name: String

    private func call(_ call: CallStream.Request.OneOf_Call) async throws -> Shmipc_Remote_V1_NamespaceValueResponse {
        try await manager.invoke(call, timeout: manager.callTimeout) { if case .namespaceValue(let value) = $0 { value } else { nil } }
    }

    /// The attribute `attribute` as a `T`, or nil if it is absent. Python: `getattr(ns, name, None)`.
    public func value<T: Codable & Sendable>(of attribute: String, as _: T.Type = T.self) async throws -> T? {
        let request = Shmipc_Remote_V1_NamespaceRequest.with {
            $0.name = name
            $0.attribute = attribute
            $0.type = String(reflecting: T.self)
        }
        let response = try await call(.namespaceGet(request))
        return response.hasValue ? try manager.decode(T.self, response.value) : nil
    }

    /// Sets the attribute `attribute` to `value`. Python: `setattr(ns, name, value)`.
    public func set<T: Codable & Sendable>(_ attribute: String, to value: T) async throws {
        let request = try Shmipc_Remote_V1_NamespaceSetRequest.with {
            $0.name = name
            $0.attribute = attribute
            $0.value = try manager.value(value)
        }
        _ = try await call(.namespaceSet(request))
    }

    /// Removes the attribute `attribute` (nothing if absent). Python: `delattr(ns, name)`.
    public func remove(_ attribute: String) async throws {
        let request = Shmipc_Remote_V1_NamespaceRequest.with {
            $0.name = name
            $0.attribute = attribute
        }
        _ = try await call(.namespaceRemove(request))
    }

    /// The attribute names (a snapshot).
    public func names() async throws -> [String] {
        let request = Shmipc_Remote_V1_ObjectRequest.with { $0.name = name }
        return try await manager.invoke(.namespaceNames(request), timeout: manager.callTimeout) {
            if case .namespaceNames(let names) = $0 { names.names } else { nil }
        }
    }

    /// Whether the attribute `attribute` exists (a snapshot).
    public func contains(_ attribute: String) async throws -> Bool { try await names().contains(attribute) }
}

/// A reentrant lock another host serves as leases (`RemoteManagerClient/rlock(_:)`; Python's
/// `RLock` through a manager). Its owner is this proxy: acquiring it again through the same
/// `RemoteRLock` adds a level (on the server, which renews the lease), each `release()`
/// takes one away, and the lock is free when none is left. Share one proxy between the tasks
/// that should count as one holder, as a local `RLock` counts one thread. Everything
/// ``RemoteLock`` says about leases and fencing tokens holds: if the lease runs out, every
/// level is lost at once and the next call says ``RemoteError/leaseLost(_:)``.
public final class RemoteRLock: Sendable {
    let lock: RemoteLock
    public var name: String { lock.name }
    private let held = Mutex<RemoteLock.Grant?>(nil)

    init(lock: RemoteLock) { self.lock = lock }

    /// Takes the lock for `lease` (`nil`: the server's default), waiting at most `timeout`
    /// (`nil`: forever) if another holder has it; if this proxy holds it, adds a level and
    /// renews the lease at once. Throws ``RemoteError/timedOut`` or ``RemoteError/leaseLost(_:)``.
    @discardableResult
    public func acquire(lease: Duration? = nil, timeout: Duration? = nil) async throws -> RemoteLock.Grant {
        if let holding = held.withLock({ $0 }) {
            let request = Shmipc_Remote_V1_LockAcquireRequest.with {
                $0.name = name
                $0.holding = holding.token
                if let lease { $0.leaseMs = max(1, RemoteQueue<Int>.milliseconds(lease)) }
            }
            do {
                let grant = RemoteLock.grant(try await lock.leaseCall(.lockAcquire(request), RemoteLock.lockGrant))
                held.withLock { $0 = grant }
                return grant
            } catch RemoteError.leaseLost(let name) {
                held.withLock { if $0?.token == holding.token { $0 = nil } }
                throw RemoteError.leaseLost(name)
            }
        }
        let grant = try await lock.acquire(lease: lease, timeout: timeout)
        held.withLock { $0 = grant }
        return grant
    }

    /// Releases one level; the levels still held (0: the lock is free). Throws
    /// ``RemoteError/refused(_:)`` if this proxy holds no level, ``RemoteError/leaseLost(_:)``
    /// if the lease ran out (then it holds none).
    @discardableResult
    public func release() async throws -> Int {
        guard let holding = held.withLock({ $0 }) else { throw RemoteError.refused("'\(name)' is not held by this proxy") }
        let request = Shmipc_Remote_V1_LockTokenRequest.with {
            $0.name = name
            $0.token = holding.token
        }
        do {
            let depth = try await lock.leaseCall(.lockRelease(request)) { if case .lockRelease(let done) = $0 { Int(done.depth) } else { nil } }
            held.withLock { held in
                guard held?.token == holding.token else { return }
                held = depth == 0 ? nil : RemoteLock.Grant(token: holding.token, lease: holding.lease, depth: depth)
            }
            return depth
        } catch RemoteError.leaseLost(let name) {
            held.withLock { if $0?.token == holding.token { $0 = nil } }
            throw RemoteError.leaseLost(name)
        }
    }

    /// The grant this proxy holds, if any (its token for fencing, its levels).
    public var grant: RemoteLock.Grant? { held.withLock { $0 } }
}
