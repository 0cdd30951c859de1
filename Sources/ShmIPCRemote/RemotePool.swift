internal import GRPCCore
internal import GRPCNIOTransportHTTP2
public import ShmIPC
import Synchronization

/// A `Pool` whose workers may also run on other hosts: Python's `multiprocessing.Pool`
/// with Ray's answer to outgrowing one machine, over the remote layer's gRPC.
///
/// ```swift
/// // the pool host (entries registered in both executables, as Python's `register`):
/// let pool = try await RemotePool.start(localProcesses: 2, address: RemoteAddress("0.0.0.0:7000"), authKey: key)
/// // each worker host: `shmipc-remote worker --connect pool-host:7000 --authkey-file key --executable ./app`,
/// // or `RemoteWorker(connectingTo:…).run()` in the user's own executable
/// let squares = try await pool.map(square, Array(0..<100_000))
/// ```
///
/// Where chunks run: on the local pool (shared memory, no network) while it has room, one
/// running and one queued per local process; then on the connected worker hosts, each at most
/// `2 × processes` chunks in flight, so nothing buffers without bound and a slow host holds
/// only its own chunks. Results come in order for `map` and `imap`, as they complete for
/// `imapUnordered`. A pool with no local processes (`localProcesses: 0`) runs everything
/// remotely, and chunks wait until a worker host connects.
///
/// Faults: a worker host that dies or is cut off (its stream ends, or it is silent, not even
/// its heartbeat of one a second, for `workerTimeout`, 10 s by default) loses its chunks in flight. A chunk of an
/// entry declared `Entry.idempotent()` runs again elsewhere (up to five losses); any other
/// fails with `PoolError.workerLost(task:host:)`, since it may have run. A worker process
/// that dies on a worker host is the same loss. ``terminate()`` fails everything outstanding
/// with `PoolError.terminated` and tells every worker host to kill what it runs; the hosts
/// stay connected for the next pool on this address (they reconnect to a restarted one).
///
/// A worker host proves it holds the authkey before it sees a chunk (the remote layer's
/// handshake, both ways); a wrong key never connects.
public final class RemotePool: Sendable {
    /// Processes of the local pool (0: none).
    public let localProcesses: Int
    /// Where worker hosts connect (with the port it got, if asked for port 0).
    public let address: RemoteAddress
    let scheduler: PoolScheduler
    private let local: Pool?
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let streams: StreamRegistry
    let connections: ServerConnections
    private let serving: Mutex<Task<Void, Never>?>

    private init(
        localProcesses: Int, address: RemoteAddress, scheduler: PoolScheduler, local: Pool?,
        server: GRPCServer<HTTP2ServerTransport.Posix>, streams: StreamRegistry, connections: ServerConnections,
        serving: Task<Void, Never>
    ) {
        self.localProcesses = localProcesses
        self.address = address
        self.scheduler = scheduler
        self.local = local
        self.server = server
        self.streams = streams
        self.connections = connections
        self.serving = Mutex(serving)
    }

    deinit {
        scheduler.terminate()
        streams.end()
        server.beginGracefulShutdown()
    }

