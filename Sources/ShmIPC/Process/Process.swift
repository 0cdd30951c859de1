internal import Synchronization
public import SystemPackage
#if canImport(Glibc)
internal import Glibc
#endif

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
    /// The child's name (``Multiprocessing/currentProcess`` in the child).
    public let name: String
    /// Whether the child dies with this process.
    public let daemon: Bool
    /// How the child is started.
    public let startMethod: StartMethod

    private let entryName: String
    private let encodedArgument: [UInt8]
    private let forkBody: @Sendable (ChildContext) throws -> Void
    private let sharing: [FileDescriptor]
    private let executable: String?
    private let state = Mutex(State.created)
    /// The fork server that started the child (`.forkserver` only): it reports the status.
    private let server = Mutex<ForkServerClient?>(nil)

    private enum State {
        case created
        case running(pid: Int32, pidfd: FileDescriptor)
        /// The pidfd stays open until `deinit`: a `join` on another thread may still poll it.
        case ended(pid: Int32, status: TerminationStatus, pidfd: FileDescriptor)
    }

    /// A process that will run `entry` with `argument`.
    ///
    /// - Parameters:
    ///   - sharing: descriptors to hand to the child (``ChildContext/descriptors``), such as
    ///     shared objects' `inheritableDescriptor`s. They stay open here.
    ///   - executable: the program to spawn (default: this one); it must register the entry.
    public init<Argument, Output>(
        _ entry: Entry<Argument, Output>,
        argument: Argument,
        name: String? = nil,
        daemon: Bool = false,
        sharing: [FileDescriptor] = [],
        startMethod: StartMethod = .spawn,
        executable: String? = nil
    ) throws(ProcessError) {
        guard sharing.count <= Multiprocessing.maximumSharedDescriptors else { throw .tooManyDescriptors(sharing.count) }
        self.name = name ?? Multiprocessing.nextName()
        self.daemon = daemon
        self.startMethod = startMethod
        self.entryName = entry.name
        self.sharing = sharing
        self.executable = executable
        if startMethod != .fork {
            do { encodedArgument = try BinaryMessageCoder().encode(argument) } catch {
                throw .encodingFailed("\(error)")
            }
        } else {
            encodedArgument = []
        }
        forkBody = { context in _ = try entry.body(argument, context) }
    }

    /// Starts the child. Throws if it was started before, if the entry is not registered (for
    /// spawn from this executable), if fork is unsafe here, or if the system refuses.
    public func start() throws(ProcessError) {
        Multiprocessing.reapOrphans()
        if startMethod != .fork && executable == nil { _ = try Multiprocessing.entry(named: entryName) }
        try state.withLock { (state) throws(ProcessError) in
            guard case .created = state else { throw .alreadyStarted }
            if startMethod == .forkserver {
                let (pid, pidfd) = try startThroughForkServer()
                switch Sys.duplicate(pidfd, atLeast: 3) {
                case .success(let registryCopy): Multiprocessing.adopt(pid, daemon: daemon, pidfd: registryCopy)
                case .failure: break  // only the exit-time join of this child is lost
                }
                state = .running(pid: pid, pidfd: pidfd)
                return
            }
            let pid = try startMethod == .spawn ? spawn() : fork()
            let pidfd: FileDescriptor
            switch Sys.pidfdOpen(pid) {
            case .success(let fd): pidfd = fd
            case .failure(let error):
                _ = Sys.sendSignal(SIGKILL, to: pid)
                _ = Sys.reap(pid, blocking: true)
                throw .system(call: "pidfd_open", error)
            }
            Multiprocessing.adopt(pid, daemon: daemon)
            state = .running(pid: pid, pidfd: pidfd)
        }
    }

    /// Waits until the child ends or `timeout` passes (nil: no limit); whether it ended.
    /// Python: `join(timeout)` (then check `exitcode`). Joining a process not started returns
    /// false at once.
    @discardableResult
    public func join(timeout: Duration? = nil) -> Bool {
        let deadline = Deadline.after(timeout)
        while true {
            let pidfd: FileDescriptor? = state.withLock { state in
                guard case .running(_, let pidfd) = state else { return nil }
                return pidfd
            }
            guard let pidfd else { return isEnded }
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
    public var pid: Int32? {
        state.withLock { state in
            switch state {
            case .created: nil
            case .running(let pid, _), .ended(let pid, _, _): pid
            }
        }
    }

    /// The exit status once the child has ended (it is reaped if it has): 0, 1 if the entry
    /// threw, or the negative number of the signal that ended it; nil while it runs.
    public var exitCode: Int32? {
        _ = reap()
        return state.withLock { if case .ended(_, let status, _) = $0 { status.exitCode } else { nil } }
    }

    /// Asks the child to end (SIGTERM). Python: `terminate()`.
    public func terminate() { signal(SIGTERM) }

    /// Ends the child at once (SIGKILL). Python: `kill()`.
    public func kill() { signal(SIGKILL) }

    /// Sends `signal` to the child if it runs, through its pidfd: never to a later process
    /// that reused its pid.
    public func signal(_ signal: Int32) {
        state.withLock { state in
            if case .running(_, let pidfd) = state { _ = Sys.signal(signal, pidfd: pidfd) }
        }
    }

    deinit {
        state.withLock { state in
            switch state {
            case .created:
                return
            case .ended(_, _, let pidfd):
                Sys.close(pidfd)
            case .running(let pid, let pidfd) where startMethod == .forkserver:
                // The fork server reaps it; a daemon is killed, the rest run on.
                if daemon { _ = Sys.signal(SIGKILL, pidfd: pidfd) }
                if daemon || !Sys.pollReadable([pidfd], milliseconds: 0).isEmpty {
                    Multiprocessing.forget(pid)
                    server.withLock { $0 }?.forget(pid)
                } else {
                    Multiprocessing.orphan(pid)
                }
                Sys.close(pidfd)
            case .running(let pid, let pidfd):
                if case .success(.some) = Sys.reap(pid, blocking: false) {
                    Multiprocessing.forget(pid)
                } else if daemon {
                    _ = Sys.sendSignal(SIGKILL, to: pid)
                    _ = Sys.reap(pid, blocking: true)
                    Multiprocessing.forget(pid)
                } else {
                    Multiprocessing.orphan(pid)
                }
                Sys.close(pidfd)
            }
        }
    }

    /// The exit code of a child something other than this object reaped (its status is lost).
    public static let unknownExitCode: Int32 = 255

    // MARK: internals

    private var isEnded: Bool { state.withLock { if case .ended = $0 { true } else { false } } }

    /// Reaps the child if it has ended; whether it has (now or before).
    private func reap() -> Bool {
        state.withLock { state in
            switch state {
            case .created: return false
            case .ended: return true
            case .running(let pid, let pidfd) where startMethod == .forkserver:
                // Not our child: it has ended when its pidfd is readable; the server reports
                // the status once it has reaped it.
                guard !Sys.pollReadable([pidfd], milliseconds: 0).isEmpty else { return false }
                let status = server.withLock { $0 }?.status(of: pid, deadline: .after(.seconds(10))) ?? .exited(Self.unknownExitCode)
                Multiprocessing.forget(pid)
                state = .ended(pid: pid, status: status, pidfd: pidfd)
                return true
            case .running(let pid, let pidfd):
                let status: TerminationStatus
                switch Sys.reap(pid, blocking: false) {
                case .success(let ended?): status = ended
                case .success(nil): return false
                // Reaped by someone else (a waitpid(-1) elsewhere, or SIGCHLD ignored): it has
                // ended, its status is lost.
                case .failure(.noChildProcess): status = .exited(Self.unknownExitCode)
                case .failure: return false
                }
                Multiprocessing.forget(pid)
                state = .ended(pid: pid, status: status, pidfd: pidfd)
                return true
            }
        }
    }

    /// The launch record, in a memfd the child reads: no size limit, no blocking write.
    private func launchRecord() throws(ProcessError) -> FileDescriptor {
        let launch = Multiprocessing.Launch(
            entry: entryName, name: name, daemon: daemon, parentPID: Sys.currentPID,
            parentName: Multiprocessing.currentProcess.name, descriptorCount: sharing.count, argument: encodedArgument)
        let record: [UInt8]
        do { record = try BinaryMessageCoder().encode(launch) } catch { throw .encodingFailed("\(error)") }
        let launchFD: FileDescriptor
        switch Sys.memfdCreate("shmipc-launch") {
        case .success(let fd): launchFD = fd
        case .failure(let error): throw .system(call: "memfd_create", error)
        }
        if case .failure(let error) = record.withUnsafeBytes({ Sys.writeAll(launchFD, $0) }) {
            Sys.close(launchFD)
            throw .system(call: "write", error)
        }
        return launchFD
    }

    private func spawn() throws(ProcessError) -> Int32 {
        let launchFD = try launchRecord()
        defer { Sys.close(launchFD) }

        var sources = [launchFD]
        if daemon { sources.append(try Multiprocessing.lifelineReadEnd()) }
        sources += sharing
        let moved = try Multiprocessing.copiesAboveChildDescriptors(sources)
        defer { moved.forEach(Sys.close) }
        var targets = [Multiprocessing.launchDescriptor]
        if daemon { targets.append(Multiprocessing.lifelineDescriptor) }
        targets += sharing.indices.map { Multiprocessing.firstSharedDescriptor + Int32($0) }

        let program = executable ?? ProcessEnvironment.executablePath
        switch Sys.spawn(
            executable: program, arguments: [Multiprocessing.childFlag],
            descriptors: Array(zip(moved, targets)).map { (source: $0.0, target: $0.1) })
        {
        case .success(let pid): return pid
        case .failure(let error): throw .system(call: "posix_spawn \(program)", error)
        }
    }

    /// Writes the launch record to a memfd and has the fork server start the child.
    private func startThroughForkServer() throws(ProcessError) -> (pid: Int32, pidfd: FileDescriptor) {
        let client = try Multiprocessing.forkServer(for: executable ?? ProcessEnvironment.executablePath)
        server.withLock { $0 = client }
        let launchFD = try launchRecord()
        defer { Sys.close(launchFD) }
        return try client.start(launch: launchFD, sharing: sharing)
    }

    private func fork() throws(ProcessError) -> Int32 {
        let threads = Sys.threadCount
        guard threads == 1 else { throw .forkUnsafe(threads: threads) }
        if daemon { _ = try Multiprocessing.lifelineReadEnd() }
        let parent = Multiprocessing.currentProcess
        Sys.flushStandardStreams()
        switch Sys.fork() {
        case .failure(let error):
            throw .system(call: "fork", error)
        case .success(let pid) where pid > 0:
            return pid
        case .success:
            // The child: single-threaded, a copy of this process.
            let lifeline = Multiprocessing.becomeForkedChild()
            if daemon, let lifeline, case .failure = Sys.startLifelineWatcher(lifeline) { Sys.exitImmediately(1) }
            let code = Multiprocessing.runChild(
                entryName: entryName, name: name, parent: parent,
                context: ChildContext(descriptors: sharing, name: name)
            ) { _, context in try forkBody(context) }
            Sys.flushStandardStreams()
            Sys.exitImmediately(code)
        }
    }
}
