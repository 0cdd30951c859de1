/// The lazy results of ``Pool/imap(_:_:chunkSize:)`` and ``Pool/imapUnordered(_:_:chunkSize:)``:
/// one `Result` per argument. Iterate it once, from one thread.
public struct PoolResults<Arguments: Sequence, Output: Codable & Sendable>: Sequence, IteratorProtocol
where Arguments.Element: Codable & Sendable {
    private let pool: Pool
    private let entry: Entry<Arguments.Element, Output>
    private var arguments: Arguments.Iterator
    private let chunkSize: Int
    private let ordered: Bool
    private let job = PoolJob()
    /// Argument count of each chunk submitted and not yet yielded.
    private var chunkCounts: [Int: Int] = [:]
    private var submitted = 0
    private var nextOrdered = 0
    private var exhausted = false
    private var buffer: [Result<Output, PoolError>] = []
    private var bufferIndex = 0

    init(pool: Pool, entry: Entry<Arguments.Element, Output>, arguments: Arguments, chunkSize: Int, ordered: Bool) {
        precondition(chunkSize >= 1, "chunkSize must be at least 1")
        self.pool = pool
        self.entry = entry
        self.arguments = arguments.makeIterator()
        self.chunkSize = chunkSize
        self.ordered = ordered
    }

    /// Chunks kept in flight ahead of the consumer: enough to keep every worker's window full.
    private var ahead: Int { pool.processes * PoolCore.window * 2 }

    public mutating func next() -> Result<Output, PoolError>? {
        if bufferIndex < buffer.count {
            defer { bufferIndex += 1 }
            return buffer[bufferIndex]
        }
        topUp()
        guard !chunkCounts.isEmpty else { return nil }
        let wanted = nextOrdered
        let ordered = self.ordered, job = self.job
        do {
            try pool.core.wait(until: { ordered ? job.has(wanted) : !job.isEmpty }, deadline: .distantFuture)
        } catch {
            return fail(with: error)
        }
        let (chunk, result) = ordered ? (wanted, job.take(wanted)!) : job.takeAny()!
        if ordered { nextOrdered += 1 }
        let count = chunkCounts.removeValue(forKey: chunk) ?? 1
        do {
            buffer = try Pool.decode(result, Output.self).map { .success($0) }
        } catch {
            buffer = Array(repeating: .failure(error), count: count)
        }
        bufferIndex = 0
        topUp()
        return next()
    }

    /// Submits chunks until `ahead` are outstanding or the arguments run out.
    private mutating func topUp() {
        while !exhausted && chunkCounts.count < ahead {
            var chunk: [Arguments.Element] = []
            chunk.reserveCapacity(chunkSize)
            while chunk.count < chunkSize, let argument = arguments.next() { chunk.append(argument) }
            if chunk.count < chunkSize { exhausted = true }
            guard !chunk.isEmpty else { return }
            let index = submitted
            submitted += 1
            chunkCounts[index] = chunk.count
            do {
                try pool.core.submit([try pool.task(entry, chunk, job: job, chunk: index)])
            } catch {
                job.deliver(index, .failure(error))
            }
        }
    }

    /// Ends the iteration with `error` for everything outstanding (the pool is gone or timed out).
    private mutating func fail(with error: PoolError) -> Result<Output, PoolError>? {
        let count = chunkCounts.values.reduce(0, +)
        chunkCounts = [:]
        exhausted = true
        buffer = Array(repeating: .failure(error), count: Swift.max(0, count - 1))
        bufferIndex = 0
        return .failure(error)
    }
}
