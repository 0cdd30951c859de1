import Glibc
import ShmIPC
import Synchronization
import SystemPackage

/// Runs `body` as a task and blocks this (non-pool) thread until it ends: the scenarios'
/// entry points are synchronous.
func runBlocking<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) throws -> Result {
    let outcome = Mutex<Swift.Result<Result, any Error>?>(nil)
    Task.detached {
        let result: Swift.Result<Result, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        outcome.withLock { $0 = result }
    }
    while true {
        if let result = outcome.withLock({ $0 }) { return try result.get() }
        usleep(1000)
    }
}

/// `rtt.queue.spsc.async`: the SPSC ping-pong with both sides awaiting (`await get`,
/// `await put`): a parked wait resumes through each process's async waiter.
/// With `.park`, every wait suspends (no poll first): the parked path, against
/// `rtt.floor.futex`.
struct AsyncSPSCRoundTrip: Scenario {
    let label: String
    let strategy: WaitStrategy
    var name: String { "rtt.queue.spsc.async\(label)" }
    let unit = Unit.nanoseconds
    var summary: String {
        "8-byte ping-pong over two SPSC queues, each side awaiting (async get/put), "
            + (strategy == .park ? "every wait suspended: compare rtt.floor.futex" : "a short poll, then suspended")
    }
    let defaultIterations = 20_000
    let startsThreads = true

    func makeChannels() throws -> Channels { try SPSCRoundTrip.makePair() }

    func parent(_ session: Session) throws -> RunMeasurement {
        guard let there = session.objects[0] as? SPSCQueue<UInt64>, let back = session.objects[1] as? SPSCQueue<UInt64> else {
            throw BenchError.peerFailed("queues")
        }
        try session.barrier()
        let iterations = session.iterations, warmup = RoundTripSampler.warmup(for: iterations)
        return try runBlocking {
            var producer = try there.makeProducer(waitStrategy: strategy)
            var consumer = try back.makeConsumer(waitStrategy: strategy)
            for i in 0..<warmup {
                try await producer.put(UInt64(i), timeout: .seconds(30))
                _ = try await consumer.get(timeout: .seconds(30))
            }
            var samples = [Double](repeating: 0, count: iterations)
            let watch = Stopwatch()
            var previous = Deadline.now.uptimeNanoseconds
            for i in 0..<iterations {
                try await producer.put(UInt64(i), timeout: .seconds(30))
                _ = try await consumer.get(timeout: .seconds(30))
                let now = Deadline.now.uptimeNanoseconds
                samples[i] = Double(now &- previous)
                previous = now
            }
            return .latencies(samples, mean: Double(watch.elapsedNanoseconds()) / Double(iterations))
        }
    }

    func child(_ session: Session) throws {
        let (there, back) = try SPSCRoundTrip.attachPair(session)
        try session.barrier()
        let total = session.iterations + RoundTripSampler.warmup(for: session.iterations)
        try runBlocking {
            var consumer = try there.makeConsumer(waitStrategy: strategy)
            var producer = try back.makeProducer(waitStrategy: strategy)
            for _ in 0..<total { try await producer.put(try await consumer.get(timeout: .seconds(30)) &+ 1, timeout: .seconds(30)) }
        }
    }
}

/// `throughput.queue.spsc.async.8B`: 8-byte messages through an SPSC queue, the child
/// awaiting each put and the parent each get.
struct AsyncSPSCThroughput: Scenario {
    let name = "throughput.queue.spsc.async.8B"
    let unit = Unit.messagesPerSecond
    let summary = "8B messages through an SPSC queue, one awaited put and one awaited get each"
    let defaultIterations = 10_000_000
    let startsThreads = true
    static let capacity = 8192

    func makeChannels() throws -> Channels {
        let queue = try SPSCQueue<UInt64>(capacity: Self.capacity)
        return Channels(child: [try duplicate(queue.inheritableDescriptor)], objects: [queue])
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        guard let queue = session.objects[0] as? SPSCQueue<UInt64> else { throw BenchError.peerFailed("queue") }
        try session.barrier()
        let iterations = session.iterations
        return try runBlocking {
            var consumer = try queue.makeConsumer()
            var sink: UInt64 = 0
            let watch = Stopwatch()
            for _ in 0..<iterations { sink &+= try await consumer.get(timeout: .seconds(30)) }
            let elapsed = watch.elapsedNanoseconds()
            let expected = UInt64(iterations) * UInt64(iterations - 1) / 2
            guard sink == expected else { throw BenchError.peerFailed("checksum \(sink), expected \(expected)") }
            return .rate(Double(iterations) / (Double(elapsed) / 1e9))
        }
    }

    func child(_ session: Session) throws {
        let queue = try SPSCQueue<UInt64>(inheriting: FileDescriptor(rawValue: session.descriptors[0]), capacity: Self.capacity)
        try session.barrier()
        let iterations = session.iterations
        try runBlocking {
            var producer = try queue.makeProducer()
            for i in 0..<UInt64(iterations) { try await producer.put(i, timeout: .seconds(30)) }
        }
    }
}

/// `queue.get.ready.{sync,async}`: one process takes elements already in a `Queue`, with
/// `tryGet` or with an awaited `get` (which must not suspend): ns per element, the async cost
/// of the fast path.
struct ReadyGet: Scenario {
    let awaited: Bool
    var name: String { "queue.get.ready.\(awaited ? "async" : "sync")" }
    let unit = Unit.nanosecondsPerOperation
    var summary: String { "take an element already in a Queue<UInt64> with \(awaited ? "an awaited get" : "tryGet"), one process" }
    let defaultIterations = 4_000_000
    let startsThreads = true
    static let batch = 4096

    func parent(_ session: Session) throws -> RunMeasurement {
        let queue = try Queue<UInt64>(capacity: Self.batch)
        try session.barrier()
        let iterations = session.iterations, awaited = self.awaited
        return try runBlocking {
            var elapsed: UInt64 = 0, sink: UInt64 = 0
            var done = 0
            while done < iterations {
                let count = min(Self.batch, iterations - done)
                for i in 0..<count { _ = try queue.tryPut(UInt64(i)) }
                let watch = Stopwatch()
                if awaited {
                    for _ in 0..<count { sink &+= try await queue.get() }
                } else {
                    for _ in 0..<count { sink &+= try queue.tryGet()! }
                }
                elapsed &+= watch.elapsedNanoseconds()
                done += count
            }
            guard sink > 0 else { throw BenchError.peerFailed("nothing taken") }
            return .cost(Double(elapsed) / Double(iterations))
        }
    }

    func child(_ session: Session) throws {
        try session.barrier()  // nothing to do: a one-process scenario
    }
}
