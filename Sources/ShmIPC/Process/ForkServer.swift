internal import SystemPackage

/// The fork server (Python's forkserver): a single-threaded process, spawned once per
/// executable, that forks children on request. A fork from it is safe (it never has a second
/// thread) and costs a fork, not a program start: ~1 ms here instead of spawn's ~7 ms.
///
/// The server is a daemon child of the client process (it watches the same lifeline), and
/// polls its socket, its lifeline and its children's pidfds; it exits when the client closes
/// the socket or dies. The client side is ``ForkServerLauncher``.
enum ForkServer {
    static let flag = "--shmipc-forkserver"

    /// The server's loop (in the process `bootstrap` found `flag` in).
    static func run() -> Never {
        let socket = FileDescriptor(rawValue: DescriptorLayout.forkServerSocket)
        let lifeline = FileDescriptor(rawValue: DescriptorLayout.lifeline)
        var children: [(pid: Int32, pidfd: FileDescriptor)] = []
        while true {
            let ready = Sys.pollReadable([socket, lifeline] + children.map(\.pidfd), milliseconds: -1)
            if ready.contains(1) { Sys.exitImmediately(0) }  // the client is gone
            for index in ready.filter({ $0 >= 2 }).sorted(by: >) {
                let child = children.remove(at: index - 2)
                let status: TerminationStatus
                switch Sys.reap(child.pid, blocking: true) {
                case .success(let ended?): status = ended
                default: status = .exited(Process.unknownExitCode)
                }
                Sys.close(child.pidfd)
                _ = Sys.send(socket, ForkServerMessage.ended(pid: child.pid, status).bytes)
            }
            guard ready.contains(0) else { continue }
            guard case .success(let request) = Sys.receive(socket, capacity: 16, maxDescriptors: 64),
                  case .start = ForkServerMessage(request.bytes), let launchFD = request.descriptors.first
            else {
                Sys.exitImmediately(0)  // the client closed the socket (or spoke nonsense)
            }
            let sharing = Array(request.descriptors.dropFirst())
            let reply = start(launchFD, sharing: sharing, socket: socket, lifeline: lifeline, children: children)
            Sys.close(launchFD)
            sharing.forEach(Sys.close)
            switch reply {
            case .success(let child):
                children.append(child)
                _ = Sys.send(socket, ForkServerMessage.started(pid: child.pid).bytes, descriptors: [child.pidfd])
            case .failure(let error):
                _ = Sys.send(socket, ForkServerMessage.failed(error).bytes)
            }
        }
    }

    /// Forks a child running the launch record in `launchFD`; the child's pid and pidfd.
    private static func start(
        _ launchFD: FileDescriptor, sharing: [FileDescriptor], socket: FileDescriptor, lifeline: FileDescriptor,
        children: [(pid: Int32, pidfd: FileDescriptor)]
    ) -> Result<(pid: Int32, pidfd: FileDescriptor), Errno> {
        guard case .success(let launch) = LaunchRecord.read(from: launchFD) else { return .failure(.invalidArgument) }
        Sys.flushStandardStreams()
        switch Sys.fork() {
        case .failure(let error):
            return .failure(error)
        case .success(let pid) where pid > 0:
            return Sys.pidfdOpen(pid).map { (pid, $0) }
        case .success:
            // The child: close what is the server's, then the one child path.
            Sys.close(socket)
            children.forEach { Sys.close($0.pidfd) }
            Sys.close(launchFD)
            ChildBootstrap.runForkServerChild(launch, sharing: sharing, lifeline: lifeline)
        }
    }
}

/// The messages between a client and its fork server, over an AF_UNIX SOCK_SEQPACKET pair (one
/// message each, descriptors by SCM_RIGHTS):
/// - `start` (tag 1), with the launch record's memfd and the shared descriptors;
/// - `started` (tag 2, the pid), with a pidfd of the child: the client waits on it and signals
///   through it, so a pid the server has reaped and the kernel reused is never hit;
/// - `failed` (tag 3, an errno);
/// - `ended` (tag 4, how: 0 exited / 1 signaled, the code, the pid), sent when the server
///   reaps a child.
enum ForkServerMessage: Equatable {
    case start
    case started(pid: Int32)
    case failed(Errno)
    case ended(pid: Int32, TerminationStatus)

    private enum Tag: UInt8 { case start = 1, started, failed, ended }

    var bytes: [UInt8] {
        var writer = WireWriter()
        switch self {
        case .start:
            writer.append(Tag.start.rawValue)
        case .started(let pid):
            writer.append(Tag.started.rawValue)
            writer.append(pid)
        case .failed(let error):
            writer.append(Tag.failed.rawValue)
            writer.append(error.rawValue)
        case .ended(let pid, let status):
            writer.append(Tag.ended.rawValue)
            switch status {
            case .exited(let code): writer.append(UInt8(0)); writer.append(code)
            case .signaled(let signal): writer.append(UInt8(1)); writer.append(signal)
            }
            writer.append(pid)
        }
        return writer.bytes
    }

    /// The message in `bytes`, or nil if it is none.
    init?(_ bytes: [UInt8]) {
        guard let message = bytes.withUnsafeBytes({ ForkServerMessage(parsing: $0) }) else { return nil }
        self = message
    }

    private init?(parsing bytes: UnsafeRawBufferPointer) {
        var reader = WireReader(bytes)
        switch reader.read(UInt8.self).flatMap(Tag.init(rawValue:)) {
        case .start: self = .start
        case .started: guard let pid = reader.read(Int32.self) else { return nil }; self = .started(pid: pid)
        case .failed: guard let code = reader.read(Int32.self) else { return nil }; self = .failed(Errno(rawValue: code))
        case .ended:
            guard let how = reader.read(UInt8.self), let value = reader.read(Int32.self), let pid = reader.read(Int32.self) else {
                return nil
            }
            self = .ended(pid: pid, how == 0 ? .exited(value) : .signaled(value))
        case nil: return nil
        }
    }
}
