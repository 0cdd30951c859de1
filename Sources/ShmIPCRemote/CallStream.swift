internal import GRPCCore
internal import GRPCNIOTransportHTTP2
import ShmIPC
import Synchronization

/// A client's calls over one long-lived `Objects.Calls` stream: each call an id, its answer
/// matched back by id. A unary gRPC call opens and closes an HTTP/2 stream of its own; this
/// one stream cost about a third of that a call on loopback (Notes/0013). Opened on first
/// use, and again after it broke; a broken stream fails its calls in progress as the stream
/// failed (``RemoteError/unavailable(_:)``: they may have run).
final class CallStream: Sendable {
    typealias Request = Shmipc_Remote_V1_CallRequest
    typealias Response = Shmipc_Remote_V1_CallResponse

    private struct State {
        var pending: [UInt64: AsyncBuffer<Response>] = [:]
        var nextID: UInt64 = 1
        /// Why the stream ended, once it did: later calls go to a new stream.
        var ended: RemoteError?
    }
    private let state = Mutex(State())
    private let requests = AsyncBuffer<Request>(capacity: 1024)

    init(objects: Shmipc_Remote_V1_Objects.Client<HTTP2ClientTransport.Posix>, metadata: Metadata, options: CallOptions) {
        let requests = requests
        Task { [self] in
            let end: RemoteError
            do {
                try await objects.calls(metadata: metadata, options: options) { writer in
                    while true {
                        let request: Request
                        do { request = try await requests.take(deadline: nil) } catch { return }  // closed: end our side
                        try await writer.write(request)
                    }
                } onResponse: { response in
                    for try await answer in response.messages {
                        self.answered(answer)
                    }
                }
                end = .unavailable("the call stream ended")
            } catch {
                end = RemoteConnection.remoteError(error)
            }
            self.fail(end)
        }
    }

    private func answered(_ answer: Response) {
        state.withLock { $0.pending.removeValue(forKey: answer.id) }.map { _ = $0.tryPut(answer) }
    }

    /// Whether the stream ended (a new one is needed).
    var hasEnded: Bool { state.withLock { $0.ended != nil } }

    /// Ends the stream: calls in progress fail as ``RemoteError/closed``.
    func close() {
        requests.finish(.closed)
        fail(.closed)
    }

    private func fail(_ error: RemoteError) {
        let waiting = state.withLock { state -> [AsyncBuffer<Response>] in
            if state.ended == nil { state.ended = error }
            defer { state.pending.removeAll() }
            return Array(state.pending.values)
        }
        for reply in waiting { reply.finish(error) }
        requests.finish(error)
    }

    /// Runs `call` and returns its result, waiting at most until `deadline` (then the call is
    /// cancelled on the server, and this throws ``RemoteError/timedOut``); a cancelled task
    /// cancels the call too.
    func call(_ call: Request.OneOf_Call, deadline: Deadline?) async throws -> Response.OneOf_Result {
        let reply = AsyncBuffer<Response>(capacity: 1)
        let id = try state.withLock { state throws(RemoteError) -> UInt64 in
            if let ended = state.ended { throw ended }
            defer { state.nextID += 1 }
            state.pending[state.nextID] = reply
            return state.nextID
        }
        var request = Request()
        request.id = id
        request.call = call
        guard await requests.put(request) else { throw state.withLock { $0.ended } ?? .closed }
        let answer: Response
        do {
            answer = try await reply.take(deadline: deadline)
        } catch {
            // Timed out or cancelled here: the server's call ends too (a wait takes nothing).
            if state.withLock({ $0.pending.removeValue(forKey: id) }) != nil {
                _ = requests.tryPut(.with {
                    $0.id = id
                    $0.cancel = .init()
                })
            }
            if error is CancellationError { throw error }
            throw RemoteConnection.remoteError(error)
        }
        switch answer.result {
        case .error(let status)?:
            let code = Status.Code(rawValue: Int(status.code)).flatMap(RPCError.Code.init) ?? .unknown
            var metadata: Metadata = [:]
            for (key, value) in status.metadata { metadata.addString(value, forKey: key) }
            throw RemoteConnection.remoteError(RPCError(code: code, message: status.message, metadata: metadata))
        case let result?: return result
        case nil: throw RemoteError.protocolError("an answer with no result")
        }
    }
}
