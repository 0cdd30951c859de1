public import SystemPackage

/// A start method to create processes and pools with, without setting the program's.
/// Python: the context `get_context("fork")` returns (`ctx.Process`, `ctx.Pool`).
///
/// ```swift
/// let context = Multiprocessing.context(.forkserver)
/// let worker = try context.process(App.work, argument: 3)
/// let pool = try context.pool(processes: 2)
/// ```
public struct Context: Sendable, Hashable {
    /// The start method of everything this context creates.
    public let startMethod: StartMethod

    /// A ``Process`` that starts with this context's method. Python: `ctx.Process(...)`.
    public func process<Argument, Output>(
        _ entry: Entry<Argument, Output>, argument: Argument, name: String? = nil, daemon: Bool = false,
        sharing: [FileDescriptor] = [], executable: String? = nil
    ) throws(ProcessError) -> Process {
        try Process(
            entry, argument: argument, name: name, daemon: daemon, sharing: sharing, startMethod: startMethod,
            executable: executable)
    }

    /// A ``Pool`` whose workers start with this context's method. Python: `ctx.Pool(...)`.
    public func pool(
        processes: Int? = nil, maxTasksPerChild: Int? = nil, executable: String? = nil, maxMessageSize: Int = 1 << 20,
        waitStrategy: WaitStrategy = .default, sharing: [FileDescriptor] = []
    ) throws(PoolError) -> Pool {
        try Pool(
            processes: processes, maxTasksPerChild: maxTasksPerChild, startMethod: startMethod, executable: executable,
            maxMessageSize: maxMessageSize, waitStrategy: waitStrategy, sharing: sharing)
    }
}

extension StartMethod: CustomStringConvertible {
    /// Python's name: "spawn", "fork", "forkserver".
    public var description: String {
        switch self {
        case .spawn: "spawn"
        case .fork: "fork"
        case .forkserver: "forkserver"
        }
    }

    /// Python's pool workers are named after their process class: "SpawnPoolWorker-N".
    var poolWorkerPrefix: String {
        switch self {
        case .spawn: "SpawnPoolWorker"
        case .fork: "ForkPoolWorker"
        case .forkserver: "ForkServerPoolWorker"
        }
    }
}
