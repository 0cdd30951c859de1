public import SystemPackage
internal import Synchronization

/// A pool of worker processes running ``Entry`` tasks. Python: `multiprocessing.Pool`.
///
/// ```swift
/// static let square = Entry("square") { (x: Int) in x * x }
/// // in main, after Multiprocessing.bootstrap([square]):
/// let squares = try Pool.with(processes: 2) { pool in try pool.map(square, Array(0..<100_000)) }
/// ```
///
/// Tasks and results travel over ShmIPC's own shared memory: each worker has a duplex ``Pipe``;
/// chunks of arguments and of results are ``BinaryMessageCoder`` arrays (arrays of numbers are
/// copied whole).
///
/// Crashes: a worker that dies (a trap, SIGKILL, the OOM killer) is replaced; the task it was
/// running fails with ``PoolError/workerDied(pid:exitCode:)``, tasks queued behind it run on
/// other workers. The pool never hangs on a dead worker (Python's does). A task that throws
/// fails with ``PoolError/taskFailed(_:)`` carrying the error's description.
///
/// Threads: every method may be called from any thread. A thread waiting for results drives
/// the pool itself (see `PoolCore`), so a synchronous `apply` costs one message each way and no
/// thread hand-offs; `async` and callback submissions start one background thread. Callbacks
/// run on whichever thread drives: keep them short, and do not call the pool's blocking
/// methods (`apply`, `map`, `join`, `terminate`, …) from them: the driving thread would wait
/// for itself. A thread that waits while another drives polls for its results every ≤ 1 ms.
///
/// Lifetime: `close()` refuses new tasks, `join()` waits for the submitted ones and ends the
/// workers, `terminate()` ends them now (SIGTERM, then SIGKILL after a second; pending tasks fail with
/// ``PoolError/terminated``); dropping the pool terminates it. Workers are daemons: they die
/// with this process, however it ends.
public final class Pool: Sendable {
    @usableFromInline let core: PoolCore
    /// The number of worker processes.
    public let processes: Int

    /// Starts `processes` workers (default: ``Multiprocessing/cpuCount``).
    ///
    /// - Parameters:
    ///   - processes: how many workers (default: ``Multiprocessing/cpuCount``).
    ///   - initializer: an entry each worker runs once before its first task (Python:
    ///     `initializer`, `initargs`); if it throws, the worker exits and tasks sent to it fail
    ///     with `workerDied`. Its argument may hold shared objects (a `Lock`, a `Value`, a
    ///     struct of them): each worker inherits them, as with Python's `initargs=(lock,)`.
    ///   - initializerArgument: the initializer's argument (Python's `initargs`).
    ///   - maxTasksPerChild: a worker is replaced after this many tasks (chunks).
    ///   - startMethod: how workers start (nil: ``Multiprocessing/startMethod``); `.spawn`
    ///     starts `executable` (default: this program,
    ///     which must call ``Multiprocessing/bootstrap(_:)`` with the entries the pool runs).
    ///   - executable: the program `.spawn` starts (default: this one).
    ///   - maxMessageSize: the largest chunk of encoded arguments or results (default 1 MiB).
    ///   - waitStrategy: how this process waits for results.
    ///   - sharing: descriptors every worker receives (shared objects' `inheritableDescriptor`s),
    ///     found by each task and the initializer in ``ChildContext/descriptors``: Python's
    ///     shared objects passed to a pool through `initargs`.
    public init<InitializerArgument>(
        processes: Int? = nil,
        initializer: Entry<InitializerArgument, NoOutput>? = nil,
        initializerArgument: InitializerArgument? = nil,
        maxTasksPerChild: Int? = nil,
        startMethod: StartMethod? = nil,
        executable: String? = nil,
        maxMessageSize: Int = 1 << 20,
        waitStrategy: WaitStrategy = .default,
        sharing: [FileDescriptor] = []
    ) throws(PoolError) {
        let count = processes ?? Multiprocessing.cpuCount
        let startMethod = startMethod ?? Multiprocessing.startMethod
        precondition(count >= 1, "a Pool needs at least one process")
        precondition(maxTasksPerChild.map { $0 >= 1 } ?? true, "maxTasksPerChild must be at least 1")
        var initializerArgumentBytes: [UInt8] = [], sharing = sharing, sharedObjects: [any AnyObject & Sendable] = []
        if let initializer {
            guard let initializerArgument else { throw .coding("an initializer needs its initializerArgument") }
            // Shared objects inside the argument add their descriptors to `sharing` (Python's
            // initargs=(lock,)).
            do {
                let encoded = try LaunchCollector.encode(initializerArgument, sharing: sharing)
                (initializerArgumentBytes, sharing, sharedObjects) = (encoded.bytes, encoded.collector.sharing, encoded.collector.owners)
            } catch {
                throw .coding(error.description)
            }
            if executable == nil && startMethod != .fork {
                do { _ = try EntryRegistry.entry(named: initializer.name) } catch { throw .startFailed(.process(error)) }
            }
        }
        if executable == nil && startMethod != .fork {
            do { _ = try EntryRegistry.entry(named: PoolWorker.entry.name) } catch { throw .startFailed(.process(error)) }
        }
        guard sharing.count <= Multiprocessing.maximumSharedDescriptors - PoolWorker.ownDescriptors else {
            throw .startFailed(.process(.tooManyDescriptors(sharing.count + PoolWorker.ownDescriptors)))
        }
        self.processes = count
        core = try PoolCore(settings: PoolSettings(
            processes: count, maxTasksPerChild: maxTasksPerChild, initializer: initializer?.name,
            initializerArgument: initializerArgumentBytes, startMethod: startMethod, executable: executable,
            maxMessageSize: maxMessageSize, ringCapacity: 4 * maxMessageSize, waitStrategy: waitStrategy, sharing: sharing,
            sharedObjects: sharedObjects))
    }

