import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOPosix
import ShmIPC
import ShmIPCRemote

/// `shm-bench-remote`: the remote layer's rows over loopback, against the gRPC engine's own
/// floor and Python's BaseManager in the same sitting. Its own executable, so that `shm-bench`
/// builds nothing of gRPC.
@main
enum Main {
    static func main() async {
        // The worker host's own pool workers are this program: they run the entry and exit here.
        Multiprocessing.bootstrap([Bench.square])
        await ShmBenchRemote.main()
    }
}

struct ShmBenchRemote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shm-bench-remote",
        abstract: "Remote rows (gRPC over loopback): ShmIPCRemote against a bare gRPC echo and Python's BaseManager.",
        subcommands: [Run.self, Serve.self, PoolWorker.self], defaultSubcommand: Run.self)
}

/// The worker host of the `remote.pool.*` rows: a RemoteWorker with `processes` local workers
/// (this program), or as many threads with `--threads`, dialling the pool host at `connect`,
/// until its standard input closes.
struct PoolWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pool-worker")
    @Option var connect: String
    @Option var processes = 2
    @Flag var threads = false
    @Option var cpu: Int?

    func run() async throws {
        if let cpu { _ = Sys.pinCurrentThread(to: cpu) }  // before any thread starts: all inherit it
        let worker = RemoteWorker(
            connectingTo: try RemoteAddress(connect), authKey: Bench.key, workers: threads ? .threads(processes) : .processes(processes),
            name: "bench")
        let serving = Task { try await worker.run() }
        _ = await Task.detached { FileHandle.standardInput.readDataToEndOfFile() }.value
        serving.cancel()
        _ = await serving.result
    }
}

/// The serving process: a RemoteManager exporting `dict` and `queue`, and a bare gRPC echo on
/// a second port (the floor). Prints "ready <manager port> <echo port>", then serves until
/// its standard input closes.
struct Serve: AsyncParsableCommand {
    @Option var cpu: Int?

    func run() async throws {
        if let cpu { _ = Sys.pinCurrentThread(to: cpu) }  // before any thread starts: all inherit it
        let dictionary = try SharedDictionary<Int, Int>()
        for k in 0..<1000 { try dictionary.setValue(k, forKey: k) }
        let queue = try Queue<UInt64>(capacity: 1024)
        let manager = RemoteManager(address: try RemoteAddress("127.0.0.1:0"), authKey: Bench.key)
        manager.export("dict", dictionary)
        manager.export("queue", queue)
        manager.export("stream", try Queue<Payload64>(capacity: 4096))
        let echo = GRPCServer(
            transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext, config: Transports.server(maxRequestBytes: 1 << 20)),
            services: [BareEcho()])
        let tcp = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await manager.run() }
            group.addTask { try await echo.serve() }
            group.addTask { try await NIOEcho.serve(tcp) }
            let managerAddress = try await manager.listeningAddress
            guard case .host(_, let managerPort) = managerAddress.kind, let echoPort = try await echo.listeningAddress?.ipv4?.port,
                  let tcpPort = tcp.channel.localAddress?.port else {
                throw ValidationError("no ports")
            }
            FileHandle.standardOutput.write(Data("ready \(managerPort) \(echoPort) \(tcpPort)\n".utf8))
            // Until the parent goes (its end of our standard input closes).
            _ = await Task.detached { FileHandle.standardInput.readDataToEndOfFile() }.value
            group.cancelAll()
            echo.beginGracefulShutdown()
        }
    }
}

/// The engine's floor: `Connections.Connect` answered by a bare echo, no handshake, no
/// interceptor (the client reads it through a `RemoteConnection`'s inbound buffer).
struct BareEcho: Shmipc_Remote_V1_Connections.SimpleServiceProtocol {
    func connect(
        request: RPCAsyncSequence<Shmipc_Remote_V1_Frame, any Error>, response: RPCWriter<Shmipc_Remote_V1_Frame>,
        context: ServerContext
    ) async throws {
        for try await frame in request { try await response.write(frame) }
    }
}

enum Bench {
    static let key = try! AuthKey("shm-bench-remote")
    /// The task of the `remote.pool.*` rows, as Python's reference: a square.
    static let square = Entry("bench.square") { (x: Int) in x * x }
}

/// The 64-byte item of `remote.queue.throughput.64B`.
struct Payload64: RawRemoteElement {
    var words: [UInt64] { [a, b, c, d, e, f, g, h] }
    var a, b, c, d, e, f, g, h: UInt64
    init(_ value: UInt64) { (a, b, c, d, e, f, g, h) = (value, value, value, value, value, value, value, value) }
}

