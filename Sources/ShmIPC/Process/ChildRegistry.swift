internal import Synchronization
internal import SystemPackage
#if canImport(Glibc)
internal import Glibc
#endif

/// The children this process started (the fork server among them), the lifeline its daemon
/// children watch, and the exit handler that joins and terminates them (Python's
/// `_exit_function`), installed once, with the first child.
enum ChildRegistry {
    struct Child {
        var daemon: Bool
        /// Its ``Process`` is gone: anyone may reap it.
        var orphaned = false
        /// For a child of the fork server (not ours to waitpid): a pidfd to wait on and signal.
        var pidfd: FileDescriptor?
    }

    private struct State {
        var children: [ProcessID: Child] = [:]
        /// The pipe daemon children watch: only this process holds its write end.
        var lifeline: (read: FileDescriptor, write: FileDescriptor)?
        var exitHandlerInstalled = false
    }

    private static let state = Mutex(State())

    /// Registers a child; the first one installs the exit handler.
    static func adopt(_ pid: ProcessID, daemon: Bool, pidfd: FileDescriptor? = nil) {
        state.withLock { state in
            state.children[pid] = Child(daemon: daemon, pidfd: pidfd)
            if !state.exitHandlerInstalled {
                state.exitHandlerInstalled = true
                atexit { ChildRegistry.finishChildren() }
            }
        }
    }

    static func forget(_ pid: ProcessID) {
        if let child = state.withLock({ $0.children.removeValue(forKey: pid) }), let pidfd = child.pidfd { Sys.close(pidfd) }
    }

    static func orphan(_ pid: ProcessID) { state.withLock { $0.children[pid]?.orphaned = true } }

    /// The children not yet reaped, after reaping ended orphans.
    static var active: [ProcessID] {
        reapOrphans()
        return state.withLock { $0.children.keys.sorted() }
    }

    /// Reaps orphaned children that have ended (no zombies left behind by dropped Processes).
    static func reapOrphans() {
        let orphans = state.withLock { state in state.children.filter(\.value.orphaned) }
        for (pid, child) in orphans where ended(pid, child) { forget(pid) }
    }

    /// The lifeline's read end, made on first use.
    static func lifelineReadEnd() throws(ProcessError) -> FileDescriptor {
        try state.withLock { (state) throws(ProcessError) -> FileDescriptor in
            if let lifeline = state.lifeline { return lifeline.read }
            switch Sys.makePipe() {
            case .success(let ends):
                state.lifeline = ends
                return ends.read
            case .failure(let error): throw .system(call: "pipe", error)
            }
        }
    }

    /// In a forked child: the parent's children are not ours, and the parent's lifeline write
    /// end must not keep the parent's daemons (or this child, if a daemon) alive. The inherited
    /// exit handler finds nothing to do. Returns the lifeline's read end, if there was one.
    static func forgetInherited() -> FileDescriptor? {
        state.withLock { state in
            let lifeline = state.lifeline
            if let lifeline { Sys.close(lifeline.write) }
            state.lifeline = nil
            for child in state.children.values { if let pidfd = child.pidfd { Sys.close(pidfd) } }
            state.children = [:]
            state.exitHandlerInstalled = true
            return lifeline?.read
        }
    }

    /// At exit: the other children are joined, then daemon children (the fork server among
    /// them) are terminated: SIGTERM, then SIGKILL after a second.
    static func finishChildren() {
        let children = state.withLock { state in
            defer { state.children = [:] }
            return state.children
        }
        for (pid, child) in children where !child.daemon {
            if let pidfd = child.pidfd { _ = Sys.pollReadable([pidfd], milliseconds: -1) } else { _ = Sys.reap(pid.rawValue, blocking: true) }
        }
        let daemons = children.filter(\.value.daemon)
        for (pid, child) in daemons { signal(.terminate, pid, child) }
        let grace = Deadline.after(.seconds(1))
        for (pid, child) in daemons {
            while !ended(pid, child) {
                if grace.hasPassed { signal(.kill, pid, child) }
                Sys.sleep(.milliseconds(1))
            }
        }
        for child in children.values { if let pidfd = child.pidfd { Sys.close(pidfd) } }
    }

    private static func signal(_ signal: Signal, _ pid: ProcessID, _ child: Child) {
        if let pidfd = child.pidfd {
            _ = Sys.signal(signal.rawValue, pidfd: pidfd)
        } else {
            _ = Sys.sendSignal(signal.rawValue, to: pid.rawValue)
        }
    }

    /// Whether `child` has ended (reaped now if it is ours; a fork-server child's server reaps it).
    private static func ended(_ pid: ProcessID, _ child: Child) -> Bool {
        if let pidfd = child.pidfd { return !Sys.pollReadable([pidfd], milliseconds: 0).isEmpty }
        if case .success(.none) = Sys.reap(pid.rawValue, blocking: false) { return false }
        return true
    }
}
