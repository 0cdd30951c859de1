import ShmIPC
import Synchronization

/// A lock a ``RemoteManager`` grants to clients as leases, each with a fencing token.
///
/// A local `Lock` can tell its holder died (the kernel says so); across a network a silent
/// holder may be dead, partitioned or paused, and nothing can tell which. So a remote holder
/// has the lock for a lease: until `lease` after the grant (or its last renewal). Past that,
/// the next asker gets it whether or not the old holder still runs. Every grant carries a
/// token larger than all before it; a resource the lock guards keeps the largest token it has
/// seen and refuses smaller ones, so a holder that outlived its lease (and does not know it)
/// cannot write over its successor's work (Kleppmann's fencing tokens).
///
/// Export one with `RemoteManager.export(_:_:)`; clients use it through
/// ``RemoteLock``. It lives in the server's memory: a restarted server starts with a free
/// lock, and with tokens from ``init(firstToken:defaultLease:reentrant:)`` (pass one above any token the
/// last run handed out, for example from the clock, if tokens must grow across restarts).
///
/// A reentrant one (`reentrant: true`, exported as the kind "rlock", Python's `RLock`) lets
/// its holder acquire it again: the holder names its lease's token (``RemoteRLock`` does), each
/// acquisition adds a level and renews the lease, each release takes one away, and the lock is
/// free when none is left, or when the lease runs out, however many levels were held.
public final class LeaseLock: Sendable {
    /// The lease a grant gets when the asker does not say.
    public let defaultLease: Duration
    /// The longest lease a grant gets, whatever the asker says.
    public static let maximumLease: Duration = .seconds(3600)
    /// Whether the holder may acquire it again (an "rlock").
    public let isReentrant: Bool

    private struct State {
        var holder: UInt64?
        var expiry = Deadline.distantFuture
        var lease = Duration.zero
        /// The holder's levels (a reentrant lock's acquisitions not yet released).
        var depth: UInt32 = 0
        var lastToken: UInt64
        /// Askers waiting for the lock, oldest first, each woken through its own buffer.
        var waiters: [(id: UInt64, wake: AsyncBuffer<Void>)] = []
        var nextWaiter: UInt64 = 0
    }
    private let state: Mutex<State>

    /// A free lock whose first grant gets `firstToken`; `reentrant`: its holder may acquire
    /// it again.
    public init(firstToken: UInt64 = 1, defaultLease: Duration = .seconds(10), reentrant: Bool = false) {
        precondition(firstToken > 0, "tokens start at 1")
        precondition(defaultLease > .zero, "a lease must be positive")
        self.defaultLease = defaultLease
        isReentrant = reentrant
        state = Mutex(State(lastToken: firstToken - 1))
    }

    /// A grant: the token, the lease it holds for, and the holder's levels (1 but for a
    /// reentrant lock acquired again).
    public struct Grant: Sendable, Hashable {
        public let token: UInt64
        public let lease: Duration
        public let depth: UInt32

        init(token: UInt64, lease: Duration, depth: UInt32 = 1) {
            self.token = token
            self.lease = lease
            self.depth = depth
        }
    }

    /// Why a call on a lease failed.
    enum Failure: Error { case timedOut, leaseLost, notReentrant }

    /// Waits until the lock is free (released, or its lease ran out) and grants it for `lease`
    /// (`nil`: ``defaultLease``), at most until `deadline`. Throws ``Failure/timedOut`` or
    /// `CancellationError`.
    func acquire(lease: Duration?, deadline: Deadline?) async throws -> Grant {
        let lease = min(lease ?? defaultLease, Self.maximumLease)
        while true {
            /// A grant, a time to look again (a lease's end or the deadline), or nil: timed out.
            enum Attempt { case granted(Grant), wait(until: Deadline) }
            let attempt = state.withLock { state -> Attempt? in
                if state.holder == nil || state.expiry.hasPassed {
                    state.lastToken += 1
                    state.holder = state.lastToken
                    state.expiry = .after(lease)
                    state.lease = lease
                    state.depth = 1
                    return .granted(Grant(token: state.lastToken, lease: lease))
                }
                if let deadline, deadline.hasPassed { return nil }
                return .wait(until: min(state.expiry, deadline ?? .distantFuture))
            }
            switch attempt {
            case .granted(let grant)?: return grant
            case nil: throw Failure.timedOut
            case .wait(let wakeAt)?:
                let wake = AsyncBuffer<Void>(capacity: 1)
                let id = state.withLock { state in
                    defer { state.nextWaiter += 1 }
                    state.waiters.append((state.nextWaiter, wake))
                    return state.nextWaiter
                }
                defer { state.withLock { $0.waiters.removeAll { $0.id == id } } }
                do { try await wake.take(deadline: wakeAt) } catch RemoteError.timedOut {}
                try Task.checkCancellation()
            }
        }
    }

