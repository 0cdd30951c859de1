internal import Synchronization
internal import SystemPackage
#if canImport(Glibc)
internal import Glibc
#endif

/// ``StartMethod/forkserver``: asks this executable's ``ForkServer`` (started on first use)
/// to fork the child. The child is the server's, not ours: the server reaps it and reports its
/// status; we wait on and signal it through the pidfd the server sent.
struct ForkServerLauncher: Launcher {
    var encodesArgument: Bool { true }

    /// The running fork servers, by executable path.
    private static let clients = Mutex<[String: ForkServerClient]>([:])

    func launch(_ request: LaunchRequest) throws(ProcessError) -> any ChildHandle {
        let client = try Self.client(for: request.executable ?? ProcessEnvironment.executablePath)
        let launchFD = try request.record.written()
        defer { Sys.close(launchFD) }
        let (pid, pidfd) = try client.start(launch: launchFD, sharing: request.sharing)
        return ForkServerChild(pid: ProcessID(rawValue: pid), pidfd: pidfd, server: client, daemon: request.daemon)
    }

    /// In a forked child: the parent's fork servers are not ours.
    static func forgetInherited() {
        clients.withLock { clients in
            for client in clients.values { Sys.close(client.socket) }
            clients = [:]
        }
    }

    /// The fork server for `executable`, started on first use.
    private static func client(for executable: String) throws(ProcessError) -> ForkServerClient {
        let lifeline = try ChildRegistry.lifelineReadEnd()
        return try clients.withLock { (clients) throws(ProcessError) -> ForkServerClient in
            if let client = clients[executable] { return client }
            let ends: (FileDescriptor, FileDescriptor)
            switch Sys.seqpacketPair() {
            case .success(let pair): ends = pair
            case .failure(let error): throw .system(call: "socketpair", error)
            }
            defer { Sys.close(ends.1) }
            let moved: [FileDescriptor]
            do throws(ProcessError) { moved = try DescriptorLayout.copiesAboveChildDescriptors([ends.1, lifeline]) } catch {
                Sys.close(ends.0)
                throw error
            }
            defer { moved.forEach(Sys.close) }
            let pid: Int32
            switch Sys.spawn(
                executable: executable, arguments: [ForkServer.flag],
                descriptors: [(moved[0], DescriptorLayout.forkServerSocket), (moved[1], DescriptorLayout.lifeline)])
            {
            case .success(let value): pid = value
            case .failure(let error):
                Sys.close(ends.0)
                throw .system(call: "posix_spawn \(executable) (the fork server)", error)
            }
            let client = ForkServerClient(socket: ends.0)
            clients[executable] = client
            ChildRegistry.adopt(ProcessID(rawValue: pid), daemon: true)
            return client
        }
    }
}

/// A child of the fork server: it has ended when its pidfd is readable; the server reports
/// its status once it has reaped it.
final class ForkServerChild: ChildHandle {
    let pid: ProcessID
    let pidfd: FileDescriptor
    private let server: ForkServerClient

    init(pid: ProcessID, pidfd: FileDescriptor, server: ForkServerClient, daemon: Bool) {
        self.pid = pid
        self.pidfd = pidfd
        self.server = server
        // The registry's own copy, for the exit-time join; without one only that join is lost.
        if case .success(let copy) = Sys.duplicate(pidfd, atLeast: 3) { ChildRegistry.adopt(pid, daemon: daemon, pidfd: copy) }
    }

    deinit { Sys.close(pidfd) }

    func endedStatus() -> TerminationStatus? {
        guard hasEnded else { return nil }
        let status = server.status(of: pid.rawValue, deadline: .after(.seconds(10))) ?? .exited(Process.unknownExitCode)
        ChildRegistry.forget(pid)
        return status
    }

    func detach(daemon: Bool) {
        if daemon { signal(.kill) }
        if daemon || hasEnded {
            ChildRegistry.forget(pid)
            server.forget(pid.rawValue)
        } else {
            ChildRegistry.orphan(pid)
        }
    }
}

/// One connection to one fork server, shared by every `Process` of this process that starts
/// with `.forkserver` from the same executable.
final class ForkServerClient: Sendable {
    let socket: FileDescriptor
    /// Ended children the server reported that nobody has asked about yet. Every socket read
    /// and write happens under this lock, so requests and their replies never interleave.
    private let ended = Mutex<[Int32: TerminationStatus]>([:])

    init(socket: FileDescriptor) { self.socket = socket }

    /// Starts a child with the launch record in `launchFD`; its pid and pidfd.
    func start(launch launchFD: FileDescriptor, sharing: [FileDescriptor]) throws(ProcessError) -> (pid: Int32, pidfd: FileDescriptor) {
        try ended.withLock { (ended) throws(ProcessError) -> (pid: Int32, pidfd: FileDescriptor) in
            if case .failure(let error) = Sys.send(socket, ForkServerMessage.start.bytes, descriptors: [launchFD] + sharing) {
                throw .system(call: "sendmsg to the fork server", error)
            }
            while true {
                let (bytes, descriptors) = try receive()
                switch ForkServerMessage(bytes) {
                case .started(let pid)?:
                    guard let pidfd = descriptors.first else { throw .system(call: "the fork server's reply", .ioError) }
                    return (pid, pidfd)
                case .failed(let error)?:
                    throw .system(call: "fork (in the fork server)", error)
                case .ended(let pid, let status)?:
                    ended[pid] = status
                default:
                    descriptors.forEach(Sys.close)
                    throw .system(call: "the fork server's reply", .ioError)
                }
            }
        }
    }

    /// The status of `pid`, which has ended (its pidfd is readable): the server reports it
    /// once it has reaped it. Nil if no report comes before `deadline`.
    func status(of pid: Int32, deadline: Deadline) -> TerminationStatus? {
        ended.withLock { ended in
            while true {
                if let status = ended.removeValue(forKey: pid) { return status }
                if Sys.pollReadable([socket], milliseconds: deadline.pollMilliseconds).isEmpty {
                    if deadline.hasPassed { return nil }
                    continue
                }
                guard let (bytes, descriptors) = try? receive() else { return nil }  // the server is gone
                descriptors.forEach(Sys.close)
                if case .ended(let pid, let status)? = ForkServerMessage(bytes) { ended[pid] = status }
            }
        }
    }

    /// Forgets a report nobody will ask for (a dropped `Process`).
    func forget(_ pid: Int32) { _ = ended.withLock { $0.removeValue(forKey: pid) } }

    private func receive() throws(ProcessError) -> (bytes: [UInt8], descriptors: [FileDescriptor]) {
        switch Sys.receive(socket, capacity: 16, maxDescriptors: 1) {
        case .success(let message) where !message.bytes.isEmpty: return message
        case .success: throw .system(call: "the fork server", .brokenPipe)  // it is gone
        case .failure(let error): throw .system(call: "recvmsg from the fork server", error)
        }
    }
}
