internal import Synchronization
internal import SystemPackage
#if canImport(Glibc)
internal import Glibc
#endif

/// The fork server (Python's forkserver): a single-threaded process, spawned once per
/// executable, that forks children on request. A fork from it is safe (it never has a second
/// thread) and costs a fork, not a program start: ~1 ms here instead of spawn's ~7 ms.
///
/// Protocol, over an AF_UNIX SOCK_SEQPACKET pair (one message each, descriptors by SCM_RIGHTS):
/// - `start` (1 byte), with the launch record's memfd and the shared descriptors;
/// - `started` (1 + 4 bytes: the pid), with a pidfd of the child: the client waits on it and
///   signals through it, so a pid the server has reaped and the kernel reused is never hit;
/// - `failed` (1 + 4 bytes: an errno);
/// - `ended` (1 + 1 + 4 + 4 bytes: pid, how, code), sent when the server reaps a child.
///
/// The server is a daemon child of the client process (it watches the same lifeline), and
/// polls its socket, its lifeline and its children's pidfds; it exits when the client closes
/// the socket or dies.
enum ForkServer {
    static let flag = "--shmipc-forkserver"
    static let socketDescriptor: Int32 = 3

    enum Tag: UInt8 {
        case start = 1, started, failed, ended
    }

    static func encode(_ status: TerminationStatus, pid: Int32) -> [UInt8] {
        var bytes: [UInt8] = [Tag.ended.rawValue]
        switch status {
        case .exited(let code): bytes.append(0); append(code, to: &bytes)
        case .signaled(let signal): bytes.append(1); append(signal, to: &bytes)
        }
        append(pid, to: &bytes)
        return bytes
    }

    static func append(_ value: Int32, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func int32(_ bytes: [UInt8], at offset: Int) -> Int32? {
        guard bytes.count >= offset + 4 else { return nil }
        return bytes.withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: Int32.self)) }
    }

    // MARK: the server process

    /// The server's loop (in the process `bootstrap` found `flag` in).
    static func run() -> Never {
        let socket = FileDescriptor(rawValue: socketDescriptor)
        let lifeline = FileDescriptor(rawValue: Multiprocessing.lifelineDescriptor)
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
                _ = Sys.send(socket, encode(status, pid: child.pid))
            }
            guard ready.contains(0) else { continue }
            guard case .success(let request) = Sys.receive(socket, capacity: 16, maxDescriptors: 64),
                  request.bytes.first == Tag.start.rawValue, let launchFD = request.descriptors.first
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
                var bytes: [UInt8] = [Tag.started.rawValue]
                append(child.pid, to: &bytes)
                _ = Sys.send(socket, bytes, descriptors: [child.pidfd])
            case .failure(let error):
                var bytes: [UInt8] = [Tag.failed.rawValue]
                append(error.rawValue, to: &bytes)
                _ = Sys.send(socket, bytes)
            }
        }
    }

    /// Forks a child running the launch record in `launchFD`; the child's pid and pidfd.
    static func start(
        _ launchFD: FileDescriptor, sharing: [FileDescriptor], socket: FileDescriptor, lifeline: FileDescriptor,
        children: [(pid: Int32, pidfd: FileDescriptor)]
    ) -> Result<(pid: Int32, pidfd: FileDescriptor), Errno> {
        guard case .success(let bytes) = Sys.readAll(launchFD), let launch = Multiprocessing.Launch.decode(bytes) else {
            return .failure(.invalidArgument)
        }
        Sys.flushStandardStreams()
        switch Sys.fork() {
        case .failure(let error):
            return .failure(error)
        case .success(let pid) where pid > 0:
            return Sys.pidfdOpen(pid).map { (pid, $0) }
        case .success:
            // The child: close what is the server's, put the shared descriptors at 5…, run.
            Sys.close(socket)
            children.forEach { Sys.close($0.pidfd) }
            Sys.close(launchFD)
            if !launch.daemon { Sys.close(lifeline) }
            guard let moved = try? Multiprocessing.copiesAboveChildDescriptors(sharing) else { Sys.exitImmediately(1) }
            sharing.forEach(Sys.close)
            for (index, fd) in moved.enumerated() {
                guard case .success = Sys.duplicate(fd, to: Multiprocessing.firstSharedDescriptor + Int32(index)) else {
                    Sys.exitImmediately(1)
                }
                Sys.close(fd)
            }
            if launch.daemon, case .failure = Sys.startLifelineWatcher(lifeline) { Sys.exitImmediately(1) }
            let code = Multiprocessing.runLaunched(launch)
            Sys.flushStandardStreams()
            Sys.exitImmediately(code)
        }
    }
}

/// The client side: one connection to one fork server, shared by every `Process` of this
/// process that starts with `.forkserver` from the same executable.
final class ForkServerClient: Sendable {
    let socket: FileDescriptor
    let pid: Int32
    /// Ended children the server reported that nobody has asked about yet. Every socket read
    /// and write happens under this lock, so requests and their replies never interleave.
    private let ended = Mutex<[Int32: TerminationStatus]>([:])

    init(socket: FileDescriptor, pid: Int32) {
        self.socket = socket
        self.pid = pid
    }

    /// Starts a child with the launch record in `launchFD`; its pid and pidfd.
    func start(launch launchFD: FileDescriptor, sharing: [FileDescriptor]) throws(ProcessError) -> (pid: Int32, pidfd: FileDescriptor) {
        try ended.withLock { (ended) throws(ProcessError) -> (pid: Int32, pidfd: FileDescriptor) in
            if case .failure(let error) = Sys.send(socket, [ForkServer.Tag.start.rawValue], descriptors: [launchFD] + sharing) {
                throw .system(call: "sendmsg to the fork server", error)
            }
            while true {
                let message = try receive()
                switch ForkServer.Tag(rawValue: message.bytes.first ?? 0) {
                case .started:
                    guard let pid = ForkServer.int32(message.bytes, at: 1), let pidfd = message.descriptors.first else {
                        throw .system(call: "the fork server's reply", .ioError)
                    }
                    return (pid, pidfd)
                case .failed:
                    throw .system(call: "fork (in the fork server)", Errno(rawValue: ForkServer.int32(message.bytes, at: 1) ?? EIO))
                case .ended:
                    Self.note(message.bytes, in: &ended)
                default:
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
                guard let message = try? receive() else { return nil }  // the server is gone
                message.descriptors.forEach(Sys.close)
                if message.bytes.first == ForkServer.Tag.ended.rawValue { Self.note(message.bytes, in: &ended) }
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

    private static func note(_ bytes: [UInt8], in ended: inout [Int32: TerminationStatus]) {
        guard bytes.count >= 10, let value = ForkServer.int32(bytes, at: 2), let pid = ForkServer.int32(bytes, at: 6) else { return }
        ended[pid] = bytes[1] == 0 ? .exited(value) : .signaled(value)
    }
}
