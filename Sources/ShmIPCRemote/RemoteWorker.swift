internal import Foundation
internal import GRPCCore
internal import GRPCNIOTransportHTTP2
public import ServiceLifecycle
public import ShmIPC
import Synchronization

/// A worker host of a ``RemotePool`` on another machine: it dials the pool host, proves it
/// holds the authkey, and runs the chunks it is sent on a local `Pool` of its own (its
/// processes, crash replacement and shared memory), or on threads of its own process
/// (``Workers/threads(_:)``), answering each with its outputs.
///
/// ```swift
/// // in main, after Multiprocessing.bootstrap([square, …]) (the entries the pool host uses):
/// try await RemoteWorker(connectingTo: RemoteAddress("pool-host:7000"), authKey: key, processes: 8).run()
/// ```
///
/// Entries are names: each one the pool host submits must be registered in this executable
/// (or in `executable`, the program its local pool starts), as with Python's `register`. A
/// chunk of an entry it lacks is answered as unrunnable, which the pool host's caller sees as
/// `PoolError.coding(_:)` naming this host.
///
/// It serves until its task is cancelled (or a graceful shutdown, as a swift-service-lifecycle
/// `Service`): a pool host that goes away, or restarts, is dialled again with backoff (100 ms
/// doubling to 5 s). A terminate from the pool host kills the chunks running here (the local
/// pool is terminated and a new one started).
public final class RemoteWorker: Service, Sendable {
    /// Where a worker host runs the chunks it is sent.
    public enum Workers: Sendable, Equatable {
        /// On a local `Pool` of this many processes: a chunk that crashes its process is lost
        /// (as the pool host learns), and the worker host goes on with a new process.
        case processes(Int)
        /// On this many threads of the worker host's own process (Python's `ThreadPool`; Swift
        /// has no GIL): no hop through shared memory to a worker process and back, and no
        /// process per worker. A chunk that crashes takes the worker host down with it, and a
        /// terminate cannot stop a chunk that is running (its answer is dropped).
        case threads(Int)

        var count: Int {
            switch self {
            case .processes(let count), .threads(let count): count
            }
        }
    }

    /// The pool host's address.
    public let address: RemoteAddress
    /// Where its chunks run.
    public let workers: Workers
    /// Its workers (processes or threads): what it announces to the pool host.
    public var processes: Int { workers.count }
    /// How this worker host names itself to the pool host (its errors name it).
    public let name: String
    private let authKey: AuthKey
    private let maxMessageSize: Int
    private let tls: RemoteTLS?
    private let executable: String?
    private let startMethod: StartMethod?
    private let pool = Mutex<Pool?>(nil)
    private let connected = Atomic<Int>(0)
    /// With ``Workers/threads(_:)``: the threads, and the terminates seen (a chunk started
    /// before the last one is answered by nobody). In-process; relaxed everywhere: a count
    /// compared with itself, through which no other data is published.
    private let threads: OperationQueue?
    private let terminates = Atomic<Int>(0)

    /// The most workers a worker host may have (the pool host refuses a hello with more).
    public static let maxWorkers = WorkersService.maxProcesses

    /// A worker host for the pool host at `address`, with `processes` local workers.
    /// `maxMessageSize` must be the pool host's; `executable` and `startMethod` are the local
    /// pool's (default: this program, which must register the entries).
    public convenience init(
        connectingTo address: RemoteAddress, authKey: AuthKey, processes: Int = Multiprocessing.cpuCount, name: String? = nil,
        maxMessageSize: Int = 1 << 20, tls: RemoteTLS? = nil, executable: String? = nil, startMethod: StartMethod? = nil
    ) {
        self.init(connectingTo: address, authKey: authKey, workers: .processes(processes), name: name, maxMessageSize: maxMessageSize,
                  tls: tls, executable: executable, startMethod: startMethod)
    }

    /// A worker host for the pool host at `address` whose chunks run on `workers`.
    /// `maxMessageSize` must be the pool host's; `executable` and `startMethod` are the local
    /// pool's, if it has one (default: this program). With threads, this program runs the
    /// entries itself and must register them.
    public init(
        connectingTo address: RemoteAddress, authKey: AuthKey, workers: Workers, name: String? = nil,
        maxMessageSize: Int = 1 << 20, tls: RemoteTLS? = nil, executable: String? = nil, startMethod: StartMethod? = nil
    ) {
        precondition((1...Self.maxWorkers).contains(workers.count), "a worker host needs 1–\(Self.maxWorkers) workers")
        self.address = address
        self.authKey = authKey
        self.workers = workers
        if case .threads(let count) = workers {
            let queue = OperationQueue()
            queue.name = "ShmIPCRemote.RemoteWorker"
            queue.maxConcurrentOperationCount = count
            threads = queue
        } else {
            threads = nil
        }
        self.name = name ?? "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
        self.maxMessageSize = maxMessageSize
        self.tls = tls
        self.executable = executable
        self.startMethod = startMethod
    }

    /// How many times it has connected to a pool host (a snapshot, for tests and monitoring).
    public var connections: Int { connected.load(ordering: .relaxed) }

