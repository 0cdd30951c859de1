internal import Synchronization
public import SystemPackage

/// How a ``Process`` starts its child. Python: `set_start_method` / `get_context`.
public enum StartMethod: Sendable, Hashable {
    /// `posix_spawn` of this executable (or another that calls ``Multiprocessing/bootstrap(_:)``
    /// with the same entry points), which runs the entry by name: always safe. Shared objects
    /// travel as inherited descriptors, so nothing is left behind by name.
    case spawn
    /// fork(2): the child runs the entry in a copy of this process, without starting a new
    /// program. Much faster to start, but refused (``ProcessError/forkUnsafe(threads:)``) when
    /// this process has more than one thread, where a fork can deadlock the child.
    case fork
    /// Ask this executable's fork server (a single-threaded process ShmIPC spawns on first use,
    /// Python's forkserver) to fork the child: safe from any process, and nearly as fast to
    /// start as `.fork`. The child's parent process is the server; ``Multiprocessing/parentProcess``
    /// in the child still names this process.
    case forkserver
}

/// A child process running an ``Entry``. Python: `multiprocessing.Process`.
///
/// ```swift
/// let worker = Process(App.produce, argument: 100, sharing: [queue.inheritableDescriptor!])
/// try worker.start()
/// worker.join()
/// print(worker.exitCode!)   // 0; 1 if the entry threw; -9 if SIGKILLed
/// ```
///
/// Contract: every member may be called from any thread. `join` waits on a pidfd, so it wakes
/// as soon as the child ends. The child is reaped by `join`, `isAlive` or `exitCode`; a
/// `Process` dropped while its child runs leaves the child running (a daemon is killed), and
/// ShmIPC reaps it later (``Multiprocessing/activeChildren()``, the next `start()`, or exit).
/// At exit, daemon children are terminated and the others joined, as Python does.
///
/// Exit codes, as Python's `exitcode`: 0 when the entry returns, 1 when it throws (the error
/// is written to the child's stderr), the negative signal number when a signal ended it (a
/// Swift trap is -4, SIGILL, or -5, SIGTRAP); ``unknownExitCode`` if something else in this
/// program reaped the child first.
///
/// Daemon children (`daemon: true`) die with this process, however it ends — also when it is
/// SIGKILLed: each watches a pipe only this process holds open. (Foundation also has a
/// `Process`; with both imported, write `ShmIPC.Process`.)
public final class Process: Sendable {
    /// The child's name (``Multiprocessing/currentProcess`` in the child): by default
    /// `Process-N`, numbered as Python numbers them (`Process-1:2` is the second child of
    /// `Process-1`). Settable; a name set after `start()` is this side's only, as in Python.
    public var name: String {
        get { settings.withLock { $0.name } }
        set { settings.withLock { $0.name = newValue } }
    }

    /// Whether the child dies with this process. Settable before `start()` only (Python
    /// asserts the same): setting it later traps.
    public var daemon: Bool {
        get { settings.withLock { $0.daemon } }
        set {
            precondition(!isStarted, "ShmIPC: a process's daemon flag cannot change once it has started")
            settings.withLock { $0.daemon = newValue }
        }
    }

    /// How the child is started.
    public let startMethod: StartMethod

    private let recipe: Recipe
    private let launcher: any Launcher
    private let settings: Mutex<Settings>
    private let state = Mutex(State.created)

    /// What the child runs: fixed at creation.
    private struct Recipe: Sendable {
        let entryName: String
        let encodedArgument: [UInt8]
        let forkBody: @Sendable (ChildContext) throws -> Void
        let sharing: [FileDescriptor]
        /// The shared objects the argument carries, whose descriptors are in `sharing`: kept
        /// alive (and their descriptors open) for the launch.
        let sharedObjects: [any AnyObject & Sendable]
        let executable: String?
        /// This child's place among ShmIPC's processes (Python's `_identity`): its parent's,
        /// then its number there.
        let identity: [Int]
    }

    private struct Settings {
        var name: String
        var daemon: Bool
    }

