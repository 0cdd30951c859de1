import BenchShim
import Glibc
import ShmIPC
import SystemPackage

/// An inheritable segment for a C reference's shared state (a ring, a queue), kept alive by the
/// parent for the run and attached by the child.
final class ReferenceSegment {
    let memory: SharedMemory
    let base: UnsafeMutableRawPointer  // inside `memory`, which this object owns

    init(size: Int) throws {
        memory = try SharedMemory(inheritableSize: size)
        base = memory.withUnsafeMutableBytes { $0.baseAddress! }
    }

    init(inheriting fd: Int32) throws {
        memory = try SharedMemory(inheriting: FileDescriptor(rawValue: fd))
        base = memory.withUnsafeMutableBytes { $0.baseAddress! }
    }

    func channels() throws -> Channels {
        Channels(child: [try duplicate(memory.inheritableDescriptor)], objects: [self])
    }

    static func parentSide(_ session: Session) throws -> ReferenceSegment {
        guard let segment = session.objects.first as? ReferenceSegment else { throw BenchError.peerFailed("reference segment") }
        return segment
    }
}

/// Deadlines for the C loops, in cycle-counter ticks: they cannot read Swift's clock.
enum CycleDeadline {
    /// Ticks per second, calibrated once against the monotonic clock (20 ms).
    static let ticksPerSecond: Double = {
        let watch = Stopwatch()
        Sys.sleep(.milliseconds(20))
        return 1e9 / watch.nanosecondsPerCycle()
    }()

    /// A deadline `seconds` from now.
    static func after(seconds: Double) -> UInt64 {
        Stopwatch.cycles() &+ UInt64(seconds * ticksPerSecond)
    }
}

/// The short form of a byte count in row names: 8B, 512B, 4KiB, 1MiB.
enum SizeLabel {
    static func of(_ bytes: Int) -> String {
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20)MiB" }
        if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10)KiB" }
        return "\(bytes)B"
    }
}

/// `throughput.ref.spsc.<size>[.batch32]`, `throughput.ref.copy.<size>`: the classic C SPSC ring (cached indices, one release
/// store per item or per batch) at the capacity and item size of the ShmIPC row it is paired
/// with. The child produces, the parent consumes and times the lot.
struct ReferenceSPSCThroughput: Scenario {
    let itemSize: Int
    let batch: Int
    var capacity = 8192
    var defaultIterations = 20_000_000
    /// A size-sweep reference (`throughput.ref.copy.<size>`): the ring holds as many bytes as
    /// the Connection it is paired with (`capacity` items of `itemSize`).
    var sweep = false
    let unit = Unit.messagesPerSecond
    var name: String {
        sweep ? "throughput.ref.copy.\(SizeLabel.of(itemSize))"
            : "throughput.ref.spsc.\(itemSize)B" + (batch > 1 ? ".batch\(batch)" : "")
    }
    var summary: String {
        "C reference: classic SPSC ring, \(SizeLabel.of(itemSize)) items, \(capacity) slots, "
            + (batch > 1 ? "batches of \(batch)" : "one release store per item")
    }

    func makeChannels() throws -> Channels {
        let segment = try ReferenceSegment(size: shmipc_ref_spsc_size(UInt64(capacity), UInt64(itemSize)))
        shmipc_ref_spsc_init(segment.base.assumingMemoryBound(to: shmipc_ref_spsc.self), UInt64(capacity), UInt64(itemSize))
        return try segment.channels()
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        let ring = try ReferenceSegment.parentSide(session).base.assumingMemoryBound(to: shmipc_ref_spsc.self)
        var sum: UInt64 = 0
        try session.barrier()
        let watch = Stopwatch()
        guard shmipc_ref_spsc_consume(ring, UInt64(session.iterations), UInt64(batch), CycleDeadline.after(seconds: 60), &sum) == 0 else {
            throw BenchError.peerTimedOut("reference ring")
        }
        let elapsed = watch.elapsedNanoseconds()
        try expectSequenceSum(sum, session.iterations)
        return .rate(Double(session.iterations) / (Double(elapsed) / 1e9))
    }

