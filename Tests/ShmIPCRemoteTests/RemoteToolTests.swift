import Foundation
@testable import ShmIPC
import ShmIPCRemote
import Testing

/// The operator's view: `shmipc serve` serves named objects of this host, `shmipc remote list`
/// lists them, and a wrong key exits non-zero saying authentication failed.
@Suite struct RemoteToolTests {
    static let directory: String = {
        let exe = ProcessEnvironment.executablePath
        var directory = exe[..<(exe.lastIndex(of: "/") ?? exe.startIndex)]
        if directory.hasSuffix(".xctest") { directory = directory[..<(directory.lastIndex(of: "/") ?? directory.startIndex)] }
        return String(directory)
    }()

    /// Runs `executable` to its end (a watchdog kills it past 10 minutes); its status and output.
    static func run(_ executable: String, _ arguments: [String]) async throws -> (TerminationStatus, String) {
        let child = try ChildProcess(executable: "\(directory)/\(executable)", arguments: arguments)
        let deadline = Deadline.after(RemoteObjectsTests.watchdog)
        while true {
            if let status = child.wait(deadline: .now) { return (status, child.output) }
            if deadline.hasPassed {
                Issue.record("watchdog: \(executable) \(arguments) still ran; killed")
                return (child.kill(), child.output)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    static func keyFile(_ contents: String) throws -> String {
        let path = NSTemporaryDirectory() + "shmipc-remote-tool-key-\(getpid())-\(UUID().uuidString)"
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func serveExportsNamedObjectsAndRemoteListShowsThem() async throws {
        let stem = "remote-tool-\(getpid())"
        let queueName = try SegmentName("\(stem)-jobs"), eventName = try SegmentName("\(stem)-ready")
        let jobs = try Queue<UInt64>(name: queueName, mode: .createExclusive, capacity: 8)
        defer { try? jobs.unlink() }
        let ready = try Event(name: eventName, mode: .createExclusive)
        defer { try? ready.unlink() }
        let tasksName = try SegmentName("\(stem)-tasks"), settingsName = try SegmentName("\(stem)-settings")
        let tasks = try JoinableQueue<Int>(name: tasksName, mode: .createExclusive, capacity: 4)
        defer { try? tasks.unlink() }
        let settings = try Namespace(name: settingsName, mode: .createExclusive)
        defer { try? settings.unlink() }
        try settings.set("mode", to: "fast")
        #expect(try jobs.tryPut(5))
        let key = try Self.keyFile("tool secret\n"), wrongKey = try Self.keyFile("not it")
        defer {
            try? FileManager.default.removeItem(atPath: key)
            try? FileManager.default.removeItem(atPath: wrongKey)
        }

        let server = try ChildProcess(
            executable: "\(Self.directory)/shmipc",
            arguments: ["serve", "--address", "127.0.0.1:0", "--authkey-file", key, "--export", queueName.rawValue, eventName.rawValue,
                        tasksName.rawValue, settingsName.rawValue, "--lock", "\(stem)-mutex", "--rlock", "\(stem)-rmutex"])
        defer {
            if server.status == nil { _ = server.kill() }
        }
        guard let line = try await RemoteHelper.waitForLine(server, prefix: "serving ", timeout: RemoteObjectsTests.watchdog) else {
            Issue.record("the server did not start:\n\(server.output)")
            return
        }
        let address = String(line.dropFirst("serving ".count))

        let (status, listing) = try await Self.run("shmipc", ["remote", "list", "--address", address, "--authkey-file", key])
        #expect(status == .exited(0), "\(listing)")
        let rows = listing.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(rows.contains(["\(stem)-jobs", "queue", "Swift.UInt64", "1", "8"]), "\(listing)")
        #expect(rows.contains(["\(stem)-ready", "event", "-", "0", "-"]), "\(listing)")
        #expect(rows.contains(["\(stem)-mutex", "lock", "-", "0", "-"]), "\(listing)")
        #expect(rows.contains(["\(stem)-rmutex", "rlock", "-", "0", "-"]), "\(listing)")
        #expect(rows.contains(["\(stem)-tasks", "joinable_queue", "Swift.Int", "0", "4"]), "\(listing)")
        #expect(rows.contains(["\(stem)-settings", "namespace", "-", "1", "-"]), "\(listing)")

        // The served objects are this host's: a remote put lands in the local queue.
        let client = try await RemoteManager.connect(
            to: try RemoteAddress(address), authKey: try AuthKey("tool secret"), handshakeTimeout: RemoteObjectsTests.watchdog)
        defer { client.close() }
        try await client.queue(queueName.rawValue, of: UInt64.self).put(6, timeout: .seconds(30))
        try await client.event(eventName.rawValue).set()
        #expect(jobs.count == 2)
        #expect(ready.isSet)
        try await client.joinableQueue(tasksName.rawValue, of: Int.self).put(1, timeout: .seconds(30))
        #expect(tasks.unfinishedTasks == 1)
        let remoteSettings = try await client.namespace(settingsName.rawValue)
        #expect(try await remoteSettings.value(of: "mode", as: String.self) == "fast")
        try await remoteSettings.set("mode", to: "safe")
        #expect(try settings.value(of: "mode", as: String.self) == "safe")
        let rlock = try await client.rlock("\(stem)-rmutex")
        try await rlock.acquire()
        #expect(try await rlock.acquire().depth == 2)

        let (refused, message) = try await Self.run("shmipc-remote", ["remote", "list", "--address", address, "--authkey-file", wrongKey])
        #expect(refused == .exited(3))
        #expect(message.contains("authentication failed"), "\(message)")

        server.send(SIGTERM)  // graceful: it stops
        var stopped: TerminationStatus?
        let deadline = Deadline.after(RemoteObjectsTests.watchdog)
        while stopped == nil, !deadline.hasPassed {
            stopped = server.wait(deadline: .now)
            if stopped == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(stopped == .exited(0), "\(server.output)")
    }

    @Test func serveRefusesWhatItCannotOpen() async throws {
        let name = try SegmentName("remote-tool-\(getpid())-dict")
        let dictionary = try SharedDictionary<String, Int>(name: name, mode: .createExclusive)
        defer { try? dictionary.unlink() }
        let key = try Self.keyFile("k")
        defer { try? FileManager.default.removeItem(atPath: key) }
        let (status, output) = try await Self.run(
            "shmipc-remote", ["serve", "--address", "127.0.0.1:0", "--authkey-file", key, "--export", name.rawValue])
        #expect(status == .exited(1))
        #expect(output.contains("cannot serve '\(name.rawValue)'"), "\(output)")
        let (missing, why) = try await Self.run(
            "shmipc-remote", ["serve", "--address", "127.0.0.1:0", "--authkey-file", key, "--export", "no-such-object-\(getpid())"])
        #expect(missing == .exited(1))
        #expect(why.contains("no such object"), "\(why)")
    }
}
