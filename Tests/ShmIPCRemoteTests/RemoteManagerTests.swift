import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import ShmIPC
@testable import ShmIPCRemote
import Testing

/// A remote Manager over loopback: exported objects by name, proxies with the local method
/// names, typed errors, and nothing touched for a wrong name, type or key.
@Suite struct RemoteManagerTests {
    static let key = try! AuthKey("manager secret")
    /// Every wait, the handshake's included (see RemoteConnectionTests.watchdog).
    static let watchdog: Duration = .seconds(600)

    /// A manager exporting `jobs` (a Queue<UInt64> of 4) and `counts` (a SharedDictionary<String,
    /// Int>), serving on loopback while `body` runs, then stopped (cancelled, as a service group
    /// would on shutdown).
    static func withManager(
        _ body: (_ manager: RemoteManager, _ jobs: Queue<UInt64>, _ counts: SharedDictionary<String, Int>) async throws -> Void
    ) async throws {
        let jobs = try Queue<UInt64>(capacity: 4)
        let counts = try SharedDictionary<String, Int>()
        let manager = RemoteManager(address: try RemoteAddress("127.0.0.1:0"), authKey: key)
        manager.export("jobs", jobs)
        manager.export("counts", counts)
        let serving = Task { try await manager.run() }
        defer { serving.cancel() }
        try await body(manager, jobs, counts)
        serving.cancel()
        // The manager's stop, raced against the watchdog: a manager that does not stop fails
        // the test instead of hanging it.
        let stopped = await withTaskGroup(of: Bool.self) { group in
            group.addTask { _ = await serving.result; return true }
            group.addTask { (try? await Task.sleep(for: watchdog)) == nil }
            defer { group.cancelAll() }
            return await group.next() ?? false
        }
        #expect(stopped, "the manager did not stop within \(watchdog) of its cancellation")
    }

    @Test func proxiesUseTheLocalObjectsByName() async throws {
        try await Self.withManager { manager, jobs, counts in
            let client = try await RemoteManager.connect(to: try await manager.listeningAddress, authKey: Self.key, handshakeTimeout: Self.watchdog)
            defer { client.close() }
            let listing = try await client.list()
            #expect(listing.map(\.name) == ["counts", "jobs"])
            #expect(listing.first { $0.name == "jobs" } == RemoteObjectInfo(
                name: "jobs", kind: "queue", valueType: String(reflecting: UInt64.self), keyType: "", count: 0, capacity: 4, rawStride: 8))

            let remoteJobs = try await client.queue("jobs", of: UInt64.self)
            try await remoteJobs.put(41)
            try await remoteJobs.put(42, timeout: .seconds(5))
            #expect(jobs.count == 2)
            #expect(try await jobs.get(timeout: .seconds(5)) == 41)  // the local queue holds what was put remotely
            try await jobs.put(43, timeout: .seconds(5))
            #expect(try await remoteJobs.get(timeout: Self.watchdog) == 42)
            #expect(try await remoteJobs.get(timeout: Self.watchdog) == 43)

