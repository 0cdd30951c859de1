import Dispatch
import Synchronization

/// The blocking forms: each runs its async form and blocks the calling thread until it ends,
/// for code that is not async (a command-line program, a thread of its own), as the local
/// types' blocking calls do. Called from a task (an async function, or anything it calls),
/// they throw ``RemoteError/refused(_:)`` at once instead: blocking a thread of Swift's
/// cooperative pool can starve the very tasks that would answer the call. In async code use
/// the async forms, which have the same names.
enum Blocking {
    static func run<T: Sendable>(_ body: sending @escaping @Sendable () async throws -> T) throws -> T {
        guard withUnsafeCurrentTask(body: { $0 == nil }) else {
            throw RemoteError.refused("a blocking call from a task: await the async form instead")
        }
        let result = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let outcome: Result<T, any Error>
            do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
            result.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }
}

extension RemoteManager {
    /// `connect(to:authKey:maxMessageSize:handshakeTimeout:callTimeout:tls:)`, blocking (see
    /// the blocking forms in the module's documentation: not from a task).
    public static func connect(
        to address: RemoteAddress, authKey: AuthKey, maxMessageSize: Int = 16 << 20,
        handshakeTimeout: Duration = Client.defaultHandshakeTimeout, callTimeout: Duration = .seconds(30), tls: RemoteTLS? = nil
    ) throws -> RemoteManagerClient {
        try Blocking.run {
            try await connect(
                to: address, authKey: authKey, maxMessageSize: maxMessageSize, handshakeTimeout: handshakeTimeout,
                callTimeout: callTimeout, tls: tls)
        }
    }
}

extension RemoteManagerClient {
    public func list() throws -> [RemoteObjectInfo] { try Blocking.run { try await self.list() } }
    public func queue<Element: Codable & Sendable>(_ name: String, of type: Element.Type = Element.self) throws -> RemoteQueue<Element> {
        try Blocking.run { try await self.queue(name, of: type) }
    }
    public func joinableQueue<Element: Codable & Sendable>(
        _ name: String, of type: Element.Type = Element.self
    ) throws -> RemoteJoinableQueue<Element> {
        try Blocking.run { try await self.joinableQueue(name, of: type) }
    }
    public func messageQueue(_ name: String) throws -> RemoteMessageQueue { try Blocking.run { try await self.messageQueue(name) } }
    public func dictionary<Key: Hashable & Codable & Sendable, Value: Codable & Sendable>(
        _ name: String, of type: [Key: Value].Type = [Key: Value].self
    ) throws -> RemoteDictionary<Key, Value> {
        try Blocking.run { try await self.dictionary(name, of: type) }
    }
    public func list<Element: Codable & Sendable>(_ name: String, of type: Element.Type = Element.self) throws -> RemoteList<Element> {
        try Blocking.run { try await self.list(name, of: type) }
    }
    public func namespace(_ name: String) throws -> RemoteNamespace { try Blocking.run { try await self.namespace(name) } }
    public func value<T: Codable & Sendable>(_ name: String, of type: T.Type = T.self) throws -> RemoteValue<T> {
        try Blocking.run { try await self.value(name, of: type) }
    }
    public func lock(_ name: String) throws -> RemoteLock { try Blocking.run { try await self.lock(name) } }
    public func rlock(_ name: String) throws -> RemoteRLock { try Blocking.run { try await self.rlock(name) } }
    public func event(_ name: String) throws -> RemoteEvent { try Blocking.run { try await self.event(name) } }
    public func semaphore(_ name: String) throws -> RemoteSemaphore { try Blocking.run { try await self.semaphore(name) } }
}

extension RemoteQueue {
    public func put(_ value: Element, timeout: Duration? = nil) throws { try Blocking.run { try await self.put(value, timeout: timeout) } }
    public func get(timeout: Duration? = nil) throws -> Element { try Blocking.run { try await self.get(timeout: timeout) } }
}

extension RemoteJoinableQueue {
    public func put(_ value: Element, timeout: Duration? = nil) throws { try Blocking.run { try await self.put(value, timeout: timeout) } }
    public func get(timeout: Duration? = nil) throws -> Element { try Blocking.run { try await self.get(timeout: timeout) } }
    @discardableResult public func taskDone() throws -> Int { try Blocking.run { try await self.taskDone() } }
    public func join(timeout: Duration? = nil) throws { try Blocking.run { try await self.join(timeout: timeout) } }
}