    func child(_ session: Session) throws {
        let segment = try ReferenceSegment(inheriting: session.descriptors[0])
        let ring = segment.base.assumingMemoryBound(to: shmipc_ref_spsc.self)
        try session.barrier()
        guard shmipc_ref_spsc_produce(ring, UInt64(session.iterations), UInt64(batch), CycleDeadline.after(seconds: 60)) == 0 else {
            throw BenchError.peerTimedOut("reference ring")
        }
    }
}

/// `throughput.ref.mpmc.8B`: Vyukov's bounded MPMC queue in C, one producer process and one
/// consumer process, one put and one get per item, at the ShmIPC row's capacity.
struct ReferenceMPMCThroughput: Scenario {
    var capacity = 8192
    let name = "throughput.ref.mpmc.8B"
    let unit = Unit.messagesPerSecond
    var summary: String { "C reference: Vyukov's bounded MPMC queue, 8-byte items, \(capacity) cells, one put and one get each" }
    let defaultIterations = 20_000_000

    func makeChannels() throws -> Channels {
        let segment = try ReferenceSegment(size: shmipc_ref_mpmc_size(UInt64(capacity)))
        shmipc_ref_mpmc_init(segment.base.assumingMemoryBound(to: shmipc_ref_mpmc.self), UInt64(capacity))
        return try segment.channels()
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        let queue = try ReferenceSegment.parentSide(session).base.assumingMemoryBound(to: shmipc_ref_mpmc.self)
        var sum: UInt64 = 0
        try session.barrier()
        let watch = Stopwatch()
        guard shmipc_ref_mpmc_consume(queue, UInt64(session.iterations), CycleDeadline.after(seconds: 60), &sum) == 0 else {
            throw BenchError.peerTimedOut("reference queue")
        }
        let elapsed = watch.elapsedNanoseconds()
        try expectSequenceSum(sum, session.iterations)
        return .rate(Double(session.iterations) / (Double(elapsed) / 1e9))
    }

    func child(_ session: Session) throws {
        let segment = try ReferenceSegment(inheriting: session.descriptors[0])
        let queue = segment.base.assumingMemoryBound(to: shmipc_ref_mpmc.self)
        try session.barrier()
        guard shmipc_ref_mpmc_produce(queue, UInt64(session.iterations), CycleDeadline.after(seconds: 60)) == 0 else {
            throw BenchError.peerTimedOut("reference queue")
        }
    }
}

/// `rtt.ref.spin`: the spin floor in C, with `pause` in the wait loops: a counter on one shared
/// line ping-ponged by two busy-spinning processes, each round trip timed.
struct ReferenceSpinFloor: Scenario {
    let name = "rtt.ref.spin"
    let unit = Unit.nanoseconds
    let summary = "C reference: round trip of a counter on one shared cache line, both sides spinning with pause"
    let defaultIterations = 200_000

    func parent(_ session: Session) throws -> RunMeasurement {
        let warmup = RoundTripSampler.warmup(for: session.iterations)
        var cycles = [UInt64](repeating: 0, count: session.iterations)
        try session.barrier()
        let watch = Stopwatch()
        let code = cycles.withUnsafeMutableBufferPointer { buffer in
            shmipc_ref_spin_ping(
                session.sharedAddress, UInt64(warmup), UInt64(session.iterations), buffer.baseAddress!,
                CycleDeadline.after(seconds: 60))
        }
        guard code == 0 else { throw BenchError.peerTimedOut("reference spin") }
        let nsPerCycle = watch.nanosecondsPerCycle()
        let timed = cycles.reduce(0, &+)
        return .latencies(cycles.map { Double($0) * nsPerCycle }, mean: Double(timed) * nsPerCycle / Double(session.iterations))
    }

    func child(_ session: Session) throws {
        try session.barrier()
        let total = session.iterations + RoundTripSampler.warmup(for: session.iterations)
        guard shmipc_ref_spin_pong(session.sharedAddress, UInt64(total), CycleDeadline.after(seconds: 60)) == 0 else {
            throw BenchError.peerTimedOut("reference spin")
        }
    }
}