    /// Starts `localProcesses` local workers (a `Pool`; 0 for none) and listens at `address`
    /// for worker hosts holding `authKey`. A chunk of arguments or of results may be
    /// `maxMessageSize` bytes (give the worker hosts the same limit). `tls` as ``Listener``'s.
    /// `startMethod` and `executable` are the local pool's. A worker host heard from neither by
    /// a result nor by its heartbeat (one a second) for `workerTimeout` is taken for gone.
    public static func start(
        localProcesses: Int = Multiprocessing.cpuCount, address: RemoteAddress, authKey: AuthKey,
        maxMessageSize: Int = 1 << 20, tls: RemoteTLS? = nil, startMethod: StartMethod? = nil, executable: String? = nil,
        workerTimeout: Duration = .seconds(10)
    ) async throws -> RemotePool {
        precondition(localProcesses >= 0, "localProcesses must not be negative")
        precondition(workerTimeout >= .seconds(3), "a worker timeout must allow for a few heartbeats (one a second)")
        let local = localProcesses > 0
            ? try Pool(processes: localProcesses, startMethod: startMethod, executable: executable, maxMessageSize: maxMessageSize)
            : nil
        let scheduler = PoolScheduler(local: local)
        let streams = StreamRegistry()
        let connections = ServerConnections()
        let sessions = Sessions(key: authKey)
        let transport: HTTP2ServerTransport.Posix = .http2NIOPosix(
            address: try address.bindAddress(), transportSecurity: tls.serverSecurity,
            config: Transports.server(maxRequestBytes: maxMessageSize + Listener.frameOverhead, connections: connections))
        let server = GRPCServer(
            transport: transport,
            services: [
                AuthService(sessions: sessions),
                WorkersService(scheduler: scheduler, streams: streams, connections: connections, workerTimeout: workerTimeout),
            ],
            interceptors: [AuthInterceptor(sessions: sessions)])
        let serving = Task { _ = try? await server.serve() }
        let bound: GRPCNIOTransportCore.SocketAddress?
        do {
            bound = try await server.listeningAddress
        } catch {
            local?.terminate()
            server.beginGracefulShutdown()
            throw RemoteError.unavailable("cannot listen at \(address): \(error)")
        }
        guard let bound, let reported = RemoteAddress(bound) else {
            local?.terminate()
            server.beginGracefulShutdown()
            throw RemoteError.unavailable("cannot listen at \(address)")
        }
        return RemotePool(
            localProcesses: localProcesses, address: reported, scheduler: scheduler, local: local, server: server,
            streams: streams, connections: connections, serving: serving)
    }

    /// Processes on every side: the local ones and those the connected worker hosts announced.
    public var processes: Int { scheduler.processes }

    /// The connected worker hosts' names (a snapshot).
    public var workerHosts: [String] { scheduler.hostNames }