extension RemoteMessageQueue {
    public func put(bytes: [UInt8], timeout: Duration? = nil) throws { try Blocking.run { try await self.put(bytes: bytes, timeout: timeout) } }
    public func get(timeout: Duration? = nil) throws -> [UInt8] { try Blocking.run { try await self.get(timeout: timeout) } }
}

extension RemoteDictionary {
    public func value(forKey key: Key) throws -> Value? { try Blocking.run { try await self.value(forKey: key) } }
    public func setValue(_ value: Value, forKey key: Key) throws { try Blocking.run { try await self.setValue(value, forKey: key) } }
    @discardableResult public func updateValue(_ value: Value, forKey key: Key) throws -> Value? {
        try Blocking.run { try await self.updateValue(value, forKey: key) }
    }
    @discardableResult public func removeValue(forKey key: Key) throws -> Value? { try Blocking.run { try await self.removeValue(forKey: key) } }
    public func keys() throws -> [Key] { try Blocking.run { try await self.keys() } }
}

extension RemoteList {
    public func element(at index: Int) throws -> Element { try Blocking.run { try await self.element(at: index) } }
    @discardableResult public func setElement(_ element: Element, at index: Int) throws -> Element {
        try Blocking.run { try await self.setElement(element, at: index) }
    }
    public func insert(_ element: Element, at index: Int) throws { try Blocking.run { try await self.insert(element, at: index) } }
    public func append(_ element: Element) throws { try Blocking.run { try await self.append(element) } }
    @discardableResult public func remove(at index: Int) throws -> Element { try Blocking.run { try await self.remove(at: index) } }
    public func popLast() throws -> Element? { try Blocking.run { try await self.popLast() } }
    public func snapshot() throws -> [Element] { try Blocking.run { try await self.snapshot() } }
}

extension RemoteNamespace {
    public func value<T: Codable & Sendable>(of attribute: String, as type: T.Type = T.self) throws -> T? {
        try Blocking.run { try await self.value(of: attribute, as: type) }
    }
    public func set<T: Codable & Sendable>(_ attribute: String, to value: T) throws { try Blocking.run { try await self.set(attribute, to: value) } }
    public func remove(_ attribute: String) throws { try Blocking.run { try await self.remove(attribute) } }
    public func names() throws -> [String] { try Blocking.run { try await self.names() } }
}

extension RemoteValue {
    public func load() throws -> T { try Blocking.run { try await self.load() } }
    public func store(_ value: T) throws { try Blocking.run { try await self.store(value) } }
    @discardableResult public func exchange(_ value: T) throws -> T { try Blocking.run { try await self.exchange(value) } }
}

extension RemoteEvent {
    public func set() throws { try Blocking.run { try await self.set() } }
    public func clear() throws { try Blocking.run { try await self.clear() } }
    @discardableResult public func wait(timeout: Duration? = nil) throws -> Bool { try Blocking.run { try await self.wait(timeout: timeout) } }
}

extension RemoteSemaphore {
    public func acquire(timeout: Duration? = nil) throws { try Blocking.run { try await self.acquire(timeout: timeout) } }
    public func release(_ count: Int = 1) throws { try Blocking.run { try await self.release(count) } }
}

extension RemoteLock {
    public func acquire(lease: Duration? = nil, timeout: Duration? = nil) throws -> Grant {
        try Blocking.run { try await self.acquire(lease: lease, timeout: timeout) }
    }
    @discardableResult public func renew(_ grant: Grant) throws -> Grant { try Blocking.run { try await self.renew(grant) } }
    public func release(_ grant: Grant) throws { try Blocking.run { try await self.release(grant) } }
}

extension RemoteRLock {
    @discardableResult public func acquire(lease: Duration? = nil, timeout: Duration? = nil) throws -> RemoteLock.Grant {
        try Blocking.run { try await self.acquire(lease: lease, timeout: timeout) }
    }
    @discardableResult public func release() throws -> Int { try Blocking.run { try await self.release() } }
}
