import Glibc
@testable import ShmIPC
import Testing

extension ShmIPCTests {
    @Suite struct FaultInjectionTests {
        @Test func interruptedCreationCallsAreRetried() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let plan = FaultPlan()
            plan.fail(.shmOpen, with: .interrupted)
            plan.fail(.ftruncate, with: .interrupted, .interrupted)
            plan.fail(.fallocate, with: .interrupted)
            plan.fail(.mmap, with: .interrupted)

            try FaultInjection.$plan.withValue(plan) {
                let sut = try SharedMemory.create(name: name, size: 64)
                try sut.unlink()
            }

            #expect(plan.attempts(.shmOpen) == 2)
            #expect(plan.attempts(.ftruncate) == 3)
            #expect(plan.attempts(.fallocate) == 2)
            #expect(plan.attempts(.mmap) == 2)
        }

        @Test func aFullDevShmIsAClearErrorAtCreationAndLeavesNothingBehind() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let plan = FaultPlan()
            plan.fail(.fallocate, with: .noSpace)

            #expect(throws: SharedMemoryError.noSpace(bytes: 8192)) {
                try FaultInjection.$plan.withValue(plan) { _ = try SharedMemory.create(name: name, size: 8000) }
            }
            #expect(throws: SharedMemoryError.notFound(name)) { _ = try SharedMemory.open(name: name) }
        }

        @Test func noSpaceForAnInheritableSegmentIsAClearError() throws {
            let plan = FaultPlan()
            plan.fail(.fallocate, with: .noSpace)
            #expect(throws: SharedMemoryError.noSpace(bytes: 4096)) {
                try FaultInjection.$plan.withValue(plan) { _ = try SharedMemory(inheritableSize: 1) }
            }
        }

        @Test func anInterruptedCloseIsNotRetried() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let plan = FaultPlan()
            plan.fail(.close, with: .interrupted)
            try FaultInjection.$plan.withValue(plan) {
                let sut = try SharedMemory.create(name: name, size: 64)
                try sut.unlink()
            }
            #expect(plan.attempts(.close) == 1)
        }

        @Test func anInterruptedFutexWaitResumesUntilItsDeadline() {
            let word = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
            word.initialize(to: 0)
            defer { word.deallocate() }
            let plan = FaultPlan()
            plan.fail(.futexWait, with: .interrupted, .interrupted, .interrupted)
            let deadline = Deadline.after(.milliseconds(30))

            let result = FaultInjection.$plan.withValue(plan) { Futex(word).wait(expected: 0, deadline: deadline) }

            #expect(result == .timedOut)
            #expect(plan.attempts(.futexWait) == 4)
            #expect(Deadline.now >= deadline)
        }

        @Test func anOtherErrorOfTheSystemIsReportedWithItsOperation() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let plan = FaultPlan()
            plan.fail(.mmap, with: .tooManyOpenFiles)
            #expect(throws: SharedMemoryError.system(.tooManyOpenFiles, operation: "mmap")) {
                try FaultInjection.$plan.withValue(plan) { _ = try SharedMemory.create(name: name, size: 64) }
            }
            #expect(throws: SharedMemoryError.notFound(name)) { _ = try SharedMemory.open(name: name) }
        }
    }
}