    /// A pool without an initializer.
    public convenience init(
        processes: Int? = nil, maxTasksPerChild: Int? = nil, startMethod: StartMethod? = nil,
        executable: String? = nil, maxMessageSize: Int = 1 << 20, waitStrategy: WaitStrategy = .default,
        sharing: [FileDescriptor] = []
    ) throws(PoolError) {
        try self.init(
            processes: processes, initializer: Entry<Int, NoOutput>?.none, initializerArgument: Int?.none,
            maxTasksPerChild: maxTasksPerChild, startMethod: startMethod, executable: executable,
            maxMessageSize: maxMessageSize, waitStrategy: waitStrategy, sharing: sharing)
    }

    deinit { core.terminate() }

    /// Runs `body` with a new pool, then terminates it, also when `body` throws (Python:
    /// `with Pool() as pool:`).
    public static func with<Result>(
        processes: Int? = nil, maxTasksPerChild: Int? = nil, startMethod: StartMethod? = nil,
        executable: String? = nil, maxMessageSize: Int = 1 << 20, sharing: [FileDescriptor] = [],
        _ body: (Pool) throws -> Result
    ) throws -> Result {
        let pool = try Pool(
            processes: processes, maxTasksPerChild: maxTasksPerChild, startMethod: startMethod,
            executable: executable, maxMessageSize: maxMessageSize, sharing: sharing)
        defer { pool.terminate() }
        return try body(pool)
    }

    // MARK: apply

    /// Runs `entry(argument)` in a worker and returns its output. Python: `apply`.
    public func apply<Argument, Output>(
        _ entry: Entry<Argument, Output>, _ argument: Argument, timeout: Duration? = nil
    ) throws(PoolError) -> Output {
        let job = PoolJob()
        try core.submit([try task(entry, [argument], job: job, chunk: 0)])
        try core.wait(until: { job.has(0) }, deadline: .after(timeout))
        return try PoolWire.output(job.take(0)!, Output.self)
    }

    /// Runs `entry(argument)` in a worker, the calling task suspended meanwhile (no thread
    /// blocks). Throws the task's ``PoolError``, or `CancellationError` at once if the calling
    /// task is cancelled (the pool task still runs; its output is dropped). Python:
    /// `apply_async(...).get()` in a coroutine.
    public func apply<Argument, Output>(_ entry: Entry<Argument, Output>, _ argument: Argument) async throws -> Output {
        let result = CallbackResult<Output>()
        _ = try applyAsync(entry, argument) { result.deliver($0) }
        return try await result.value()
    }

    /// Submits `entry(argument)` and returns at once; `completion` runs (on the pool's driving
    /// thread) with the output or the error. Python: `apply_async(callback=, error_callback=)`.
    @discardableResult
    public func applyAsync<Argument, Output>(
        _ entry: Entry<Argument, Output>, _ argument: Argument,
        completion: @escaping @Sendable (Result<Output, PoolError>) -> Void = { _ in }
    ) throws(PoolError) -> AsyncResult<Output> {
        let handle = AsyncResult<Output>()
        let core = self.core
        let job = PoolJob { _, result in
            let decoded = result.flatMap { bytes in Result { () throws(PoolError) in try PoolWire.output(.success(bytes), Output.self) } }
            completion(decoded)  // before the handle is ready, as Python's: get() sees its effects
            handle.fulfill(decoded)
            core.detachedChunkDone()
        }
        try core.submit([try task(entry, [argument], job: job, chunk: 0)], detached: true)
        return handle
    }

    // MARK: map

