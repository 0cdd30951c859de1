internal import Foundation
internal import GRPCCore
internal import GRPCNIOTransportHTTP2
import ShmIPC

extension RemoteManagerClient {
    /// The exported lease lock `name` (a ``LeaseLock`` on the server). Throws
    /// ``RemoteError/notFound(_:)`` or ``RemoteError/refused(_:)`` (another kind).
    public func lock(_ name: String) async throws -> RemoteLock {
        try await check(name, kind: "lock", valueType: "", keyType: "")
        return RemoteLock(manager: self, name: name)
    }

    /// The exported `Value` `name` of `T` (see `queue(_:of:)`).
    public func value<T: Codable & Sendable>(_ name: String, of _: T.Type = T.self) async throws -> RemoteValue<T> {
        try await check(name, kind: "value", valueType: String(reflecting: T.self), keyType: "")
        return RemoteValue(manager: self, name: name)
    }

    /// The exported `Event` `name`.
    public func event(_ name: String) async throws -> RemoteEvent {
        try await check(name, kind: "event", valueType: "", keyType: "")
        return RemoteEvent(manager: self, name: name)
    }

    /// The exported `Semaphore` `name`.
    public func semaphore(_ name: String) async throws -> RemoteSemaphore {
        try await check(name, kind: "semaphore", valueType: "", keyType: "")
        return RemoteSemaphore(manager: self, name: name)
    }

    /// The call's deadline for a wait of `timeout` (none for none: the wait is the server's).
    static func deadline(_ timeout: Duration?) -> Duration? { timeout.map { $0 + RemoteQueue<Int>.grace } }
}

/// A lock another host serves as leases (`RemoteManagerClient/lock(_:)`, a ``LeaseLock``
/// there). Unlike a local `Lock`, whose holder's death the kernel reports, a remote holder
/// owns the lock only for its lease: if it is killed, partitioned or paused past the lease,
/// the server grants the lock to the next asker. So a holder must either finish within the
/// lease, renew it (``withLock(lease:timeout:_:)`` renews for you), or fence: hand
/// ``Grant/token`` to whatever the lock protects, which refuses a token smaller than the
/// largest it has seen.
public struct RemoteLock: Sendable {
    let manager: RemoteManagerClient
    public let name: String

    /// A lease: the fencing token (it only grows, grant after grant) and how long it lasts
    /// from the grant unless renewed.
    public struct Grant: Sendable, Hashable {
        public let token: UInt64
        public let lease: Duration
        /// The holder's levels of a reentrant lock (``RemoteRLock``); 1 for a plain lock.
        public let depth: Int

        init(token: UInt64, lease: Duration, depth: Int = 1) {
            self.token = token
            self.lease = lease
            self.depth = depth
        }
    }

    /// Waits at most `timeout` (`nil`: forever) for the lock and takes it for `lease` (`nil`:
    /// the server's default; at most an hour). Throws ``RemoteError/timedOut``.
    public func acquire(lease: Duration? = nil, timeout: Duration? = nil) async throws -> Grant {
        let request = Shmipc_Remote_V1_LockAcquireRequest.with {
            $0.name = name
            if let lease { $0.leaseMs = max(1, RemoteQueue<Int>.milliseconds(lease)) }
            if let timeout { $0.timeoutMs = RemoteQueue<Int>.milliseconds(timeout) }
        }
        return Self.grant(try await manager.invoke(.lockAcquire(request), timeout: RemoteManagerClient.deadline(timeout), Self.lockGrant))
    }

    /// Extends the lease by its length from now. Throws ``RemoteError/leaseLost(_:)`` if it ran
    /// out first (someone else may hold the lock now).
    @discardableResult
    public func renew(_ grant: Grant) async throws -> Grant {
        let request = Shmipc_Remote_V1_LockTokenRequest.with {
            $0.name = name
            $0.token = grant.token
        }
        return Self.grant(try await leaseCall(.lockRenew(request), Self.lockGrant))
    }

    /// Releases the lease. Throws ``RemoteError/leaseLost(_:)`` if it had run out already.
    public func release(_ grant: Grant) async throws {
        let request = Shmipc_Remote_V1_LockTokenRequest.with {
            $0.name = name
            $0.token = grant.token
        }
        _ = try await leaseCall(.lockRelease(request)) { if case .lockRelease(let done) = $0 { done } else { nil } }
    }

    /// Runs `body` holding the lock, renewing the lease every third of it; releases it after.
    /// If a renewal finds the lease lost (the server was unreachable past the lease), `body` is
    /// cancelled and this throws ``RemoteError/leaseLost(_:)``: someone else may hold the lock,
    /// and `body`'s work must be fenced by the token it was given.
    public func withLock<Result: Sendable>(
        lease: Duration = .seconds(10), timeout: Duration? = nil, _ body: @escaping @Sendable (Grant) async throws -> Result
    ) async throws -> Result {
        let grant = try await acquire(lease: lease, timeout: timeout)
        let result: Result
        do {
            result = try await withThrowingTaskGroup(of: Result?.self) { group in
                group.addTask {
                    while true {
                        try await Task.sleep(for: grant.lease / 3)
                        do { try await renew(grant) } catch RemoteError.unavailable, RemoteError.timedOut {
                            continue  // try again while the lease lasts; a lost one says leaseLost
                        }
                    }
                }
                group.addTask { try await body(grant) }
                defer { group.cancelAll() }
                while let next = try await group.next() {
                    if let next { return next }
                }
                throw CancellationError()
            }
        } catch {
            try? await release(grant)
            throw error
        }
        try await release(grant)
        return result
    }

