internal import SystemPackage

/// ``StartMethod/fork``: fork(2) of this process, refused unless it is single-threaded; the
/// child runs the entry on the argument value it inherited.
struct ForkLauncher: Launcher {
    var encodesArgument: Bool { false }

    func launch(_ request: LaunchRequest) throws(ProcessError) -> any ChildHandle {
        if request.daemon { _ = try ChildRegistry.lifelineReadEnd() }
        let parent = Multiprocessing.currentProcess
        switch try Self.fork() {
        case .parent(let pid): return try DirectChild(adopting: pid, daemon: request.daemon)
        case .child(let lifeline): ChildBootstrap.runForked(request, parent: parent, lifeline: lifeline)
        }
    }

    /// Where a ``fork()`` returned.
    enum Side {
        case parent(child: Int32)
        /// The child has forgotten the parent's children, lifeline write end and fork servers;
        /// the lifeline's read end, if the parent had one (for a daemon's watcher).
        case child(lifeline: FileDescriptor?)
    }

    /// fork(2), refused with ``ProcessError/forkUnsafe(threads:)`` unless this process has one
    /// thread (Notes/0000-ground-rules.md), stdio flushed first. Both ``StartMethod/fork`` and
    /// ``Multiprocessing/fork()`` fork here.
    static func fork() throws(ProcessError) -> Side {
        let threads = Sys.threadCount
        guard threads == 1 else { throw .forkUnsafe(threads: threads) }
        Sys.flushStandardStreams()
        switch Sys.fork() {
        case .failure(let error):
            throw .system(call: "fork", error)
        case .success(let pid) where pid > 0:
            return .parent(child: pid)
        case .success:
            let lifeline = ChildRegistry.forgetInherited()
            ForkServerLauncher.forgetInherited()
            return .child(lifeline: lifeline)
        }
    }
}