    /// Serves pool hosts until cancelled or shut down gracefully; reconnects with backoff.
    /// Throws ``RemoteError/authenticationFailed`` if the pool host does not hold the same key
    /// (retrying would not change that), and the local pool's `PoolError` if it cannot start.
    public func run() async throws {
        defer { pool.withLock { $0?.terminate(); $0 = nil } }
        try await cancelWhenGracefulShutdown {
            var backoff: Duration = .milliseconds(100)
            while !Task.isCancelled {
                do {
                    try await self.session()
                    backoff = .milliseconds(100)  // served a pool until it ended: dial again at once
                } catch RemoteError.authenticationFailed {
                    throw RemoteError.authenticationFailed
                } catch let error as PoolError {
                    throw error
                } catch {
                    // Unavailable, timed out, the stream broke: dial again.
                }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    /// The local pool, started on first use (and again after a terminate); nil with threads.
    private func localPool() throws(PoolError) -> Pool? {
        guard threads == nil else { return nil }
        return try pool.withLock { pool throws(PoolError) in
            if let pool { return pool }
            let started = try Pool(processes: processes, startMethod: startMethod, executable: executable, maxMessageSize: maxMessageSize)
            pool = started
            return started
        }
    }

    /// One connection: the handshake, a hello, then chunks until the stream ends.
    private func session() async throws {
        let local = try localPool()
        let (client, session) = try await Client.open(address, authKey: authKey, timeout: .seconds(30), tls: tls)
        defer { client.beginGracefulShutdown() }
        var options = CallOptions.defaults
        options.maxRequestMessageBytes = maxMessageSize + Listener.frameOverhead
        options.maxResponseMessageBytes = maxMessageSize + Listener.frameOverhead
        let (results, answer) = AsyncStream<Shmipc_Remote_V1_WorkerMessage>.makeStream()
        let hello = Shmipc_Remote_V1_WorkerMessage.with {
            $0.hello = .with { $0.name = name; $0.processes = UInt32(workers.count) }
        }
        connected.add(1, ordering: .relaxed)
        try await Shmipc_Remote_V1_Workers.Client(wrapping: client).work(
            metadata: [Handshake.sessionKey: .string(session)], options: options
        ) { writer in
            try await writer.write(hello)
            // The heartbeat: the pool host takes a silent stream for a host cut off.
            let beating = Task {
                while !Task.isCancelled {
                    try await Task.sleep(for: Self.heartbeat)
                    answer.yield(.with { $0.heartbeat = .init() })
                }
            }
            defer { beating.cancel() }
            for await result in results { try await writer.write(result) }
        } onResponse: { response in
            defer { answer.finish() }
            var current = local
            for try await message in response.messages {
                switch message.kind {
                case .chunk(let chunk)?:
                    self.run(chunk, on: current, answer: answer)
                case .terminate?:
                    // Kill what runs for the ended pool: its chunks are answered by nobody.
                    self.terminates.add(1, ordering: .relaxed)
                    if let running = current {
                        self.pool.withLock { $0 = nil }
                        running.terminate()
                        current = try self.localPool()
                    }
                case nil:
                    break
                }
            }
        }
    }

    /// Runs `chunk` on `pool`, or on a thread if there is none; its answer goes into `answer`
    /// (dropped if the stream is gone).
    private func run(_ chunk: Shmipc_Remote_V1_WorkChunk, on pool: Pool?, answer: AsyncStream<Shmipc_Remote_V1_WorkerMessage>.Continuation) {
        let id = chunk.id
        let reply: @Sendable (Result<[UInt8], PoolError>) -> Void = { result in
            let (status, payload): (Shmipc_Remote_V1_ChunkStatus, [UInt8])
            switch result {
            case .success(let outputs): (status, payload) = (.chunkOk, outputs)
            case .failure(.taskFailed(let text)): (status, payload) = (.chunkThrew, Array(text.utf8))
            case .failure(.coding(let text)): (status, payload) = (.chunkUnrunnable, Array(text.utf8))
            case .failure(let error) where Self.isUnrunnable(error): (status, payload) = (.chunkUnrunnable, Array(error.description.utf8))
            case .failure(.terminated): return  // a terminate from the pool host: nobody waits for it
            case .failure(let error): (status, payload) = (.chunkLost, Array(error.description.utf8))
            }
            answer.yield(.with { $0.result = .with { $0.id = id; $0.status = status; $0.payload = .init(payload) } })
        }
        guard let pool else {
            let (entry, arguments, name) = (chunk.entry, Array(chunk.arguments), name)
            let generation = terminates.load(ordering: .relaxed)
            threads!.addOperation { [self] in
                guard terminates.load(ordering: .relaxed) == generation else { return }
                let result = Pool.runEncoded(entry: entry, arguments: arguments, name: name)
                if terminates.load(ordering: .relaxed) == generation { reply(result) }
            }
            return
        }
        do {
            try pool.submitEncoded(entry: chunk.entry, arguments: Array(chunk.arguments), completion: reply)
        } catch {
            reply(.failure(error))
        }
    }

    /// How often it tells the pool host it is there (``RemotePool``'s worker timeout is 10 s
    /// by default).
    static let heartbeat: Duration = .seconds(1)

    private static func isUnrunnable(_ error: PoolError) -> Bool {
        if case .messageTooLarge = error { return true }
        return false
    }
}
