import Glibc
import ShmIPC
import SystemPackage

/// A message the throughput scenarios move: made from its sequence number, which the
/// consumer's checksum adds up. A protocol, not a closure: the C references build their items
/// inline, and an indirect call per item was part of what the rows measured.
protocol BenchMessage: BitwiseCopyable {
    init(sequence: UInt64)
    var sequence: UInt64 { get set }
}

extension UInt64: BenchMessage {
    @inline(__always) init(sequence: UInt64) { self = sequence }
    @inline(__always) var sequence: UInt64 {
        get { self }
        set { self = newValue }
    }
}

/// A 64-byte message for the throughput scenarios, built afresh for each put as the C
/// references build theirs (the sequence, then zeros). In 16-byte vectors, so the compiler
/// makes the first from the sequence in a register (`movq`) and stores all four straight into
/// the slot. As eight words (a tuple of `UInt64`), the message went through the stack: the
/// sequence stored as 8 bytes, then reloaded by a 16-byte load for the copy into the slot,
/// which waits for the store to retire (a store-forwarding stall on every put, which the C
/// loop does not pay): 0.41× the C ring's 64-byte items that way, 0.72× this way, in the same
/// invocations. Keeping one buffer and setting its sequence had the same stall.
struct Message64: BenchMessage {
    var head: SIMD2<UInt64> = .zero
    var rest: (SIMD2<UInt64>, SIMD2<UInt64>, SIMD2<UInt64>) = (.zero, .zero, .zero)
    @inline(__always) init(sequence: UInt64) { head = SIMD2(sequence, 0) }
    @inline(__always) var sequence: UInt64 {
        get { head[0] }
        set { head[0] = newValue }
    }
}

/// `rtt.queue.spsc.<strategy>`: an 8-byte ping-pong over two SPSC queues, one each way, both
/// endpoints with the same wait strategy.
struct SPSCRoundTrip: Scenario {
    let label: String
    let strategy: WaitStrategy
    var name: String { "rtt.queue.spsc.\(label)" }
    let unit = Unit.nanoseconds
    var summary: String { "8-byte ping-pong over two SPSC queues, wait strategy \(label)" }
    var defaultIterations: Int { strategy == .park ? 20_000 : 200_000 }
    static let capacity = 64

    func makeChannels() throws -> Channels { try Self.makePair() }

    /// Two SPSC queues of ``capacity``, "there" and "back", handed to the child in that order
    /// (also the async round trip's).
    static func makePair() throws -> Channels {
        let there = try SPSCQueue<UInt64>(capacity: capacity), back = try SPSCQueue<UInt64>(capacity: capacity)
        return Channels(child: [try duplicate(there.inheritableDescriptor), try duplicate(back.inheritableDescriptor)],
                        objects: [there, back])
    }

    /// The child's side of ``makePair()``.
    static func attachPair(_ session: Session) throws -> (there: SPSCQueue<UInt64>, back: SPSCQueue<UInt64>) {
        (try SPSCQueue<UInt64>(inheriting: FileDescriptor(rawValue: session.descriptors[0]), capacity: capacity),
         try SPSCQueue<UInt64>(inheriting: FileDescriptor(rawValue: session.descriptors[1]), capacity: capacity))
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        guard let there = session.objects[0] as? SPSCQueue<UInt64>, let back = session.objects[1] as? SPSCQueue<UInt64> else {
            throw BenchError.peerFailed("queues")
        }
        var producer = try there.makeProducer(waitStrategy: strategy)
        var consumer = try back.makeConsumer(waitStrategy: strategy)
        try session.barrier()
        return try RoundTripSampler.measure(
            iterations: session.iterations, warmup: RoundTripSampler.warmup(for: session.iterations)
        ) { i in
            try producer.put(UInt64(i), timeout: .seconds(30))
            _ = try consumer.get(timeout: .seconds(30))
        }
    }

    func child(_ session: Session) throws {
        let (there, back) = try Self.attachPair(session)
        var consumer = try there.makeConsumer(waitStrategy: strategy)
        var producer = try back.makeProducer(waitStrategy: strategy)
        try session.barrier()
        for _ in 0..<(session.iterations + RoundTripSampler.warmup(for: session.iterations)) {
            try producer.put(try consumer.get(timeout: .seconds(30)) &+ 1, timeout: .seconds(30))
        }
    }
}

/// `rtt.queue.mpmc.spin`: the same ping-pong over two MPMC queues, spinning.
struct MPMCRoundTrip: Scenario {
    let name = "rtt.queue.mpmc.spin"
    let unit = Unit.nanoseconds
    let summary = "8-byte ping-pong over two MPMC queues, wait strategy spin"
    let defaultIterations = 200_000
    static let capacity = 64

