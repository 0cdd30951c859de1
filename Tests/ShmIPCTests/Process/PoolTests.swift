import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import Synchronization
import SystemPackage
import Testing

extension ShmIPCTests {
    /// `Pool` with workers in the helper executable (which registers `TestEntries`). Every wait
    /// has a timeout, so a hung pool fails the test instead of hanging it.
    @Suite struct PoolTests {
        static func makeSUT(processes: Int = 2, maxTasksPerChild: Int? = nil, method: StartMethod = .spawn) throws -> Pool {
            try Pool(processes: processes, maxTasksPerChild: maxTasksPerChild, startMethod: method, executable: Helper.path)
        }
        static let limit: Duration = .seconds(60)

        @Test func mapReturnsEveryResultInOrder() throws {
            let sut = try Self.makeSUT()
            defer { sut.terminate() }
            let inputs = Array(0..<10_000)
            for chunkSize in [nil, 1, 7, 10_000] {
                #expect(try sut.map(TestEntries.square, inputs, chunkSize: chunkSize, timeout: Self.limit) == inputs.map { $0 * $0 })
            }
            #expect(try sut.map(TestEntries.square, [], timeout: Self.limit) == [])
            #expect(try sut.starmap(TestEntries.power, [(2, 10), (3, 3), (7, 0)], timeout: Self.limit) == [1024, 27, 1])
            #expect(try sut.apply(TestEntries.square, -9, timeout: Self.limit) == 81)
            // An entry that returns nothing (Python's None): one output per argument.
            #expect(try sut.map(TestEntries.sleeps, [0, 0, 0], chunkSize: 3, timeout: Self.limit) == [NoOutput(), NoOutput(), NoOutput()])
        }

        /// A chunk already encoded, as a worker host receives one from a pool on another host:
        /// run by the local workers, answered in the encoded form, the failures typed.
        @Test func anEncodedChunkRunsAndIsAnsweredEncoded() throws {
            let sut = try Self.makeSUT()
            defer { sut.terminate() }
            let coder = BinaryMessageCoder()
            func run(_ entry: String, _ arguments: [UInt8]) throws -> Result<[UInt8], PoolError>? {
                let outcome = Mutex<Result<[UInt8], PoolError>?>(nil)
                try sut.submitEncoded(entry: entry, arguments: arguments) { result in outcome.withLock { $0 = result } }
                let deadline = Deadline.after(Self.limit)
                while !deadline.hasPassed {
                    if let result = outcome.withLock({ $0 }) { return result }
                    usleep(1000)
                }
                return nil
            }
            let squares = try #require(try run(TestEntries.square.name, coder.encode([3, 4, 5]))).get()
            #expect(try squares.withUnsafeBytes { try coder.decode([Int].self, from: $0) } == [9, 16, 25])
            switch try run(TestEntries.throwing.name, coder.encode(["no"])) {
            case .failure(.taskFailed)?: break
            case let other: Issue.record("a throwing entry: \(String(describing: other))")
            }
            switch try run("t.no-such-entry", coder.encode([1])) {
            case .failure(.coding)?: break
            case let other: Issue.record("an unknown entry: \(String(describing: other))")
            }
            switch try run(TestEntries.square.name, [0xFF, 0xFF, 0xFF]) {
            case .failure(.coding)?: break
            case let other: Issue.record("arguments that do not decode: \(String(describing: other))")
            }
            #expect(try sut.apply(TestEntries.square, 7, timeout: Self.limit) == 49)  // the pool serves on
        }

