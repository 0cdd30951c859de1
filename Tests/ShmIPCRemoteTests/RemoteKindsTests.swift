import Foundation
import GRPCCore
@testable import ShmIPC
@testable import ShmIPCRemote
import Testing

/// Joinable queues, message queues, lists, namespaces and reentrant locks, over loopback:
/// each remote call seen from the local object, and the local calls seen remotely.
@Suite struct RemoteKindsTests {
    static let watchdog = RemoteManagerTests.watchdog

    struct Point: Codable, Equatable, Sendable { var x: Int; var y: Int }

    /// The same code against a local and a remote joinable queue.
    static func putThree(_ queue: some AwaitableQueue<UInt64>) async throws {
        for item in [1, 2, 3] as [UInt64] { try await queue.put(item, timeout: watchdog) }
    }

    @Test func aJoinableQueueCountsRemotePutsAndRemoteTaskDonesAndJoins() async throws {
        let queue = try JoinableQueue<UInt64>(capacity: 16)
        try await RemoteObjectsTests.withClient({ $0.export("jobs", queue) }) { client, _ in
            let remote = try await client.joinableQueue("jobs", of: UInt64.self)
            try await Self.putThree(remote)
            #expect(queue.unfinishedTasks == 3)
            #expect(try await remote.queue.put(contentsOf: [4, 5] as [UInt64], batchSize: 1) == 2)
            #expect(queue.unfinishedTasks == 5)  // streamed puts count tasks too

            for expected in 1...4 as ClosedRange<UInt64> {
                #expect(try await remote.get(timeout: Self.watchdog) == expected)
                try await remote.taskDone()
            }
            await #expect(throws: RemoteError.timedOut) { try await remote.join(timeout: .milliseconds(50)) }
            let joining = Task { try await remote.join(timeout: Self.watchdog) }
            #expect(try await queue.get(timeout: Self.watchdog) == 5)
            try queue.taskDone()  // a local taskDone ends the remote join
            try await joining.value
            #expect(queue.unfinishedTasks == 0)
            await #expect(throws: RemoteError.refused("taskDone() called more times than items were put")) { try await remote.taskDone() }

            try await Self.putThree(queue)  // the local queue through the same protocol
            #expect(try await remote.get(timeout: Self.watchdog) == 1)
            await #expect(throws: RemoteError.refused("'jobs' is a joinable_queue, not a queue")) {
                _ = try await client.queue("jobs", of: UInt64.self)
            }
        }
    }

    @Test func aMessageQueueCarriesRawMessagesAndValuesBothWays() async throws {
        let queue = try MessageQueue(maxMessageSize: 64, capacity: 8)
        try await RemoteObjectsTests.withClient({ $0.export("mq", queue) }) { client, _ in
            let remote = try await client.messageQueue("mq")
            try await remote.put(bytes: [1, 2, 3], timeout: Self.watchdog)
            #expect(try await queue.get(timeout: Self.watchdog) == [1, 2, 3])
            try await queue.put("hello")
            #expect(try await remote.get(as: String.self, timeout: Self.watchdog) == "hello")
            try await remote.put(Point(x: 1, y: 2))
            #expect(try await queue.get(as: Point.self, timeout: Self.watchdog) == Point(x: 1, y: 2))

            await #expect(throws: RemoteError.self) { try await remote.put(bytes: [UInt8](repeating: 7, count: 65)) }
            #expect(queue.isEmpty)  // the oversized message was refused whole
            await #expect(throws: RemoteError.timedOut) { _ = try await remote.get(timeout: .milliseconds(50)) }
            await #expect(throws: RemoteError.refused("'mq' is a message_queue, not a queue")) {
                _ = try await client.queue("mq", of: UInt8.self)
            }
            queue.close()
            await #expect(throws: RemoteError.refused("closed")) { _ = try await remote.get(timeout: Self.watchdog) }
        }
    }

    @Test func aListDoesWhatTheLocalListDoes() async throws {
        let list = try SharedList<String>()
        try list.append("a")
        try await RemoteObjectsTests.withClient({ $0.export("l", list) }) { client, _ in
            let remote = try await client.list("l", of: String.self)
            try await remote.append("b")
            try await remote.append(contentsOf: ["c", "d"])
            #expect(try list.snapshot() == ["a", "b", "c", "d"])
            #expect(try await remote.element(at: 2) == "c")
            #expect(try await remote.setElement("C", at: 2) == "c")
            try await remote.insert("start", at: 0)
            #expect(try await remote.remove(at: 1) == "a")
            #expect(try await remote.popLast() == "d")
            #expect(try await remote.snapshot() == ["start", "b", "C"])
            #expect(try await remote.count == 3)
            try list.append("local")
            #expect(try await remote.element(at: 3) == "local")

            await #expect(throws: RemoteError.outOfRange("index 9 out of range 0..<4")) { _ = try await remote.element(at: 9) }
            await #expect(throws: RemoteError.outOfRange("index -1 out of range 0..<4")) { try await remote.setElement("x", at: -1) }
            await #expect(throws: RemoteError.typeMismatch(expected: String(reflecting: Int.self), found: String(reflecting: String.self))) {
                _ = try await client.list("l", of: Int.self)
            }
            #expect(try list.snapshot() == ["start", "b", "C", "local"])
            while try await remote.popLast() != nil {}
            #expect(try await remote.popLast() == nil)
            #expect(list.isEmpty)
        }
    }

    @Test func aNamespaceSharesAttributesOfAnyTypeWithLocalUsers() async throws {
        let namespace = try Namespace()
        try namespace.set("x", to: 10)
        try namespace.set("where", to: Point(x: 3, y: 4))
        try await RemoteObjectsTests.withClient({ $0.export("ns", namespace) }) { client, _ in
            let remote = try await client.namespace("ns")
            #expect(try await remote.value(of: "x", as: Int.self) == 10)
            #expect(try await remote.value(of: "where", as: Point.self) == Point(x: 3, y: 4))
            #expect(try await remote.value(of: "absent", as: Int.self) == nil)

            try await remote.set("label", to: "ready")
            try await remote.set("ratio", to: 0.5)
            try await remote.set("flag", to: true)
            try await remote.set("there", to: Point(x: -1, y: 7))
            try await remote.set("x", to: 11)
            #expect(try namespace.value(of: "label", as: String.self) == "ready")
            #expect(try namespace.value(of: "ratio", as: Double.self) == 0.5)
            #expect(try namespace.value(of: "flag", as: Bool.self) == true)
            #expect(try namespace.value(of: "there", as: Point.self) == Point(x: -1, y: 7))
            #expect(try namespace.value(of: "x", as: Int.self) == 11)
            #expect(try await Set(remote.names()) == ["x", "where", "label", "ratio", "flag", "there"])

            await #expect(throws: RemoteError.self) { _ = try await remote.value(of: "x", as: String.self) }
            do {
                _ = try await remote.value(of: "x", as: String.self)
            } catch RemoteError.typeMismatch(_, let found) {
                #expect(found == String(reflecting: String.self))
            }
            // Bytes that are not an Int, tagged as one, are refused and store nothing.
            let hostile = Shmipc_Remote_V1_NamespaceSetRequest.with {
                $0.name = "ns"
                $0.attribute = "x"
                $0.value = .with {
                    $0.type = String(reflecting: Int.self)
                    $0.data = Data([1, 2, 3])
                }
            }
            await #expect(throws: RemoteError.self) {
                _ = try await client.invoke(.namespaceSet(hostile), timeout: Self.watchdog) { _ in 0 }
            }
            #expect(try namespace.value(of: "x", as: Int.self) == 11)

            try await remote.remove("label")
            #expect(try !namespace.contains("label"))
            #expect(try await !remote.contains("label"))
        }
    }

    @Test func aReentrantLeaseLockCountsItsHoldersLevels() async throws {
        let lock = LeaseLock(defaultLease: .seconds(30), reentrant: true)
        try await RemoteObjectsTests.withClient({
            $0.export("r", lock)
            $0.export("plain", LeaseLock())
        }) { client, _ in
            let a = try await client.rlock("r"), b = try await client.rlock("r")
            let first = try await a.acquire()
            let again = try await a.acquire()
            #expect(again.token == first.token)
            #expect((first.depth, again.depth) == (1, 2))
            await #expect(throws: RemoteError.timedOut) { try await b.acquire(timeout: .milliseconds(50)) }
            #expect(try await a.release() == 1)
            await #expect(throws: RemoteError.timedOut) { try await b.acquire(timeout: .milliseconds(50)) }
            #expect(try await a.release() == 0)
            #expect(!lock.isLocked)
            await #expect(throws: RemoteError.refused("'r' is not held by this proxy")) { try await a.release() }

            let next = try await b.acquire(timeout: Self.watchdog)
            #expect(next.token > first.token)
            #expect(b.grant == next)
            #expect(try await b.release() == 0)

            // Every level goes with the lease.
            try await a.acquire(lease: .milliseconds(100))
            try await a.acquire(lease: .milliseconds(100))
            let successor = try await b.acquire(timeout: Self.watchdog)  // granted once the lease ran out
            #expect(successor.depth == 1)
            await #expect(throws: RemoteError.leaseLost("r")) { try await a.release() }
            #expect(a.grant == nil)
            try await b.release()

            await #expect(throws: RemoteError.refused("'plain' is a lock, not a rlock")) { _ = try await client.rlock("plain") }
            // The serving process takes the same lock on equal terms.
            let local = try await lock.acquire(lease: .seconds(30), timeout: Self.watchdog)
            #expect(local.token > successor.token)
            await #expect(throws: RemoteError.timedOut) { try await a.acquire(timeout: .milliseconds(50)) }
            try lock.release(local)
            #expect(throws: RemoteError.self) { try lock.release(local) }
            #expect(try await a.acquire(timeout: Self.watchdog).token > local.token)
            let misused = RemoteRLock(lock: RemoteLock(manager: client, name: "plain"))
            try await misused.acquire()
            await #expect(throws: RemoteError.refused("the lock is not reentrant")) { try await misused.acquire() }
        }
    }

    /// What a program without async does: connect, then call, each call blocking its thread.
    static func blockingWork(_ address: RemoteAddress) throws -> (Int, Int?, [String], Bool) {
        let client = try RemoteManager.connect(to: address, authKey: RemoteObjectsTests.key, handshakeTimeout: watchdog)
        defer { client.close() }
        let queue = try client.queue("q", of: Int.self)
        try queue.put(41, timeout: watchdog)
        let got = try queue.get(timeout: watchdog)
        let dictionary = try client.dictionary("d", of: [String: Int].self)
        try dictionary.setValue(7, forKey: "seven")
        let list = try client.list("l", of: String.self)
        try list.append("x")
        try client.event("e").set()
        return (got, try dictionary.value(forKey: "seven"), try list.snapshot(), try client.event("e").wait(timeout: watchdog))
    }

    /// A blocking call made where a task runs.
    static func blockingPut(_ queue: RemoteQueue<Int>) throws { try queue.put(1, timeout: watchdog) }

    @Test func theBlockingFormsWorkFromAThreadAndAreRefusedInATask() async throws {
        let queue = try Queue<Int>(capacity: 4)
        let dictionary = try SharedDictionary<String, Int>()
        let list = try SharedList<String>()
        let event = try Event()
        try await RemoteObjectsTests.withClient({
            $0.export("q", queue)
            $0.export("d", dictionary)
            $0.export("l", list)
            $0.export("e", event)
        }) { client, address in
            let outcome = await withCheckedContinuation { continuation in
                Thread { continuation.resume(returning: Result { try Self.blockingWork(address) }) }.start()
            }
            let (got, seven, items, isSet) = try outcome.get()
            #expect(got == 41)
            #expect(seven == 7)
            #expect(items == ["x"])
            #expect(isSet)
            #expect(try dictionary.value(forKey: "seven") == 7)

            let remote = try await client.queue("q", of: Int.self)
            #expect(throws: RemoteError.refused("a blocking call from a task: await the async form instead")) { try Self.blockingPut(remote) }
            #expect(queue.isEmpty)
        }
    }

    @Test func rawBatchesAreDeduplicatedAndRefusedWhereTheyDoNotFit() async throws {
        let numbers = try Queue<UInt64>(capacity: 64), points = try Queue<Point>(capacity: 128)  // room for all 100 put before any get
        try await RemoteObjectsTests.withClient({
            $0.export("numbers", numbers)
            $0.export("points", points)
        }) { client, address in
            let (grpc, session) = try await Client.open(address, authKey: RemoteObjectsTests.key, timeout: Self.watchdog)
            defer { grpc.beginGracefulShutdown() }
            let objects = Shmipc_Remote_V1_Objects.Client(wrapping: grpc)
            let stream = Data(repeating: 9, count: 16)
            func batch(_ queue: String, _ type: String, _ first: UInt64, _ raw: Data) -> Shmipc_Remote_V1_QueuePutBatch {
                .with {
                    $0.name = queue
                    $0.type = type
                    $0.firstSequence = first
                    $0.raw = raw
                    $0.streamID = stream
                }
            }
            func send(_ batches: [Shmipc_Remote_V1_QueuePutBatch]) async throws -> [Shmipc_Remote_V1_QueueAck] {
                try await objects.queuePutStream(metadata: [Handshake.sessionKey: .string(session)]) { writer in
                    for batch in batches { try await writer.write(batch) }
                } onResponse: { response in
                    var acks: [Shmipc_Remote_V1_QueueAck] = []
                    for try await ack in response.messages { acks.append(ack) }
                    return acks
                }
            }
            let type = String(reflecting: UInt64.self)
            #expect(try await send([batch("numbers", type, 1, RawForm.bytes([10, 20, 30] as [UInt64]))]).map(\.throughSequence) == [3])
            let resent = try await send([batch("numbers", type, 2, RawForm.bytes([20, 30, 40] as [UInt64]))])
            #expect(resent.map(\.throughSequence) == [4])
            #expect(resent.map(\.duplicates) == [2])
            var taken: [UInt64] = []
            while let item = try numbers.tryGet() { taken.append(item) }
            #expect(taken == [10, 20, 30, 40])

            await #expect(throws: RPCError.self) { _ = try await send([batch("numbers", type, 5, Data([1, 2, 3, 4, 5, 6, 7]))]) }
            await #expect(throws: RPCError.self) {
                _ = try await send([batch("points", String(reflecting: Point.self), 1, Data(count: 16))])
            }
            #expect(numbers.isEmpty && points.isEmpty)

            // A type with no raw form streams packed, both ways.
            let remote = try await client.queue("points", of: Point.self)
            #expect(!remote.movesRaw)
            #expect(try await remote.put(contentsOf: (0..<100).map { Point(x: $0, y: -$0) }, batchSize: 16) == 100)
            let received = try await RemoteObjectsTests.take(100, from: remote, maxBatch: 32)
            #expect(received == (0..<100).map { Point(x: $0, y: -$0) })
            #expect(try await client.queue("numbers", of: UInt64.self).movesRaw)
        }
    }
}