struct Run: AsyncParsableCommand {
    @Option(help: "Runs; each row is measured once per run, paired with the floor.") var runs = 5
    @Option(help: "Calls per row per run.") var iterations = 2000
    @Option(help: "Items per run of the throughput row.") var items = 200_000
    @Option(help: "Items per batch of the throughput row's streams.") var batch = 256
    @Option(help: "The CPUs of the client and the server, as A,B.") var cpus = "0,1"
    @Option(help: "The chunk size of remote.pool.map.100k (default: the pool's, about four chunks per process).") var mapChunkSize: Int?
    @Flag(help: "Skip Python's BaseManager reference.") var noPython = false
    @Flag(help: "Do not pin the processes (each side's event-loop and task threads then use every CPU).") var noPin = false

    func run() async throws {
        let pair = cpus.split(separator: ",").compactMap { Int($0) }
        guard pair.count == 2 else { throw ValidationError("--cpus A,B") }
        if !noPin { _ = Sys.pinCurrentThread(to: pair[0]) }
        let server = Process()
        server.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        server.arguments = ["serve"] + (noPin ? [] : ["--cpu", "\(pair[1])"])
        let output = Pipe(), input = Pipe()
        server.standardOutput = output
        server.standardInput = input
        try server.run()
        defer { try? input.fileHandleForWriting.close(); server.waitUntilExit() }
        guard let line = String(data: output.fileHandleForReading.availableDataLine(), encoding: .utf8),
              case let words = line.split(separator: " "), words.count == 4, words[0] == "ready",
              let managerPort = Int(words[1]), let echoPort = Int(words[2]), let tcpPort = Int(words[3])
        else { throw ValidationError("the server did not start") }

        let client = try await RemoteManager.connect(to: try RemoteAddress("127.0.0.1:\(managerPort)"), authKey: Bench.key)
        defer { client.close() }
        let dict = try await client.dictionary("dict", of: [Int: Int].self)
        let queue = try await client.queue("queue", of: UInt64.self)
        // A pool with no local workers (every chunk crosses gRPC) and one worker host of two
        // processes, on the server's CPU.
        let (pool, workerHost) = try await remotePool(threads: false, cpu: noPin ? nil : pair[1])
        defer { workerHost.end() }
        let echoTransport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: echoPort), transportSecurity: .plaintext, config: Transports.client)
        let rows: [(String, (Int) async throws -> Void)] = [
            ("remote.dict.get", { i in _ = try await dict.value(forKey: i % 1000) }),
            ("remote.dict.set", { i in try await dict.setValue(i, forKey: i % 1000) }),
            ("remote.queue.put_get", { i in
                try await queue.put(UInt64(i), timeout: .seconds(30))
                _ = try await queue.get(timeout: .seconds(30))
            }),
            // The same put and get, both in flight at once over the one call stream (the get
            // waits on the server for the put's item): what a caller that need not wait for
            // the put's answer before asking for an item pays.
            ("remote.queue.put_get.pipelined", { i in
                async let put: Void = queue.put(UInt64(i), timeout: .seconds(30))
                async let got = queue.get(timeout: .seconds(30))
                try await put
                _ = try await got
            }),
            // One task to the worker host and its answer: the Work stream's message each way,
            // plus the worker host's own pool hop (shared memory).
            ("remote.pool.apply.rtt", { i in _ = try await pool.apply(Bench.square, i) }),
        ]
        print("shm-bench-remote: loopback, " + (noPin ? "not pinned" : "client on CPU \(pair[0]), server on CPU \(pair[1])")
            + ", \(runs) runs of \(iterations) calls")
        var medians: [String: [Double]] = [:], ratios: [String: [Double]] = [:]
        // Below gRPC: the same echo over a bare NIO TCP channel (no HTTP/2, no gRPC).
        for _ in 0..<runs { medians["remote.rtt.nio", default: []].append(try await NIOEcho.median(port: tcpPort, iterations)) }
        try await withGRPCClient(transport: echoTransport) { grpc in
            let echo = Shmipc_Remote_V1_Connections.Client(wrapping: grpc)
            let floor = EchoFloor(client: echo)
            for run in 0..<runs {
                for (name, call) in rows {
                    // The floor and the row back to back, the order alternating run by run.
                    var row = 0.0, base = 0.0
                    if run % 2 == 0 {
                        base = try await floor.median(iterations)
                        row = try await Self.median(iterations, call)
                    } else {
                        row = try await Self.median(iterations, call)
                        base = try await floor.median(iterations)
                    }
                    medians[name, default: []].append(row)
                    medians["remote.rtt.floor", default: []].append(base)
                    ratios[name, default: []].append(row / base)
                }
            }
        }
        // Throughput: one put stream and one get stream at once, 64-byte items, batched.
        let stream = try await client.queue("stream", of: Payload64.self)
        var throughput: [Double] = []
        for _ in 0..<runs { throughput.append(try await Self.throughput(stream, items: items, batch: batch)) }
        // A map of 100k squares, every chunk through the worker host (default chunks), whose
        // chunks run on its pool's processes; then the same through a worker host whose chunks
        // run on two threads of its own.
        let maps = try await mapTimes(pool, runs: runs * 4)
        await pool.terminate()
        let (threaded, threadedHost) = try await remotePool(threads: true, cpu: noPin ? nil : pair[1])
        defer { threadedHost.end() }
        let threadedMaps = try await mapTimes(threaded, runs: runs * 4)
        await threaded.terminate()
        let python = noPython ? nil : Self.python()
        let pythonRow = ["remote.dict.get": "dict.get", "remote.dict.set": "dict.set", "remote.queue.put_get": "queue.put_get",
                         "remote.queue.put_get.pipelined": "queue.put_get", "remote.pool.apply.rtt": "pool.apply.managed"]
        print("\n" + Self.pad("scenario", 32) + Self.pad("median µs", 12, right: true) + Self.pad("min", 10, right: true)
            + Self.pad("max", 10, right: true) + "   ÷ floor (min–max)   Python's time ÷ row's")
        for name in ["remote.rtt.nio", "remote.rtt.floor"] + rows.map(\.0) {
            let values = medians[name] ?? []
            var line = Self.pad(name, 32) + String(format: "%12.1f%10.1f%10.1f", Self.middle(values), values.min() ?? 0, values.max() ?? 0)
            if let r = ratios[name] {
                line += String(format: "   %6.2f (%.2f–%.2f)", Self.middle(r), r.min() ?? 0, r.max() ?? 0)
                if let python, let key = pythonRow[name], let figure = python[key] {
                    line += String(format: "   %6.1f× (Python %.1f µs)", figure / Self.middle(values), figure)
                }
            }
            print(line)
        }
        var throughputLine = Self.pad("remote.queue.throughput.64B", 30) + String(format: "%12.0f msg/s (%.0f–%.0f), batches of \(batch)",
            Self.middle(throughput), throughput.min() ?? 0, throughput.max() ?? 0)
        if let python, let figure = python["queue.throughput.64B"] {
            throughputLine += String(format: "   %6.1f× Python's (%.0f msg/s)", Self.middle(throughput) / figure, figure)
        }
        print(throughputLine)
        var mapLine = Self.pad("remote.pool.map.100k", 30) + String(format: "%12.2f ms (%.2f–%.2f), one worker host of 2 processes, no local",
            Self.middle(maps), maps.min() ?? 0, maps.max() ?? 0)
        if let python, let figure = python["pool.map.100k"] {
            mapLine += String(format: "   %6.1f× Python's local Pool(2).map (%.2f ms)", figure / Self.middle(maps), figure)
        }
        print(mapLine)
        var threadsLine = Self.pad("remote.pool.map.100k.threads", 30) + String(format: "%12.2f ms (%.2f–%.2f), one worker host of 2 threads, no local",
            Self.middle(threadedMaps), threadedMaps.min() ?? 0, threadedMaps.max() ?? 0)
        if let python, let figure = python["pool.map.100k"] {
            threadsLine += String(format: "   %6.1f× Python's local Pool(2).map (%.2f ms)", figure / Self.middle(threadedMaps), figure)
        }
        print(threadsLine)
        if python == nil && !noPython { print("(no python3 here: the Python reference was skipped)") }
    }

    /// A pool with no local workers (every chunk crosses gRPC) and one worker host, a process
    /// of this program, whose chunks run on two processes or two threads (on `cpu`, if given).
    func remotePool(threads: Bool, cpu: Int?) async throws -> (RemotePool, WorkerHost) {
        let pool = try await RemotePool.start(localProcesses: 0, address: try RemoteAddress("127.0.0.1:0"), authKey: Bench.key)
        let worker = Process()
        worker.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        worker.arguments = ["pool-worker", "--connect", pool.address.description, "--processes", "2"]
            + (threads ? ["--threads"] : []) + (cpu.map { ["--cpu", "\($0)"] } ?? [])
        let input = Pipe()
        worker.standardInput = input
        try worker.run()
        let host = WorkerHost(process: worker, input: input)
        do { try await pool.waitForWorkerHosts(1, timeout: .seconds(60)) } catch {
            host.end()
            await pool.terminate()
            throw error
        }
        return (pool, host)
    }

    /// A worker host process, which ends when its standard input closes.
    struct WorkerHost {
        let process: Foundation.Process
        let input: Foundation.Pipe
        func end() {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
    }

    /// `runs` maps of 100k squares through `pool` (after one to warm it), in milliseconds.
    func mapTimes(_ pool: RemotePool, runs: Int) async throws -> [Double] {
        let items = Array(0..<100_000)
        _ = try await pool.map(Bench.square, items, chunkSize: mapChunkSize)  // warm: the worker host's workers started
        var maps: [Double] = []
        for _ in 0..<runs {
            let start = ContinuousClock.now
            let squares = try await pool.map(Bench.square, items, chunkSize: mapChunkSize)
            let elapsed = ContinuousClock.now - start
            guard squares.count == items.count, squares[99_999] == 99_999 * 99_999 else { throw ValidationError("the map is wrong") }
            maps.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1e3)
        }
        return maps
    }

    /// Items a second through `queue`: a put stream and a get stream at once, timed from the
    /// first put to the last item read.
    static func throughput(_ queue: RemoteQueue<Payload64>, items: Int, batch: Int) async throws -> Double {
        let values = (0..<UInt64(items)).map(Payload64.init)
        let start = ContinuousClock.now
        let putting = Task { try await queue.put(contentsOf: values, batchSize: batch) }
        var received = 0, expected: UInt64 = 0
        for try await item in queue.elements(maxBatch: batch) {
            guard item.a == expected, item.h == expected else { throw ValidationError("item \(expected) arrived as \(item.words)") }
            expected += 1
            received += 1
            if received == items { break }
        }
        let elapsed = ContinuousClock.now - start
        guard try await putting.value == items else { throw ValidationError("the put stream stopped short") }
        return Double(items) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return right ? fill + text : text + fill
    }

    /// The median time of `count` calls, in µs (after a tenth as many unmeasured).
    static func median(_ count: Int, _ call: (Int) async throws -> Void) async throws -> Double {
        for i in 0..<max(10, count / 10) { try await call(i) }
        var samples = [Double](repeating: 0, count: count)
        for i in 0..<count {
            let start = ContinuousClock.now
            try await call(i)
            let elapsed = ContinuousClock.now - start
            samples[i] = Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6
        }
        return middle(samples)
    }

    static func middle(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }

    /// Python's BaseManager figures (µs a call; items a second for the throughput row), from
    /// Benchmarks/python/remote_baseline.py.
    static func python() -> [String: Double]? {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("python/remote_baseline.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["timeout", "600", "python3", script, "3"]  // a bound on a stuck reference
        let output = Pipe()
        process.standardOutput = output
        guard (try? process.run()) != nil else { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Any]] else { return nil }
        return json.compactMapValues { $0["median"] as? Double }
    }
}