        @Test func imapIsOrderedAndLazyAndImapUnorderedIsComplete() throws {
            let sut = try Self.makeSUT()
            defer { sut.terminate() }
            let pulled = Atomic<Int>(0)
            let count = 100_000
            let inputs = (0..<count).lazy.map { x in
                pulled.add(1, ordering: .relaxed)  // relaxed: read by this thread only
                return x
            }
            var results = sut.imap(TestEntries.square, inputs, chunkSize: 3, timeout: Self.limit).makeIterator()
            #expect(try results.next()?.get() == 0)
            // At most four windows of chunks per worker are taken before they are consumed.
            let bound = 2 * PoolCore.window * 4 * 3
            #expect(pulled.load(ordering: .relaxed) <= bound && bound < count, "imap took \(pulled.load(ordering: .relaxed)) arguments before the first result was consumed")
            var expected = 1
            while let result = results.next() {
                guard try result.get() == expected * expected else {
                    Issue.record("result \(expected) is wrong: \(result)")
                    break
                }
                expected += 1
            }
            #expect(expected == count)

            let unordered = try sut.imapUnordered(TestEntries.square, 0..<2_000, chunkSize: 5, timeout: Self.limit).map { try $0.get() }
            #expect(unordered.sorted() == (0..<2_000).map { $0 * $0 })
        }

        @Test func imapGivesUpAfterItsTimeout() throws {
            let sut = try Self.makeSUT()
            defer { sut.terminate() }
            let results = Array(sut.imap(TestEntries.sleepsThenReportsPID, [60_000, 60_000, 1], timeout: .milliseconds(100)))
            #expect(results.count == 3)
            for result in results { #expect(throws: PoolError.timedOut) { try result.get() } }
        }

        @Test func aTaskThatThrowsFailsWithTheWorkersMessage() throws {
            let sut = try Self.makeSUT()
            defer { sut.terminate() }
            #expect(throws: PoolError.taskFailed("TestEntries.Failure: unlucky 13")) {
                try sut.apply(TestEntries.unlucky, 13, timeout: Self.limit)
            }
            #expect(throws: PoolError.taskFailed("TestEntries.Failure: unlucky 13")) {
                try sut.map(TestEntries.unlucky, Array(0..<100), chunkSize: 10, timeout: Self.limit)
            }
            // imap: one failure per argument of the failed chunk, the others succeed.
            let results = Array(sut.imap(TestEntries.unlucky, 0..<20, chunkSize: 1, timeout: Self.limit))
            #expect(results.count == 20)
            for (x, result) in results.enumerated() {
                if x == 13 {
                    #expect(throws: PoolError.taskFailed("TestEntries.Failure: unlucky 13")) { try result.get() }
                } else {
                    #expect(try result.get() == x * x)
                }
            }
            // The workers are still there.
            #expect(try sut.apply(TestEntries.square, 4, timeout: Self.limit) == 16)
        }

        /// A worker SIGKILLed (or trapping) mid-task: that task fails with workerDied, the pool
        /// replaces the worker, and later tasks succeed.
        @Test(arguments: [StartMethod.spawn, .forkserver])
        func aWorkerThatDiesIsReplacedAndOnlyItsTaskFails(method: StartMethod) throws {
            let sut = try Self.makeSUT(method: method)
            defer { sut.terminate() }
            let before = Set(sut.workerPIDs)
            do {
                _ = try sut.apply(TestEntries.killsItself, 0, timeout: Self.limit)
                Issue.record("a task whose worker died returned")
            } catch {
                guard case .workerDied(let pid, let code) = error else {
                    Issue.record("expected workerDied, got \(error)")
                    return
                }
                #expect(before.contains(pid))
                #expect(code == -SIGKILL)
            }
            do {
                _ = try sut.apply(TestEntries.traps, 0, timeout: Self.limit)
                Issue.record("a task whose worker trapped returned")
            } catch {
                guard case .workerDied(_, let code) = error else {
                    Issue.record("expected workerDied, got \(error)")
                    return
                }
                #expect(code == -SIGILL || code == -SIGTRAP)
            }
            #expect(try sut.map(TestEntries.square, Array(0..<1_000), chunkSize: 10, timeout: Self.limit) == (0..<1_000).map { $0 * $0 })
            let after = sut.workerPIDs
            #expect(after.count == 2)
            #expect(Set(after) != before)
        }

