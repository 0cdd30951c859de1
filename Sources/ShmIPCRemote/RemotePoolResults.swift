public import ShmIPC
import Synchronization

/// The lazy results of ``RemotePool/imap(_:_:chunkSize:ahead:timeout:)`` and
/// ``RemotePool/imapUnordered(_:_:chunkSize:ahead:timeout:)``: one `Result` per argument.
/// Iterate it once, from one task.
///
/// Arguments are taken from the sequence as results are consumed: at most `ahead` chunks are
/// submitted and not yet consumed. If a result takes longer than `timeout`, it and every
/// argument after it fail with `PoolError.timedOut`.
public struct RemotePoolResults<Arguments: Sequence, Output: Codable & Sendable>: AsyncSequence
where Arguments.Element: Codable & Sendable {
    public typealias Element = Result<Output, PoolError>
    let pool: RemotePool
    let entry: Entry<Arguments.Element, Output>
    let arguments: Arguments
    let chunkSize: Int
    let ordered: Bool
    let ahead: Int
    let timeout: Duration?

    init(
        pool: RemotePool, entry: Entry<Arguments.Element, Output>, arguments: Arguments, chunkSize: Int, ordered: Bool,
        ahead: Int, timeout: Duration?
    ) {
        precondition(chunkSize >= 1, "chunkSize must be at least 1")
        precondition(ahead >= 1, "ahead must be at least 1")
        (self.pool, self.entry, self.arguments, self.chunkSize, self.ordered, self.ahead, self.timeout) =
            (pool, entry, arguments, chunkSize, ordered, ahead, timeout)
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(results: self, arguments: arguments.makeIterator())
    }

    /// Iterates the results (see ``RemotePoolResults``).
    public struct Iterator: AsyncIteratorProtocol {
        let results: RemotePoolResults
        var arguments: Arguments.Iterator
        /// Completed chunks: their index and result.
        let arrived = AsyncBuffer<(Int, Result<[UInt8], PoolError>)>(capacity: Int.max)
        /// Argument count of each chunk submitted and not yet consumed.
        var counts: [Int: Int] = [:]
        var early: [Int: Result<[UInt8], PoolError>] = [:]
        var submitted = 0
        var nextOrdered = 0
        var exhausted = false
        var outputs: [Output] = []
        var outputIndex = 0
        var failure: PoolError?
        var failuresLeft = 0

        init(results: RemotePoolResults, arguments: Arguments.Iterator) {
            self.results = results
            self.arguments = arguments
        }

        /// The next result, waiting for it; nil after the last.
        public mutating func next() async -> Result<Output, PoolError>? {
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
                guard !counts.isEmpty else { return nil }
                let (chunk, result): (Int, Result<[UInt8], PoolError>)
                if results.ordered, let ready = early.removeValue(forKey: nextOrdered) {
                    (chunk, result) = (nextOrdered, ready)
                } else {
                    do {
                        let arrival = try await arrived.take(deadline: results.timeout.map(Deadline.after))
                        if results.ordered && arrival.0 != nextOrdered {
                            early[arrival.0] = arrival.1
                            continue
                        }
                        (chunk, result) = arrival
                    } catch {
                        // Timed out (or the task was cancelled): everything outstanding fails.
                        failure = .timedOut
                        failuresLeft = counts.values.reduce(0, +)
                        counts = [:]
                        exhausted = true
                        continue
                    }
                }
                if results.ordered { nextOrdered += 1 }
                let count = counts.removeValue(forKey: chunk) ?? 1
                outputIndex = 0
                do {
                    outputs = try RemotePool.decode(try result.get(), Output.self)
                } catch {
                    outputs = []
                    failure = error
                    failuresLeft = count
                }
            }
        }

        /// Submits chunks until `ahead` are unconsumed or the arguments run out.
        mutating func topUp() {
            var chunks: [ScheduledChunk] = [], indices: [Int] = []
            while !exhausted && counts.count < results.ahead {
                var slice: [Arguments.Element] = []
                slice.reserveCapacity(results.chunkSize)
                while slice.count < results.chunkSize, let argument = arguments.next() { slice.append(argument) }
                if slice.count < results.chunkSize { exhausted = true }
                guard !slice.isEmpty else { break }
                let index = submitted
                submitted += 1
                counts[index] = slice.count
                let arrived = self.arrived
                do {
                    chunks.append(try RemotePool.chunk(results.entry, slice) { _ = arrived.tryPut((index, $0)) })
                    indices.append(index)
                } catch {
                    _ = arrived.tryPut((index, .failure(error)))
                }
            }
            guard !chunks.isEmpty else { return }
            do { try results.pool.scheduler.submit(chunks) } catch {
                for index in indices { _ = arrived.tryPut((index, .failure(error))) }
            }
        }
    }
}
