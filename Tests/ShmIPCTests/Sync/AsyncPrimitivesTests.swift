import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import Synchronization
import SystemPackage
import Testing

extension ShmIPCTests {
    /// Awaiting the locks, conditions, barriers, joinable queues, connections and pool
    /// results: each suspended and resumed by another thread or process, timed out, and
    /// cancelled (CancellationError, nothing taken, no registration left behind).
    @Suite(.tags(.awaits)) struct AsyncPrimitivesTests {
        /// The watchdog on every wait here that should succeed: 10 minutes, a backstop, not a
        /// time limit. The whole suite runs in parallel on the two cooperative pool threads,
        /// and the chaos suites' synchronous tests hold them for over two minutes at a time
        /// (seen in CI: a 120 s watchdog passed while the task that would satisfy it was still
        /// queued behind them).
        static let watchdog: Duration = .seconds(600)

        /// Polls `condition` every millisecond until the watchdog passes; whether it came true.
        static func eventually(_ condition: () -> Bool) async throws -> Bool {
            let watchdog = Deadline.after(Self.watchdog)
            while !condition() {
                if watchdog.hasPassed { return false }
                try await Task.sleep(for: .milliseconds(1))
            }
            return true
        }

        /// A flag set on one thread and read on another.
        final class Flag: Sendable {
            private let atomic = Atomic<Bool>(false)
            func set(_ value: Bool = true) { atomic.store(value, ordering: .sequentiallyConsistent) }
            var isSet: Bool { atomic.load(ordering: .sequentiallyConsistent) }
        }

        /// Holds a lock on a thread of its own (not the pool's): `acquire` there, then `held`
        /// is set, and `release` runs once `release` is set. Callers set it on every exit
        /// (`defer`); the 30-minute backstop, longer than any watchdog, only ends a thread whose
        /// test died. (It was 120 s once, and under the whole suite's load the test task was
        /// starved longer than that between seeing `held` and trying the lock: the holder let
        /// go, and the "held" lock was taken.)
        static func holdOnAThread(
            acquire: @escaping @Sendable () -> Bool, release: @escaping @Sendable () -> Void
        ) -> (held: Flag, release: Flag) {
            let held = Flag(), releasing = Flag()
            _ = Sys.startDetachedThread {
                guard acquire() else { return }
                held.set()
                let watchdog = Deadline.after(.seconds(1800))
                while !releasing.isSet && !watchdog.hasPassed { Sys.sleep(.milliseconds(1)) }
                release()
            }
            return (held, releasing)
        }

        @Test func aLockIsAwaitedWhileAnotherThreadHoldsItAndCancelledWithoutTakingIt() async throws {
            let sut = try Lock()
            let (held, release) = Self.holdOnAThread(
                acquire: { (try? sut.acquire(timeout: Self.watchdog)) != nil }, release: { try? sut.release() })
            defer { release.set() }
            try #require(try await Self.eventually { held.isSet })
            // Held: a timed-out wait, then a cancelled one; neither runs its body.
            await #expect(throws: SyncError.timedOut) { try await sut.withLock(timeout: .milliseconds(30)) { Issue.record("ran") } }
            let cancelled = Task { try await sut.withLock(timeout: Self.watchdog) { Issue.record("ran after cancel") } }
            try #require(try await Self.eventually { AsyncDiagnostics.suspended(on: UnsafeMutableRawPointer(sut.state)) >= 1 })
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            // A waiter resumed by the holder's release.
            let waiting = Task { try await sut.withLock(timeout: Self.watchdog) { 42 } }
            try #require(try await Self.eventually { AsyncDiagnostics.suspended(on: UnsafeMutableRawPointer(sut.state)) >= 1 })
            release.set()
            #expect(try await waiting.value == 42)
            #expect(!sut.isLocked)
            #expect(try await sut.withLock { 7 } == 7)
        }

        /// A helper holding the lock is killed: the suspended task's check finds the owner
        /// dead, and it takes the lock over and repairs.
        @Test func anAwaitingTaskTakesOverALockWhoseHolderDied() async throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Lock(name: name, mode: .createExclusive)
            let holder = try Helper.start("lock-hold", ["lock", name.rawValue])
            try #require(Helper.waitForOutput(holder, containing: "holding"), "\(holder.output)")
            let repaired = Flag()
            let waiting = Task {
                try await sut.withLock(timeout: Self.watchdog, recovering: { repaired.set() }) { 1 }
            }
            try #require(try await Self.eventually { AsyncDiagnostics.suspended(on: UnsafeMutableRawPointer(sut.state)) >= 1 })
            holder.kill()
            #expect(try await waiting.value == 1)
            #expect(repaired.isSet)
            #expect(try await sut.withLock { 2 } == 2)  // consistent again
            try sut.unlink()
        }