        /// Workers SIGKILLed from outside while one runs a long task: that task fails with
        /// workerDied, both workers are replaced, later tasks succeed.
        @Test func workersKilledFromOutsideMidTaskAreReplaced() throws {
            let sut = try Self.makeSUT()
            defer { sut.terminate() }
            let handle = try sut.applyAsync(TestEntries.sleepsThenReportsPID, 60_000)
            let deadline = Deadline.after(Self.limit)
            while sut.core.runningTasks < 1 && !deadline.hasPassed { Sys.sleep(.milliseconds(1)) }
            let killed = sut.workerPIDs
            for pid in killed { _ = Sys.sendSignal(SIGKILL, to: pid.rawValue) }
            do {
                _ = try handle.get(timeout: Self.limit)
                Issue.record("a task whose worker was killed returned")
            } catch {
                guard case .workerDied(let pid, let code) = error else {
                    Issue.record("expected workerDied, got \(error)")
                    return
                }
                #expect(killed.contains(pid))
                #expect(code == -SIGKILL)
            }
            #expect(try sut.map(TestEntries.square, Array(0..<1_000), chunkSize: 7, timeout: Self.limit) == (0..<1_000).map { $0 * $0 })
            let replacements = sut.workerPIDs
            #expect(replacements.count == 2)
            #expect(Set(replacements).isDisjoint(with: killed))
        }

