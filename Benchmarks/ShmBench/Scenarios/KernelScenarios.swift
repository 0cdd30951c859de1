import CShim
import Glibc
import ShmIPC

/// The kernel transports ShmIPC is compared against, measured by the same harness.
enum KernelTransport: String {
    case pipe
    case socketpair

    /// Close-on-exec: the child gets only the ends it is handed. Per side: [read, write] for pipes, [socket] for a socketpair (one descriptor both ways).
    func makeChannels() throws -> Channels {
        switch self {
        case .pipe:
            var toChild: [Int32] = [-1, -1]
            var toParent: [Int32] = [-1, -1]
            guard shmipc_pipe_cloexec(&toChild, 0) == 0, shmipc_pipe_cloexec(&toParent, 0) == 0 else { throw BenchError.system("pipe", .init(rawValue: errno)) }
            return Channels(parent: [toParent[0], toChild[1]], child: [toChild[0], toParent[1]])
        case .socketpair:
            var pair: [Int32] = [-1, -1]
            guard Glibc.socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw BenchError.system("socketpair", .init(rawValue: errno))
            }
            return Channels(parent: [pair[0]], child: [pair[1]])
        }
    }
}

/// Reads exactly `count` bytes (a message may arrive in pieces); EOF means the peer died.
@inline(__always)
func readFully(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) throws {
    var done = 0
    while done < count {
        let n = read(fd, buffer + done, count - done)
        if n > 0 { done += n; continue }
        if n == -1 && errno == EINTR { continue }
        throw n == 0 ? BenchError.peerFailed("EOF") : BenchError.system("read", .init(rawValue: errno))
    }
}

/// Writes all `count` bytes.
@inline(__always)
func writeFully(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) throws {
    var done = 0
    while done < count {
        let n = write(fd, buffer + done, count - done)
        if n > 0 { done += n; continue }
        if n == -1 && errno == EINTR { continue }
        throw BenchError.system("write", .init(rawValue: errno))
    }
}

/// `rtt.pipe`, `rtt.socketpair`: an 8-byte message there and back through the kernel.
struct KernelRoundTrip: Scenario {
    let transport: KernelTransport
    var name: String { "rtt.\(transport.rawValue)" }
    let unit = Unit.nanoseconds
    var summary: String { "8-byte ping-pong over a \(transport.rawValue)" }
    let defaultIterations = 20_000

    func makeChannels() throws -> Channels { try transport.makeChannels() }

    func parent(_ session: Session) throws -> RunMeasurement {
        let input = session.descriptors[0]
        let output = session.descriptors.count > 1 ? session.descriptors[1] : input
        var message: UInt64 = 0
        try session.barrier()
        return try RoundTripSampler.measure(
            iterations: session.iterations, warmup: RoundTripSampler.warmup(for: session.iterations)
        ) { i in
            message = UInt64(i)
            try writeFully(output, &message, 8)
            try readFully(input, &message, 8)
        }
    }

    func child(_ session: Session) throws {
        let input = session.descriptors[0]
        let output = session.descriptors.count > 1 ? session.descriptors[1] : input
        var message: UInt64 = 0
        try session.barrier()
        let total = session.iterations + RoundTripSampler.warmup(for: session.iterations)
        for _ in 0..<total {
            try readFully(input, &message, 8)
            message &+= 1
            try writeFully(output, &message, 8)
        }
    }
}

/// `throughput.pipe.<size>`: the child writes messages of one size, one write(2) each; the
/// parent reads each message whole (as a message transport must) and times the lot.
struct PipeThroughput: Scenario {
    let messageSize: Int
    let label: String
    let defaultIterations: Int
    var name: String { "throughput.pipe.\(label)" }
    let unit = Unit.messagesPerSecond
    var summary: String { "\(label) messages through a pipe, one write and one whole-message read each" }

    init(messageSize: Int, label: String, defaultIterations: Int) {
        self.messageSize = messageSize
        self.label = label
        self.defaultIterations = defaultIterations
    }

    func makeChannels() throws -> Channels {
        var ends: [Int32] = [-1, -1]
        guard shmipc_pipe_cloexec(&ends, 0) == 0 else { throw BenchError.system("pipe", .init(rawValue: errno)) }
        return Channels(parent: [ends[0]], child: [ends[1]])
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: messageSize, alignment: 64)
        defer { buffer.deallocate() }
        try session.barrier()
        let watch = Stopwatch()
        for _ in 0..<session.iterations {
            try readFully(session.descriptors[0], buffer, messageSize)
        }
        let elapsed = watch.elapsedNanoseconds()
        return .rate(Double(session.iterations) / (Double(elapsed) / 1e9))
    }

    func child(_ session: Session) throws {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: messageSize, alignment: 64)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0x5A, count: messageSize)
        try session.barrier()
        for _ in 0..<session.iterations {
            try writeFully(session.descriptors[0], buffer, messageSize)
        }
    }
}
