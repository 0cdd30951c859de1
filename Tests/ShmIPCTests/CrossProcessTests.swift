import Glibc
@testable import ShmIPC
import SystemPackage
import Testing

extension ShmIPCTests {
    @Suite struct CrossProcessTests {
        @Test func aSecondProcessSeesWritesThroughANamedSegment() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try SharedMemory.create(name: name, size: 64)
            sut.withUnsafeMutableBytes { $0.storeBytes(of: 21, as: UInt64.self) }

            let (status, output) = try Helper.run("echo-named", [name.rawValue])

            #expect(status == .exited(0), "\(output)")
            #expect(output.contains("read 21 size \(Sys.pageSize)"))
            #expect(sut.withUnsafeMutableBytes { $0.load(fromByteOffset: 8, as: UInt64.self) } == 42)
            try sut.unlink()
        }

        @Test func aSecondProcessSeesWritesThroughAnInheritedSegment() throws {
            let sut = try SharedMemory(inheritableSize: 64)
            sut.withUnsafeMutableBytes { $0.storeBytes(of: 1234, as: UInt64.self) }
            let descriptor = sut.inheritableDescriptor
            let fd = try #require(descriptor)

            let (status, output) = try Helper.run("echo-inherited", ["10"], descriptors: [(fd, 10)])

            #expect(status == .exited(0), "\(output)")
            #expect(output.contains("read 1234 size \(Sys.pageSize)"))
            #expect(sut.withUnsafeMutableBytes { $0.load(fromByteOffset: 8, as: UInt64.self) } == 2468)
        }

        @Test func aFutexWakeReachesAWaiterInAnotherProcess() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try SharedMemory.create(name: name, size: 64)
            let child = try Helper.start("futex-wait", [name.rawValue])
            #expect(Helper.waitForOutput(child, containing: "waiting"))

            sut.withUnsafeMutableBytes { bytes in
                let word = SharedWord(bytes.baseAddress!.assumingMemoryBound(to: UInt32.self))
                word.storeReleasing(7)  // pairs with the acquire load in the helper's wait loop
                // Wake until the child has gone: it may not have parked yet on the first wake.
                while child.wait(deadline: .after(.milliseconds(5))) == nil && child.output.contains("saw") == false {
                    word.futex.wakeAll()
                }
            }
            let status = Helper.finish(child)
            #expect(status == .exited(0), "\(child.output)")
            #expect(child.output.contains("saw 7"))
            try sut.unlink()
        }

        @Test func theWatchdogKillsAHelperThatOverrunsItsDeadline() throws {
            let sut = try Helper.start("hang")
            #expect(Helper.waitForOutput(sut, containing: "hanging"))
            #expect(sut.wait(deadline: .after(.milliseconds(50))) == nil)
            #expect(sut.kill() == .signaled(SIGKILL))
        }

        /// A child has the descriptors it was given and the standard three, nothing else: not
        /// one this process holds without close-on-exec (every socket swift-nio opens is one),
        /// which would otherwise stay open, a listener's port held, for the child's whole life.
        @Test func aSpawnedChildInheritsOnlyTheDescriptorsItIsGiven() throws {
            var ends: [Int32] = [0, 0]
            #expect(pipe(&ends) == 0)  // plain pipe(2): no close-on-exec
            defer { close(ends[0]); close(ends[1]) }
            let (status, output) = try Helper.run("descriptors", [], descriptors: [(FileDescriptor(rawValue: ends[0]), 5)])
            #expect(status == .exited(0), "\(output)")
            #expect(output.contains("descriptors 0,1,2,5\n"), "\(output)")
        }

        /// Each descriptor arrives at its number even when sources and targets cross: two
        /// pipes' read ends, each given the other's number.
        @Test func descriptorsWhoseNumbersCrossArriveEachAtItsTarget() throws {
            var a: [Int32] = [0, 0], b: [Int32] = [0, 0]
            #expect(pipe(&a) == 0 && pipe(&b) == 0)
            defer { for fd in a + b { close(fd) } }
            #expect(write(a[1], "A", 1) == 1 && write(b[1], "B", 1) == 1)
            let (status, output) = try Helper.run(
                "read-descriptors", ["\(b[0])", "\(a[0])"],
                descriptors: [(FileDescriptor(rawValue: a[0]), b[0]), (FileDescriptor(rawValue: b[0]), a[0])])
            #expect(status == .exited(0), "\(output)")
            #expect(output.contains("read A B\n"), "\(output)")
        }

        @Test func theHelpersExitStatusIsReported() throws {
            let (status, _) = try Helper.run("exit", ["7"])
            #expect(status == .exited(7))
        }
    }
}