        @Test func terminateFailsTasksInFlightAndRefusesNewOnes() throws {
            let sut = try Self.makeSUT()
            let handles = try (0..<6).map { _ in try sut.applyAsync(TestEntries.sleepsThenReportsPID, 60_000) }
            // Wait until the tasks are in the workers (two running, four queued behind them).
            let deadline = Deadline.after(Self.limit)
            while sut.core.runningTasks < 6 && !deadline.hasPassed { Sys.sleep(.milliseconds(1)) }
            let workers = sut.workerPIDs
            sut.terminate()
            for handle in handles {
                #expect(throws: PoolError.terminated) { try handle.get(timeout: Self.limit) }
            }
            #expect(throws: PoolError.closed) { try sut.apply(TestEntries.square, 2, timeout: Self.limit) }
            for pid in workers { #expect(!Sys.threadIsAlive(pid.rawValue), "worker \(pid) survived terminate()") }
        }

        /// `terminate()` asks with SIGTERM first, as Python's; a worker that ignores it is
        /// killed after the grace period, and terminate still returns with it gone.
        @Test func terminateEndsEvenAWorkerThatIgnoresSIGTERM() throws {
            let sut = try Self.makeSUT(processes: 1)
            let handle = try sut.applyAsync(TestEntries.ignoresTerminate, 60_000)
            let deadline = Deadline.after(Self.limit)
            while sut.core.runningTasks < 1 && !deadline.hasPassed { Sys.sleep(.milliseconds(1)) }
            Sys.sleep(.milliseconds(50))  // the task has installed its SIG_IGN by now, most likely
            let workers = sut.workerPIDs
            sut.terminate()
            #expect(throws: PoolError.terminated) { try handle.get(timeout: Self.limit) }
            for pid in workers { #expect(!Sys.threadIsAlive(pid.rawValue), "worker \(pid) survived terminate()") }
        }

        /// `await apply` has no timeout of its own: the time limit is this test's watchdog.
        @Test(.timeLimit(ShmIPCTests.hangWatchdog), .tags(.awaits)) func asyncApplyAndCallbacksDeliverResults() async throws {
            let sut = try Self.makeSUT()
            defer { sut.terminate() }
            #expect(try await sut.apply(TestEntries.square, 12) == 144)
            await #expect(throws: PoolError.taskFailed("TestEntries.Failure: unlucky 13")) {
                try await sut.apply(TestEntries.unlucky, 13)
            }
            let received = Mutex<[Int: Int]>([:])
            let handles = try (0..<50).map { x in
                try sut.applyAsync(TestEntries.square, x) { result in
                    if case .success(let value) = result { received.withLock { $0[x] = value } }
                }
            }
            for (x, handle) in handles.enumerated() { #expect(try await handle.get(timeout: Self.limit) == x * x) }
            #expect(received.withLock { $0.count } == 50)
            #expect(try await sut.map(TestEntries.square, Array(0..<100)) == (0..<100).map { $0 * $0 })
            await #expect(throws: PoolError.taskFailed("TestEntries.Failure: unlucky 13")) {
                try await sut.map(TestEntries.unlucky, Array(10..<20), chunkSize: 2)
            }
        }

        /// Python's `map_async`/`starmap_async`: the outputs in order, the callback before the
        /// handle is ready, the error callback with the first failure, `get(timeout:)` timing
        /// out while chunks run, `wait`, `ready` and `successful`.
        @Test(.timeLimit(ShmIPCTests.hangWatchdog)) func mapAsyncDeliversThroughTheHandleAndTheCallbacks() throws {
            let sut = try Self.makeSUT()
            defer { sut.terminate() }
            let seen = Mutex<[Int]?>(nil)
            let squares = try sut.mapAsync(TestEntries.square, Array(0..<1_000), chunkSize: 7, callback: { outputs in
                seen.withLock { $0 = outputs }
            }, errorCallback: { error in Issue.record("error callback on success: \(error)") })
            #expect(try squares.get(timeout: Self.limit) == (0..<1_000).map { $0 * $0 })
            #expect(seen.withLock { $0 } == (0..<1_000).map { $0 * $0 }, "the callback ran before the handle was ready")
            #expect(squares.isReady && squares.isSuccessful == true && squares.wait(timeout: .zero))

            let failure = Mutex<PoolError?>(nil)
            let failed = try sut.mapAsync(TestEntries.unlucky, Array(0..<20), chunkSize: 3, callback: { _ in
                Issue.record("success callback on failure")
            }, errorCallback: { error in failure.withLock { $0 = error } })
            #expect(failed.wait(timeout: Self.limit))
            #expect(failed.isSuccessful == false)
            #expect(throws: PoolError.taskFailed("TestEntries.Failure: unlucky 13")) { try failed.get(timeout: .zero) }
            #expect(failure.withLock { $0 } == .taskFailed("TestEntries.Failure: unlucky 13"))

            let slow = try sut.mapAsync(TestEntries.sleeps, [300, 300], chunkSize: 1)
            #expect(throws: PoolError.timedOut) { try slow.get(timeout: .milliseconds(20)) }
            #expect(!slow.wait(timeout: .milliseconds(5)))
            #expect(slow.isSuccessful == nil && !slow.isReady)
            #expect(slow.wait(timeout: Self.limit))
            #expect(try slow.get(timeout: .zero).count == 2)
            #expect(slow.isSuccessful == true)

            let powers = try sut.starmapAsync(TestEntries.power, [(2, 10), (3, 3)])
            #expect(try powers.get(timeout: Self.limit) == [1024, 27])
            let empty = try sut.mapAsync(TestEntries.square, [])
            #expect(try empty.get(timeout: .zero) == [])
        }

        /// Shared objects handed to the pool reach every task (Python: a Value in `initargs`).
        @Test func tasksSeeTheObjectsSharedWithThePool() throws {
            let total = try Value<Int>(0)
            let sut = try Pool(processes: 2, executable: Helper.path, sharing: [total.inheritableDescriptor!])
            defer { sut.terminate() }
            #expect(try sut.map(TestEntries.addToShared, Array(1...100), chunkSize: 3, timeout: Self.limit) == Array(1...100))
            #expect(total.value == 5050)
            let tooMany = [FileDescriptor](repeating: total.inheritableDescriptor!, count: Multiprocessing.maximumSharedDescriptors)
            #expect(throws: PoolError.startFailed(.process(.tooManyDescriptors(Multiprocessing.maximumSharedDescriptors + 2)))) {
                _ = try Pool(processes: 1, executable: Helper.path, sharing: tooMany)
            }
        }

