internal import GRPCCore
import ShmIPC
import Synchronization

/// The pool host's side of `Workers.Work`: a worker host's hello adds it to the scheduler, its
/// results go back to their chunks, and the stream's end (however it ends) takes it out,
/// its chunks in flight lost.
struct WorkersService: Shmipc_Remote_V1_Workers.SimpleServiceProtocol {
    let scheduler: PoolScheduler
    let streams: StreamRegistry
    /// The server's connections: a silent host's is closed (its peer may be gone for good).
    let connections: ServerConnections
    /// A stream silent this long (no heartbeat, no result) is ended: its host is gone.
    let workerTimeout: Duration
    /// The most processes a hello may announce (its credits are twice as many).
    static let maxProcesses = 4096

    func work(
        request: RPCAsyncSequence<Shmipc_Remote_V1_WorkerMessage, any Error>,
        response: RPCWriter<Shmipc_Remote_V1_PoolMessage>, context: ServerContext
    ) async throws {
        let (outbox, mail) = AsyncStream<Shmipc_Remote_V1_PoolMessage>.makeStream()
        let ender = streams.add { mail.finish() }
        let peer = context.remotePeer
        let stream = WorkStream()
        let timeout = workerTimeout
        let connections = connections
        // The reader is not a child task: on a connection the network dropped, a read may not
        // end when cancelled, and the handler must still end (the worker host's chunks go
        // elsewhere, the server can stop). It ends when the RPC does.
        let reading = Task { [scheduler] in
            defer { mail.finish() }
            var messages = request.makeAsyncIterator()
            do {
                guard let first = try await messages.next(), case .hello(let hello)? = first.kind,
                      (1...Self.maxProcesses).contains(Int(hello.processes))
                else {
                    throw RPCError(code: .invalidArgument, message: "a worker's first message is its hello, with 1–\(Self.maxProcesses) processes")
                }
                stream.heard()
                let name = hello.name.isEmpty ? peer : hello.name
                guard stream.register({ scheduler.addHost(name: name, processes: Int(hello.processes), send: { mail.yield($0) }) }) else {
                    throw RPCError(code: .failedPrecondition, message: "the pool was terminated")
                }
                while let message = try await messages.next() {
                    stream.heard()
                    if case .result(let result)? = message.kind, let host = stream.host { scheduler.received(result, from: host) }
                }
            } catch let error as RPCError {
                stream.fail(error)
            } catch {}  // the worker host went away: the handler's end takes its chunks back
        }
        defer {
            reading.cancel()
            streams.remove(ender)
            if let host = stream.host { scheduler.removeHost(host) }
            mail.finish()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in outbox { try await response.write(message) }
            }
            group.addTask {
                // A host that falls silent (cut off with no reset, frozen) is ended here.
                while true {
                    try await Task.sleep(for: .milliseconds(250))
                    if ContinuousClock.now - stream.lastHeard > timeout {
                        // A peer the network dropped never answers the graceful close gRPC
                        // would start: the connection, and this stream's last writes, would
                        // stay for good. A frozen host that wakes finds it closed and dials again.
                        connections.close(peer: peer)
                        throw RPCError(code: .unavailable, message: "the worker host was silent for \(timeout)")
                    }
                }
            }
            // The first to end (the reader finishing the outbox, the pool ending the stream, or
            // the host's silence) ends the others.
            defer {
                mail.finish()
                group.cancelAll()
            }
            _ = try await group.next()
        }
        if let failure = stream.failure { throw failure }
    }
}

/// One `Work` stream's state, shared by its reader and its handler.
final class WorkStream: Sendable {
    private struct State {
        var lastHeard = ContinuousClock.now
        var host: UInt64?
        var failure: RPCError?
    }
    private let state = Mutex(State())

    func heard() { state.withLock { $0.lastHeard = .now } }
    var lastHeard: ContinuousClock.Instant { state.withLock { $0.lastHeard } }
    var host: UInt64? { state.withLock { $0.host } }
    var failure: RPCError? { state.withLock { $0.failure } }
    func fail(_ error: RPCError) { state.withLock { $0.failure = error } }

    /// Registers the host `add` returns (nil: refused); whether it was registered.
    func register(_ add: () -> UInt64?) -> Bool {
        guard let host = add() else { return false }
        state.withLock { $0.host = host }
        return true
    }
}
