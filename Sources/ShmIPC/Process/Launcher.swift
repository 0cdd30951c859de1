internal import SystemPackage
#if canImport(Glibc)
internal import Glibc
#endif

/// Starts a child one way: one launcher per ``StartMethod``, as CPython keeps one `popen_*`
/// module per method. ``Process`` asks its start method for its launcher and keeps only its
/// own state; what differs between the methods lives in the launcher and in the
/// ``ChildHandle`` it returns.
protocol Launcher: Sendable {
    /// Whether the child decodes its argument from bytes (spawn, fork server) rather than
    /// receiving the value in a copy of this process (fork).
    var encodesArgument: Bool { get }
    /// Starts the child `request` describes.
    func launch(_ request: LaunchRequest) throws(ProcessError) -> any ChildHandle
}

extension StartMethod {
    var launcher: any Launcher {
        switch self {
        case .spawn: SpawnLauncher()
        case .fork: ForkLauncher()
        case .forkserver: ForkServerLauncher()
        }
    }
}

/// Everything a launcher needs to start a ``Process``'s child.
struct LaunchRequest: Sendable {
    let entryName: String
    let name: String
    let daemon: Bool
    /// Its place among ShmIPC's processes (Python's `_identity`), for its children's names.
    let identity: [Int]
    let sharing: [FileDescriptor]
    /// The program to start (nil: this one).
    let executable: String?
    /// The argument, encoded (empty for fork).
    let encodedArgument: [UInt8]
    /// The entry run on the argument value, in a forked copy of this process.
    let forkBody: @Sendable (ChildContext) throws -> Void

    /// The launch record for a spawned or fork-server child.
    var record: LaunchRecord {
        LaunchRecord(
            entry: entryName, name: name, identity: identity, daemon: daemon, parentPID: Sys.currentPID,
            parentName: Multiprocessing.currentProcess.name, descriptorCount: sharing.count, argument: encodedArgument)
    }
}

/// A started child: owns its pid and its pidfd (closed with the handle), learns its status,
/// signals it, and lets it go when its ``Process`` is dropped.
protocol ChildHandle: AnyObject, Sendable {
    var pid: ProcessID { get }
    /// Readable once the child has ended: what `join` waits on.
    var pidfd: FileDescriptor { get }
    /// Its status if it has ended (reaped now, or reported by whoever reaps it); nil while it
    /// runs.
    func endedStatus() -> TerminationStatus?
    /// Its ``Process`` is gone while it may run: a daemon is killed, the others run on and are
    /// reaped later by ``ChildRegistry``.
    func detach(daemon: Bool)
}

extension ChildHandle {
    /// Sends `signal` through the pidfd: never to a later process that reused the pid.
    func signal(_ signal: Signal) { _ = Sys.signal(signal.rawValue, pidfd: pidfd) }

    var hasEnded: Bool { !Sys.pollReadable([pidfd], milliseconds: 0).isEmpty }
}

/// A child of this process (spawn, fork): reaped here with waitpid.
final class DirectChild: ChildHandle {
    let pid: ProcessID
    let pidfd: FileDescriptor

    /// Takes `pid` on: opens its pidfd (killing and reaping it if that fails) and registers it.
    init(adopting pid: Int32, daemon: Bool) throws(ProcessError) {
        switch Sys.pidfdOpen(pid) {
        case .success(let fd): pidfd = fd
        case .failure(let error):
            _ = Sys.sendSignal(SIGKILL, to: pid)
            _ = Sys.reap(pid, blocking: true)
            throw .system(call: "pidfd_open", error)
        }
        self.pid = ProcessID(rawValue: pid)
        ChildRegistry.adopt(self.pid, daemon: daemon)
    }

    deinit { Sys.close(pidfd) }

    func endedStatus() -> TerminationStatus? {
        let status: TerminationStatus
        switch Sys.reap(pid.rawValue, blocking: false) {
        case .success(let ended?): status = ended
        case .success(nil): return nil
        // Reaped by someone else (a waitpid(-1) elsewhere, or SIGCHLD ignored): it has ended,
        // its status is lost.
        case .failure(.noChildProcess): status = .exited(Process.unknownExitCode)
        case .failure: return nil
        }
        ChildRegistry.forget(pid)
        return status
    }

    func detach(daemon: Bool) {
        if case .success(.some) = Sys.reap(pid.rawValue, blocking: false) {
            ChildRegistry.forget(pid)
        } else if daemon {
            signal(.kill)
            _ = Sys.reap(pid.rawValue, blocking: true)
            ChildRegistry.forget(pid)
        } else {
            ChildRegistry.orphan(pid)
        }
    }
}