        @Test func anRLockIsReenteredInsideTheBodyAndRefusesAnAwaitWhileThisThreadHoldsIt() async throws {
            let sut = try RLock()
            let depth = try await sut.withLock { try sut.withLock { sut.recursionDepth } }
            #expect(depth == 2)
            #expect(sut.recursionDepth == 0)
            // Held by this thread (synchronously): an async acquisition never re-enters. (No
            // suspension between the two calls, so the task is still on the holding thread.)
            _ = try sut.acquire()
            await #expect(throws: SyncError.wouldDeadlock) { try await sut.withLock(timeout: .seconds(5)) {} }
            try sut.release()
        }

        /// An awaiting consumer takes every item a producer process hands over with
        /// notify(), waiting for the predicate with the lock released.
        @Test func aConditionIsAwaitedForItemsFromAnotherProcess() async throws {
            let name = TestNames.unique(), dataName = TestNames.unique("data")
            defer { [name, dataName].forEach(TestNames.cleanUp) }
            let sut = try Condition(name: name, mode: .createExclusive)
            let data = try SharedMemory.create(name: dataName, size: 64)
            let items = data.withUnsafeMutableBytes { $0.baseAddress!.assumingMemoryBound(to: UInt64.self) }
            let count = 500
            let producer = try Helper.start("condition-produce", [name.rawValue, dataName.rawValue, "\(count)"])
            var taken = 0
            for _ in 0..<count {
                let ready = try await sut.withLock(waitingFor: { items.pointee > 0 }, timeout: Self.watchdog) { ready in
                    if ready { items.pointee -= 1 }
                    return ready
                }
                guard ready else { break }
                taken += 1
            }
            #expect(taken == count)
            #expect(Helper.finish(producer, timeout: Self.watchdog) == .exited(0), "\(producer.output)")
            #expect(sut.storage.state.pointee.waiting == 0)
            try data.unlink()
            try sut.unlink()
        }

