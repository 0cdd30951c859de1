import Glibc
import ShmIPC
import SystemPackage

/// A pipe's configuration, so both sides attach with the same one.
struct PipeShape {
    let limit: Int
    let capacity: Int

    func make() throws -> Pipe { try Pipe(maxMessageSize: limit, capacity: capacity) }
    func attach(_ session: Session) throws -> Pipe {
        try Pipe(inheriting: FileDescriptor(rawValue: session.descriptors[0]), maxMessageSize: limit, capacity: capacity)
    }
    func channels() throws -> Channels {
        let pipe = try make()
        return Channels(child: [try duplicate(pipe.inheritableDescriptor)], objects: [pipe])
    }
    static func pipe(_ session: Session) throws -> Pipe {
        guard let pipe = session.objects[0] as? Pipe else { throw BenchError.peerFailed("pipe") }
        return pipe
    }
}

/// `rtt.connection.64B`: a 64-byte ping-pong over a duplex Pipe, default wait strategy, with
/// the copying API (`send(bytes:)`, `receive(into:)`).
struct ConnectionRoundTrip: Scenario {
    let name = "rtt.connection.64B"
    let unit = Unit.nanoseconds
    let summary = "64-byte ping-pong over a duplex Pipe (send/receive(into:)), default wait strategy"
    let defaultIterations = 200_000
    static let shape = PipeShape(limit: 64, capacity: 4096)

    func makeChannels() throws -> Channels { try Self.shape.channels() }

    func parent(_ session: Session) throws -> RunMeasurement {
        let connection = try PipeShape.pipe(session).connection(.first)
        let message = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 64)
        defer { message.deallocate() }
        message.initializeMemory(as: UInt8.self, repeating: 0x5A)
        try session.barrier()
        return try RoundTripSampler.measure(
            iterations: session.iterations, warmup: RoundTripSampler.warmup(for: session.iterations)
        ) { i in
            message.storeBytes(of: UInt64(i), as: UInt64.self)
            try connection.send(bytes: UnsafeRawBufferPointer(message), timeout: .seconds(30))
            _ = try connection.receive(into: message, timeout: .seconds(30))
        }
    }

    func child(_ session: Session) throws {
        let connection = try Self.shape.attach(session).connection(.second)
        let message = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 64)
        defer { message.deallocate() }
        try session.barrier()
        for _ in 0..<(session.iterations + RoundTripSampler.warmup(for: session.iterations)) {
            let length = try connection.receive(into: message, timeout: .seconds(30))
            try connection.send(bytes: UnsafeRawBufferPointer(rebasing: message[..<length]), timeout: .seconds(30))
        }
    }
}

/// `throughput.connection.<size>`: the child sends messages with `send(bytes:)`, the parent
/// receives each with `receive(into:)` and times the lot (messages per second).
struct ConnectionThroughput: Scenario {
    let size: Int
    let label: String
    let shape: PipeShape
    let defaultIterations: Int
    var name: String { "throughput.connection.\(label)" }
    let unit = Unit.messagesPerSecond
    var summary: String { "\(label) messages through a Pipe, send(bytes:) and receive(into:) each, ring \(SizeLabel.of(shape.capacity))" }

    func makeChannels() throws -> Channels { try shape.channels() }

    func parent(_ session: Session) throws -> RunMeasurement {
        let connection = try PipeShape.pipe(session).connection(.first)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer { buffer.deallocate() }
        var sink: UInt64 = 0
        try session.barrier()
        let watch = Stopwatch()
        for _ in 0..<session.iterations {
            _ = try connection.receive(into: buffer, timeout: .seconds(30))
            sink &+= buffer.load(as: UInt64.self)
        }
        let elapsed = watch.elapsedNanoseconds()
        try expectSequenceSum(sink, session.iterations)
        return .rate(Double(session.iterations) / (Double(elapsed) / 1e9))
    }

    func child(_ session: Session) throws {
        let connection = try shape.attach(session).connection(.second)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0x5A)
        try session.barrier()
        for i in 0..<session.iterations {
            buffer.storeBytes(of: UInt64(i), as: UInt64.self)
            try connection.send(bytes: UnsafeRawBufferPointer(buffer), timeout: .seconds(30))
        }
    }
}

/// `throughput.loan.<size>`: the child loans `size` bytes, stamps its sequence number in the
/// first word and sends it; the parent reads it in place. Like iceoryx2's benchmark, the
/// payload is written once before the timed loop (a warm-up fills the whole ring), so this
/// measures the transport alone.
struct LoanThroughput: Scenario {
    let size: Int
    let defaultIterations: Int
    var name: String { "throughput.loan.\(SizeLabel.of(size))" }
    let unit = Unit.messagesPerSecond
    var summary: String {
        "\(SizeLabel.of(size)) messages written in place (loan) and read in place, transport only, ring \(SizeLabel.of(shape.capacity))"
    }
    /// Sixteen messages' worth of ring, at least 64 KiB.
    var shape: PipeShape { PipeShape(limit: size, capacity: max(16 * size, 64 << 10)) }
    /// Enough full messages to write every byte of the ring once.
    var warmupMessages: Int { shape.capacity / RingRecordSize.of(size) + 1 }

    func makeChannels() throws -> Channels { try shape.channels() }

    func parent(_ session: Session) throws -> RunMeasurement {
        let connection = try PipeShape.pipe(session).connection(.first)
        for _ in 0..<warmupMessages { try connection.receiveInPlace(timeout: .seconds(30)) { _ in } }
        try session.barrier()
        var sink: UInt64 = 0
        let watch = Stopwatch()
        for _ in 0..<session.iterations {
            sink &+= try connection.receiveInPlace(timeout: .seconds(30)) { $0.load(as: UInt64.self) }
        }
        let elapsed = watch.elapsedNanoseconds()
        try expectSequenceSum(sink, session.iterations)
        return .rate(Double(session.iterations) / (Double(elapsed) / 1e9))
    }

    func child(_ session: Session) throws {
        let connection = try shape.attach(session).connection(.second)
        for _ in 0..<warmupMessages {
            let loan = try connection.loan(capacity: size, timeout: .seconds(30))
            _ = loan.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0x5A) }
            try connection.send(loan)
        }
        try session.barrier()
        for i in 0..<session.iterations {
            let loan = try connection.loan(capacity: size, timeout: .seconds(30))
            loan.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(i), as: UInt64.self) }
            try connection.send(loan)
        }
    }
}

/// The bytes a message of `size` takes in a Connection's ring: its 16-byte head and payload,
/// padded to 64 (as the library's ring lays records out).
enum RingRecordSize {
    static func of(_ size: Int) -> Int { (16 + size + 63) & ~63 }
}

/// Checks that the first words received add up to 0 + 1 + … + (count − 1).
func expectSequenceSum(_ sum: UInt64, _ count: Int) throws {
    let expected = UInt64(count) * UInt64(count - 1) / 2
    guard sum == expected else { throw BenchError.peerFailed("checksum \(sum), expected \(expected)") }
}