    /// Waits until at least `count` worker hosts are connected; throws `PoolError.timedOut`.
    public func waitForWorkerHosts(_ count: Int, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while scheduler.hostNames.count < count {
            guard ContinuousClock.now < deadline else { throw PoolError.timedOut }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    // MARK: apply

    /// Submits `entry(argument)` and returns at once; `completion` runs with the output or the
    /// error (on the thread that learnt it: keep it short). Python: `apply_async`.
    @discardableResult
    public func applyAsync<Argument, Output>(
        _ entry: Entry<Argument, Output>, _ argument: Argument,
        completion: @escaping @Sendable (Result<Output, PoolError>) -> Void = { _ in }
    ) throws(PoolError) -> AsyncResult<Output> {
        let handle = AsyncResult<Output>()
        let chunk = try Self.chunk(entry, [argument]) { result in
            let output = result.flatMap { bytes -> Result<Output, PoolError> in
                Result { () throws(PoolError) in
                    let outputs = try Self.decode(bytes, Output.self)
                    guard outputs.count == 1 else { throw .coding("\(outputs.count) outputs for one task") }
                    return outputs[0]
                }
            }
            completion(output)
            handle.fulfill(output)
        }
        try scheduler.submit([chunk])
        return handle
    }

    /// Runs `entry(argument)` wherever there is room and returns its output. Python: `apply`.
    public func apply<Argument, Output>(
        _ entry: Entry<Argument, Output>, _ argument: Argument, timeout: Duration? = nil
    ) async throws -> Output {
        try await applyAsync(entry, argument).get(timeout: timeout)
    }

    /// The blocking form of `apply(_:_:timeout:)` (for a thread, not a task).
    public func apply<Argument, Output>(
        _ entry: Entry<Argument, Output>, _ argument: Argument, timeout: Duration? = nil
    ) throws(PoolError) -> Output {
        try applyAsync(entry, argument).get(timeout: timeout)
    }

    // MARK: map

    /// Submits `entry` over `arguments` in chunks (default: about four per process, as
    /// Python's) and returns at once; `completion` runs with every output in order, or the first
    /// failure. Python: `map_async`.
    @discardableResult
    public func mapAsync<Argument, Output>(
        _ entry: Entry<Argument, Output>, _ arguments: [Argument], chunkSize: Int? = nil,
        completion: @escaping @Sendable (Result<[Output], PoolError>) -> Void = { _ in }
    ) throws(PoolError) -> AsyncResult<[Output]> {
        let handle = AsyncResult<[Output]>()
        let size = chunkSize ?? Pool.defaultChunkSize(arguments.count, processes: max(1, processes))
        precondition(size >= 1, "chunkSize must be at least 1")
        let count = (arguments.count + size - 1) / size
        guard count > 0 else {
            completion(.success([]))
            handle.fulfill(.success([]))
            return handle
        }
        let gathered = Mutex<(chunks: [[Output]?], left: Int, failed: Bool)>((Array(repeating: nil, count: count), count, false))
        let finish: @Sendable (Int, Result<[UInt8], PoolError>) -> Void = { index, result in
            let decoded = result.flatMap { bytes in Result { () throws(PoolError) in try Self.decode(bytes, Output.self) } }
            let outcome = gathered.withLock { state -> Result<[Output], PoolError>? in
                guard !state.failed else { return nil }
                switch decoded {
                case .failure(let error):
                    state.failed = true
                    return .failure(error)
                case .success(let outputs):
                    state.chunks[index] = outputs
                    state.left -= 1
                    guard state.left == 0 else { return nil }
                    return .success(state.chunks.flatMap { $0! })
                }
            }
            if let outcome {
                completion(outcome)
                handle.fulfill(outcome)
            }
        }
        var chunks: [ScheduledChunk] = []
        chunks.reserveCapacity(count)
        for index in 0..<count {
            let slice = Array(arguments[(index * size)..<min((index + 1) * size, arguments.count)])
            chunks.append(try Self.chunk(entry, slice) { finish(index, $0) })
        }
        try scheduler.submit(chunks)
        return handle
    }

    /// `entry` applied to every argument, in order; the first failure is thrown. Python: `map`.
    public func map<Argument, Output>(
        _ entry: Entry<Argument, Output>, _ arguments: [Argument], chunkSize: Int? = nil, timeout: Duration? = nil
    ) async throws -> [Output] {
        try await mapAsync(entry, arguments, chunkSize: chunkSize).get(timeout: timeout)
    }

    /// The blocking form of `map(_:_:chunkSize:timeout:)`.
    public func map<Argument, Output>(
        _ entry: Entry<Argument, Output>, _ arguments: [Argument], chunkSize: Int? = nil, timeout: Duration? = nil
    ) throws(PoolError) -> [Output] {
        try mapAsync(entry, arguments, chunkSize: chunkSize).get(timeout: timeout)
    }

    /// `entry` applied to each pair, in order. Python: `starmap`.
    public func starmap<First, Second, Output>(
        _ entry: Entry<Pair<First, Second>, Output>, _ arguments: [(First, Second)], chunkSize: Int? = nil, timeout: Duration? = nil
    ) async throws -> [Output] {
        try await map(entry, arguments.map { Pair($0.0, $0.1) }, chunkSize: chunkSize, timeout: timeout)
    }

    /// The blocking form of `starmap(_:_:chunkSize:timeout:)`.
    public func starmap<First, Second, Output>(
        _ entry: Entry<Pair<First, Second>, Output>, _ arguments: [(First, Second)], chunkSize: Int? = nil, timeout: Duration? = nil
    ) throws(PoolError) -> [Output] {
        try map(entry, arguments.map { Pair($0.0, $0.1) }, chunkSize: chunkSize, timeout: timeout)
    }

    /// `entry` applied to each argument, lazily (at most `ahead` chunks submitted and not
    /// consumed, default four per process), one `Result` per argument, in order. Python: `imap`.
    public func imap<Arguments: Sequence, Output>(
        _ entry: Entry<Arguments.Element, Output>, _ arguments: Arguments, chunkSize: Int = 1, ahead: Int? = nil,
        timeout: Duration? = nil
    ) -> RemotePoolResults<Arguments, Output> {
        RemotePoolResults(pool: self, entry: entry, arguments: arguments, chunkSize: chunkSize, ordered: true,
                          ahead: ahead ?? max(4, 4 * processes), timeout: timeout)
    }

    /// As ``imap(_:_:chunkSize:ahead:timeout:)``, with results as chunks complete. Python: `imap_unordered`.
    public func imapUnordered<Arguments: Sequence, Output>(
        _ entry: Entry<Arguments.Element, Output>, _ arguments: Arguments, chunkSize: Int = 1, ahead: Int? = nil,
        timeout: Duration? = nil
    ) -> RemotePoolResults<Arguments, Output> {
        RemotePoolResults(pool: self, entry: entry, arguments: arguments, chunkSize: chunkSize, ordered: false,
                          ahead: ahead ?? max(4, 4 * processes), timeout: timeout)
    }

    // MARK: lifetime

    /// No more tasks may be submitted; those submitted still run. Python: `close`.
    public func close() { scheduler.close() }

    /// Closes the pool, waits for every submitted task (at most `timeout`: then
    /// `PoolError.timedOut`, the pool still running), then ends the local workers, the worker
    /// hosts' streams and the listener. Python: `join`.
    public func join(timeout: Duration? = nil) async throws {
        close()
        if let timeout {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask { [scheduler] in await scheduler.waitUntilIdle(); return true }
                group.addTask { try await Task.sleep(for: timeout); return false }
                let idle = try await group.next()!
                group.cancelAll()
                if !idle && !scheduler.isIdle { throw PoolError.timedOut }
            }
        } else {
            await scheduler.waitUntilIdle()
        }
        try? local?.join()
        await shutDown()
    }

    /// Ends everything now: outstanding tasks fail with `PoolError.terminated`, the local
    /// workers are killed, every worker host kills what it runs for this pool, and the listener
    /// stops. Python: `terminate`.
    public func terminate() async {
        scheduler.terminate()
        await shutDown()
    }

    /// How long a shutdown waits for the worker hosts' connections to close before it closes
    /// them itself (a worker host cut off by the network cannot answer a GOAWAY).
    static let shutdownGrace: Duration = .seconds(5)

    private func shutDown() async {
        streams.end()
        server.beginGracefulShutdown()
        guard let task = serving.withLock({ $0 }) else { return }
        if await Self.ends(task, within: Self.shutdownGrace) { return }
        // Not by cancelling serve(): it waits for every stream anyway, a stream on a connection
        // whose peer is gone never ends (see ServerConnections), and NIO traps when a listener
        // is cancelled while it holds an accepted connection (apple/swift-nio#2813).
        connections.closeAll()
        // Bounded even so: nothing of the pool's waits on the transport past this point.
        _ = await Self.ends(task, within: Self.shutdownGrace)
    }

    /// Whether `task` ends within `limit` (waiting no longer, even if it never ends).
    static func ends(_ task: Task<Void, Never>, within limit: Duration) async -> Bool {
        final class Once: Sendable { let done = Atomic(false) }
        let once = Once()
        return await withCheckedContinuation { (result: CheckedContinuation<Bool, Never>) in
            let timer = Task {
                try? await Task.sleep(for: limit)
                if !once.done.exchange(true, ordering: .acquiringAndReleasing) { result.resume(returning: false) }
            }
            Task {
                await task.value
                timer.cancel()
                if !once.done.exchange(true, ordering: .acquiringAndReleasing) { result.resume(returning: true) }
            }
        }
    }

    // MARK: internals

    static func chunk<Argument, Output>(
        _ entry: Entry<Argument, Output>, _ arguments: [Argument],
        completion: @escaping @Sendable (Result<[UInt8], PoolError>) -> Void
    ) throws(PoolError) -> ScheduledChunk {
        let bytes: [UInt8]
        do { bytes = try BinaryMessageCoder().encode(arguments) } catch { throw .coding("\(error)") }
        return ScheduledChunk(entry: entry.name, arguments: bytes, idempotent: entry.isIdempotent, completion: completion)
    }

    static func decode<Output: Decodable>(_ bytes: [UInt8], _: Output.Type) throws(PoolError) -> [Output] {
        do {
            return try bytes.withUnsafeBytes { raw throws(ChannelError) in try BinaryMessageCoder().decode([Output].self, from: raw) }
        } catch {
            throw .coding("\(error)")
        }
    }
}