    /// The holder of `token` acquiring a reentrant lock again: one more level, and the lease
    /// renewed for `lease` (`nil`: the one it had). Throws ``Failure/leaseLost`` as
    /// `renew(_:)`, ``Failure/notReentrant`` for a plain lock.
    func reacquire(_ token: UInt64, lease: Duration?) throws -> Grant {
        try state.withLock { state throws(Failure) in
            guard isReentrant else { throw .notReentrant }
            guard state.holder == token, !state.expiry.hasPassed else { throw .leaseLost }
            if let lease { state.lease = min(lease, Self.maximumLease) }
            state.depth += 1
            state.expiry = .after(state.lease)
            return Grant(token: token, lease: state.lease, depth: state.depth)
        }
    }

    /// Extends the lease of `token` by its lease time from now. Throws ``Failure/leaseLost``
    /// if it ran out or another holder has the lock.
    func renew(_ token: UInt64) throws -> Grant {
        try state.withLock { state throws(Failure) in
            guard state.holder == token, !state.expiry.hasPassed else { throw .leaseLost }
            state.expiry = .after(state.lease)
            return Grant(token: token, lease: state.lease, depth: state.depth)
        }
    }

    /// Releases one level of the lease of `token` (a plain lock has one); when none is left,
    /// frees the lock and wakes the oldest waiter. The levels left. Throws
    /// ``Failure/leaseLost`` as `renew(_:)`.
    @discardableResult
    func release(_ token: UInt64) throws -> UInt32 {
        let (next, depth) = try state.withLock { state throws(Failure) -> (AsyncBuffer<Void>?, UInt32) in
            guard state.holder == token, !state.expiry.hasPassed else { throw .leaseLost }
            state.depth -= 1
            if state.depth > 0 { return (nil, state.depth) }
            state.holder = nil
            state.expiry = .distantFuture
            return (state.waiters.first?.wake, 0)
        }
        _ = next?.tryPut(())
        return depth
    }

    /// Whether a lease is held now.
    public var isLocked: Bool { state.withLock { $0.holder != nil && !$0.expiry.hasPassed } }

    /// The token of the last grant (0 if none yet).
    public var lastToken: UInt64 { state.withLock { $0.lastToken } }

    // MARK: the server's own process

    /// Takes the lock in the serving process itself, competing with remote clients on equal
    /// terms: waits at most `timeout` (`nil`: forever) and holds it for `lease` (`nil`:
    /// ``defaultLease``). Throws ``RemoteError/timedOut``. The lease runs out here as for a
    /// remote holder: renew it, or release it within the lease.
    public func acquire(lease: Duration? = nil, timeout: Duration? = nil) async throws -> Grant {
        do { return try await acquire(lease: lease, deadline: timeout.map { .after($0) }) } catch Failure.timedOut {
            throw RemoteError.timedOut
        }
    }

    /// Extends `grant`'s lease by its length from now. Throws ``RemoteError/leaseLost(_:)`` if
    /// it ran out first.
    @discardableResult
    public func renew(_ grant: Grant) throws -> Grant {
        do { return try renew(grant.token) } catch { throw RemoteError.leaseLost("a local grant") }
    }

    /// Releases `grant` (one level of a reentrant lock). Throws ``RemoteError/leaseLost(_:)``
    /// if it had run out.
    public func release(_ grant: Grant) throws {
        do { try release(grant.token) } catch { throw RemoteError.leaseLost("a local grant") }
    }
}