    func makeChannels() throws -> Channels {
        let there = try Queue<UInt64>(capacity: Self.capacity, waitStrategy: .spin)
        let back = try Queue<UInt64>(capacity: Self.capacity, waitStrategy: .spin)
        return Channels(child: [try duplicate(there.inheritableDescriptor), try duplicate(back.inheritableDescriptor)],
                        objects: [there, back])
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        guard let there = session.objects[0] as? Queue<UInt64>, let back = session.objects[1] as? Queue<UInt64> else {
            throw BenchError.peerFailed("queues")
        }
        try session.barrier()
        return try RoundTripSampler.measure(
            iterations: session.iterations, warmup: RoundTripSampler.warmup(for: session.iterations)
        ) { i in
            try there.put(UInt64(i), timeout: .seconds(30))
            _ = try back.get(timeout: .seconds(30))
        }
    }

    func child(_ session: Session) throws {
        let there = try Queue<UInt64>(inheriting: FileDescriptor(rawValue: session.descriptors[0]), capacity: Self.capacity, waitStrategy: .spin)
        let back = try Queue<UInt64>(inheriting: FileDescriptor(rawValue: session.descriptors[1]), capacity: Self.capacity, waitStrategy: .spin)
        try session.barrier()
        for _ in 0..<(session.iterations + RoundTripSampler.warmup(for: session.iterations)) {
            try back.put(try there.get(timeout: .seconds(30)) &+ 1, timeout: .seconds(30))
        }
    }
}

/// `throughput.queue.<kind>.<size>`: the child puts messages one `put` each; the parent takes
/// them one `get` each and times the lot (messages per second). A `bounded` row's capacity is
/// below its ring's power of two (5,000 of 8,192 slots): every put also checks the bound.
struct QueueThroughput<Message: BenchMessage>: Scenario {
    let spsc: Bool
    let label: String
    var bounded = false
    /// Both ends spin (never park), as the C references do; otherwise the default strategy.
    var spinning = false
    var name: String {
        "throughput.queue.\(spsc ? "spsc" : "mpmc").\(label)\(bounded ? ".bounded" : "")\(spinning ? ".spin" : "")"
    }
    let unit = Unit.messagesPerSecond
    var summary: String {
        "\(label) messages through an \(spsc ? "SPSC" : "MPMC") queue, one put and one get each"
            + (bounded ? ", capacity 5000 (ring 8192)" : "") + (spinning ? ", both ends spinning" : "")
    }
    var strategy: WaitStrategy { spinning ? .spin : .default }
    let defaultIterations = 20_000_000
    var capacity: Int { bounded ? 5000 : 8192 }

    func makeChannels() throws -> Channels {
        let queue: AnyObject = spsc
            ? try SPSCQueue<Message>(capacity: capacity) : try Queue<Message>(capacity: capacity, waitStrategy: strategy)
        let fd = spsc ? (queue as! SPSCQueue<Message>).inheritableDescriptor : (queue as! Queue<Message>).inheritableDescriptor
        return Channels(child: [try duplicate(fd)], objects: [queue])
    }

    // Specialized: reached through `any Scenario`, the generic body would otherwise call the
    // queues' unspecialized generic put/get (and a metadata accessor) on every message.
    @_specialize(where Message == UInt64)
    @_specialize(where Message == Message64)
    func parent(_ session: Session) throws -> RunMeasurement {
        var sink: UInt64 = 0
        let watch: Stopwatch
        if spsc {
            guard let queue = session.objects[0] as? SPSCQueue<Message> else { throw BenchError.peerFailed("queue") }
            var consumer = try queue.makeConsumer(waitStrategy: strategy)
            try session.barrier()
            watch = Stopwatch()
            for _ in 0..<session.iterations { sink &+= try consumer.get(timeout: .seconds(30)).sequence }
        } else {
            guard let queue = session.objects[0] as? Queue<Message> else { throw BenchError.peerFailed("queue") }
            try session.barrier()
            watch = Stopwatch()
            for _ in 0..<session.iterations { sink &+= try queue.get(timeout: .seconds(30)).sequence }
        }
        let elapsed = watch.elapsedNanoseconds()
        let expected = UInt64(session.iterations) * UInt64(session.iterations - 1) / 2
        guard sink == expected else { throw BenchError.peerFailed("checksum \(sink), expected \(expected)") }
        return .rate(Double(session.iterations) / (Double(elapsed) / 1e9))
    }

    @_specialize(where Message == UInt64)
    @_specialize(where Message == Message64)
    func child(_ session: Session) throws {
        let fd = FileDescriptor(rawValue: session.descriptors[0])
        if spsc {
            var producer = try SPSCQueue<Message>(inheriting: fd, capacity: capacity).makeProducer(waitStrategy: strategy)
            try session.barrier()
            for i in 0..<UInt64(session.iterations) { try producer.put(Message(sequence: i), timeout: .seconds(30)) }
        } else {
            let queue = try Queue<Message>(inheriting: fd, capacity: capacity, waitStrategy: strategy)
            try session.barrier()
            for i in 0..<UInt64(session.iterations) { try queue.put(Message(sequence: i), timeout: .seconds(30)) }
        }
    }
}

