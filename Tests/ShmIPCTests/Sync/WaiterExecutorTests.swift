import Atomics
import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import Testing

extension ShmIPCTests {
    /// Tasks that prefer ``WaiterExecutor``: they run on the waiter thread, are resumed there by
    /// a wake-up from another process, and do not stop other waits timing out or being
    /// cancelled while they run.
    @Suite(.tags(.awaits)) struct WaiterExecutorTests {
        /// The name of the thread running the caller (its `comm`; `pthread_getname_np` needs
        /// `_GNU_SOURCE`, which Glibc's module does not define).
        static func currentThreadName() -> String {
            let descriptor = open("/proc/thread-self/comm", O_RDONLY)
            guard descriptor >= 0 else { return "?" }
            defer { close(descriptor) }
            var bytes = [UInt8](repeating: 0, count: 32)
            let count = read(descriptor, &bytes, bytes.count)
            guard count > 0 else { return "?" }
            return String(decoding: bytes[..<count].filter { $0 != 0x0A }, as: UTF8.self)
        }

        /// The bound on every wait here: a watchdog against a hang, not a time to meet (the
        /// whole suite's load once held this test's body off the CPU for two minutes).
        static let watchdog: Duration = .seconds(600)

        @Test func aTaskPreferringTheWaiterIsResumedOnItsThreadByAPutFromAnotherProcess() async throws {
            try #require(AsyncWaiter.shared.runsJobs, "no io_uring here: the executor hands its jobs on")
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Queue<UInt64>(name: name, mode: .createExclusive, capacity: 16, waitStrategy: .park)
            let waiting = Task(executorPreference: WaiterExecutor.shared) { () -> (UInt64, String, String) in
                let before = Self.currentThreadName()
                let value = try await sut.get(timeout: Self.watchdog)
                return (value, before, Self.currentThreadName())
            }
            let watchdog = Deadline.after(Self.watchdog)
            while sut.control.notEmpty.waiters.load(ordering: .relaxed) == 0 && !watchdog.hasPassed { try await Task.sleep(for: .milliseconds(5)) }
            let producer = try Helper.start("queue-put-then-hang", [name.rawValue, "16", "1"])
            defer { _ = producer.kill() }
            let (value, before, after) = try await waiting.value
            #expect(value == 0)
            #expect(before == AsyncWaiter.threadName)
            #expect(after == AsyncWaiter.threadName)
            #expect(sut.control.notEmpty.waiters.load(ordering: .relaxed) == 0)
        }

        /// A task on the waiter thread that keeps yielding: between its jobs the waiter still
        /// reaps, so another task's wait times out at its deadline and a cancelled one ends.
        @Test func aTaskYieldingOnTheWaiterLetsOtherWaitsTimeOutAndBeCancelled() async throws {
            try #require(AsyncWaiter.shared.runsJobs, "no io_uring here: the executor hands its jobs on")
            let stop = ManagedAtomic(false)
            let yields = ManagedAtomic(0)
            let watchdog = Deadline.after(Self.watchdog)
            let spinner = Task(executorPreference: WaiterExecutor.shared) { () -> String in
                while !stop.load(ordering: .relaxed) && !watchdog.hasPassed {  // relaxed: a flag
                    yields.wrappingIncrement(ordering: .relaxed)
                    await Task.yield()
                }
                return Self.currentThreadName()
            }
            defer { stop.store(true, ordering: .relaxed) }
            while yields.load(ordering: .relaxed) < 100 && !watchdog.hasPassed { try await Task.sleep(for: .milliseconds(1)) }

            let queue = try Queue<Int>(capacity: 2, waitStrategy: .park)
            let deadline = Deadline.after(.milliseconds(100))
            await #expect(throws: QueueError.timedOut) { _ = try await queue.get(timeout: .milliseconds(100)) }
            #expect(Deadline.now >= deadline)

            let event = try Event()
            let cancelled = Task(executorPreference: WaiterExecutor.shared) { try await event.wait(timeout: Self.watchdog) }
            while event.core.flag.waiters.load(ordering: .relaxed) == 0 && !watchdog.hasPassed { try await Task.sleep(for: .milliseconds(5)) }
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { _ = try await cancelled.value }
            #expect(event.core.flag.waiters.load(ordering: .relaxed) == 0)

            stop.store(true, ordering: .relaxed)
            #expect(await spinner.value == AsyncWaiter.threadName)
        }
    }
}
