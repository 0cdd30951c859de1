/// The lazy results of ``Pool/imap(_:_:chunkSize:timeout:)`` and ``Pool/imapUnordered(_:_:chunkSize:timeout:)``:
/// one `Result` per argument. Iterate it once, from one thread.
///
/// Arguments are taken from the sequence as results are consumed: at most a few windows of
/// chunks per worker are submitted and not yet consumed. New chunks go out in bursts, when the
/// chunks still running fall below one window per worker, so workers are never idle while
/// results wait to be consumed and each wake-up of a worker serves many tasks.
public struct PoolResults<Arguments: Sequence, Output: Codable & Sendable>: Sequence, IteratorProtocol
where Arguments.Element: Codable & Sendable {
    @usableFromInline let pool: Pool
    @usableFromInline let entry: Entry<Arguments.Element, Output>
    @usableFromInline var arguments: Arguments.Iterator
    @usableFromInline let chunkSize: Int
    @usableFromInline let ordered: Bool
    /// How long `next()` waits for a result before everything outstanding fails with
    /// ``PoolError/timedOut`` (nil: no limit).
    @usableFromInline let timeout: Duration?
    @usableFromInline let job = PoolJob()
    @usableFromInline let header: [UInt8]
    /// Argument count of each chunk submitted and not yet consumed.
    @usableFromInline var chunkCounts: [Int: Int] = [:]
    @usableFromInline var submitted = 0
    @usableFromInline var nextOrdered = 0
    @usableFromInline var exhausted = false
    /// The chunk being handed out: its outputs, or its error and how many arguments it had.
    @usableFromInline var outputs: [Output] = []
    @usableFromInline var outputIndex = 0
    @usableFromInline var failure: PoolError?
    @usableFromInline var failuresLeft = 0

    @usableFromInline init(
        pool: Pool, entry: Entry<Arguments.Element, Output>, arguments: Arguments, chunkSize: Int, ordered: Bool, timeout: Duration?
    ) {
        precondition(chunkSize >= 1, "chunkSize must be at least 1")
        self.pool = pool
        self.entry = entry
        header = PoolWire.header(entry: entry.name)
        self.arguments = arguments.makeIterator()
        self.chunkSize = chunkSize
        self.ordered = ordered
        self.timeout = timeout
    }

    /// Chunks submitted and not consumed, at most.
    @usableFromInline var ahead: Int { pool.processes * PoolCore.window * 4 }
    /// Refill when fewer chunks than this are still running.
    @usableFromInline var lowWater: Int { pool.processes * PoolCore.window }

    /// The next result (in order for `imap`, as they come for `imapUnordered`), waiting for it; nil after the last.
    @inlinable public mutating func next() -> Result<Output, PoolError>? {
        while true {
            if outputIndex < outputs.count {
                defer { outputIndex += 1 }
                return .success(outputs[outputIndex])
            }
            if failuresLeft > 0, let failure {
                failuresLeft -= 1
                return .failure(failure)
            }
            topUp()
            guard !chunkCounts.isEmpty else { return nil }
            let wanted = nextOrdered
            let ordered = self.ordered, job = self.job
            do {
                try pool.core.wait(until: { ordered ? job.has(wanted) : !job.isEmpty }, deadline: .after(timeout))
            } catch {
                abandon(error)
                continue
            }
            let (chunk, result) = ordered ? (wanted, job.take(wanted)!) : job.takeAny()!
            if ordered { nextOrdered += 1 }
            let count = chunkCounts.removeValue(forKey: chunk) ?? 1
            outputIndex = 0
            do {
                outputs = try PoolWire.outputs(result, Output.self)
            } catch {
                outputs = []
                failure = error
                failuresLeft = count
            }
        }
    }

    /// Submits chunks, up to `ahead` unconsumed, once fewer than `lowWater` still run.
    @inlinable mutating func topUp() {
        let running = chunkCounts.count - job.count
        guard !exhausted, running < lowWater else { return }
        var tasks: [PoolTask] = []
        while !exhausted && chunkCounts.count < ahead {
            var chunk: [Arguments.Element] = []
            chunk.reserveCapacity(chunkSize)
            while chunk.count < chunkSize, let argument = arguments.next() { chunk.append(argument) }
            if chunk.count < chunkSize { exhausted = true }
            guard !chunk.isEmpty else { break }
            let index = submitted
            submitted += 1
            chunkCounts[index] = chunk.count
            do { tasks.append(try pool.task(entry, chunk, job: job, chunk: index, header: header)) } catch {
                job.deliver(index, .failure(error))
            }
        }
        guard !tasks.isEmpty else { return }
        do { try pool.core.submit(tasks) } catch {
            for task in tasks { job.deliver(task.chunk, .failure(error)) }
        }
    }

    /// Ends the iteration: everything outstanding fails with `error` (the pool is gone, or a
    /// result took longer than `timeout`).
    @inlinable mutating func abandon(_ error: PoolError) {
        failure = error
        failuresLeft = chunkCounts.values.reduce(0, +)
        chunkCounts = [:]
        exhausted = true
    }
}
