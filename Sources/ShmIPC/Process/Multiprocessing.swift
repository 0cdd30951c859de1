internal import Synchronization
internal import SystemPackage
#if canImport(Glibc)
internal import Glibc
#endif

/// The process-wide side of ShmIPC's processes: the entry-point registry, this process's
/// identity, and its children (Python: the `multiprocessing` module's functions).
///
/// Call ``bootstrap(_:)`` first thing in `main`, with every entry point the program starts:
///
/// ```swift
/// @main struct App {
///     static let square = Entry("square") { (x: Int) in x * x }
///     static func main() throws {
///         Multiprocessing.bootstrap([square])   // a child runs its entry here and exits
///         try Pool.with(processes: 2) { pool in print(try pool.map(square, Array(0..<10))) }
///     }
/// }
/// ```
public enum Multiprocessing {
    /// Registers `entries` and, in a child ShmIPC started, runs the requested entry and exits
    /// with its status (0, or 1 if it threw; the error is written to stderr). In any other
    /// process it returns at once. Call it before anything else in `main`, before any thread
    /// starts: a spawned child is this executable started again, and must not run the
    /// parent's program.
    ///
    /// Traps if two entries share a name (a programming error). A second call adds its entries
    /// (replacing any of the same name).
    public static func bootstrap(_ entries: [any EntryPoint]) {
        var names = Set<String>()
        for entry in entries { precondition(names.insert(entry.name).inserted, "ShmIPC: \(ProcessError.duplicateEntry(entry.name))") }
        runtime.withLock { state in
            for entry in entries + [PoolWorker.entry] {
                guard let encoded = entry as? any EncodedEntry else {
                    preconditionFailure("ShmIPC: \(type(of: entry)) is not an Entry")
                }
                state.entries[entry.name] = encoded
            }
            state.bootstrapped = true
        }
        let arguments = CommandLine.arguments
        if arguments.count >= 2 && arguments[1] == childFlag { runSpawnedChild() }
        if arguments.count >= 2 && arguments[1] == ForkServer.flag { ForkServer.run() }
    }

    /// This process: its pid and name ("MainProcess", or the name its ``Process`` was given).
    /// Python: `current_process()`.
    public static var currentProcess: ProcessIdentity {
        ProcessIdentity(pid: Sys.currentPID, name: runtime.withLock { $0.name })
    }

    /// The process that started this one through ShmIPC, or nil. Python: `parent_process()`.
    public static var parentProcess: ProcessIdentity? { runtime.withLock { $0.parent } }

    /// How many CPUs are online. Python: `cpu_count()`.
    public static var cpuCount: Int { Sys.onlineCPUCount }

    /// How many CPUs this process may run on (its affinity mask), at most ``cpuCount``.
    public static var availableCPUCount: Int { Sys.allowedCPUCount }

    /// The pids of the processes ShmIPC started for this process that have not ended (or not
    /// been reaped) yet, the fork server and its children for this process included, after
    /// reaping those whose ``Process`` is gone and which have ended. Python: `active_children()`.
    public static func activeChildren() -> [Int32] {
        reapOrphans()
        return runtime.withLock { state in state.children.keys.sorted() }
    }

    /// The most descriptors a child can be handed.
    public static let maximumSharedDescriptors = 48

    // MARK: internals

    /// argv[1] of a child ShmIPC spawned.
    static let childFlag = "--shmipc-child"
    /// A spawned child's descriptors: its launch record, its lifeline, then the shared ones.
    static let launchDescriptor: Int32 = 3
    static let lifelineDescriptor: Int32 = 4
    static let firstSharedDescriptor: Int32 = 5

    struct Child {
        var daemon: Bool
        /// Its ``Process`` is gone: anyone may reap it.
        var orphaned = false
        /// For a child of the fork server (not ours to waitpid): a pidfd to wait on and signal.
        var pidfd: FileDescriptor?
    }

    struct State {
        var entries: [String: any EncodedEntry] = [:]
        var bootstrapped = false
        var name = "MainProcess"
        var parent: ProcessIdentity?
        /// The pipe daemon children watch: only this process holds its write end.
        var lifeline: (read: FileDescriptor, write: FileDescriptor)?
        var children: [Int32: Child] = [:]
        var started = 0
        var exitHandlerInstalled = false
        /// Fork servers by executable path.
        var forkServers: [String: ForkServerClient] = [:]
    }

    static let runtime = Mutex(State())

    static func entry(named name: String) throws(ProcessError) -> any EncodedEntry {
        let (bootstrapped, entry) = runtime.withLock { ($0.bootstrapped, $0.entries[name]) }
        guard bootstrapped else { throw .notBootstrapped }
        guard let entry else { throw .entryNotRegistered(name) }
        return entry
    }

    /// A default name for the next child: "Process-N", as Python's.
    static func nextName() -> String {
        runtime.withLock { state in
            state.started += 1
            return "Process-\(state.started)"
        }
    }