            let remoteCounts = try await client.dictionary("counts", of: [String: Int].self)
            try await remoteCounts.setValue(1, forKey: "a")
            #expect(try await remoteCounts.updateValue(2, forKey: "a") == 1)
            try counts.setValue(7, forKey: "b")
            #expect(try await remoteCounts.value(forKey: "a") == 2)
            #expect(try await remoteCounts.value(forKey: "b") == 7)
            #expect(try await remoteCounts.value(forKey: "zz") == nil)
            #expect(Set(try await remoteCounts.keys()) == ["a", "b"])
            #expect(try await remoteCounts.count == 2)
            #expect(try await remoteCounts.removeValue(forKey: "a") == 2)
            #expect(try await remoteCounts.removeValue(forKey: "a") == nil)
            #expect(try counts.value(forKey: "a") == nil)
        }
    }

    /// Written once against the shared protocols.
    static func exercise(_ queue: some AwaitableQueue<UInt64>, _ store: some KeyValueStore<String, Int>) async throws -> [Int?] {
        try await queue.put(5, timeout: .seconds(5))
        let item = try await queue.get(timeout: watchdog)
        let replaced = try await store.updateValue(Int(item), forKey: "x")
        let removed = try await store.removeValue(forKey: "x")
        return [replaced, removed, try await store.value(forKey: "x"), try await store.keys().count]
    }

    @Test func oneGenericFunctionRunsOnLocalAndRemoteObjects() async throws {
        try await Self.withManager { manager, jobs, counts in
            let client = try await RemoteManager.connect(to: try await manager.listeningAddress, authKey: Self.key, handshakeTimeout: Self.watchdog)
            defer { client.close() }
            #expect(try await Self.exercise(jobs, counts) == [nil, 5, nil, 0])
            let remote = try await Self.exercise(try await client.queue("jobs"), try await client.dictionary("counts", of: [String: Int].self))
            #expect(remote == [nil, 5, nil, 0])
        }
    }

    @Test func waitsTimeOutOnTheServerAndAFullQueueTakesNothing() async throws {
        try await Self.withManager { manager, jobs, _ in
            let client = try await RemoteManager.connect(to: try await manager.listeningAddress, authKey: Self.key, handshakeTimeout: Self.watchdog)
            defer { client.close() }
            let remoteJobs = try await client.queue("jobs", of: UInt64.self)
            let before = Deadline.after(.milliseconds(100))
            await #expect(throws: RemoteError.timedOut) { _ = try await remoteJobs.get(timeout: .milliseconds(100)) }
            #expect(before.hasPassed)
            for k in 0..<4 { try await remoteJobs.put(UInt64(k), timeout: .seconds(5)) }
            await #expect(throws: RemoteError.timedOut) { try await remoteJobs.put(99, timeout: .milliseconds(50)) }
            #expect(jobs.count == 4)
            // A get waiting on the server is answered by a local put.
            for _ in 0..<4 { _ = try await jobs.get(timeout: .seconds(5)) }
            async let waiting = remoteJobs.get(timeout: Self.watchdog)
            try await Task.sleep(for: .milliseconds(50))
            try await jobs.put(7, timeout: .seconds(5))
            #expect(try await waiting == 7)
            jobs.close()
            await #expect(throws: RemoteError.refused("closed")) { try await remoteJobs.put(1, timeout: .seconds(5)) }
        }
    }

    @Test func unknownNamesKindsAndTypesAreTypedErrorsAndTouchNothing() async throws {
        try await Self.withManager { manager, jobs, _ in
            let client = try await RemoteManager.connect(to: try await manager.listeningAddress, authKey: Self.key, handshakeTimeout: Self.watchdog)
            defer { client.close() }
            await #expect(throws: RemoteError.notFound("nosuch")) { _ = try await client.queue("nosuch", of: UInt64.self) }
            await #expect(throws: RemoteError.refused("'counts' is a dictionary, not a queue")) {
                _ = try await client.queue("counts", of: UInt64.self)
            }
            await #expect(throws: RemoteError.typeMismatch(expected: String(reflecting: Int32.self), found: String(reflecting: UInt64.self))) {
                _ = try await client.queue("jobs", of: Int32.self)
            }
            // A proxy made while the types matched, used after the export changed: the server
            // checks each call's type and leaves the object alone.
            let stale = RemoteQueue<Int32>(manager: client, name: "jobs")
            await #expect(throws: RemoteError.typeMismatch(expected: String(reflecting: UInt64.self), found: String(reflecting: Int32.self))) {
                try await stale.put(5, timeout: .seconds(5))
            }
            #expect(jobs.count == 0)
            manager.unexport("jobs")
            let gone = RemoteQueue<UInt64>(manager: client, name: "jobs")
            await #expect(throws: RemoteError.self) { try await gone.put(5, timeout: .seconds(5)) }
            #expect(jobs.count == 0)
        }
    }

    /// A manager that cannot listen (the port is taken) fails its run, and whoever waits for its
    /// address hears it too, instead of waiting forever.
    @Test func aManagerThatCannotListenSaysSoToItsAddressAskers() async throws {
        try await Self.withManager { manager, _, _ in
            let taken = try await manager.listeningAddress
            let second = RemoteManager(address: taken, authKey: Self.key)
            let run = Task { try await second.run() }
            let asking = Task { try await second.listeningAddress }
            let watchdog = Task {
                try await Task.sleep(for: Self.watchdog)
                asking.cancel()  // a hang becomes a CancellationError, which fails the check below
            }
            defer { watchdog.cancel() }
            await #expect(throws: RemoteError.self) { _ = try await asking.value }
            await #expect(throws: (any Error).self) { try await run.value }
        }
    }

    @Test func aWrongKeyOrNoSessionReachesNoObject() async throws {
        try await Self.withManager { manager, jobs, _ in
            let address = try await manager.listeningAddress
            await #expect(throws: RemoteError.authenticationFailed) {
                _ = try await RemoteManager.connect(to: address, authKey: try AuthKey("not the key"), handshakeTimeout: Self.watchdog)
            }
            // A peer that skips the handshake: refused before the handler.
            let transport = try HTTP2ClientTransport.Posix(target: address.target(), transportSecurity: .plaintext)
            try await withGRPCClient(transport: transport) { client in
                let objects = Shmipc_Remote_V1_Objects.Client(wrapping: client)
                let put = Shmipc_Remote_V1_QueuePutRequest.with {
                    $0.name = "jobs"
                    $0.item = .with {
                        $0.type = String(reflecting: UInt64.self)
                        $0.data = Data(try! BinaryMessageCoder().encode(UInt64(5)))
                    }
                }
                var code: RPCError.Code?
                do { _ = try await objects.queuePut(put) } catch let error as RPCError { code = error.code }
                #expect(code == .unauthenticated)
            }
            #expect(jobs.count == 0)
        }
    }
}
