internal import GRPCCore
import ShmIPC

/// The pool host's side of `Workers.Work`: a worker host's hello adds it to the scheduler, its
/// results go back to their chunks, and the stream's end (however it ends) takes it out,
/// its chunks in flight lost.
struct WorkersService: Shmipc_Remote_V1_Workers.SimpleServiceProtocol {
    let scheduler: PoolScheduler
    let streams: StreamRegistry
    /// The most processes a hello may announce (its credits are twice as many).
    static let maxProcesses = 4096

    func work(
        request: RPCAsyncSequence<Shmipc_Remote_V1_WorkerMessage, any Error>,
        response: RPCWriter<Shmipc_Remote_V1_PoolMessage>, context: ServerContext
    ) async throws {
        let (outbox, mail) = AsyncStream<Shmipc_Remote_V1_PoolMessage>.makeStream()
        let ender = streams.add { mail.finish() }
        defer {
            streams.remove(ender)
            mail.finish()
        }
        let peer = context.remotePeer
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in outbox { try await response.write(message) }
            }
            group.addTask { [scheduler] in
                var messages = request.makeAsyncIterator()
                guard let first = try await messages.next(), case .hello(let hello)? = first.kind,
                      (1...Self.maxProcesses).contains(Int(hello.processes))
                else {
                    throw RPCError(code: .invalidArgument, message: "a worker's first message is its hello, with 1–\(Self.maxProcesses) processes")
                }
                let name = hello.name.isEmpty ? peer : hello.name
                guard let host = scheduler.addHost(name: name, processes: Int(hello.processes), send: { mail.yield($0) }) else {
                    throw RPCError(code: .failedPrecondition, message: "the pool was terminated")
                }
                defer { scheduler.removeHost(host) }
                do {
                    while let message = try await messages.next() {
                        if case .result(let result)? = message.kind { scheduler.received(result, from: host) }
                    }
                } catch {}  // the worker host went away: the deferred removal handles its chunks
            }
            // The first to end (the worker's side, or the pool ending the stream) ends both.
            defer {
                mail.finish()
                group.cancelAll()
            }
            _ = try await group.next()
        }
    }
}
