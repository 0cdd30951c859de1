import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import Testing

extension ShmIPCTests {
    /// The deliberate traps: programming errors ShmIPC refuses with a precondition (as Swift's
    /// own collections trap on a bad index), each proved in a child process (exit tests). Every
    /// object here is inheritable (a memfd), so a trapping child leaves nothing in /dev/shm.
    @Suite(.tags(.awaits)) struct TrapTests {
        /// How a Swift trap ends a process here: x86-64 traps with `ud2` (SIGILL), arm64 with
        /// `brk` (SIGTRAP). A thrown error would exit with a status instead: it does not count.
        #if arch(x86_64)
        static let trap = ExitTest.Condition.signal(SIGILL)
        #else
        static let trap = ExitTest.Condition.signal(SIGTRAP)
        #endif

        // MARK: out-of-range subscripts

        @Test func aSharedArrayReadOutOfRangeTraps() async {
            await #expect(processExitsWith: Self.trap) {
                let array = try SharedArray<Int>(count: 4, repeating: 0)
                _ = array[4]
            }
            await #expect(processExitsWith: Self.trap) {
                let array = try SharedArray<Int>(count: 4, repeating: 0)
                _ = array[-1]
            }
        }

        @Test func aSharedArrayWriteOrSliceOutOfRangeTraps() async {
            await #expect(processExitsWith: Self.trap) {
                let array = try SharedArray<Int>(count: 4, repeating: 0)
                array[4] = 1
            }
            await #expect(processExitsWith: Self.trap) {
                let array = try SharedArray<Int>(count: 4, repeating: 0)
                _ = array[2..<5]
            }
        }

        @Test func aSharedListSubscriptOutOfRangeTraps() async {
            await #expect(processExitsWith: Self.trap) {
                let list = try SharedList<Int>()
                try list.append(1)
                _ = list[1]
            }
        }

        @Test func anInRangeSubscriptDoesNotTrap() async {
            // The control: the same child code with a valid index exits normally.
            await #expect(processExitsWith: .success) {
                let array = try SharedArray<Int>(count: 4, repeating: 7)
                array[3] = 8
                precondition(array[3] == 8 && array[0..<4] == [7, 7, 7, 8])
            }
        }

        // MARK: misuse preconditions

        @Test func impossibleCapacitiesAndCountsTrap() async {
            await #expect(processExitsWith: Self.trap) { _ = try Queue<Int>(capacity: 0) }
            await #expect(processExitsWith: Self.trap) { _ = try Semaphore(value: 2, maximum: 1) }
            await #expect(processExitsWith: Self.trap) { _ = try Semaphore(value: -1) }
            await #expect(processExitsWith: Self.trap) { _ = try Barrier(parties: 0) }
            await #expect(processExitsWith: Self.trap) { _ = try SharedArray<Int>(count: -1, repeating: 0) }
        }

        @Test func releasingANonPositiveCountTraps() async {
            await #expect(processExitsWith: Self.trap) {
                let semaphore = try Semaphore(value: 0)
                try semaphore.release(0)
            }
        }

        @Test func aPoolWithoutProcessesOrWithAZeroTaskQuotaTraps() async {
            await #expect(processExitsWith: Self.trap) { _ = try Pool(processes: 0) }
            await #expect(processExitsWith: Self.trap) { _ = try Pool(processes: 1, maxTasksPerChild: 0) }
        }

        @Test func twoEntriesWithOneNameTrap() async {
            await #expect(processExitsWith: Self.trap) {
                Multiprocessing.bootstrap([Entry("same") { (x: Int) in x }, Entry("same") { (x: Int) in x + 1 }])
            }
        }

        @Test func changingTheDaemonFlagOfAStartedProcessTraps() async {
            await #expect(processExitsWith: Self.trap) {
                let process = try ShmIPC.Process(TestEntries.sleeps, argument: 10, executable: Helper.path)
                try process.start()
                process.daemon = true
            }
        }

        @Test func aMisalignedFutexWordTraps() async {
            await #expect(processExitsWith: Self.trap) {
                let words = UnsafeMutablePointer<UInt32>.allocate(capacity: 2)
                _ = Futex(UnsafeMutableRawPointer(words).advanced(by: 2).assumingMemoryBound(to: UInt32.self))
            }
        }

        @Test func storingAWideValueInsideItsOwnWithLockTraps() async {
            // A value wider than a word is stored under its lock: storing it inside withLock on
            // the same thread would deadlock, so it traps and says what to do instead.
            await #expect(processExitsWith: Self.trap) {
                let value = try Value<SIMD4<Double>>(.zero)
                try value.withLock { _ in value.store(.one) }
            }
        }
    }
}