    private enum State {
        case created
        case running(any ChildHandle)
        /// The handle (and its pidfd) lives until `deinit`: a `join` on another thread may
        /// still poll the pidfd.
        case ended(any ChildHandle, TerminationStatus)
    }

    /// A process that will run `entry` with `argument`.
    ///
    /// Shared objects may travel inside `argument` (a `Value`, a `Lock`, a `Queue`, a struct of
    /// them…), as Python pickles them among a process's `args`: the child attaches the same
    /// objects (see `LaunchCollector`). Their descriptors are added after `sharing`, and the
    /// objects are kept alive with this `Process`.
    ///
    /// - Parameters:
    ///   - entry: the registered entry point the child runs.
    ///   - argument: its argument, encoded for the child (shared objects inside it are inherited).
    ///   - name: the process's name (default `Process-N`, as Python's).
    ///   - daemon: whether the child is ended when this process exits (Python's `daemon`).
    ///   - sharing: descriptors to hand to the child (``ChildContext/descriptors``), such as
    ///     shared objects' `inheritableDescriptor`s. They stay open here.
    ///   - startMethod: how to start it; nil: the program's (``Multiprocessing/startMethod``).
    ///   - executable: the program to spawn (default: this one); it must register the entry.
    public convenience init<Argument, Output>(
        _ entry: Entry<Argument, Output>,
        argument: Argument,
        name: String? = nil,
        daemon: Bool = false,
        sharing: [FileDescriptor] = [],
        startMethod: StartMethod? = nil,
        executable: String? = nil
    ) throws(ProcessError) {
        try self.init(entry, argument: argument, name: name, prefix: "Process", daemon: daemon, sharing: sharing,
                      startMethod: startMethod, executable: executable)
    }

    /// As the public initializer; a default name `prefix-N` (pool workers: "SpawnPoolWorker").
    init<Argument, Output>(
        _ entry: Entry<Argument, Output>, argument: Argument, name: String?, prefix: String, daemon: Bool,
        sharing: [FileDescriptor], startMethod: StartMethod?, executable: String?
    ) throws(ProcessError) {
        let method = startMethod ?? Multiprocessing.startMethod
        let launcher = method.launcher
        var encodedArgument: [UInt8] = [], sharing = sharing, owners: [any AnyObject & Sendable] = []
        if launcher.encodesArgument {
            // Shared objects inside the argument add their descriptors to `sharing`.
            do {
                let encoded = try LaunchCollector.encode(argument, sharing: sharing)
                (encodedArgument, sharing, owners) = (encoded.bytes, encoded.collector.sharing, encoded.collector.owners)
            } catch {
                throw .encodingFailed(error.description)
            }
        }
        guard sharing.count <= Multiprocessing.maximumSharedDescriptors else { throw .tooManyDescriptors(sharing.count) }
        let (defaultName, identity) = Multiprocessing.nextChild(prefix: prefix)
        settings = Mutex(Settings(name: name ?? defaultName, daemon: daemon))
        self.startMethod = method
        self.launcher = launcher
        recipe = Recipe(
            entryName: entry.name, encodedArgument: encodedArgument, forkBody: { context in _ = try entry.body(argument, context) },
            sharing: sharing, sharedObjects: owners, executable: executable, identity: identity)
    }

    /// The parent's side of ``Multiprocessing/fork()``: a child already running.
    init(forked child: any ChildHandle, name: String) {
        settings = Mutex(Settings(name: name, daemon: false))
        startMethod = .fork
        launcher = ForkLauncher()
        recipe = Recipe(
            entryName: "", encodedArgument: [], forkBody: { _ in }, sharing: [], sharedObjects: [], executable: nil, identity: [])
        state.withLock { $0 = .running(child) }
    }