    /// `entry` applied to every argument, in order; the first failure is thrown. Python: `map`.
    /// `chunkSize` defaults to Python's: the arguments split into about 4 chunks per worker.
    public func map<Argument, Output>(
        _ entry: Entry<Argument, Output>, _ arguments: [Argument], chunkSize: Int? = nil, timeout: Duration? = nil
    ) throws(PoolError) -> [Output] {
        let size = chunkSize ?? Self.defaultChunkSize(arguments.count, processes: processes)
        precondition(size >= 1, "chunkSize must be at least 1")
        let job = PoolJob()
        var tasks: [PoolTask] = []
        let header = PoolWire.header(entry: entry.name)
        var start = 0
        while start < arguments.count {
            let end = min(start + size, arguments.count)
            tasks.append(try task(entry, Array(arguments[start..<end]), job: job, chunk: tasks.count, header: header))
            start = end
        }
        guard !tasks.isEmpty else { return [] }
        try core.submit(tasks)
        let count = tasks.count
        try core.wait(until: { job.count == count }, deadline: .after(timeout))
        var outputs: [Output] = []
        outputs.reserveCapacity(arguments.count)
        for chunk in 0..<count { outputs += try PoolWire.outputs(job.take(chunk)!, Output.self) }
        return outputs
    }

    /// `entry` applied to each pair, in order. Python: `starmap` (a Swift entry takes one
    /// argument: a ``Pair``).
    public func starmap<First, Second, Output>(
        _ entry: Entry<Pair<First, Second>, Output>, _ arguments: [(First, Second)], chunkSize: Int? = nil, timeout: Duration? = nil
    ) throws(PoolError) -> [Output] {
        try map(entry, arguments.map { Pair($0.0, $0.1) }, chunkSize: chunkSize, timeout: timeout)
    }

    /// `entry` applied to each argument, lazily: arguments are taken from `arguments` as
    /// results are consumed (at most a few chunks per worker ahead), results come in order,
    /// one `Result` per argument. Python: `imap`. If a result takes longer than `timeout`,
    /// it and every argument after it fail with ``PoolError/timedOut``.
    public func imap<Arguments: Sequence, Output>(
        _ entry: Entry<Arguments.Element, Output>, _ arguments: Arguments, chunkSize: Int = 1, timeout: Duration? = nil
    ) -> PoolResults<Arguments, Output> {
        PoolResults(pool: self, entry: entry, arguments: arguments, chunkSize: chunkSize, ordered: true, timeout: timeout)
    }

    /// As ``imap(_:_:chunkSize:timeout:)``, but results come as they complete (chunks in
    /// completion order). Python: `imap_unordered`.
    public func imapUnordered<Arguments: Sequence, Output>(
        _ entry: Entry<Arguments.Element, Output>, _ arguments: Arguments, chunkSize: Int = 1, timeout: Duration? = nil
    ) -> PoolResults<Arguments, Output> {
        PoolResults(pool: self, entry: entry, arguments: arguments, chunkSize: chunkSize, ordered: false, timeout: timeout)
    }

    // MARK: lifetime

    /// No more tasks may be submitted; those submitted still run. Python: `close`.
    public func close() { core.close() }

    /// Closes the pool, waits for every submitted task, then ends the workers. Python: `join`
    /// (which requires `close` first).
    public func join(timeout: Duration? = nil) throws(PoolError) { try core.join(deadline: .after(timeout)) }

    /// Ends the workers now: SIGTERM, as Python's, then SIGKILL for any still alive a second
    /// later. Pending and running tasks fail with ``PoolError/terminated``. Python: `terminate`.
    public func terminate() { core.terminate() }

    /// The current workers' pids (a snapshot).
    public var workerPIDs: [ProcessID] { core.workerPIDs }

    // MARK: internals

    /// Python's default chunk size: `count` split into about four chunks per process.
    package static func defaultChunkSize(_ count: Int, processes: Int) -> Int {
        let (size, extra) = count.quotientAndRemainder(dividingBy: processes * 4)
        return max(1, extra > 0 ? size + 1 : size)
    }

    @inlinable
    func task<Argument, Output>(
        _ entry: Entry<Argument, Output>, _ arguments: [Argument], job: PoolJob, chunk: Int, header: [UInt8]? = nil
    ) throws(PoolError) -> PoolTask {
        let message: [UInt8]
        do { message = try PoolWire.task(header: header ?? PoolWire.header(entry: entry.name), arguments: arguments) } catch {
            throw .coding("\(error)")
        }
        guard message.count <= core.settings.maxMessageSize else {
            throw .messageTooLarge(size: message.count, limit: core.settings.maxMessageSize)
        }
        return PoolTask(message: message, job: job, chunk: chunk)
    }
}

/// Two arguments for one entry (``Pool/starmap(_:_:chunkSize:timeout:)``).
public struct Pair<First: Codable & Sendable, Second: Codable & Sendable>: Codable, Sendable {
    /// The first argument.
    public var first: First
    /// The second argument.
    public var second: Second
    /// The pair of `first` and `second`.
    public init(_ first: First, _ second: Second) {
        self.first = first
        self.second = second
    }
}

extension Pair: Equatable where First: Equatable, Second: Equatable {}
extension Pair: Hashable where First: Hashable, Second: Hashable {}

