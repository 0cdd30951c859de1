internal import Synchronization

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
///
/// Behind it (Notes/0007): `EntryRegistry` (the entries), `ChildRegistry` (the children,
/// the lifeline, the exit handler), `ChildBootstrap` (the child side of every start method),
/// `DescriptorLayout` (where a child finds its descriptors), and one `Launcher` per
/// ``StartMethod``.
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
        EntryRegistry.register(entries + builtInEntries)
        ChildBootstrap.runIfStartedAsChild()
    }

    /// This process: its pid and name ("MainProcess", or the name its ``Process`` was given).
    /// Python: `current_process()`.
    public static var currentProcess: ProcessIdentity {
        ProcessIdentity(pid: .current, name: identity.withLock { $0.name })
    }

    /// The process that started this one through ShmIPC, or nil. Python: `parent_process()`.
    public static var parentProcess: ProcessIdentity? { identity.withLock { $0.parent } }

    /// How many CPUs are online. Python: `cpu_count()`.
    public static var cpuCount: Int { Sys.onlineCPUCount }

    /// How many CPUs this process may run on (its affinity mask), at most ``cpuCount``.
    public static var availableCPUCount: Int { Sys.allowedCPUCount }

    /// The processes ShmIPC started for this process that have not ended (or not been reaped)
    /// yet, the fork server and its children for this process included, after reaping those
    /// whose ``Process`` is gone and which have ended. Python: `active_children()`.
    public static func activeChildren() -> [ProcessID] { ChildRegistry.active }

    /// The most descriptors a child can be handed.
    public static let maximumSharedDescriptors = DescriptorLayout.maximumShared

    // MARK: internals

    /// Entries every program registers: the machinery's own children.
    static let builtInEntries: [any EntryPoint] = [PoolWorker.entry]

    private struct Identity {
        var name = "MainProcess"
        /// Python's `_identity`: () for the main process, its parent's and then its number
        /// there for a child.
        var path: [Int] = []
        var parent: ProcessIdentity?
        /// Children created so far (Python's `_process_counter`).
        var created = 0
        /// The program's start method, once set.
        var startMethod: StartMethod?
    }

    private static let identity = Mutex(Identity())

    /// The next child's default name, `prefix-N` (N: this process's identity, then the
    /// child's number, joined by ":"), and its identity. Python: `BaseProcess.__init__`.
    static func nextChild(prefix: String) -> (name: String, identity: [Int]) {
        identity.withLock { identity in
            identity.created += 1
            let path = identity.path + [identity.created]
            return ("\(prefix)-\(path.map(String.init).joined(separator: ":"))", path)
        }
    }

    /// In a child, before its entry runs: its name, identity and parent; its own children
    /// count from 1; the start method it inherited stays.
    static func becomeChild(named name: String, identity path: [Int], of parent: ProcessIdentity) {
        identity.withLock { $0 = Identity(name: name, path: path, parent: parent, startMethod: $0.startMethod) }
    }

    // MARK: the start method

    /// The start method of every ``Process`` and ``Pool`` that names none: ``StartMethod/spawn``
    /// until ``setStartMethod(_:force:)``. Python: `get_start_method()`.
    public static var startMethod: StartMethod { identity.withLock { $0.startMethod } ?? .spawn }

    /// Sets the program's start method, once (Python: `set_start_method`). A second call
    /// throws ``ProcessError/startMethodAlreadySet(_:)``, unless `force`.
    public static func setStartMethod(_ method: StartMethod, force: Bool = false) throws(ProcessError) {
        try identity.withLock { (identity) throws(ProcessError) in
            if let current = identity.startMethod, !force { throw .startMethodAlreadySet(current) }
            identity.startMethod = method
        }
    }

    /// A context whose processes and pools start with `method` (nil: the program's), leaving
    /// the program's start method alone. Python: `get_context(method)`.
    public static func context(_ method: StartMethod? = nil) -> Context { Context(startMethod: method ?? startMethod) }
}