    /// Starts the child. Throws if it was started before, if the entry is not registered (for
    /// spawn from this executable), if fork is unsafe here, or if the system refuses.
    public func start() throws(ProcessError) {
        ChildRegistry.reapOrphans()
        if launcher.encodesArgument && recipe.executable == nil { _ = try EntryRegistry.entry(named: recipe.entryName) }
        let (name, daemon) = settings.withLock { ($0.name, $0.daemon) }
        let request = LaunchRequest(
            entryName: recipe.entryName, name: name, daemon: daemon, identity: recipe.identity, sharing: recipe.sharing,
            executable: recipe.executable, encodedArgument: recipe.encodedArgument, forkBody: recipe.forkBody)
        try state.withLock { (state) throws(ProcessError) in
            guard case .created = state else { throw .alreadyStarted }
            state = .running(try launcher.launch(request))
        }
    }

    /// Suspends the task (never blocking a thread) until the child ends or `timeout` passes
    /// (nil: no limit); whether it ended. The pidfd is awaited through the process's async
    /// waiter (an io_uring poll). Throws `CancellationError` if the task is cancelled first
    /// (the child keeps running).
    @discardableResult
    public func join(timeout: Duration? = nil) async throws -> Bool {
        let deadline = Deadline.after(timeout)
        while true {
            guard let pidfd = runningPidfd else { return isEnded }
            let outcome = try await AsyncWaiter.shared.waitReadable(pidfd.rawValue, deadline: deadline)
            if reap() { return true }
            if outcome == .timedOut { return false }
        }
    }

    /// The running child's pidfd; nil before `start()` and once it ended.
    private var runningPidfd: FileDescriptor? {
        state.withLock { state in
            guard case .running(let child) = state else { return nil }
            return child.pidfd
        }
    }

    /// Waits until the child ends or `timeout` passes (nil: no limit); whether it ended.
    /// Python: `join(timeout)` (then check `exitcode`). Joining a process not started returns
    /// false at once.
    @discardableResult
    public func join(timeout: Duration? = nil) -> Bool {
        let deadline = Deadline.after(timeout)
        while true {
            guard let pidfd = runningPidfd else { return isEnded }
            if Sys.waitReadable(pidfd, deadline: deadline) {
                if reap() { return true }
            } else {
                return reap()
            }
        }
    }

    /// Whether the child has started and not ended. Python: `is_alive()`.
    public var isAlive: Bool {
        if reap() { return false }
        return state.withLock { if case .running = $0 { true } else { false } }
    }

    /// The child's pid, once started.
    public var pid: ProcessID? {
        state.withLock { state in
            switch state {
            case .created: nil
            case .running(let child), .ended(let child, _): child.pid
            }
        }
    }

    /// The exit status once the child has ended (it is reaped if it has): 0, 1 if the entry
    /// threw, or the negative number of the signal that ended it; nil while it runs.
    public var exitCode: Int32? {
        _ = reap()
        return state.withLock { if case .ended(_, let status) = $0 { status.exitCode } else { nil } }
    }

    /// Asks the child to end (SIGTERM). Python: `terminate()`.
    public func terminate() { signal(.terminate) }

    /// Ends the child at once (SIGKILL). Python: `kill()`.
    public func kill() { signal(.kill) }

    /// Sends `signal` to the child if it runs, through its pidfd: never to a later process
    /// that reused its pid.
    public func signal(_ signal: Signal) {
        state.withLock { state in
            if case .running(let child) = state { child.signal(signal) }
        }
    }

    deinit {
        let daemon = self.daemon
        state.withLock { state in
            if case .running(let child) = state { child.detach(daemon: daemon) }
        }
    }

    /// The exit code of a child something other than this object reaped (its status is lost).
    public static let unknownExitCode: Int32 = 255

    // MARK: internals

    private var isEnded: Bool { state.withLock { if case .ended = $0 { true } else { false } } }
    private var isStarted: Bool { state.withLock { if case .created = $0 { false } else { true } } }

    /// Reaps the child if it has ended; whether it has (now or before).
    private func reap() -> Bool {
        state.withLock { state in
            switch state {
            case .created: return false
            case .ended: return true
            case .running(let child):
                guard let status = child.endedStatus() else { return false }
                state = .ended(child, status)
                return true
            }
        }
    }
}
