import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import Testing

extension ShmIPCTests {
    /// Awaiting queues: the fast path, suspension through the process's async waiter,
    /// timeouts, cancellation, close, the elements sequence, and a thousand suspended tasks.
    @Suite(.tags(.awaits)) struct AsyncQueueTests {
        @Test func anElementAlreadyThereIsTakenWithoutSuspending() async throws {
            let sut = try Queue<Int>(capacity: 4)
            try await sut.put(7)
            #expect(try await sut.get() == 7)
            try await sut.put(8)
            #expect(try sut.tryGet() == 8)
        }

        @Test func aSuspendedGetIsResumedByAPutFromAnotherProcess() async throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Queue<UInt64>(name: name, mode: .createExclusive, capacity: 16)
            let waiting = Task { try await sut.get(timeout: .seconds(120)) }
            let watchdog = Deadline.after(.seconds(120))
            while sut.control.notEmpty.waiters.load(ordering: .relaxed) == 0 && !watchdog.hasPassed { try await Task.sleep(for: .milliseconds(5)) }
            let producer = try Helper.start("queue-put-then-hang", [name.rawValue, "16", "1"])
            defer { _ = producer.kill() }
            #expect(try await waiting.value == 0)
            #expect(sut.control.notEmpty.waiters.load(ordering: .relaxed) == 0)
        }

        @Test func anAwaitedGetTimesOutNoEarlierThanItsDeadline() async throws {
            let sut = try Queue<Int>(capacity: 2)
            let deadline = Deadline.after(.milliseconds(60))
            await #expect(throws: QueueError.timedOut) { _ = try await sut.get(timeout: .milliseconds(60)) }
            #expect(Deadline.now >= deadline)
            try await sut.put(1)
            try await sut.put(2)
            await #expect(throws: QueueError.timedOut) { try await sut.put(3, timeout: .milliseconds(30)) }
        }