    /// The lifeline's read end, made on first use.
    static func lifelineReadEnd() throws(ProcessError) -> FileDescriptor {
        try runtime.withLock { (state) throws(ProcessError) -> FileDescriptor in
            if let lifeline = state.lifeline { return lifeline.read }
            switch Sys.makePipe() {
            case .success(let ends):
                state.lifeline = ends
                return ends.read
            case .failure(let error): throw .system(call: "pipe", error)
            }
        }
    }

    static func adopt(_ pid: Int32, daemon: Bool, pidfd: FileDescriptor? = nil) {
        runtime.withLock { state in
            state.children[pid] = Child(daemon: daemon, pidfd: pidfd)
            if !state.exitHandlerInstalled {
                state.exitHandlerInstalled = true
                atexit { Multiprocessing.finishChildren() }
            }
        }
    }

    static func forget(_ pid: Int32) {
        if let child = runtime.withLock({ $0.children.removeValue(forKey: pid) }), let pidfd = child.pidfd { Sys.close(pidfd) }
    }

    static func orphan(_ pid: Int32) { runtime.withLock { $0.children[pid]?.orphaned = true } }

    /// Reaps orphaned children that have ended (no zombies left behind by dropped Processes).
    static func reapOrphans() {
        let orphans = runtime.withLock { state in state.children.filter(\.value.orphaned) }
        for (pid, child) in orphans {
            if let pidfd = child.pidfd {
                if !Sys.pollReadable([pidfd], milliseconds: 0).isEmpty { forget(pid) }  // the server reaped it
                continue
            }
            switch Sys.reap(pid, blocking: false) {
            case .success(.some), .failure: forget(pid)
            case .success(.none): break
            }
        }
    }

    /// At exit (Python's `_exit_function`): the other children are joined, then daemon
    /// children (the fork server among them) are terminated: SIGTERM, then SIGKILL after a
    /// second.
    static func finishChildren() {
        let children = runtime.withLock { state in
            defer { state.children = [:] }
            return state.children
        }
        for (pid, child) in children where !child.daemon {
            if let pidfd = child.pidfd { _ = Sys.pollReadable([pidfd], milliseconds: -1) } else { _ = Sys.reap(pid, blocking: true) }
        }
        let daemons = children.filter(\.value.daemon)
        for (pid, child) in daemons { signal(SIGTERM, pid, child) }
        let grace = Deadline.after(.seconds(1))
        for (pid, child) in daemons {
            while !ended(pid, child) {
                if grace.hasPassed { signal(SIGKILL, pid, child) }
                Sys.sleep(.milliseconds(1))
            }
        }
        for child in children.values { if let pidfd = child.pidfd { Sys.close(pidfd) } }
    }

    private static func signal(_ number: Int32, _ pid: Int32, _ child: Child) {
        if let pidfd = child.pidfd { _ = Sys.signal(number, pidfd: pidfd) } else { _ = Sys.sendSignal(number, to: pid) }
    }

    private static func ended(_ pid: Int32, _ child: Child) -> Bool {
        if let pidfd = child.pidfd { return !Sys.pollReadable([pidfd], milliseconds: 0).isEmpty }
        if case .success(.none) = Sys.reap(pid, blocking: false) { return false }
        return true
    }

    /// Close-on-exec copies of `sources`, numbered above every descriptor a child is given
    /// (launch 3, lifeline 4, shared 5…): dup2s into a child then never overwrite a source
    /// another dup2 still needs. On failure the copies made so far are closed.
    static func copiesAboveChildDescriptors(_ sources: [FileDescriptor]) throws(ProcessError) -> [FileDescriptor] {
        var copies: [FileDescriptor] = []
        for source in sources {
            switch Sys.duplicate(source, atLeast: firstSharedDescriptor + Int32(maximumSharedDescriptors)) {
            case .success(let fd): copies.append(fd)
            case .failure(let error):
                copies.forEach(Sys.close)
                throw .system(call: "fcntl(F_DUPFD_CLOEXEC)", error)
            }
        }
        return copies
    }

