import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
@testable import ShmIPC
@testable import ShmIPCRemote
import SystemPackage
import Testing

/// The remote kinds beyond queues and dictionaries (lease locks, values, events, semaphores)
/// and the streamed queue paths, over loopback.
@Suite struct RemoteObjectsTests {
    static let key = try! AuthKey("objects secret")
    static let watchdog = RemoteManagerTests.watchdog

    /// A manager serving `exports` on loopback while `body` runs with a client of it.
    static func withClient(
        _ exports: (RemoteManager) throws -> Void,
        _ body: (_ client: RemoteManagerClient, _ address: RemoteAddress) async throws -> Void
    ) async throws {
        let manager = RemoteManager(address: try RemoteAddress("127.0.0.1:0"), authKey: key)
        try exports(manager)
        let serving = Task { try await manager.run() }
        defer { serving.cancel() }
        let address = try await manager.listeningAddress
        let client = try await RemoteManager.connect(to: address, authKey: key, handshakeTimeout: watchdog)
        defer { client.close() }
        try await body(client, address)
    }

    /// `body`'s result, or a failure once `watchdog` has passed: a stream that stops short
    /// fails its test instead of hanging it.
    static func withinWatchdog<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: watchdog)
                return nil
            }
            defer { group.cancelAll() }
            guard let result = try await group.next()! else { throw RemoteError.timedOut }
            return result
        }
    }

    /// `count` items from `queue`'s get stream, within the watchdog.
    static func take<Element: Codable & Sendable>(_ count: Int, from queue: RemoteQueue<Element>, maxBatch: Int) async throws -> [Element] {
        try await withinWatchdog {
            var received: [Element] = []
            for try await item in queue.elements(maxBatch: maxBatch) {
                received.append(item)
                if received.count == count { break }
            }
            return received
        }
    }

    /// A queue far smaller than the stream (both sides wait), and one larger than a batch.
    @Test(arguments: [(64, 100, 50), (4096, 256, 256)])
    func aStreamedPutAndAStreamedTakeMoveManyItemsInOrder(capacity: Int, putBatch: Int, getBatch: Int) async throws {
        let queue = try Queue<UInt64>(capacity: capacity)
        try await Self.withClient({ $0.export("items", queue) }) { client, _ in
            let remote = try await client.queue("items", of: UInt64.self)
            let count = 20_000
            let putting = Task { try await remote.put(contentsOf: Array(1...UInt64(count)), batchSize: putBatch) }
            let received = try await Self.take(count, from: remote, maxBatch: getBatch)
            #expect(try await putting.value == count)
            #expect(received == Array(1...UInt64(count)))
            #expect(queue.count == 0)
        }
    }

    /// An iteration that ended stops its stream on the server: it takes nothing more.
    @Test func anEndedIterationTakesNoMoreItems() async throws {
        let queue = try Queue<UInt64>(capacity: 64)
        try await Self.withClient({ $0.export("items", queue) }) { client, _ in
            let remote = try await client.queue("items", of: UInt64.self)
            try await queue.put(1)
            #expect(try await Self.take(1, from: remote, maxBatch: 256) == [1])
            // The server's stream was waiting for a second item; its cancellation must reach it.
            var waited: Duration = .zero
            while waited < Self.watchdog {
                try await Task.sleep(for: .milliseconds(100))
                waited += .milliseconds(100)
                if try await client.list().first(where: { $0.name == "items" })?.count == 0, waited >= .seconds(1) { break }
            }
            try await queue.put(2)
            try await Task.sleep(for: .milliseconds(500))
            #expect(queue.count == 1, "an ended stream took the item")
            #expect(try queue.tryGet() == 2)
        }
    }

    /// A waiting call whose client gave up (its task cancelled) ends its wait on the server:
    /// it takes neither the next item nor the next permit.
    @Test func anAbandonedWaitTakesNothingOnTheServer() async throws {
        let queue = try Queue<UInt64>(capacity: 4)
        let semaphore = try ShmIPC.Semaphore(value: 0)
        try await Self.withClient({
            $0.export("items", queue)
            $0.export("permits", semaphore)
        }) { client, _ in
            let remoteQueue = try await client.queue("items", of: UInt64.self)
            let remoteSemaphore = try await client.semaphore("permits")
            let getting = Task { try await remoteQueue.get() }
            let acquiring = Task { try await remoteSemaphore.acquire() }
            try await Task.sleep(for: .milliseconds(300))  // both waiting on the server
            getting.cancel()
            acquiring.cancel()
            _ = await getting.result
            _ = await acquiring.result
            try await Task.sleep(for: .seconds(1))  // the cancellations reach the server
            try await queue.put(7)
            try semaphore.release()
            try await Task.sleep(for: .milliseconds(500))
            #expect(queue.count == 1, "an abandoned get took the item")
            #expect(semaphore.currentValue == 1, "an abandoned acquire took the permit")
            if queue.count == 1 { #expect(try await remoteQueue.get(timeout: Self.watchdog) == 7) }
        }
    }

    @Test func aResentNumberedBatchIsPutOnceAndAnOlderStreamIsSuperseded() async throws {
        let queue = try Queue<UInt64>(capacity: 64)
        try await Self.withClient({ $0.export("items", queue) }) { _, address in
            let (grpc, session) = try await Client.open(address, authKey: Self.key, timeout: Self.watchdog)
            defer { grpc.beginGracefulShutdown() }
            let objects = Shmipc_Remote_V1_Objects.Client(wrapping: grpc)
            let metadata: Metadata = [Handshake.sessionKey: .string(session)]
            let stream = Data((0..<16).map { UInt8($0) })
            func batch(_ first: UInt64, _ items: [UInt64], packed: Bool = false) -> Shmipc_Remote_V1_QueuePutBatch {
                .with {
                    $0.name = "items"
                    $0.type = String(reflecting: UInt64.self)
                    $0.firstSequence = first
                    if packed {
                        $0.packed = Data(try! BinaryMessageCoder().encode(items))
                    } else {
                        $0.items = items.map { Data(try! BinaryMessageCoder().encode($0)) }
                    }
                    $0.streamID = stream
                }
            }
            func send(_ batches: [Shmipc_Remote_V1_QueuePutBatch]) async throws -> [Shmipc_Remote_V1_QueueAck] {
                try await objects.queuePutStream(metadata: metadata) { writer in
                    for batch in batches { try await writer.write(batch) }
                } onResponse: { response in
                    var acks: [Shmipc_Remote_V1_QueueAck] = []
                    for try await ack in response.messages { acks.append(ack) }
                    return acks
                }
            }
            let first = try await send([batch(1, [10, 20, 30])])
            #expect(first.map(\.throughSequence) == [3])
            // A sender restarted after a crash resends from its oldest unacknowledged item.
            let resent = try await send([batch(2, [20, 30, 40]), batch(5, [50])])
            #expect(resent.map(\.throughSequence) == [4, 5])
            #expect(resent.map(\.duplicates) == [2, 0])
            var items: [UInt64] = []
            while let item = try queue.tryGet() { items.append(item) }
            #expect(items == [10, 20, 30, 40, 50])

            // Two streams with one id: the newer takes it over, the older's next batch fails.
            let (older, olderWriter) = AsyncStream.makeStream(of: Shmipc_Remote_V1_QueuePutBatch.self)
            let olderCall = Task {
                try await objects.queuePutStream(metadata: metadata) { writer in
                    for await batch in older { try await writer.write(batch) }
                } onResponse: { response in
                    var through: [UInt64] = []
                    for try await ack in response.messages { through.append(ack.throughSequence) }
                    return through
                }
            }
            olderWriter.yield(batch(6, [60]))
            #expect(try await queue.get(timeout: Self.watchdog) == 60)  // the older stream has its id
            #expect(try await send([batch(7, [70])]).map(\.throughSequence) == [7])
            olderWriter.yield(batch(8, [80]))
            olderWriter.finish()
            await #expect(throws: RPCError.self) { _ = try await olderCall.value }
            #expect(try queue.tryGet() == 70)
            #expect(try queue.tryGet() == nil)  // 80 came on the superseded stream: refused

            // A first batch that names no queue is refused; the server serves on.
            await #expect(throws: RPCError.self) {
                _ = try await send([.with { $0.items = [Data([1])] }])
            }
            #expect(try await send([batch(8, [80])]).map(\.throughSequence) == [8])
            // Packed batches are numbered and deduplicated the same way.
            let packed = try await send([batch(9, [90, 100], packed: true), batch(10, [100, 110], packed: true)])
            #expect(packed.map(\.throughSequence) == [10, 11])
            #expect(packed.map(\.duplicates) == [0, 1])
            items = []
            while let item = try queue.tryGet() { items.append(item) }
            #expect(items == [80, 90, 100, 110])
        }
    }

    @Test func aLeaseRunsOutAndTheNextHolderGetsALargerToken() async throws {
        let lock = LeaseLock()
        try await Self.withClient({ $0.export("mutex", lock) }) { client, address in
            let remote = try await client.lock("mutex")
            let asked = ContinuousClock.now  // the server granted after this, so the lease ends 300 ms after it at the earliest
            let first = try await remote.acquire(lease: .milliseconds(300))
            // Another client waits past the lease, then has it with a larger token.
            let other = try await RemoteManager.connect(to: address, authKey: Self.key, handshakeTimeout: Self.watchdog)
            defer { other.close() }
            let second = try await other.lock("mutex").acquire(lease: .seconds(60), timeout: Self.watchdog)
            #expect(ContinuousClock.now - asked >= .milliseconds(300))
            #expect(second.token > first.token)
            // The first holder's lease is gone: renewing or releasing it says so.
            await #expect(throws: RemoteError.leaseLost("mutex")) { try await remote.renew(first) }
            await #expect(throws: RemoteError.leaseLost("mutex")) { try await remote.release(first) }
            // Held: a wait of none times out; a release hands it on at once.
            await #expect(throws: RemoteError.timedOut) { _ = try await remote.acquire(timeout: .zero) }
            let waiting = Task { try await remote.acquire(lease: .seconds(60), timeout: Self.watchdog) }
            try await other.lock("mutex").release(second)
            let third = try await waiting.value
            #expect(third.token == second.token + 1)
            try await remote.release(third)
            #expect(!lock.isLocked)
        }
    }

    @Test func withLockRenewsTheLeaseWhileItsBodyRuns() async throws {
        let lock = LeaseLock()
        try await Self.withClient({ $0.export("mutex", lock) }) { client, _ in
            let remote = try await client.lock("mutex")
            // A lease long enough that a renewal (every third of it) late by a loaded machine's
            // scheduling still lands in time: 600 ms lost it once in a CI run beside a build.
            let token = try await remote.withLock(lease: .seconds(2)) { grant in
                try await Task.sleep(for: .seconds(7))  // past three leases
                await #expect(throws: RemoteError.timedOut) { _ = try await remote.acquire(timeout: .zero) }
                return grant.token
            }
            #expect(!lock.isLocked)
            #expect(try await remote.acquire(timeout: .zero).token == token + 1)
        }
    }

    /// A holder SIGKILLed while it holds and renews a lease: the next client gets the lock once
    /// the lease has run out (no sooner), with a larger token. Ten kills at random instants.
    @Test func aKilledHoldersLeaseGoesToTheNextClientWithALargerToken() async throws {
        let leaseMilliseconds = 900
        let lease: Duration = .milliseconds(leaseMilliseconds)
        let lock = LeaseLock()
        try await Self.withClient({ $0.export("mutex", lock) }) { client, address in
            let remote = try await client.lock("mutex")
            var lastToken: UInt64 = 0
            for _ in 0..<10 {
                let holder = try RemoteHelper.start(["hold-lock", address.description, "objects secret", "mutex", "\(leaseMilliseconds)"])
                defer { holder.end() }
                guard let line = try await RemoteHelper.waitForLine(holder.child, prefix: "held ", timeout: Self.watchdog),
                      let held = UInt64(line.dropFirst(5))
                else {
                    Issue.record("the holder did not report its grant:\n\(holder.child.output)")
                    return
                }
                #expect(held > lastToken)
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...1500)))  // a renewal or two, or none
                let killed = ContinuousClock.now
                holder.child.send(SIGKILL)
                _ = holder.child.wait(deadline: .after(Self.watchdog))
                let grant = try await remote.acquire(lease: .seconds(60), timeout: Self.watchdog)
                // The last renewal came about a third of the lease before the kill (more if the
                // machine stalled the holder; the bound leaves it 600 ms).
                #expect(ContinuousClock.now - killed >= lease / 3)
                #expect(grant.token > held)
                try await remote.release(grant)
                lastToken = grant.token
            }
        }
    }

    /// A server that stops gives typed errors, never a hang; once it is back on the same
    /// address, the same client works again (its connection comes back, and a new handshake
    /// answers the new server's not knowing the session).
    @Test func aRestartedServerIsUnavailableThenServesTheSameClientAgain() async throws {
        let queue = try Queue<UInt64>(capacity: 8)
        func serve(_ address: RemoteAddress) -> (RemoteManager, Task<Void, any Error>) {
            let manager = RemoteManager(address: address, authKey: Self.key)
            manager.export("items", queue)
            return (manager, Task { try await manager.run() })
        }
        // A port outside this machine's ephemeral range: while this server is down, no other
        // test's connection or port-0 listener can take it, and the client's own reconnection
        // cannot connect to itself (a source port equal to the port it dials).
        var (manager, serving) = serve(try Self.restartableAddress())
        var firstBound: RemoteAddress?
        for _ in 0..<50 where firstBound == nil {
            do { firstBound = try await manager.listeningAddress } catch RemoteError.unavailable {
                serving.cancel()
                (manager, serving) = serve(try Self.restartableAddress())
            }
        }
        let address = try #require(firstBound)
        defer { if address.description.hasPrefix("unix:") { unlink(String(address.description.dropFirst("unix:".count))) } }
        let client = try await RemoteManager.connect(to: address, authKey: Self.key, handshakeTimeout: Self.watchdog, callTimeout: .seconds(20))
        defer { client.close() }
        let remote = try await client.queue("items", of: UInt64.self)
        try await remote.put(1, timeout: .seconds(5))

        serving.cancel()
        _ = await serving.result
        do {
            try await remote.put(2, timeout: .seconds(5))
            Issue.record("a put to a stopped server did not fail")
        } catch let error as RemoteError {
            switch error {
            case .unavailable, .timedOut: break
            default: Issue.record("a stopped server: \(error)")
            }
        }

        // The old server's sockets close as its connections end: the address may take a moment.
        var attempts = 0
        while true {
            (manager, serving) = serve(address)
            do {
                #expect(try await manager.listeningAddress == address)
                break
            } catch RemoteError.unavailable where attempts < 300 {
                attempts += 1
                try await Task.sleep(for: .milliseconds(100))
            } catch {
                Issue.record("the address stayed taken for 30 s: \(error)\nits sockets:\n\(Self.socketsOnPort(of: address))")
                throw error
            }
        }
        defer { serving.cancel() }
        var delivered = false
        for _ in 0..<600 where !delivered {  // the client's reconnection backs off: up to a minute
            do {
                try await remote.put(3, timeout: .seconds(5))
                delivered = true
            } catch RemoteError.unavailable {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(delivered)
        var items: [UInt64] = []
        while let item = try queue.tryGet() { items.append(item) }
        #expect(items == [1, 3])
    }

    /// A loopback address for a server that stops and comes back: a TCP port outside the
    /// kernel's ephemeral range (`net.ipv4.ip_local_port_range`, 32768–60999 by default), or a
    /// Unix socket if that range leaves no room.
    static func restartableAddress() throws -> RemoteAddress {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) } ?? []
        let (low, high) = range.count == 2 ? (range[0], range[1]) : (32_768, 60_999)
        if low - 1 >= 10_000 {
            return try RemoteAddress("127.0.0.1:\(Int.random(in: max(10_000, low - 12_000)..<low))")
        }
        if high + 1 <= 64_000 {
            return try RemoteAddress("127.0.0.1:\(Int.random(in: (high + 1)...min(65_535, high + 12_000)))")
        }
        return try RemoteAddress("unix:\(NSTemporaryDirectory())shmipc-restart-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock")
    }

    /// The lines of /proc/net/tcp whose local or remote port is `address`'s (a failure's report).
    static func socketsOnPort(of address: RemoteAddress) -> String {
        guard let port = address.description.split(separator: ":").last.flatMap({ Int($0) }) else { return "(not TCP)" }
        let hex = String(format: ":%04X", port)
        let lines = ((try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)) ?? "").split(separator: "\n")
        return lines.filter { $0.contains(hex + " ") }.joined(separator: "\n")
    }

    /// Random bytes as the requests of every method, and one over the size limit: each refused
    /// or answered, none touching the objects, the server serving on.
    @Test func fuzzedAndOversizedRequestsAreRefusedAndTheServerServesOn() async throws {
        struct Raw: MessageSerializer, MessageDeserializer {
            func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
            func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] { bytes.withUnsafeBytes { Array($0) } }
        }
        let queue = try Queue<UInt64>(capacity: 8)
        let counts = try SharedDictionary<String, Int>()
        try counts.setValue(1, forKey: "a")
        #expect(try queue.tryPut(7))
        let manager = RemoteManager(address: try RemoteAddress("127.0.0.1:0"), authKey: Self.key, maxMessageSize: 1024)
        manager.export("items", queue)
        manager.export("counts", counts)
        let serving = Task { try await manager.run() }
        defer { serving.cancel() }
        let address = try await manager.listeningAddress
        let (grpc, session) = try await Client.open(address, authKey: Self.key, timeout: Self.watchdog)
        defer { grpc.beginGracefulShutdown() }
        let metadata: Metadata = [Handshake.sessionKey: .string(session)]
        var options = CallOptions.defaults
        options.timeout = .seconds(60)
        let methods = Shmipc_Remote_V1_Objects.Method.descriptors.filter {
            // Unary methods only: the streams are fuzzed by the same decoding of each message.
            !["QueuePutStream", "QueueGetStream"].contains($0.method)
        }
        var generator = SystemRandomNumberGenerator()
        var refused = 0
        for round in 0..<400 {
            let size = round == 0 ? 16_384 : Int.random(in: 0...200, using: &generator)  // the first over the limit
            let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let method = methods[round % methods.count]
            do {
                _ = try await grpc.unary(
                    request: ClientRequest(message: bytes, metadata: metadata), descriptor: method, serializer: Raw(), deserializer: Raw(),
                    options: options) { try $0.message }
            } catch let error as RPCError {
                refused += 1
                // Over the limit, the server's transport resets the stream (the client reads
                // that as unavailable; grpc-swift says resourceExhausted where it can).
                if round == 0 { #expect([.resourceExhausted, .unavailable].contains(error.code), "\(error)") }
                #expect(error.code != .unknown, "\(method.method): \(error)")
            }
        }
        #expect(refused > 200)
        // Untouched, and served as before.
        #expect(queue.count == 1)
        #expect(try counts.value(forKey: "a") == 1)
        let client = try await RemoteManager.connect(to: address, authKey: Self.key, maxMessageSize: 1024, handshakeTimeout: Self.watchdog)
        defer { client.close() }
        #expect(try await client.queue("items", of: UInt64.self).get(timeout: .seconds(5)) == 7)
    }

    @Test func valuesEventsAndSemaphoresWorkByName() async throws {
        let value = try ShmIPC.Value<Int64>(5)
        let event = try Event()
        let semaphore = try ShmIPC.Semaphore(value: 1, maximum: 2)
        try await Self.withClient({
            $0.export("v", value)
            $0.export("e", event)
            $0.export("s", semaphore)
        }) { client, _ in
            let remoteValue = try await client.value("v", of: Int64.self)
            #expect(try await remoteValue.load() == 5)
            #expect(try await remoteValue.exchange(9) == 5)
            #expect(value.load() == 9)
            await #expect(throws: RemoteError.typeMismatch(expected: String(reflecting: Int32.self), found: String(reflecting: Int64.self))) {
                _ = try await client.value("v", of: Int32.self)
            }

            let remoteEvent = try await client.event("e")
            #expect(try await !remoteEvent.isSet)
            #expect(try await !remoteEvent.wait(timeout: .milliseconds(50)))
            let waiting = Task { try await remoteEvent.wait(timeout: Self.watchdog) }
            event.set()  // a local set wakes the remote waiter
            #expect(try await waiting.value)
            try await remoteEvent.clear()
            #expect(!event.isSet)
            try await remoteEvent.set()
            #expect(event.isSet)

            let remoteSemaphore = try await client.semaphore("s")
            try await remoteSemaphore.acquire(timeout: .seconds(5))
            #expect(semaphore.currentValue == 0)
            await #expect(throws: RemoteError.timedOut) { try await remoteSemaphore.acquire(timeout: .milliseconds(50)) }
            try await remoteSemaphore.release(2)
            #expect(try await remoteSemaphore.currentValue == 2)
            await #expect(throws: RemoteError.self) { try await remoteSemaphore.release() }  // past its maximum
            #expect(semaphore.currentValue == 2)

            await #expect(throws: RemoteError.refused("'v' is a value, not a lock")) { _ = try await client.lock("v") }
        }
    }
}

