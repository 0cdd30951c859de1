import Glibc
import ShmIPC
import Synchronization
import SystemPackage

/// Runs `body` as a task and blocks this (non-pool) thread until it ends: the scenarios'
/// entry points are synchronous. `sample` runs on this thread every millisecond meanwhile.
func runBlocking<Result: Sendable>(
    sampling sample: () -> Void = {}, _ body: @escaping @Sendable () async throws -> Result
) throws -> Result {
    let outcome = Mutex<Swift.Result<Result, any Error>?>(nil)
    Task.detached {
        let result: Swift.Result<Result, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        outcome.withLock { $0 = result }
    }
    while true {
        if let result = outcome.withLock({ $0 }) { return try result.get() }
        sample()
        usleep(1000)
    }
}

/// `rtt.queue.spsc.async`: the SPSC ping-pong with both sides awaiting (`await get`,
/// `await put`): a parked wait resumes through each process's async waiter.
/// With `.park`, every wait suspends (no poll first): the parked path, against
/// `rtt.floor.futex`.
/// With `onWaiter`, both sides' tasks prefer ``WaiterExecutor`` (`….waiter`): a resumed task
/// runs on the waiter thread that reaped its wake-up, not on a pool thread woken for it.
struct AsyncSPSCRoundTrip: Scenario {
    let label: String
    let strategy: WaitStrategy
    var onWaiter = false
    var name: String { "rtt.queue.spsc.async\(label)\(onWaiter ? ".waiter" : "")" }
    let unit = Unit.nanoseconds
    var summary: String {
        "8-byte ping-pong over two SPSC queues, each side awaiting (async get/put), "
            + (strategy == .park ? "every wait suspended: compare rtt.floor.futex" : "a short poll, then suspended")
            + (onWaiter ? "; tasks run on the waiter thread (WaiterExecutor)" : "")
    }

    /// Runs `body` in a task, preferring the waiter's executor if `onWaiter`.
    func run<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) throws -> Result {
        guard onWaiter else { return try runBlocking(body) }
        return try runBlocking { try await withTaskExecutorPreference(WaiterExecutor.shared) { try await body() } }
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
        return try run {
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
        try run {
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

/// `rtt.async.fanout1000` and `.threads`: 1,000 tasks in one process, each suspended on its
/// own queue, answered from another process. Each round, a driving task asks the peer to go;
/// the peer (one thread, synchronous) puts one item into each of the 1,000 queues; each task,
/// resumed by its item, acknowledges it into a shared queue, which the driver awaits 1,000
/// times. The row is the round's time over 1,000: the cost of one task's round trip when a
/// thousand are in flight (µs; one sample per round); `.threads`, the most threads the
/// process ran meanwhile (the cooperative pool, the async waiter, the harness's main thread).
///
/// The reply queues are named (the peer opens 1,000 by name, not 1,000 descriptors) and
/// unlinked as soon as the peer has them, so a crash leaves nothing in /dev/shm.
struct AsyncFanout: Scenario {
    static let tasks = 1000
    let countsThreads: Bool
    var name: String { "rtt.async.fanout1000\(countsThreads ? ".threads" : "")" }
    var unit: Unit { countsThreads ? .threads : .microseconds }
    var summary: String {
        countsThreads
            ? "threads the process ran while 1,000 tasks awaited their own queues (rtt.async.fanout1000)"
            : "1,000 tasks each awaiting its own queue, answered from another process: a round over 1,000"
    }
    let defaultIterations = 100_000
    let startsThreads = true

    static func replyName(_ parent: Int32, _ index: Int) -> SegmentName {
        try! SegmentName("bench\(parent)-fanout-\(index)")
    }

    /// Rounds in a run (every task takes one item per round), and one more to warm up.
    static func rounds(_ iterations: Int) -> Int { max(1, iterations / tasks) + 1 }

    func makeChannels() throws -> Channels {
        let go = try Queue<UInt32>(capacity: 2)
        return Channels(child: [try duplicate(go.inheritableDescriptor)], objects: [go])
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        guard let go = session.objects[0] as? Queue<UInt32> else { throw BenchError.peerFailed("queue") }
        var replies: [Queue<UInt32>] = []
        defer { for reply in replies { try? reply.unlink() } }  // idempotent: on every path
        for index in 0..<Self.tasks {
            // `.park`: a task suspends at once instead of polling (all 1,000 wait together).
            replies.append(try Queue<UInt32>(
                name: Self.replyName(getpid(), index), mode: .createExclusive, capacity: 2, waitStrategy: .park))
        }
        let acks = try Queue<UInt32>(capacity: Self.tasks, waitStrategy: .park)
        session.ping.storeReleasing(1)  // the replies exist
        try session.barrier()  // the peer opened them
        for reply in replies { try? reply.unlink() }
        let rounds = Self.rounds(session.iterations)
        let threads = Mutex(0)
        let replyQueues = replies
        let (samples, nsPerCycle) = try runBlocking(sampling: { threads.withLock { $0 = max($0, Self.threadCount()) } }) {
            try await withThrowingTaskGroup(of: [UInt64].self) { group in
                for (index, reply) in replyQueues.enumerated() {
                    group.addTask {
                        for round in 0..<rounds {
                            guard try await reply.get(timeout: .seconds(30)) == UInt32(round) else {
                                throw BenchError.peerFailed("task \(index): an item out of turn")
                            }
                            try await acks.put(UInt32(index), timeout: .seconds(30))
                        }
                        return []
                    }
                }
                group.addTask {  // the driver: one sample per round but the first
                    var cycles: [UInt64] = []
                    for round in 0..<rounds {
                        let start = Stopwatch.cycles()
                        try await go.put(UInt32(round), timeout: .seconds(30))
                        for _ in 0..<Self.tasks { _ = try await acks.get(timeout: .seconds(30)) }
                        if round > 0 { cycles.append(Stopwatch.cycles() &- start) }
                    }
                    return cycles
                }
                let watch = Stopwatch()
                let samples = try await group.reduce(into: [UInt64]()) { $0 += $1 }
                return (samples, watch.nanosecondsPerCycle())
            }
        }
        if countsThreads { return .cost(Double(threads.withLock { $0 })) }
        let perTask = samples.map { Double($0) * nsPerCycle / Double(Self.tasks) }
        return RunMeasurement.latencies(perTask, mean: perTask.reduce(0, +) / Double(max(1, perTask.count))).scaled(by: 1e-3)
    }

    func child(_ session: Session) throws {
        let go = try Queue<UInt32>(inheriting: FileDescriptor(rawValue: session.descriptors[0]), capacity: 2)
        try session.spin(until: session.ping, equals: 1)
        let replies = try (0..<Self.tasks).map { index in
            try Queue<UInt32>(name: Self.replyName(getppid(), index), mode: .openExisting, capacity: 2)
        }
        try session.barrier()
        for _ in 0..<Self.rounds(session.iterations) {
            let round = try go.get(timeout: .seconds(30))
            for reply in replies { try reply.put(round, timeout: .seconds(30)) }
        }
    }

    /// This process's threads now.
    static func threadCount() -> Int {
        guard let directory = opendir("/proc/self/task") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            if entry.pointee.d_name.0 != CChar(UInt8(ascii: ".")) { count += 1 }
        }
        return count
    }
}
