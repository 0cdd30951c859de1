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
/// Behind it (Notes/0007): ``EntryRegistry`` (the entries), ``ChildRegistry`` (the children,
/// the lifeline, the exit handler), ``ChildBootstrap`` (the child side of every start method),
/// ``DescriptorLayout`` (where a child finds its descriptors), and one ``Launcher`` per
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
        var parent: ProcessIdentity?
        /// Children named so far ("Process-N").
        var started = 0
    }

    private static let identity = Mutex(Identity())

    /// A default name for the next child: "Process-N", as Python's.
    static func nextName() -> String {
        identity.withLock { identity in
            identity.started += 1
            return "Process-\(identity.started)"
        }
    }

    /// In a child, before its entry runs: its name and parent; its own children count from 1.
    static func becomeChild(named name: String, of parent: ProcessIdentity) {
        identity.withLock { $0 = Identity(name: name, parent: parent) }
    }
}
