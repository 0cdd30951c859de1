public import SystemPackage

/// Why a ``Process`` could not be started or a child could not run its entry point.
public enum ProcessError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No entry point of this name was registered with ``Multiprocessing/bootstrap(_:)``
    /// (a spawned child could not find it, so the parent refuses to start it).
    case entryNotRegistered(String)
    /// ``Multiprocessing/bootstrap(_:)`` was not called: a spawned child would run `main`
    /// from the top instead of an entry point.
    case notBootstrapped
    /// Two entry points share a name.
    case duplicateEntry(String)
    /// The fork start method was asked for in a process with more than one thread: the child
    /// could deadlock on a lock another thread held at fork time (Notes/0000-ground-rules.md, processes).
    case forkUnsafe(threads: Int)
    /// `start()` was called twice.
    case alreadyStarted
    /// More descriptors to hand over than a child can take.
    case tooManyDescriptors(Int)
    /// The argument could not be encoded.
    case encodingFailed(String)
    /// ``Multiprocessing/setStartMethod(_:force:)`` was called when a start method was already
    /// set (the one set). Python: RuntimeError("context has already been set").
    case startMethodAlreadySet(StartMethod)
    /// A system call failed (posix_spawn, fork, memfd_create, …).
    case system(call: String, Errno)

    /// A description for people: logs and error messages.
    public var description: String {
        switch self {
        case .entryNotRegistered(let name): "no entry point named '\(name)' is registered (Multiprocessing.bootstrap)"
        case .notBootstrapped: "Multiprocessing.bootstrap(_:) was not called at the start of main"
        case .duplicateEntry(let name): "two entry points are named '\(name)'"
        case .forkUnsafe(let threads): "fork refused: this process has \(threads) threads (use the spawn start method)"
        case .alreadyStarted: "the process was already started"
        case .tooManyDescriptors(let count): "\(count) descriptors to hand over; at most \(Multiprocessing.maximumSharedDescriptors)"
        case .encodingFailed(let reason): "the argument did not encode: \(reason)"
        case .startMethodAlreadySet(let method): "the start method was already set (to \(method))"
        case .system(let call, let error): "\(call) failed: \(error)"
        }
    }
}
