internal import Foundation
internal import GRPCCore
import Synchronization

extension ObjectService {
    /// The calls of one client over one stream: a call that may wait runs in a task of its own
    /// (a wait holds up nothing behind it) and is answered when it finishes; any other is
    /// answered in turn. One writer sends the answers. The stream's end (or the client's going
    /// away) cancels every call still running.
    func calls(
        request: RPCAsyncSequence<Shmipc_Remote_V1_CallRequest, any Error>, response: RPCWriter<Shmipc_Remote_V1_CallResponse>,
        context: ServerContext
    ) async throws {
        try await endedByShutdown { try await serveCalls(request: request, response: response, context: context) }
    }

    private func serveCalls(
        request: RPCAsyncSequence<Shmipc_Remote_V1_CallRequest, any Error>, response: RPCWriter<Shmipc_Remote_V1_CallResponse>,
        context: ServerContext
    ) async throws {
        let answers = AsyncBuffer<Shmipc_Remote_V1_CallResponse>(capacity: 1024)
        let running = RunningCalls()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while true {
                    let answer: Shmipc_Remote_V1_CallResponse
                    do { answer = try await answers.take(deadline: nil) } catch { return }
                    try await response.write(answer)
                }
            }
            defer {
                answers.finish(.closed)
                for task in running.state.withLock({ Array($0.tasks.values) }) { task.cancel() }
            }
            for try await call in request {
                let id = call.id
                if case .cancel = call.call {
                    running.state.withLock { $0.tasks[id] }?.cancel()
                    continue
                }
                guard Self.mayWait(call) else {
                    // Answered in turn: no task to make, nothing for it to wait for.
                    _ = await answers.put(await answer(call, context: context))
                    continue
                }
                // Registered under the lock it is made in: its own removal, at its end, waits
                // for the registration.
                running.state.withLock { state in
                    state.tasks[id] = Task {
                        let answer = await answer(call, context: context)
                        running.state.withLock { _ = $0.tasks.removeValue(forKey: id) }
                        _ = await answers.put(answer)
                    }
                }
            }
            // The client closed its side: answer what is running, then end.
            for task in running.state.withLock({ Array($0.tasks.values) }) { await task.value }
            answers.finish(.closed)
            try await group.waitForAll()
        }
    }

    /// Whether `call` may wait (for an item, room, a lock, a flag, a permit or the tasks): it
    /// runs in a task of its own, so the calls behind it go on. Every other call is answered
    /// in turn, as it arrives.
    static func mayWait(_ call: Shmipc_Remote_V1_CallRequest) -> Bool {
        switch call.call {
        case .queuePut?, .queueGet?, .lockAcquire?, .eventWait?, .semaphoreAcquire?, .queueJoin?: true
        default: false
        }
    }

    /// One call's answer: what the unary call returns, or its error as a CallStatus.
    private func answer(_ call: Shmipc_Remote_V1_CallRequest, context: ServerContext) async -> Shmipc_Remote_V1_CallResponse {
        var answer = Shmipc_Remote_V1_CallResponse()
        answer.id = call.id
        do {
            switch call.call {
            case .list(let r)?: answer.result = .list(try await list(request: r, context: context))
            case .queuePut(let r)?: answer.result = .queuePut(try await queuePut(request: r, context: context))
            case .queueGet(let r)?: answer.result = .queueGet(try await queueGet(request: r, context: context))
            case .dictGet(let r)?: answer.result = .dictValue(try await dictGet(request: r, context: context))
            case .dictSet(let r)?: answer.result = .dictValue(try await dictSet(request: r, context: context))
            case .dictRemove(let r)?: answer.result = .dictValue(try await dictRemove(request: r, context: context))
            case .dictKeys(let r)?: answer.result = .dictKeys(try await dictKeys(request: r, context: context))
            case .lockAcquire(let r)?: answer.result = .lockGrant(try await lockAcquire(request: r, context: context))
            case .lockRenew(let r)?: answer.result = .lockGrant(try await lockRenew(request: r, context: context))
            case .lockRelease(let r)?: answer.result = .lockRelease(try await lockRelease(request: r, context: context))
            case .valueGet(let r)?: answer.result = .value(try await valueGet(request: r, context: context))
            case .valueSet(let r)?: answer.result = .value(try await valueSet(request: r, context: context))
            case .eventSet(let r)?: answer.result = .event(try await eventSet(request: r, context: context))
            case .eventClear(let r)?: answer.result = .event(try await eventClear(request: r, context: context))
            case .eventWait(let r)?: answer.result = .event(try await eventWait(request: r, context: context))
            case .semaphoreAcquire(let r)?: answer.result = .semaphore(try await semaphoreAcquire(request: r, context: context))
            case .semaphoreRelease(let r)?: answer.result = .semaphore(try await semaphoreRelease(request: r, context: context))
            case .queueTaskDone(let r)?: answer.result = .queueTasks(try await queueTaskDone(request: r, context: context))
            case .queueJoin(let r)?: answer.result = .queueTasks(try await queueJoin(request: r, context: context))
            case .listGet(let r)?: answer.result = .listValue(try await listGet(request: r, context: context))
            case .listSet(let r)?: answer.result = .listValue(try await listSet(request: r, context: context))
            case .listInsert(let r)?: answer.result = .listValue(try await listInsert(request: r, context: context))
            case .listAppend(let r)?: answer.result = .listValue(try await listAppend(request: r, context: context))
            case .listRemove(let r)?: answer.result = .listValue(try await listRemove(request: r, context: context))
            case .listPop(let r)?: answer.result = .listValue(try await listPop(request: r, context: context))
            case .listSnapshot(let r)?: answer.result = .listSnapshot(try await listSnapshot(request: r, context: context))
            case .namespaceGet(let r)?: answer.result = .namespaceValue(try await namespaceGet(request: r, context: context))
            case .namespaceSet(let r)?: answer.result = .namespaceValue(try await namespaceSet(request: r, context: context))
            case .namespaceRemove(let r)?: answer.result = .namespaceValue(try await namespaceRemove(request: r, context: context))
            case .namespaceNames(let r)?: answer.result = .namespaceNames(try await namespaceNames(request: r, context: context))
            case .cancel?, nil: throw RPCError(code: .invalidArgument, message: "a call request with no call")
            }
        } catch {
            let error = Exported.rpcError(error)
            answer.result = .error(.with {
                $0.code = Int32(error.code.rawValue)
                $0.message = error.message
                for key in ["shmipc-expected", "shmipc-found"] {
                    if let value = error.metadata[stringValues: key].first(where: { _ in true }) { $0.metadata[key] = value }
                }
            })
        }
        return answer
    }
}

/// A stream's waiting calls in progress, by id.
final class RunningCalls: Sendable {
    struct State { var tasks: [UInt64: Task<Void, Never>] = [:] }
    let state = Mutex(State())
}