        /// notify(1) with two tasks waiting wakes exactly one; a timed-out wait reports it; a
        /// cancelled waiter leaves the counters as they were and the lock free.
        @Test func aConditionNotifiesOneOfTwoAwaitingTasksAndCancelsCleanly() async throws {
            let sut = try Condition()
            // Both wait long (a short timeout could pass before the test task runs again, under
            // the full suite's load); notify(1) lets exactly one leave, the other stays.
            let first = Task { try await sut.withLockAfterNotification(timeout: Self.watchdog) { $0 } }
            let second = Task { try await sut.withLockAfterNotification(timeout: Self.watchdog) { $0 } }
            let state = sut.storage.state
            try #require(try await Self.eventually {
                AsyncDiagnostics.suspended(on: sut.sequence.pointer) >= 2 && state.pointee.waiting == 2
            })
            try await sut.withLock { try sut.notify(1) }
            try #require(try await Self.eventually { state.pointee.waiting == 1 })
            try await Task.sleep(for: .milliseconds(50))  // room for a wrongly woken second to leave
            #expect(try await sut.withLock { (state.pointee.waiting, state.pointee.signals) } == (1, 0))
            try await sut.withLock { try sut.notify(1) }
            #expect(try await [first.value, second.value] == [true, true])
            #expect(state.pointee.waiting == 0)
            #expect(try await sut.withLock(waitingFor: { false }, timeout: .milliseconds(20)) { $0 } == false)

            let cancelled = Task { try await sut.withLock(waitingFor: { false }, timeout: Self.watchdog) { _ in Issue.record("body ran") } }
            try #require(try await Self.eventually { AsyncDiagnostics.suspended(on: sut.sequence.pointer) >= 1 })
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            #expect(sut.storage.state.pointee.waiting == 0)
            #expect(sut.storage.state.pointee.signals == 0)
            #expect(!sut.lock.lock.isLocked)
        }

        /// Two awaiting tasks and a helper process meet at one barrier; a cancelled party
        /// breaks it for the others, as a timeout does.
        @Test func aBarrierIsAwaitedWithAProcessAndBrokenByACancelledParty() async throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try Barrier(name: name, mode: .createExclusive, parties: 3)
            let a = Task { try await sut.wait(timeout: Self.watchdog) }
            let b = Task { try await sut.wait(timeout: Self.watchdog) }
            let peer = try Helper.start("barrier-wait", [name.rawValue, "3", "600000"])
            let indices = [try await a.value, try await b.value]
            #expect(Helper.finish(peer) == .exited(0))
            let peerIndex = peer.output.split(separator: "\n").first { $0.hasPrefix("index ") }.flatMap { Int($0.dropFirst(6)) }
            #expect(Set(indices + [peerIndex ?? -1]) == [0, 1, 2], "\(indices) \(peer.output)")

            let survivor = Task { try await sut.wait(timeout: Self.watchdog) }
            let leaving = Task { try await sut.wait(timeout: Self.watchdog) }
            try #require(try await Self.eventually { sut.waitingCount == 2 })
            leaving.cancel()
            await #expect(throws: CancellationError.self) { _ = try await leaving.value }
            await #expect(throws: SyncError.brokenBarrier) { _ = try await survivor.value }
            #expect(sut.isBroken)
            sut.reset()
            try sut.unlink()
        }

        @Test func aJoinableQueueIsJoinedByAwaiting() async throws {
            let sut = try JoinableQueue<Int>(capacity: 8)
            for value in 0..<3 { try await sut.put(value) }
            await #expect(throws: QueueError.timedOut) { try await sut.join(timeout: .milliseconds(20)) }
            let joining = Task { try await sut.join(timeout: Self.watchdog) }
            for _ in 0..<3 {
                _ = try await sut.get(timeout: Self.watchdog)
                try sut.taskDone()
            }
            try await joining.value
            try await sut.put(9)
            let cancelled = Task { try await sut.join(timeout: Self.watchdog) }
            try #require(try await Self.eventually { AsyncDiagnostics.suspended(on: sut.tasks.word.word) >= 1 })
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            #expect(sut.unfinishedTasks == 1)
        }

        /// Awaited receives (a timeout, a cancelled one that takes nothing, poll), sends
        /// that suspend on a full ring until a helper reads, the messages sequence ending at
        /// the peer's close, and a Codable value there and back.
        @Test func aConnectionIsAwaitedBothWays() async throws {
            let stream = MessageStream(seed: 5, sizes: 0...200)
            let count = 300
            do {
                let pipe = try Pipe(maxMessageSize: 256, capacity: 1024)
                let connection = try pipe.connection(.first)
                #expect(try await connection.poll() == false)
                await #expect(throws: ChannelError.timedOut) { _ = try await connection.receive(timeout: .milliseconds(20)) }
                // A receive cancelled while suspended (its own pipe: the connection lives in
                // the cancelled task) leaves no registration on the ring.
                let other = try Pipe(maxMessageSize: 256, capacity: 1024)
                let cancelled = Task {
                    let connection = try other.connection(.first)
                    _ = try await connection.receive(timeout: Self.watchdog)
                }
                try #require(try await Self.eventually { AsyncDiagnostics.suspended(on: other.ring(0).notEmpty.word) >= 1 })
                cancelled.cancel()
                await #expect(throws: CancellationError.self) { try await cancelled.value }
                #expect(other.ring(0).notEmpty.waiters.load(ordering: .relaxed) == 0)
                // The helper verifies every byte; the 1 KiB ring makes the sends suspend.
                let verifier = try Helper.start(
                    "pipe-verify", PipeTests.attach(pipe) + ["\(count)", "5", "0", "200"], descriptors: PipeTests.handOver(pipe))
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 201, alignment: 16)
                defer { buffer.deallocate() }
                for index in 0..<count {
                    let length = stream.write(index, into: buffer)
                    try await connection.send(bytes: Array(buffer[..<length]), timeout: Self.watchdog)
                }
                connection.close()
                #expect(Helper.finish(verifier) == .exited(0), "\(verifier.output)")
                #expect(verifier.output.contains("verified \(count)"), "\(verifier.output)")
            }
            do {
                let pipe = try Pipe(maxMessageSize: 256, capacity: 1024)
                let connection = try pipe.connection(.first)
                let sender = try Helper.start(
                    "pipe-stream", PipeTests.attach(pipe) + ["\(count)", "5", "0", "200"], descriptors: PipeTests.handOver(pipe))
                var received = 0, intact = 0
                for try await message in connection.messages {
                    if message.withUnsafeBytes({ stream.matches(received, $0) }) { intact += 1 }
                    received += 1
                }
                #expect(received == count && intact == count)
                #expect(Helper.finish(sender) == .exited(0), "\(sender.output)")
            }
            do {
                let pipe = try Pipe(maxMessageSize: 256, capacity: 1024)
                let connection = try pipe.connection(.first)
                let echo = try Helper.start("pipe-echo", PipeTests.attach(pipe), descriptors: PipeTests.handOver(pipe))
                try await connection.send(Pair(3, "three"), timeout: Self.watchdog)
                #expect(try await connection.poll(timeout: Self.watchdog))
                #expect(try await connection.receive(as: Pair<Int, String>.self, timeout: Self.watchdog) == Pair(3, "three"))
                for value in 4..<6 { try await connection.send(Pair(value, "\(value)"), timeout: Self.watchdog) }
                var decoded: [Pair<Int, String>] = []
                for try await value in connection.messages(as: Pair<Int, String>.self) {
                    decoded.append(value)
                    if decoded.count == 2 { break }
                }
                #expect(decoded == [Pair(4, "4"), Pair(5, "5")])
                connection.close()
                #expect(Helper.finish(echo) == .exited(0), "\(echo.output)")
            }
        }

        @Test func poolResultsAreAwaitedAndACancelledApplyEndsAtOnce() async throws {
            let pool = try PoolTests.makeSUT(processes: 1)
            defer { pool.terminate() }
            let handle = try pool.applyAsync(TestEntries.square, 9)
            #expect(try await handle.get(timeout: .seconds(60)) == 81)
            let slow = try pool.applyAsync(TestEntries.sleeps, 60_000)
            #expect(try await slow.wait(timeout: .milliseconds(20)) == false)
            let waiting = Task { try await slow.get(timeout: .seconds(60)) }
            waiting.cancel()
            await #expect(throws: CancellationError.self) { _ = try await waiting.value }
            let applying = Task { try await pool.apply(TestEntries.sleeps, 60_000) }
            applying.cancel()
            await #expect(throws: CancellationError.self) { _ = try await applying.value }
        }

        /// Far more tasks than the cooperative pool has threads, each awaiting a ShmIPC
        /// object (queues, a lock held elsewhere, an event, a semaphore, a condition, a
        /// barrier, a joinable queue): all of them suspend, and an unrelated task still runs.
        /// A wait that blocked its thread would stall the pool (two threads here) before the
        /// tasks all suspended, and the unrelated task would never run.
        @Test(.timeLimit(ShmIPCTests.hangWatchdog)) func awaitingTasksNeverBlockTheCooperativePool() async throws {
            let queues = try (0..<16).map { _ in try Queue<Int>(capacity: 2) }
            let lock = try Lock(), event = try Event(), semaphore = try Semaphore(value: 0)
            let condition = try Condition(), barrier = try Barrier(parties: 9), joinable = try JoinableQueue<Int>(capacity: 2)
            try await joinable.put(1)
            let (held, release) = Self.holdOnAThread(
                acquire: { (try? lock.acquire(timeout: Self.watchdog)) != nil }, release: { try? lock.release() })
            defer { release.set() }
            try #require(try await Self.eventually { held.isSet })
            let timeout: Duration = Self.watchdog
            var tasks: [Task<Void, any Error>] = []
            for queue in queues { tasks.append(Task { _ = try await queue.get(timeout: timeout) }) }
            for _ in 0..<8 {
                tasks.append(Task { try await lock.withLock(timeout: timeout) {} })
                tasks.append(Task { _ = try await event.wait(timeout: timeout) })
                tasks.append(Task { try await semaphore.acquire(timeout: timeout) })
                tasks.append(Task { _ = try await condition.withLockAfterNotification(timeout: timeout) { $0 } })
                tasks.append(Task { _ = try await barrier.wait(timeout: timeout) })
            }
            tasks.append(Task { try await joinable.join(timeout: timeout) })
            let words: [UnsafeMutableRawPointer] = queues.map { UnsafeMutableRawPointer($0.control.notEmpty.word) } + [
                UnsafeMutableRawPointer(lock.state), UnsafeMutableRawPointer(event.core.flag.word),
                UnsafeMutableRawPointer(semaphore.core.count.word), UnsafeMutableRawPointer(condition.sequence.pointer),
                UnsafeMutableRawPointer(barrier.generation.pointer), UnsafeMutableRawPointer(joinable.tasks.word.word),
            ]
            let suspended = try await Self.eventually { words.reduce(0) { $0 + AsyncDiagnostics.suspended(on: $1) } == tasks.count }
            #expect(suspended, "\(words.reduce(0) { $0 + AsyncDiagnostics.suspended(on: $1) }) of \(tasks.count) suspended")
            // An unrelated task runs while all of them wait.
            let started = Deadline.now
            let unrelated = Task { (0..<1_000).reduce(0, +) }
            #expect(await unrelated.value == 499_500)
            print("an unrelated task ran \(Deadline.now.uptimeNanoseconds - started.uptimeNanoseconds) ns after \(tasks.count) tasks suspended")
            // Everything resumes once its object is released.
            for queue in queues { try await queue.put(1) }
            release.set()
            event.set()
            try semaphore.release(8)
            _ = try await barrier.wait(timeout: timeout)
            _ = try await joinable.get(timeout: timeout)
            try joinable.taskDone()
            let conditionDeadline = Deadline.after(timeout)
            while condition.storage.state.pointee.waiting > 0, !conditionDeadline.hasPassed {
                try await condition.withLock { try condition.notifyAll() }
                try await Task.sleep(for: .milliseconds(1))
            }
            for task in tasks { try await task.value }
        }

        /// Starts `operation` in a task, waits until it is suspended on the futex word at
        /// `word`, cancels it, and expects CancellationError and no registration left there.
        static func cancelWhileSuspended(
            on word: UnsafeMutableRawPointer, _ operation: @escaping @Sendable () async throws -> Void,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let task = Task { try await operation() }
            try #require(try await eventually { AsyncDiagnostics.suspended(on: word) >= 1 }, sourceLocation: sourceLocation)
            task.cancel()
            await #expect(throws: CancellationError.self, sourceLocation: sourceLocation) { try await task.value }
            #expect(AsyncDiagnostics.suspended(on: word) == 0, sourceLocation: sourceLocation)
        }

        /// The awaitable kinds the other tests do not cancel: a put on a full queue, both SPSC
        /// endpoints, both MessageQueue directions, a send on a full pipe, an RLock held by
        /// another thread, and an awaited pool map. Each ends with CancellationError while
        /// suspended, and nothing was put or taken.
        @Test func everyOtherAwaitableKindIsCancelledWhileSuspended() async throws {
            let full = try Queue<Int>(capacity: 1)
            try await full.put(1)
            try await Self.cancelWhileSuspended(on: full.control.notFull.word) { try await full.put(2, timeout: Self.watchdog) }
            #expect(try full.tryGet() == 1 && full.tryGet() == nil)

            let spsc = try SPSCQueue<Int>(capacity: 2)
            try await Self.cancelWhileSuspended(on: spsc.control.notEmpty.word) {
                var consumer = try spsc.makeConsumer()
                _ = try await consumer.get(timeout: Self.watchdog)
            }
            try await Self.cancelWhileSuspended(on: spsc.control.notFull.word) {
                var producer = try spsc.makeProducer()
                while try producer.tryPut(7) {}
                try await producer.put(8, timeout: Self.watchdog)
            }
            var consumer = try spsc.makeConsumer()
            #expect(try consumer.tryGet() == 7 && consumer.tryGet() == 7 && consumer.tryGet() == nil)

            let messages = try MessageQueue(maxMessageSize: 64, capacity: 1)
            try await Self.cancelWhileSuspended(on: messages.control.notEmpty.word) { _ = try await messages.get(timeout: Self.watchdog) }
            try await messages.put(bytes: [1])
            try await Self.cancelWhileSuspended(on: messages.control.notFull.word) { try await messages.put(bytes: [2], timeout: Self.watchdog) }
            #expect(try messages.tryGet() == [1] && messages.tryGet() == nil)

            let pipe = try Pipe(maxMessageSize: 64, capacity: 1024)
            try await Self.cancelWhileSuspended(on: pipe.ring(1).notFull.word) {
                let connection = try pipe.connection(.first)
                while try [UInt8](repeating: 3, count: 64).withUnsafeBytes({ try connection.trySend(bytes: $0) }) {}
                try await connection.send(bytes: [4], timeout: Self.watchdog)
            }
            let peer = try pipe.connection(.second)
            var received: [[UInt8]] = []
            while let message = try peer.tryReceive() { received.append(message) }
            #expect(!received.isEmpty && received.allSatisfy { $0 == [UInt8](repeating: 3, count: 64) }, "the cancelled send sent nothing")

            let rlock = try RLock()
            let (held, release) = Self.holdOnAThread(
                acquire: { (try? rlock.acquire(timeout: Self.watchdog)) != nil }, release: { try? rlock.release() })
            try #require(try await Self.eventually { held.isSet })
            try await Self.cancelWhileSuspended(on: UnsafeMutableRawPointer(rlock.state)) {
                try await rlock.withLock(timeout: Self.watchdog) { _ = Issue.record("ran after cancel") }
            }
            release.set()
            #expect(try await rlock.withLock { rlock.recursionDepth } == 1)

            let pool = try PoolTests.makeSUT(processes: 1)
            defer { pool.terminate() }
            let mapping = Task { try await pool.map(TestEntries.sleeps, [60_000, 60_000]) }
            mapping.cancel()
            await #expect(throws: CancellationError.self) { _ = try await mapping.value }
        }
    }
}
