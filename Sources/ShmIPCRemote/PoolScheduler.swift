internal import DequeModule
import ShmIPC
import Synchronization

/// One chunk of a ``RemotePool`` job: an entry's name and its arguments already encoded (the
/// binary Codable form of an array), and where its result goes.
struct ScheduledChunk: Sendable {
    var id: UInt64 = 0
    let entry: String
    let arguments: [UInt8]
    let idempotent: Bool
    /// Called once, on whichever thread learns the result, with the outputs' bytes or the error.
    let completion: @Sendable (Result<[UInt8], PoolError>) -> Void
    /// How many worker hosts lost it while it ran (an idempotent chunk runs again, up to
    /// ``PoolScheduler/maxAttempts``).
    var losses = 0
}

/// Where a ``RemotePool``'s chunks run: the local pool while it has room, the worker hosts
/// connected to it otherwise, each at most `2 × processes` chunks in flight (credits: a result
/// returns one). Chunks nobody has room for wait here, in submission order.
///
/// Everything is decided under one lock, and done (a local submission, a message to a worker
/// host, a completion) after it is released, so a completion may submit again.
final class PoolScheduler: Sendable {
    /// A worker host's stream: what it can take, what it runs.
    struct Host {
        let name: String
        let capacity: Int
        var inFlight: [UInt64: ScheduledChunk] = [:]
        let send: @Sendable (Shmipc_Remote_V1_PoolMessage) -> Void
    }

    enum Phase { case open, closed, terminated }

    struct State {
        var pending = Deque<ScheduledChunk>()
        var hosts: [UInt64: Host] = [:]
        var nextHost: UInt64 = 0
        var nextChunk: UInt64 = 1
        var localInFlight = 0
        /// Chunks submitted and not completed (pending, local or remote).
        var outstanding = 0
        var phase = Phase.open
        /// Continuations waiting for `outstanding == 0`, or for a number of hosts.
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// A chunk lost this many times (its hosts went away under it) fails even if idempotent.
    static let maxAttempts = 5

    private let state = Mutex(State())
    /// Chunks handed to the local pool, to worker hosts, and lost by worker hosts (counters
    /// for tests and monitoring).
    let localRuns = Atomic<Int>(0), remoteRuns = Atomic<Int>(0), losses = Atomic<Int>(0)
    private let local: Pool?
    /// Chunks the local pool may hold at once: one running and one queued per process.
    private let localCapacity: Int

    init(local: Pool?) {
        self.local = local
        localCapacity = (local?.processes ?? 0) * 2
    }

    /// Processes on every side: the local pool's and those the connected hosts announced.
    var processes: Int {
        state.withLock { state in (local?.processes ?? 0) + state.hosts.values.reduce(0) { $0 + $1.capacity / 2 } }
    }

    /// The connected worker hosts' names.
    var hostNames: [String] { state.withLock { $0.hosts.values.map(\.name).sorted() } }

    // MARK: submitting

    /// Queues `chunks` (in order) and dispatches what has room; throws `closed` after close.
    func submit(_ chunks: [ScheduledChunk]) throws(PoolError) {
        try state.withLock { state throws(PoolError) in
            guard state.phase == .open else { throw .closed }
            for var chunk in chunks {
                chunk.id = state.nextChunk
                state.nextChunk += 1
                state.pending.append(chunk)
            }
            state.outstanding += chunks.count
        }
        dispatch()
    }

    /// Hands pending chunks to whoever has room: local first, then the host with the most.
    private func dispatch() {
        enum Placement { case local(ScheduledChunk), remote(ScheduledChunk, @Sendable (Shmipc_Remote_V1_PoolMessage) -> Void) }
        let placements = state.withLock { state -> [Placement] in
            var placements: [Placement] = []
            while let chunk = state.pending.first {
                if state.localInFlight < localCapacity {
                    state.localInFlight += 1
                    placements.append(.local(state.pending.removeFirst()))
                    continue
                }
                guard let (key, host) = state.hosts.max(by: { $0.value.capacity - $0.value.inFlight.count < $1.value.capacity - $1.value.inFlight.count }),
                      host.inFlight.count < host.capacity
                else { break }
                state.pending.removeFirst()
                state.hosts[key]!.inFlight[chunk.id] = chunk
                placements.append(.remote(chunk, host.send))
            }
            return placements
        }
        for placement in placements {
            switch placement {
            case .local(let chunk):
                localRuns.add(1, ordering: .relaxed)
                runLocally(chunk)
            case .remote(let chunk, let send):
                remoteRuns.add(1, ordering: .relaxed)
                send(.with { $0.chunk = .with { $0.id = chunk.id; $0.entry = chunk.entry; $0.arguments = .init(chunk.arguments) } })
            }
        }
    }

