internal import Synchronization

extension Pool {
    /// Submits `entry` over `arguments` and returns at once. When every chunk is in, `callback`
    /// runs with the outputs in order; as soon as a chunk fails, `errorCallback` runs with its
    /// error and the result is that failure (as Python's: the chunks still running finish
    /// unseen). Either runs on the pool's driving thread, before the handle is ready: `get()`
    /// sees their effects.
    /// Python: `map_async(func, iterable, chunksize, callback, error_callback)`.
    @discardableResult
    public func mapAsync<Argument, Output>(
        _ entry: Entry<Argument, Output>, _ arguments: [Argument], chunkSize: Int? = nil,
        callback: (@Sendable ([Output]) -> Void)? = nil, errorCallback: (@Sendable (PoolError) -> Void)? = nil
    ) throws(PoolError) -> AsyncResult<[Output]> {
        let handle = AsyncResult<[Output]>()
        let finish: @Sendable (Result<[Output], PoolError>) -> Void = { result in
            switch result {
            case .success(let outputs): callback?(outputs)
            case .failure(let error): errorCallback?(error)
            }
            handle.fulfill(result)
        }
        let size = chunkSize ?? Self.defaultChunkSize(arguments.count, processes: processes)
        precondition(size >= 1, "chunkSize must be at least 1")
        let chunks = stride(from: 0, to: arguments.count, by: size).map { Array(arguments[$0..<min($0 + size, arguments.count)]) }
        guard !chunks.isEmpty else {
            finish(.success([]))
            return handle
        }
        let collected = ChunkResults(count: chunks.count)
        let core = self.core
        let job = PoolJob { chunk, result in
            switch collected.add(chunk, result) {
            case .complete(let all):
                finish(Result { () throws(PoolError) in
                    var outputs: [Output] = []
                    outputs.reserveCapacity(arguments.count)
                    for bytes in all { outputs += try PoolWire.outputs(.success(bytes), Output.self) }
                    return outputs
                })
            case .failed(let error): finish(.failure(error))
            case nil: break
            }
            core.detachedChunkDone()
        }
        let header = PoolWire.header(entry: entry.name)
        var tasks: [PoolTask] = []
        for (index, chunk) in chunks.enumerated() { tasks.append(try task(entry, chunk, job: job, chunk: index, header: header)) }
        try core.submit(tasks, detached: true)
        return handle
    }

    /// As ``mapAsync(_:_:chunkSize:callback:errorCallback:)`` for an entry of two arguments.
    /// Python: `starmap_async`.
    @discardableResult
    public func starmapAsync<First, Second, Output>(
        _ entry: Entry<Pair<First, Second>, Output>, _ arguments: [(First, Second)], chunkSize: Int? = nil,
        callback: (@Sendable ([Output]) -> Void)? = nil, errorCallback: (@Sendable (PoolError) -> Void)? = nil
    ) throws(PoolError) -> AsyncResult<[Output]> {
        try mapAsync(
            entry, arguments.map { Pair($0.0, $0.1) }, chunkSize: chunkSize, callback: callback, errorCallback: errorCallback)
    }

    /// `entry` applied to every argument, in order, awaited: the calling task suspends, no
    /// thread blocks. Throws the first failure, or `CancellationError` at once if the calling
    /// task is cancelled (the chunks still run; their outputs are dropped). Python:
    /// `await loop.run_in_executor(...)` over `map`.
    public func map<Argument, Output>(
        _ entry: Entry<Argument, Output>, _ arguments: [Argument], chunkSize: Int? = nil
    ) async throws -> [Output] {
        let result = CallbackResult<[Output]>()
        _ = try mapAsync(
            entry, arguments, chunkSize: chunkSize,
            callback: { result.deliver(.success($0)) }, errorCallback: { result.deliver(.failure($0)) })
        return try await result.value()
    }
}

/// The chunk results of one asynchronous map, until all are in or one failed.
final class ChunkResults: Sendable {
    enum Outcome {
        /// Every chunk's bytes, in order.
        case complete([[UInt8]])
        /// The first chunk that failed.
        case failed(PoolError)
    }

    private let state: Mutex<(results: [[UInt8]?], missing: Int, ended: Bool)>

    init(count: Int) { state = Mutex((Array(repeating: nil, count: count), count, false)) }

    /// Records `chunk`'s result; the outcome once it is known (once), else nil.
    func add(_ chunk: Int, _ result: Result<[UInt8], PoolError>) -> Outcome? {
        state.withLock { state in
            guard !state.ended, state.results[chunk] == nil else { return nil }
            switch result {
            case .failure(let error):
                state.ended = true
                return .failed(error)
            case .success(let bytes):
                state.results[chunk] = bytes
                state.missing -= 1
                guard state.missing == 0 else { return nil }
                state.ended = true
                return .complete(state.results.map { $0! })
            }
        }
    }
}