/// Runs `shmipc-remote-test-helper` (built beside the test bundle) with its standard input a
/// pipe this process holds: the helper exits when the pipe ends, so a test that dies leaves no
/// helper behind.
enum RemoteHelper {
    static let path: String = {
        let exe = ProcessEnvironment.executablePath
        var directory = exe[..<(exe.lastIndex(of: "/") ?? exe.startIndex)]
        if directory.hasSuffix(".xctest") { directory = directory[..<(directory.lastIndex(of: "/") ?? directory.startIndex)] }
        return "\(directory)/shmipc-remote-test-helper"
    }()

    struct Running {
        let child: ChildProcess
        let stdin: FileDescriptor

        /// Kills the helper if it still runs, reaps it, and closes its input.
        func end() {
            if child.status == nil {
                child.send(SIGKILL)
                _ = child.wait(deadline: .after(.seconds(60)))
            }
            try? stdin.close()
        }
    }

    static func start(_ arguments: [String]) throws -> Running {
        let (read, write) = try Sys.makePipe().get()
        defer { try? read.close() }
        let child = try ChildProcess(executable: path, arguments: arguments, descriptors: [(read, 0)])
        return Running(child: child, stdin: write)
    }

    /// The first output line that starts with `prefix`, waiting at most `timeout` (nil if the
    /// helper exited first or the time ran out). Sleeps between looks, so the in-process
    /// server it talks to keeps the cooperative pool's threads.
    static func waitForLine(_ child: ChildProcess, prefix: String, timeout: Duration) async throws -> String? {
        let deadline = Deadline.after(timeout)
        func line() -> String? { child.output.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }).map(String.init) }
        while true {
            let exited = child.wait(deadline: .now) != nil  // collects the output so far
            if let line = line() { return line }
            if exited || deadline.hasPassed { return nil }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
