import ShmIPC
import SystemPackage

/// `value.add.2proc`, `value.lockedadd.2proc`: two processes incrementing one `Value<Int>`,
/// lock-free (`add`) or through `withLock`; ns per increment over both processes.
struct ValueAdd: Scenario {
    let locked: Bool
    var name: String { locked ? "value.lockedadd.2proc" : "value.add.2proc" }
    let unit = Unit.nanosecondsPerOperation
    var summary: String { "two processes incrementing a Value<Int>" + (locked ? " through withLock" : " with add (lock-free)") }
    var defaultIterations: Int { locked ? 500_000 : 2_000_000 }

    func makeChannels() throws -> Channels {
        let value = try Value<Int>(0)
        return Channels(child: [try duplicate(value.inheritableDescriptor)], objects: [value])
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        guard let value = session.objects[0] as? Value<Int> else { throw BenchError.peerFailed("value") }
        try session.barrier()
        let watch = Stopwatch()
        try increment(value, session.iterations)
        try session.spin(until: session.pong, equals: 1)  // the child's "done" (release store)
        let elapsed = watch.elapsedNanoseconds()
        guard value.load() == 2 * session.iterations else {
            throw BenchError.peerFailed("value is \(value.load()), expected \(2 * session.iterations)")
        }
        return .cost(Double(elapsed) / Double(2 * session.iterations))
    }

    func child(_ session: Session) throws {
        let value = try Value<Int>(inheriting: FileDescriptor(rawValue: session.descriptors[0]))
        try session.barrier()
        try increment(value, session.iterations)
        session.pong.storeReleasing(1)  // pairs with the parent's acquire in spin(until:)
    }

    private func increment(_ value: Value<Int>, _ count: Int) throws {
        if locked {
            for _ in 0..<count { try value.withLock { $0 += 1 } }
        } else {
            for _ in 0..<count { value.add(1) }
        }
    }
}

/// `value.read.64B`: an uncontended torn-free read of a 64-byte `Value`, one process.
struct ValueRead64: Scenario {
    let name = "value.read.64B"
    let unit = Unit.nanosecondsPerOperation
    let summary = "uncontended torn-free read of a 64-byte Value, one process"
    let defaultIterations = 10_000_000

    func parent(_ session: Session) throws -> RunMeasurement {
        let value = try Value<Message64>(Message64(sequence: 7))
        try session.barrier()
        var sink: UInt64 = 0
        let watch = Stopwatch()
        for _ in 0..<session.iterations { sink &+= value.load().sequence }
        let elapsed = watch.elapsedNanoseconds()
        guard sink == 7 &* UInt64(session.iterations) else { throw BenchError.peerFailed("read \(sink)") }
        return .cost(Double(elapsed) / Double(session.iterations))
    }

    func child(_ session: Session) throws { try session.barrier() }
}