        /// A cancelled wait ends with CancellationError, takes nothing, and leaves no
        /// registration behind (the waiter count back to 0, nothing suspended).
        @Test func aCancelledGetEndsPromptlyAndTakesNothing() async throws {
            let sut = try Queue<Int>(capacity: 2)
            let waiting = Task { try await sut.get(timeout: .seconds(120)) }
            let watchdog = Deadline.after(.seconds(120))
            while sut.control.notEmpty.waiters.load(ordering: .relaxed) == 0 && !watchdog.hasPassed { try await Task.sleep(for: .milliseconds(5)) }
            waiting.cancel()
            // (Within the get's own 30 s timeout: a cancellation that went unnoticed would end
            // in QueueError.timedOut instead.)
            await #expect(throws: CancellationError.self) { _ = try await waiting.value }
            #expect(sut.control.notEmpty.waiters.load(ordering: .relaxed) == 0)
            try await sut.put(5)
            #expect(try sut.tryGet() == 5)
            // A task cancelled before it waits never suspends.
            let early = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await sut.get(timeout: .seconds(120))
            }
            await #expect(throws: CancellationError.self) { _ = try await early.value }
        }

        @Test func closingEndsTheElementsSequenceAfterTheRest() async throws {
            let sut = try Queue<Int>(capacity: 8)
            let consumer = Task { () -> [Int] in
                var seen: [Int] = []
                for try await item in sut.elements { seen.append(item) }
                return seen
            }
            // Watchdog: the sequence's gets have no timeout; a consumer still waiting after
            // 30 s is cancelled, and the test fails instead of hanging.
            let watchdog = Task {
                try await Task.sleep(for: .seconds(120))
                consumer.cancel()
            }
            defer { watchdog.cancel() }
            for value in 0..<20 { try await sut.put(value, timeout: .seconds(120)) }
            sut.close()
            #expect(try await consumer.value == Array(0..<20))
        }

        @Test func anSPSCConsumerAwaitsTheProducersPut() async throws {
            let sut = try SPSCQueue<Int>(capacity: 4)
            let waiting = Task { () -> Int in
                var consumer = try sut.makeConsumer(waitStrategy: .park)
                return try await consumer.get(timeout: .seconds(120))
            }
            let watchdog = Deadline.after(.seconds(120))
            while sut.control.notEmpty.waiters.load(ordering: .relaxed) == 0 && !watchdog.hasPassed { try await Task.sleep(for: .milliseconds(5)) }
            var producer = try sut.makeProducer()
            try await producer.put(42)
            #expect(try await waiting.value == 42)
        }

        @Test func anEventAndASemaphoreAreAwaitedAndCancelled() async throws {
            let event = try Event()
            let watchdog = Deadline.after(.seconds(120))
            let setter = Task { try await event.wait(timeout: .seconds(120)) }
            while event.core.flag.waiters.load(ordering: .relaxed) == 0 && !watchdog.hasPassed { try await Task.sleep(for: .milliseconds(5)) }
            event.set()
            #expect(try await setter.value)
            event.clear()
            #expect(try await event.wait(timeout: .milliseconds(20)) == false)
            let cancelled = Task { try await event.wait(timeout: .seconds(120)) }
            while event.core.flag.waiters.load(ordering: .relaxed) == 0 && !watchdog.hasPassed { try await Task.sleep(for: .milliseconds(5)) }
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { _ = try await cancelled.value }
            #expect(event.core.flag.waiters.load(ordering: .relaxed) == 0)

            let semaphore = try ShmIPC.Semaphore(value: 0)
            let acquirer = Task { try await semaphore.acquire(timeout: .seconds(120)) }
            while semaphore.core.count.waiters.load(ordering: .relaxed) == 0 && !watchdog.hasPassed { try await Task.sleep(for: .milliseconds(5)) }
            try semaphore.release()
            try await acquirer.value
            #expect(semaphore.currentValue == 0)
            await #expect(throws: SyncError.timedOut) { try await semaphore.acquire(timeout: .milliseconds(20)) }
        }

        @Test func aMessageQueueIsAwaitedBothWays() async throws {
            let sut = try MessageQueue(maxMessageSize: 64, capacity: 2, waitStrategy: .park)
            let waiting = Task { try await sut.get(as: String.self, timeout: .seconds(120)) }
            let watchdog = Deadline.after(.seconds(120))
            while sut.control.notEmpty.waiters.load(ordering: .relaxed) == 0 && !watchdog.hasPassed { try await Task.sleep(for: .milliseconds(5)) }
            try await sut.put("hello")
            #expect(try await waiting.value == "hello")
            try await sut.put("a")
            try await sut.put("b")
            let blocked = Task { try await sut.put("c", timeout: .seconds(120)) }
            while sut.control.notFull.waiters.load(ordering: .relaxed) == 0 && !watchdog.hasPassed { try await Task.sleep(for: .milliseconds(5)) }
            #expect(try await sut.get(as: String.self) == "a")
            try await blocked.value
            await #expect(throws: ChannelError.timedOut) { try await sut.put("d", timeout: .milliseconds(20)) }
            sut.close()
            #expect(try await sut.get(as: String.self) == "b")
            #expect(try await sut.get(as: String.self) == "c")
            await #expect(throws: ChannelError.endOfStream) { _ = try await sut.get(timeout: .seconds(120)) }
        }

        /// `await process.join()`: the pidfd awaited through the async waiter (a poll).
        @Test func aProcessIsJoinedByAwaiting() async throws {
            let quick = try ShmIPC.Process(TestEntries.sleeps, argument: 50, daemon: true, executable: Helper.path)
            try quick.start()
            #expect(try await quick.join(timeout: .seconds(60)))
            #expect(quick.exitCode == 0)
            let slow = try ShmIPC.Process(TestEntries.sleeps, argument: 60_000, daemon: true, executable: Helper.path)
            try slow.start()
            #expect(try await slow.join(timeout: .milliseconds(50)) == false)
            let joining = Task { try await slow.join(timeout: .seconds(60)) }
            joining.cancel()
            await #expect(throws: CancellationError.self) { _ = try await joining.value }
            slow.kill()
            #expect(try await slow.join(timeout: .seconds(60)))
            #expect(slow.exitCode == -SIGKILL)
        }

        /// A thousand tasks each suspended on its own queue: one waiter thread and the
        /// cooperative pool (a process of its own, measured there), little CPU idle, and every
        /// task resumed with its own item.
        @Test func aThousandSuspendedTasksCostOneWaiterThread() throws {
            let child = try Helper.start("async-fanout", ["1000"])
            #expect(Helper.finish(child, timeout: .seconds(120)) == .exited(0), "\(child.output)")
            let lines = child.output.split(separator: "\n").map(String.init)
            #expect(lines.contains("resumed 1000 of 1000"), "\(lines)")
            #expect(lines.contains("scalable true"), "\(lines)")
            let beyond = lines.first { $0.hasPrefix("threads added ") }.flatMap { Int($0.split(separator: " ").last!) }
            #expect(beyond.map { $0 <= 2 } == true, "threads beyond the cooperative pool: \(lines)")
            #expect(lines.contains { $0.contains("shmipc-async") }, "\(lines)")
            print("async fan-out: \(lines)")
        }
    }
}