/// One echo stream, held open: each round trip writes a frame and waits for it back.
final class EchoFloor: Sendable {
    let client: Shmipc_Remote_V1_Connections.Client<HTTP2ClientTransport.Posix>
    init(client: Shmipc_Remote_V1_Connections.Client<HTTP2ClientTransport.Posix>) { self.client = client }

    func median(_ count: Int) async throws -> Double {
        let connection = RemoteConnection(maxMessageSize: 1 << 16)
        let call = Task {
            try await client.connect { writer in
                connection.attach(writer)
                await connection.untilClosed()
            } onResponse: { response in
                await connection.pump(response.messages)
            }
        }
        defer {
            connection.close()
            call.cancel()
        }
        let frame: [UInt8] = Array(repeating: 7, count: 8)
        return try await Run.median(count) { _ in
            try await connection.send(bytes: frame)
            _ = try await connection.receiveBytes(timeout: .seconds(30))
        }
    }
}

extension FileHandle {
    /// Reads up to the first newline (or the end).
    func availableDataLine() -> Data {
        var line = Data()
        while true {
            let byte = readData(ofLength: 1)
            if byte.isEmpty || byte.first == 0x0A { return line }
            line.append(byte)
        }
    }
}

/// `remote.rtt.nio`: an 8-byte echo over a bare NIO TCP channel (`NIOAsyncChannel`, no HTTP/2,
/// no gRPC): what the event loop and the task hand-offs cost without the protocol.
enum NIOEcho {
    static func serve(_ server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask {
                        try? await connection.executeThenClose { inbound, outbound in
                            for try await buffer in inbound { try await outbound.write(buffer) }
                        }
                    }
                }
            }
        }
    }

    static func median(port: Int, _ count: Int) async throws -> Double {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            let message = ByteBuffer(bytes: Array(repeating: 7, count: 8))
            return try await Run.median(count) { _ in
                try await outbound.write(message)
                var received = 0
                while received < 8 {
                    guard let buffer = try await iterator.next() else { throw ValidationError("the echo closed") }
                    received += buffer.readableBytes
                }
            }
        }
    }
}