        @Test func theInitializerRunsInEachWorkerAndWorkersRetireAfterTheirQuota() throws {
            let sut = try Pool(
                processes: 1, initializer: TestEntries.setTag, initializerArgument: 42, maxTasksPerChild: 2,
                executable: Helper.path)
            defer { sut.terminate() }
            var pids: [Int32] = []
            for _ in 0..<6 {
                let answer = try sut.apply(TestEntries.tagAndPID, 0, timeout: Self.limit)
                #expect(answer.first == 42)
                pids.append(answer.second)
            }
            #expect(Set(pids).count == 3, "pids \(pids): one worker per two tasks")
            #expect(pids[0] == pids[1] && pids[2] == pids[3] && pids[4] == pids[5])
        }

        /// An initializer that always throws: after a bounded number of workers in a row, the
        /// pool stops replacing them and fails what waits, and what comes, with the reason.
        @Test func anInitializerThatAlwaysThrowsFailsThePoolsTasksInsteadOfRestartingForever() throws {
            let sut = try Pool(
                processes: 2, initializer: TestEntries.failingInitializer, initializerArgument: 7, executable: Helper.path)
            defer { sut.terminate() }
            let expected = PoolError.initializerFailed("TestEntries.Failure: initializer refused 7")
            #expect(throws: expected) { _ = try sut.map(TestEntries.square, Array(0..<10), timeout: Self.limit) }
            #expect(throws: expected) { _ = try sut.apply(TestEntries.square, 3, timeout: Self.limit) }
        }

        @Test func joinWaitsForSubmittedTasksThenEndsTheWorkers() throws {
            let sut = try Self.makeSUT()
            let handle = try sut.applyAsync(TestEntries.sleepsThenReportsPID, 200)
            let workers = sut.workerPIDs
            sut.close()
            #expect(throws: PoolError.closed) { try sut.apply(TestEntries.square, 2, timeout: Self.limit) }
            try sut.join(timeout: Self.limit)
            #expect(try workers.contains(ProcessID(rawValue: handle.get(timeout: .zero))))
            #expect(sut.workerPIDs.isEmpty)
            for pid in workers { #expect(!Sys.threadIsAlive(pid.rawValue)) }
        }

        @Test func theScopedFormTerminatesThePool() throws {
            var workers: [ProcessID] = []
            let squares = try Pool.with(processes: 2, executable: Helper.path) { pool in
                workers = pool.workerPIDs
                return try pool.map(TestEntries.square, [1, 2, 3], timeout: Self.limit)
            }
            #expect(squares == [1, 4, 9])
            #expect(workers.count == 2)
            for pid in workers { #expect(!Sys.threadIsAlive(pid.rawValue)) }
        }

        /// The single-threaded helper runs a pool with forked workers.
        @Test func aPoolCanForkItsWorkersInASingleThreadedProcess() throws {
            let (status, output) = try Helper.run("pool-fork")
            #expect(status == .exited(0), "\(output)")
            #expect(output.contains("pool-fork \((0..<1_000).reduce(0) { $0 + $1 * $1 }) true"), "\(output)")
            // And a multi-threaded process is refused one (the thread count in the message varies).
            do {
                _ = try Pool(processes: 1, startMethod: .fork)
                Issue.record("a multi-threaded process forked pool workers")
            } catch {
                guard case .startFailed(.process(.forkUnsafe)) = error else {
                    Issue.record("expected startFailed(fork refused…), got \(error)")
                    return
                }
            }
        }

        @Test func aChunkOverTheMessageLimitIsRefusedAtOnce() throws {
            let sut = try Pool(processes: 1, executable: Helper.path, maxMessageSize: 4096)
            defer { sut.terminate() }
            #expect(throws: PoolError.messageTooLarge(size: 10 + "t.square".utf8.count + 4 + 8 * 1000, limit: 4096)) {
                try sut.map(TestEntries.square, Array(0..<1000), chunkSize: 1000, timeout: Self.limit)
            }
            #expect(try sut.map(TestEntries.square, Array(0..<1000), chunkSize: 100, timeout: Self.limit).count == 1000)
        }
    }
}