/// `rtt.ref.spsc`: the 8-byte ping-pong over two classic C SPSC rings of 64 slots, one each
/// way, both sides spinning: the shape of `rtt.queue.spsc.spin`, and what the best ring code
/// of its kind pays over `rtt.ref.spin` (each leg moves the slot's line and the tail's, where
/// the floor moves one line).
struct ReferenceSPSCRoundTrip: Scenario {
    let name = "rtt.ref.spsc"
    let unit = Unit.nanoseconds
    let summary = "C reference: 8-byte ping-pong over two classic SPSC rings (64 slots), both sides spinning with pause"
    let defaultIterations = 200_000
    static let capacity: UInt64 = 64

    /// The two rings, one after the other (each a whole number of cache-line pairs).
    static var ringSize: Int { shmipc_ref_spsc_size(capacity, 8) }

    func makeChannels() throws -> Channels {
        let segment = try ReferenceSegment(size: 2 * Self.ringSize)
        for k in 0..<2 {
            shmipc_ref_spsc_init((segment.base + k * Self.ringSize).assumingMemoryBound(to: shmipc_ref_spsc.self), Self.capacity, 8)
        }
        return try segment.channels()
    }

    static func rings(_ segment: ReferenceSegment) -> (there: UnsafeMutablePointer<shmipc_ref_spsc>, back: UnsafeMutablePointer<shmipc_ref_spsc>) {
        (segment.base.assumingMemoryBound(to: shmipc_ref_spsc.self),
         (segment.base + ringSize).assumingMemoryBound(to: shmipc_ref_spsc.self))
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        let (there, back) = Self.rings(try ReferenceSegment.parentSide(session))
        let warmup = RoundTripSampler.warmup(for: session.iterations)
        var cycles = [UInt64](repeating: 0, count: session.iterations)
        try session.barrier()
        let watch = Stopwatch()
        let code = cycles.withUnsafeMutableBufferPointer { buffer in
            shmipc_ref_spsc_ping(there, back, UInt64(warmup), UInt64(session.iterations), buffer.baseAddress!,
                                 CycleDeadline.after(seconds: 60))
        }
        guard code == 0 else { throw code == -2 ? BenchError.peerFailed("reference rings: a wrong answer") : BenchError.peerTimedOut("reference rings") }
        let nsPerCycle = watch.nanosecondsPerCycle()
        let timed = cycles.reduce(0, &+)
        return .latencies(cycles.map { Double($0) * nsPerCycle }, mean: Double(timed) * nsPerCycle / Double(session.iterations))
    }

    func child(_ session: Session) throws {
        let segment = try ReferenceSegment(inheriting: session.descriptors[0])
        let (there, back) = Self.rings(segment)
        try session.barrier()
        let total = session.iterations + RoundTripSampler.warmup(for: session.iterations)
        guard shmipc_ref_spsc_pong(there, back, UInt64(total), CycleDeadline.after(seconds: 60)) == 0 else {
            throw BenchError.peerTimedOut("reference rings")
        }
    }
}

/// `atomic.ref.add.2proc`: both processes fetch-add one shared counter in a C loop.
struct ReferenceAtomicAdd: Scenario {
    let name = "atomic.ref.add.2proc"
    let unit = Unit.nanosecondsPerOperation
    let summary = "C reference: two processes fetch-adding one shared counter (ns per increment, both sides)"
    let defaultIterations = 2_000_000

    func parent(_ session: Session) throws -> RunMeasurement {
        try session.barrier()
        let watch = Stopwatch()
        shmipc_ref_add(session.sharedAddress, UInt64(session.iterations))
        try session.spin(until: session.pong, equals: 1)  // the child's "done" (release store)
        let elapsed = watch.elapsedNanoseconds()
        let total = session.shared.loadAcquiring()
        guard total == UInt64(2 * session.iterations) else {
            throw BenchError.peerFailed("counter is \(total), expected \(2 * session.iterations)")
        }
        return .cost(Double(elapsed) / Double(2 * session.iterations))
    }

    func child(_ session: Session) throws {
        try session.barrier()
        shmipc_ref_add(session.sharedAddress, UInt64(session.iterations))
        session.pong.storeReleasing(1)  // publishes the increments; pairs with the parent's acquire
    }
}