    func leaseCall<Response>(
        _ call: CallStream.Request.OneOf_Call, _ result: (CallStream.Response.OneOf_Result) -> Response?
    ) async throws -> Response {
        do {
            return try await manager.invoke(call, timeout: RemoteQueue<Int>.grace, result)
        } catch RemoteError.refused(let reason) where reason == "lease lost" {
            throw RemoteError.leaseLost(name)
        }
    }

    static func lockGrant(_ result: CallStream.Response.OneOf_Result) -> Shmipc_Remote_V1_LockGrant? {
        if case .lockGrant(let grant) = result { grant } else { nil }
    }

    static func grant(_ grant: Shmipc_Remote_V1_LockGrant) -> Grant {
        Grant(token: grant.token, lease: .milliseconds(Int64(clamping: grant.leaseMs)), depth: max(1, Int(grant.depth)))
    }
}

/// A `Value` another host exports (`RemoteManagerClient/value(_:of:)`).
public struct RemoteValue<T: Codable & Sendable>: Sendable {
    let manager: RemoteManagerClient
    public let name: String

    private static func valueResponse(_ result: CallStream.Response.OneOf_Result) -> Shmipc_Remote_V1_ValueResponse? {
        if case .value(let value) = result { value } else { nil }
    }

    /// The current value.
    public func load() async throws -> T {
        let request = Shmipc_Remote_V1_ObjectRequest.with { $0.name = name }
        let response = try await manager.invoke(.valueGet(request), timeout: manager.callTimeout, Self.valueResponse)
        return try manager.decode(T.self, response.value)
    }

    /// Stores `value`.
    public func store(_ value: T) async throws { _ = try await exchange(value) }

    /// Stores `value`; returns the one it replaced (under the value's lock on the server).
    @discardableResult
    public func exchange(_ value: T) async throws -> T {
        let request = try Shmipc_Remote_V1_ValueSetRequest.with {
            $0.name = name
            $0.value = try manager.value(value)
        }
        let response = try await manager.invoke(.valueSet(request), timeout: manager.callTimeout, Self.valueResponse)
        return try manager.decode(T.self, response.value)
    }
}

/// An `Event` another host exports (`RemoteManagerClient/event(_:)`).
public struct RemoteEvent: Sendable {
    let manager: RemoteManagerClient
    public let name: String

    /// Sets the flag, waking every waiter (local or remote).
    public func set() async throws {
        _ = try await flagCall { .eventSet($0) }
    }

    /// Clears the flag.
    public func clear() async throws {
        _ = try await flagCall { .eventClear($0) }
    }

    /// Whether the flag is set (a snapshot).
    public var isSet: Bool {
        get async throws { try await wait(timeout: .zero) }
    }

    /// Waits at most `timeout` (`nil`: forever) for the flag; whether it is set.
    @discardableResult
    public func wait(timeout: Duration? = nil) async throws -> Bool {
        let request = Shmipc_Remote_V1_WaitRequest.with {
            $0.name = name
            if let timeout { $0.timeoutMs = RemoteQueue<Int>.milliseconds(timeout) }
        }
        return try await manager.invoke(.eventWait(request), timeout: RemoteManagerClient.deadline(timeout), Self.isSet)
    }

    private func flagCall(_ call: (Shmipc_Remote_V1_ObjectRequest) -> CallStream.Request.OneOf_Call) async throws -> Bool {
        let request = Shmipc_Remote_V1_ObjectRequest.with { $0.name = name }
        return try await manager.invoke(call(request), timeout: manager.callTimeout, Self.isSet)
    }

    private static func isSet(_ result: CallStream.Response.OneOf_Result) -> Bool? {
        if case .event(let event) = result { event.isSet } else { nil }
    }
}

/// A `Semaphore` another host exports (`RemoteManagerClient/semaphore(_:)`). What a remote
/// client acquired stays acquired if it vanishes, as with a local holder; for mutual
/// exclusion across hosts, use a ``RemoteLock``.
public struct RemoteSemaphore: Sendable {
    let manager: RemoteManagerClient
    public let name: String

    private static func semaphoreResponse(_ result: CallStream.Response.OneOf_Result) -> Shmipc_Remote_V1_SemaphoreResponse? {
        if case .semaphore(let semaphore) = result { semaphore } else { nil }
    }

    /// Decrements the count, waiting at most `timeout` (`nil`: forever) while it is zero.
    /// Throws ``RemoteError/timedOut`` (nothing taken).
    public func acquire(timeout: Duration? = nil) async throws {
        let request = Shmipc_Remote_V1_WaitRequest.with {
            $0.name = name
            if let timeout { $0.timeoutMs = RemoteQueue<Int>.milliseconds(timeout) }
        }
        _ = try await manager.invoke(.semaphoreAcquire(request), timeout: RemoteManagerClient.deadline(timeout), Self.semaphoreResponse)
    }

    /// Increments the count by `count`. Throws ``RemoteError/refused(_:)`` past a bounded
    /// semaphore's maximum (nothing changes).
    public func release(_ count: Int = 1) async throws {
        precondition(count > 0 && count <= Int(UInt32.max), "release 1 or more")
        let request = Shmipc_Remote_V1_SemaphoreReleaseRequest.with {
            $0.name = name
            $0.count = UInt32(count)
        }
        _ = try await manager.invoke(.semaphoreRelease(request), timeout: manager.callTimeout, Self.semaphoreResponse)
    }

    /// The current count (a snapshot). Python: `get_value()`.
    public var currentValue: Int {
        get async throws {
            guard let object = try await manager.list().first(where: { $0.name == name }) else { throw RemoteError.notFound(name) }
            return object.count
        }
    }
}