    /// The fork server for `executable`, started on first use.
    static func forkServer(for executable: String) throws(ProcessError) -> ForkServerClient {
        let lifeline = try lifelineReadEnd()
        return try runtime.withLock { (state) throws(ProcessError) -> ForkServerClient in
            if let client = state.forkServers[executable] { return client }
            let ends: (FileDescriptor, FileDescriptor)
            switch Sys.seqpacketPair() {
            case .success(let pair): ends = pair
            case .failure(let error): throw .system(call: "socketpair", error)
            }
            defer { Sys.close(ends.1) }
            let moved: [FileDescriptor]
            do throws(ProcessError) { moved = try copiesAboveChildDescriptors([ends.1, lifeline]) } catch {
                Sys.close(ends.0)
                throw error
            }
            defer { moved.forEach(Sys.close) }
            let pid: Int32
            switch Sys.spawn(
                executable: executable, arguments: [ForkServer.flag],
                descriptors: [(moved[0], ForkServer.socketDescriptor), (moved[1], lifelineDescriptor)])
            {
            case .success(let value): pid = value
            case .failure(let error):
                Sys.close(ends.0)
                throw .system(call: "posix_spawn \(executable) (the fork server)", error)
            }
            let client = ForkServerClient(socket: ends.0, pid: pid)
            state.forkServers[executable] = client
            state.children[pid] = Child(daemon: true)
            if !state.exitHandlerInstalled {
                state.exitHandlerInstalled = true
                atexit { Multiprocessing.finishChildren() }
            }
            return client
        }
    }

    /// What a spawned child reads from its launch descriptor.
    struct Launch: Codable {
        var entry: String
        var name: String
        var daemon: Bool
        var parentPID: Int32
        var parentName: String
        var descriptorCount: Int
        var argument: [UInt8]

        static func decode(_ bytes: [UInt8]) -> Launch? {
            var decoded: Launch?
            try? withBytes(of: bytes) { raw throws(ChannelError) in decoded = try BinaryMessageCoder().decode(Launch.self, from: raw) }
            return decoded
        }
    }

    /// A spawned child: reads its launch record, runs the entry, exits.
    static func runSpawnedChild() -> Never {
        let launchFD = FileDescriptor(rawValue: launchDescriptor)
        let bytes: [UInt8]
        switch Sys.readAll(launchFD) {
        case .success(let value): bytes = value
        case .failure(let error):
            Sys.printError("ShmIPC: a child started with \(childFlag) could not read its launch record: \(error)")
            Sys.exitProcess(1)
        }
        Sys.close(launchFD)
        guard let launch = Launch.decode(bytes) else {
            Sys.printError("ShmIPC: a child's launch record did not decode")
            Sys.exitProcess(1)
        }
        if launch.daemon, case .failure(let error) = Sys.startLifelineWatcher(FileDescriptor(rawValue: lifelineDescriptor)) {
            Sys.printError("ShmIPC: daemon \(launch.name) could not watch its parent: \(error)")
            Sys.exitProcess(1)
        }
        let code = runLaunched(launch)
        Sys.flushStandardStreams()
        Sys.exitProcess(code)
    }

    /// Runs the entry `launch` names, with the shared descriptors at 5…; the exit code.
    static func runLaunched(_ launch: Launch) -> Int32 {
        let descriptors = (0..<launch.descriptorCount).map { FileDescriptor(rawValue: firstSharedDescriptor + Int32($0)) }
        return runChild(
            entryName: launch.entry, name: launch.name, parent: ProcessIdentity(pid: launch.parentPID, name: launch.parentName),
            context: ChildContext(descriptors: descriptors, name: launch.name)
        ) { entry, context in
            try launch.argument.withUnsafeBytes { raw in _ = try entry.run(encoded: raw, context: context) }
        }
    }

    /// Becomes the child named `name` and runs `body` on entry `entryName`: the exit code (1 if
    /// it threw, with the error on stderr).
    static func runChild(
        entryName: String, name: String, parent: ProcessIdentity, context: ChildContext,
        _ body: (any EncodedEntry, ChildContext) throws -> Void
    ) -> Int32 {
        let entry: (any EncodedEntry)? = runtime.withLock { state in
            state.name = name
            state.parent = parent
            state.children = [:]
            state.started = 0
            return state.entries[entryName]
        }
        guard let entry else {
            Sys.printError("ShmIPC: \(ProcessError.entryNotRegistered(entryName)) in \(ProcessEnvironment.executablePath)")
            return 1
        }
        do {
            try body(entry, context)
            return 0
        } catch {
            Sys.printError("Process \(name) (pid \(Sys.currentPID)): \(error)")
            return 1
        }
    }

    /// In a forked child, before anything else: the parent's lifeline write end must not keep
    /// the parent's daemons (or this child, if a daemon) alive, and the parent's children are
    /// not ours. Returns the lifeline read end (for a daemon's watcher).
    static func becomeForkedChild() -> FileDescriptor? {
        runtime.withLock { state in
            let lifeline = state.lifeline
            if let lifeline { Sys.close(lifeline.write) }
            state.lifeline = nil
            for child in state.children.values { if let pidfd = child.pidfd { Sys.close(pidfd) } }
            state.children = [:]
            for client in state.forkServers.values { Sys.close(client.socket) }  // the parent's, not ours
            state.forkServers = [:]
            state.exitHandlerInstalled = true  // the inherited handler must find nothing to do
            return lifeline?.read
        }
    }
}

/// A process's pid and name.
public struct ProcessIdentity: Hashable, Sendable {
    public let pid: Int32
    public let name: String
}
