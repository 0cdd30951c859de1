// The other process of the remote layer's tests: `shmipc-remote-test-helper <scenario> …`.
// It exits when its standard input ends, so a test that dies leaves no helper behind (the
// test holds the pipe's other end); tests end it earlier with SIGKILL, by pid.
import Foundation
import ShmIPC
import ShmIPCRemote
import ShmIPCTestSupport

@main
enum RemoteHelper {
    static func main() async {
        // A remote pool's worker host's own workers are this program too.
        Multiprocessing.bootstrap(TestEntries.all)
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard !arguments.isEmpty else { fail("usage: shmipc-remote-test-helper <scenario> [arguments…]") }
        let scenario = arguments.removeFirst()
        // Standard input's end (the test went away) ends this process.
        Thread.detachNewThread {
            var byte: UInt8 = 0
            while read(0, &byte, 1) > 0 {}
            exit(3)
        }
        do {
            switch scenario {
            case "hold-lock":
                // hold-lock ADDRESS KEY NAME LEASE_MS: holds the lease lock NAME, renewing it,
                // until killed; prints "held TOKEN" once it has it.
                guard arguments.count == 4, let lease = Int64(arguments[3]) else { fail("hold-lock ADDRESS KEY NAME LEASE_MS") }
                let manager = try await RemoteManager.connect(to: try RemoteAddress(arguments[0]), authKey: try AuthKey(arguments[1]))
                let lock = try await manager.lock(arguments[2])
                try await lock.withLock(lease: .milliseconds(lease), timeout: .seconds(600)) { grant in
                    say("held \(grant.token)")
                    try await Task.sleep(for: .seconds(3600))
                }
            case "bridge":
                // bridge ADDRESS KEY OUTBOX CAPACITY REMOTE NAME: forwards the SPSCQueue<UInt64>
                // OUTBOX into the remote queue REMOTE until OUTBOX is closed and drained; prints
                // "bridging" once connected, "bridged" at the end.
                guard arguments.count == 6, let capacity = Int(arguments[3]) else { fail("bridge ADDRESS KEY OUTBOX CAPACITY REMOTE NAME") }
                let outbox = try SPSCQueue<UInt64>(name: try SegmentName(arguments[2]), mode: .openExisting, capacity: capacity)
                let manager = try await RemoteManager.connect(to: try RemoteAddress(arguments[0]), authKey: try AuthKey(arguments[1]))
                defer { manager.close() }
                let remote = try await manager.queue(arguments[4], of: UInt64.self)
                say("bridging")
                try await QueueBridge(name: arguments[5], from: outbox, to: remote, batchSize: 64, window: 4).run()
                say("bridged")
            case "put":
                // put ADDRESS KEY NAME VALUE…: puts each UInt64 into the remote queue NAME,
                // then prints "put N".
                guard arguments.count >= 4 else { fail("put ADDRESS KEY NAME VALUE…") }
                let manager = try await RemoteManager.connect(to: try RemoteAddress(arguments[0]), authKey: try AuthKey(arguments[1]))
                defer { manager.close() }
                let queue = try await manager.queue(arguments[2], of: UInt64.self)
                let values = arguments.dropFirst(3).compactMap { UInt64($0) }
                for value in values { try await queue.put(value, timeout: .seconds(60)) }
                say("put \(values.count)")
            case "get-waiting":
                // get-waiting ADDRESS KEY NAME: prints "getting", then waits (up to 10 minutes)
                // for an item of the remote queue NAME and prints "got ITEM".
                guard arguments.count == 3 else { fail("get-waiting ADDRESS KEY NAME") }
                let manager = try await RemoteManager.connect(to: try RemoteAddress(arguments[0]), authKey: try AuthKey(arguments[1]))
                defer { manager.close() }
                let queue = try await manager.queue(arguments[2], of: UInt64.self)
                say("getting")
                say("got \(try await queue.get(timeout: .seconds(600)))")
            case "pool-worker":
                // pool-worker ADDRESS KEY PROCESSES NAME [threads]: a RemotePool's worker host,
                // with PROCESSES local workers (or as many threads), serving until killed.
                guard (4...5).contains(arguments.count), let processes = Int(arguments[2]),
                      arguments.count == 4 || arguments[4] == "threads"
                else { fail("pool-worker ADDRESS KEY PROCESSES NAME [threads]") }
                let worker = RemoteWorker(
                    connectingTo: try RemoteAddress(arguments[0]), authKey: try AuthKey(arguments[1]),
                    workers: arguments.count == 5 ? .threads(processes) : .processes(processes), name: arguments[3])
                say("working")
                try await worker.run()
            default:
                fail("unknown scenario '\(scenario)'")
            }
        } catch {
            fail("\(scenario): \(error)")
        }
        exit(0)
    }

    static func say(_ line: String) {
        print(line)
        fflush(nil)  // all streams: `stdout` is a C global Swift 6 will not touch
    }

    static func fail(_ message: String) -> Never {
        say("FAIL: \(message)")
        exit(1)
    }
}
