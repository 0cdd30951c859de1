import Foundation
import Glibc
@testable import ShmIPC
import Testing

extension ShmIPCTests {
    /// shm-bench end to end, at a tiny scale: every scenario of this issue runs across two
    /// processes and the JSON report has the documented schema. (No speed is asserted here:
    /// speed targets belong in the benchmark, not in tests.)
    @Suite struct ShmBenchTests {
        static let scenarios = [
            "rtt.ref.spin", "throughput.ref.spsc.8B", "throughput.ref.spsc.64B", "throughput.ref.spsc.8B.batch32",
            "throughput.ref.spsc.64B.batch32", "throughput.ref.mpmc.8B", "atomic.ref.add.2proc",
            "rtt.floor.spin", "rtt.floor.futex", "rtt.pipe", "rtt.socketpair",
            "throughput.pipe.8B", "throughput.pipe.64B", "throughput.pipe.4KiB", "throughput.pipe.1MiB",
            "atomic.floor.add.2proc",
            "lock.lock.uncontended", "lock.pthread.uncontended", "lock.rlock.uncontended",
            "lock.pthread-recursive.uncontended", "lock.counter.2proc", "lock.pthread.counter.2proc",
            "rtt.event.park",
            "rtt.queue.spsc.spin", "rtt.queue.spsc.default", "rtt.queue.spsc.park", "rtt.queue.mpmc.spin",
            "throughput.queue.spsc.8B", "throughput.queue.spsc.64B", "throughput.queue.spsc.8B.spin", "throughput.queue.spsc.64B.spin",
            "throughput.queue.spsc.8B.batch32", "throughput.queue.spsc.64B.batch32", "throughput.queue.mpmc.8B", "throughput.queue.mpmc.8B.bounded",
            "throughput.queue.mpmc.8B.spin",
            "cpu.queue.idle",
            "rtt.connection.64B", "throughput.connection.64B", "throughput.connection.4KiB", "throughput.connection.1MiB",
            "throughput.loan.1MiB",
            "value.add.2proc", "value.read.64B", "value.lockedadd.2proc",
            "process.spawn", "process.fork", "process.forkserver", "pool.map.100k", "pool.imap.chunk1", "pool.apply.rtt",
            "manager.floor.dict.get", "manager.dict.get", "manager.dict.set", "manager.dict.increment.2proc", "manager.list.append",
            "rtt.queue.spsc.async", "rtt.queue.spsc.async.park", "throughput.queue.spsc.async.8B", "queue.get.ready.sync",
            "queue.get.ready.async", "rtt.async.fanout1000", "rtt.async.fanout1000.threads",
        ]

        var benchPath: String { Helper.path.replacingOccurrences(of: "shmipc-test-helper", with: "shm-bench") }

        @Test func listNamesEveryScenario() throws {
            let child = try ChildProcess(executable: benchPath, arguments: ["--list"])
            let status = Helper.finish(child)
            #expect(status == .exited(0), "\(child.output)")
            for name in Self.scenarios { #expect(child.output.contains(name)) }
        }

        @Test func aQuickRunWritesTheDocumentedJSONSchema() throws {
            let path = "/tmp/shm-bench-test-\(getpid()).json"
            defer { unlink(path) }
            let child = try ChildProcess(
                executable: benchPath, arguments: ["--runs", "2", "--scale", "0.005", "--no-pin", "--json", path])
            let status = Helper.finish(child, timeout: .seconds(300))
            #expect(status == .exited(0), "\(child.output)")

            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let report = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let machine = try #require(report["machine"] as? [String: Any])
            #expect(machine["cpuModel"] is String)
            #expect(machine["runs"] as? Int == 2)
            let results = try #require(report["results"] as? [[String: Any]])
            #expect(results.compactMap { $0["scenario"] as? String } == Self.scenarios)
            for row in results {
                let name = row["scenario"] as? String ?? "?"
                let median = try #require(row["median"] as? Double, "\(name)")
                let low = try #require(row["min"] as? Double, "\(name)")
                let high = try #require(row["max"] as? Double, "\(name)")
                #expect(low >= 0 && low <= median && median <= high, "\(name): \(low) \(median) \(high)")
                if name != "cpu.queue.idle" { #expect(low > 0, "\(name)") }
                #expect(row["unit"] is String)
                if ["ns", "µs", "ms"].contains(row["unit"] as? String) {  // latency rows
                    let p99 = try #require(row["p99"] as? Double, "\(name)")
                    let p999 = try #require(row["p999"] as? Double, "\(name)")
                    #expect(p99 <= p999, "\(name)")
                    let mean = try #require(row["mean"] as? Double, "\(name)")
                    #expect(mean > 0, "\(name)")
                } else {
                    #expect(row["p99"] == nil, "\(name)")
                    #expect(row["mean"] == nil, "\(name)")
                }
                // A paired row names its reference, which ran in the same runs; its ratios are
                // ordered and positive, and the reference's own figures are reported with them.
                if let reference = row["reference"] as? String {
                    #expect(Self.scenarios.contains(reference), "\(name) → \(reference)")
                    let ratio = try #require(row["ratioMedian"] as? Double, "\(name)")
                    let ratioLow = try #require(row["ratioMin"] as? Double, "\(name)")
                    let ratioHigh = try #require(row["ratioMax"] as? Double, "\(name)")
                    #expect(ratioLow > 0 && ratioLow <= ratio && ratio <= ratioHigh, "\(name): \(ratioLow) \(ratio) \(ratioHigh)")
                    #expect(row["referenceMedian"] is Double, "\(name)")
                } else {
                    #expect(row["ratioMedian"] == nil, "\(name)")
                }
            }
            let paired = Set(results.compactMap { $0["reference"] != nil ? $0["scenario"] as? String : nil })
            #expect(paired.isSuperset(of: [
                "throughput.queue.spsc.8B", "throughput.queue.spsc.64B", "throughput.queue.spsc.8B.batch32",
                "throughput.queue.spsc.64B.batch32", "throughput.queue.mpmc.8B", "throughput.connection.64B",
                "rtt.queue.spsc.spin", "rtt.connection.64B", "rtt.queue.mpmc.spin", "rtt.queue.spsc.async.park",
            ]), "\(paired)")
        }

        @Test func anUnknownScenarioPrefixIsRejected() throws {
            let child = try ChildProcess(executable: benchPath, arguments: ["nosuch"])
            let status = Helper.finish(child)
            #expect(status != .exited(0))
            #expect(child.output.contains("no scenario starts with 'nosuch'"))
        }
    }
}
