extension Multiprocessing {
    /// What ``fork()`` returns, once in each process.
    public enum ForkResult: Sendable {
        /// In the new process: a copy of this one, continuing from the call.
        case child
        /// In this process: the child, as a started ``Process`` (join it, read its exit code,
        /// signal it; it is reaped as any `Process` child).
        case parent(Process)
    }

    /// Forks this process: the call returns twice, `.child` in the copy and `.parent(child)`
    /// here. Python: `os.fork()` (`pid == 0` in the child), with the child's end and reaping
    /// handled as for a ``Process``: `join()`, `exitCode` (the status it exits with, or the
    /// negative signal that ended it), ``activeChildren()``, and at exit this process waits
    /// for it. In the child, ``currentProcess`` is the child (named `Process-N`, its own pid)
    /// and ``parentProcess`` this process; the child ends when its code exits (`exit(_:)`, or
    /// returning from `main`).
    ///
    /// Refused with ``ProcessError/forkUnsafe(threads:)`` unless this process has one thread:
    /// a child forked from a multi-threaded process can deadlock on a lock another thread held
    /// (Notes/0000-ground-rules.md).
    public static func fork() throws(ProcessError) -> ForkResult {
        let parent = currentProcess
        let (name, identity) = nextChild(prefix: "Process")
        switch try ForkLauncher.fork() {
        case .parent(let pid):
            return .parent(Process(forked: try DirectChild(adopting: pid, daemon: false), name: name))
        case .child:
            becomeChild(named: name, identity: identity, of: parent)
            return .child
        }
    }
}
