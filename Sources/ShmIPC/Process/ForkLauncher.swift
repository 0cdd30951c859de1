internal import SystemPackage

/// ``StartMethod/fork``: fork(2) of this process, refused unless it is single-threaded; the
/// child runs the entry on the argument value it inherited.
struct ForkLauncher: Launcher {
    var encodesArgument: Bool { false }

    func launch(_ request: LaunchRequest) throws(ProcessError) -> any ChildHandle {
        let threads = Sys.threadCount
        guard threads == 1 else { throw .forkUnsafe(threads: threads) }
        if request.daemon { _ = try ChildRegistry.lifelineReadEnd() }
        let parent = Multiprocessing.currentProcess
        Sys.flushStandardStreams()
        switch Sys.fork() {
        case .failure(let error):
            throw .system(call: "fork", error)
        case .success(let pid) where pid > 0:
            return try DirectChild(adopting: pid, daemon: request.daemon)
        case .success:
            ChildBootstrap.runForked(request, parent: parent)
        }
    }
}
