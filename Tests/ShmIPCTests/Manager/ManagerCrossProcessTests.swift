import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import SystemPackage
import Testing

extension ShmIPCTests {
    @Suite struct ManagerCrossProcessTests {
        /// Two processes × 100k `modify` increments, on one key and spread over 1000 keys:
        /// every increment counted.
        @Test(arguments: [1, 1000])
        func incrementsFromTwoProcessesAreExact(keys: Int) throws {
            let n = 100_000
            let sut = try SharedDictionary<Int, Int>(capacity: 1 << 20)
            let start = try Barrier(parties: 2)
            let descriptors = [(sut.inheritableDescriptor!, Int32(10)), (start.inheritableDescriptor!, Int32(11))]
            let first = try Helper.start("dict-increment", ["10", "11", "\(n)", "\(keys)"], descriptors: descriptors)
            let second = try Helper.start("dict-increment", ["10", "11", "\(n)", "\(keys)"], descriptors: descriptors)
            #expect(Helper.finish(first, timeout: .seconds(120)) == .exited(0), "\(first.output)")
            #expect(Helper.finish(second, timeout: .seconds(120)) == .exited(0), "\(second.output)")
            let counts = try sut.snapshot()
            #expect(counts.count == keys)
            #expect(counts.values.reduce(0, +) == 2 * n)
            #expect(counts.values.allSatisfy { $0 == 2 * n / keys })
        }

        /// Two processes append 20k elements each to one list: all there, once, each
        /// writer's in its order.
        @Test func concurrentAppendsFromTwoProcessesAreAllPresentOnce() throws {
            let n = 20_000
            let sut = try SharedList<[UInt8]>(capacity: 16 << 20)
            let start = try Barrier(parties: 2)
            let descriptors = [(sut.inheritableDescriptor!, Int32(10)), (start.inheritableDescriptor!, Int32(11))]
            let first = try Helper.start("list-append", ["10", "11", "\(n)", "1"], descriptors: descriptors)
            let second = try Helper.start("list-append", ["10", "11", "\(n)", "2"], descriptors: descriptors)
            #expect(Helper.finish(first, timeout: .seconds(120)) == .exited(0), "\(first.output)")
            #expect(Helper.finish(second, timeout: .seconds(120)) == .exited(0), "\(second.output)")
            var next: [UInt64: UInt64] = [1: 0, 2: 0]
            for bytes in try sut.snapshot() {
                guard let (seed, counter) = StoreRecords.parseElement(bytes) else { Issue.record("a torn element"); return }
                #expect(next[seed] == counter, "writer \(seed): \(counter), expected \(String(describing: next[seed]))")
                next[seed] = counter + 1
            }
            #expect(next == [1: UInt64(n), 2: UInt64(n)])
        }

        /// The Python tutorial's shape: the parent makes a dict, a list and a Namespace, a
        /// child changes them, the parent sees the changes.
        @Test func aChildChangesADictAListAndANamespaceThatTheParentReads() throws {
            let manager = Manager(capacity: 64 << 10)
            let d: SharedDictionary<String, String> = try manager.dict(["1": "one", "0.25": "quarter"])
            let l = try manager.list(Array(0..<10))
            let ns = try manager.namespace()
            ns.x = 41
            let child = try Helper.start(
                "manager-child", ["10", "11", "12"],
                descriptors: [(d.inheritableDescriptor!, 10), (l.inheritableDescriptor!, 11), (ns.inheritableDescriptor!, 12)])
            #expect(Helper.finish(child) == .exited(0), "\(child.output)")
            #expect(try d.snapshot() == ["1": "1", "2": "2"])
            #expect(try l.snapshot() == Array((0..<10).reversed()))
            let x: Int? = ns.x, y: String? = ns.y
            #expect(x == 42 && y == "from the child")
        }

        /// A writer SIGKILLed at random instants while it inserts, replaces and removes keys
        /// and appends to and removes from a list, 100 times each for two structures (a
        /// dictionary and a list in one writer: 100 kills, each landing in either). After each
        /// kill another process checks every value whole, the anchor keys untouched, the list
        /// in order, and that it can still write (it is not wedged).
        @Test func aWriterKilledAtRandomInstantsNeverTearsLosesOrWedges() throws {
            let kills = Chaos.kills(200)
            let d = try SharedDictionary<Int, [UInt8]>(capacity: 256 << 10)
            let l = try SharedList<[UInt8]>(capacity: 256 << 10)
            let anchors = 50
            for key in 1000..<(1000 + anchors) { try d.setValue(StoreRecords.value(key: key, version: 7), forKey: key) }
            let descriptors = [(d.inheritableDescriptor!, Int32(10)), (l.inheritableDescriptor!, Int32(11))]
            var random = SystemRandomNumberGenerator()
            for round in 0..<kills {
                guard let writer = try Chaos.startRunning("store-churn", ["10", "11", "\(round + 1)"], descriptors: descriptors, round: round) else {
                    return
                }
                Sys.sleep(.microseconds(Int.random(in: 0..<3000, using: &random)))
                #expect(writer.kill() == .signaled(SIGKILL), "round \(round): \(writer.output)")
                let (status, output) = try Helper.run("store-verify", ["10", "11", "\(anchors)"], descriptors: descriptors)
                if status != .exited(0) {
                    Issue.record("round \(round): \(output)")
                    return
                }
            }
            let recoveries = d.statistics.recoveries + l.statistics.recoveries
            print("kill test: \(kills) kills, \(recoveries) repairs of a change in progress (dict \(d.statistics.recoveries), list \(l.statistics.recoveries))")
            // Most kills land inside a change (the writer does little else); at least some must.
            #expect(recoveries > 0)
        }
    }
}