    private func runLocally(_ chunk: ScheduledChunk) {
        do {
            try local!.submitEncoded(entry: chunk.entry, arguments: chunk.arguments) { [self] result in
                state.withLock { $0.localInFlight -= 1 }
                complete(chunk, result)
            }
        } catch {
            state.withLock { $0.localInFlight -= 1 }
            complete(chunk, .failure(error))
        }
    }

    /// Delivers `chunk`'s result, then dispatches into the room it left.
    private func complete(_ chunk: ScheduledChunk, _ result: Result<[UInt8], PoolError>) {
        chunk.completion(result)
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.outstanding -= 1
            guard state.outstanding == 0 else { return [] }
            defer { state.idleWaiters = [] }
            return state.idleWaiters
        }
        for waiter in waiters { waiter.resume() }
        dispatch()
    }

    // MARK: worker hosts

    /// A worker host said hello: it takes `2 × processes` chunks at once through `send`.
    func addHost(name: String, processes: Int, send: @escaping @Sendable (Shmipc_Remote_V1_PoolMessage) -> Void) -> UInt64? {
        let id = state.withLock { state -> UInt64? in
            guard state.phase != .terminated else { return nil }
            defer { state.nextHost += 1 }
            state.hosts[state.nextHost] = Host(name: name, capacity: 2 * processes, send: send)
            return state.nextHost
        }
        dispatch()
        return id
    }

    /// A worker host answered chunk `result.id`.
    func received(_ result: Shmipc_Remote_V1_ChunkResult, from host: UInt64) {
        let taken = state.withLock { state -> (ScheduledChunk, String)? in
            guard let chunk = state.hosts[host]?.inFlight.removeValue(forKey: result.id) else { return nil }
            return (chunk, state.hosts[host]!.name)
        }
        guard let (chunk, name) = taken else { return }  // not ours (an old stream's), or answered twice
        var text: String { String(decoding: result.payload, as: UTF8.self) }  // only for failures: an OK payload is outputs
        switch result.status {
        case .chunkOk: complete(chunk, .success(Array(result.payload)))
        case .chunkThrew: complete(chunk, .failure(.taskFailed(text)))
        case .chunkUnrunnable: complete(chunk, .failure(.coding("worker host '\(name)': \(text)")))
        case .chunkLost, .UNRECOGNIZED: lost([chunk], host: name)
        }
    }

    /// A worker host's stream ended: its chunks in flight run again elsewhere if idempotent,
    /// and fail with `workerLost` otherwise.
    func removeHost(_ host: UInt64) {
        guard let gone = state.withLock({ $0.hosts.removeValue(forKey: host) }) else { return }
        lost(gone.inFlight.values.sorted { $0.id < $1.id }, host: gone.name)
    }

    private func lost(_ chunks: [ScheduledChunk], host: String) {
        losses.add(chunks.count, ordering: .relaxed)
        var failed: [ScheduledChunk] = []
        state.withLock { state in
            for var chunk in chunks.reversed() {
                chunk.losses += 1
                if chunk.idempotent && chunk.losses < Self.maxAttempts && state.phase != .terminated {
                    state.pending.prepend(chunk)  // first in line: it was submitted before what waits
                } else {
                    failed.append(chunk)
                }
            }
        }
        for chunk in failed.reversed() {
            complete(chunk, .failure(state.withLock { $0.phase } == .terminated ? .terminated : .workerLost(task: chunk.id, host: host)))
        }
        dispatch()
    }

    // MARK: lifetime

    func close() { state.withLock { if $0.phase == .open { $0.phase = .closed } } }

    /// Waits until every submitted chunk is completed.
    func waitUntilIdle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                guard state.outstanding > 0 else { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    var isIdle: Bool { state.withLock { $0.outstanding == 0 } }

    /// Fails every pending and running chunk with `terminated`, tells every host to end what
    /// it runs, and ends the local pool's workers.
    func terminate() {
        let (pending, hosts) = state.withLock { state -> ([ScheduledChunk], [Host]) in
            state.phase = .terminated
            defer { state.pending = []; state.hosts = [:] }
            return (Array(state.pending), Array(state.hosts.values))
        }
        for host in hosts { host.send(.with { $0.terminate = .init() }) }
        local?.terminate()  // its chunks complete with `terminated` through their callbacks
        for chunk in pending + hosts.flatMap({ $0.inFlight.values }) { complete(chunk, .failure(.terminated)) }
    }
}