/// `cpu.queue.idle`: CPU used by a consumer parked (default strategy) on an empty queue for
/// 2 s, in percent of one core, from the consumer's own rusage.
struct IdleConsumerCPU: Scenario {
    let name = "cpu.queue.idle"
    let unit = Unit.percentOfCore
    let summary = "CPU of a consumer waiting 2 s on an empty queue (default strategy), % of one core"
    let defaultIterations = 1
    static let wait: Duration = .seconds(2)

    func makeChannels() throws -> Channels {
        let queue = try Queue<UInt64>(capacity: 64)
        return Channels(child: [try duplicate(queue.inheritableDescriptor)], objects: [queue])
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        try session.barrier()
        let done = Deadline.after(Self.wait + .seconds(60))
        while session.pong.loadAcquiring() == 0 {  // pairs with the child's release store
            if done.hasPassed { throw BenchError.peerTimedOut("idle consumer") }
            Sys.sleep(.milliseconds(10))
        }
        let cpu = Double(session.childResult.loadAcquiring())
        let wall = Double(session.ping.loadAcquiring())
        return .cost(cpu / wall * 100)
    }

    func child(_ session: Session) throws {
        let queue = try Queue<UInt64>(inheriting: FileDescriptor(rawValue: session.descriptors[0]), capacity: 64)
        try session.barrier()
        let cpuBefore = Self.cpuNanoseconds(), wallBefore = Deadline.now
        let outcome = Result { () throws(QueueError) in try queue.get(timeout: Self.wait) }
        guard outcome == .failure(.timedOut) else { throw BenchError.peerFailed("idle get ended with \(outcome)") }
        session.childResult.storeRelaxed(Self.cpuNanoseconds() - cpuBefore)  // published by pong
        session.ping.storeRelaxed(Deadline.now.uptimeNanoseconds - wallBefore.uptimeNanoseconds)
        session.pong.storeReleasing(1)
    }

    static func cpuNanoseconds() -> UInt64 {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let micros = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000 + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec
        return UInt64(micros) * 1000
    }
}

/// `throughput.queue.spsc.<size>.batch32`: the SPSC queue's batch calls: the child puts 32
/// messages per `put(contentsOf:)` (one publish and one wake-up check each), the parent takes
/// up to 32 per `get(into:)`. Paired with the C ring's batches of 32.
struct QueueBatchThroughput<Message: BenchMessage>: Scenario {
    let label: String
    static var batch: Int { 32 }
    var name: String { "throughput.queue.spsc.\(label).batch32" }
    let unit = Unit.messagesPerSecond
    var summary: String { "\(label) messages through an SPSC queue, put(contentsOf:) and get(into:) of 32" }
    let defaultIterations = 20_000_000
    let capacity = 8192

    func makeChannels() throws -> Channels {
        let queue = try SPSCQueue<Message>(capacity: capacity)
        return Channels(child: [try duplicate(queue.inheritableDescriptor)], objects: [queue])
    }

    @_specialize(where Message == UInt64)
    @_specialize(where Message == Message64)
    func parent(_ session: Session) throws -> RunMeasurement {
        guard let queue = session.objects[0] as? SPSCQueue<Message> else { throw BenchError.peerFailed("queue") }
        var consumer = try queue.makeConsumer()
        let buffer = UnsafeMutableBufferPointer<Message>.allocate(capacity: Self.batch)
        defer { buffer.deallocate() }
        var sink: UInt64 = 0
        try session.barrier()
        let watch = Stopwatch()
        var taken = 0
        while taken < session.iterations {
            let want = min(Self.batch, session.iterations - taken)
            let count = try consumer.get(into: UnsafeMutableBufferPointer(rebasing: buffer[..<want]), timeout: .seconds(30))
            for index in 0..<count { sink &+= buffer[index].sequence }
            taken += count
        }
        let elapsed = watch.elapsedNanoseconds()
        try expectSequenceSum(sink, session.iterations)
        return .rate(Double(session.iterations) / (Double(elapsed) / 1e9))
    }

    @_specialize(where Message == UInt64)
    @_specialize(where Message == Message64)
    func child(_ session: Session) throws {
        var producer = try SPSCQueue<Message>(inheriting: FileDescriptor(rawValue: session.descriptors[0]), capacity: capacity).makeProducer()
        let buffer = UnsafeMutableBufferPointer<Message>.allocate(capacity: Self.batch)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: Message(sequence: 0))  // then only the sequences change, a whole batch before its copy
        try session.barrier()
        var next = 0
        while next < session.iterations {
            let count = min(Self.batch, session.iterations - next)
            for index in 0..<count { buffer[index].sequence = UInt64(next + index) }
            try producer.put(contentsOf: UnsafeBufferPointer(rebasing: buffer[..<count]), timeout: .seconds(30))
            next += count
        }
    }
}
