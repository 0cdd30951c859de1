internal import CShim
#if canImport(Glibc)
internal import Glibc
#endif
package import SystemPackage

/// How a child process ended.
package enum TerminationStatus: Hashable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// Python's `exitcode`: the exit status, or the negative signal number.
    package var exitCode: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): -signal
        }
    }

    package var description: String {
        switch self {
        case .exited(let code): "exited with \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }
}

/// Starting, watching and reaping child processes: the calls `ChildProcess` (tests, shm-bench)
/// and the public ``Process`` share.
extension Sys {
    /// `posix_spawn`s `executable` with `arguments` (argv[0] is the executable path).
    ///
    /// - Parameters:
    ///   - descriptors: (source in this process, number in the child) pairs, dup2'ed in the
    ///     child; the sources may be close-on-exec here, and numbered anything (a source whose
    ///     number is another's target is moved out of the way first). The child has these and
    ///     0–2, nothing else.
    ///   - environment: extra variables, added to this process's environment.
    ///   - output: where the child's stdout and stderr go (nil: where ours go).
    package static func spawn(
        executable: String,
        arguments: [String],
        descriptors: [(source: FileDescriptor, target: Int32)],
        environment: [String: String] = [:],
        output: FileDescriptor? = nil,
        newProcessGroup: Bool = false
    ) -> Result<Int32, Errno> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The child starts with no blocked signals and default dispositions for the ones we
        // catch, whatever the spawning thread had.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var caught = sigset_t()
        sigemptyset(&caught)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGCHLD] { sigaddset(&caught, signal) }
        posix_spawnattr_setsigdefault(&attributes, &caught)
        // A group of its own (its pid), for a caller that signals the child and its children
        // together, as a terminal's Ctrl-C does.
        if newProcessGroup { posix_spawnattr_setpgroup(&attributes, 0) }
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (newProcessGroup ? POSIX_SPAWN_SETPGROUP : 0)))

        if let output {
            posix_spawn_file_actions_adddup2(&actions, output.rawValue, 1)
            posix_spawn_file_actions_adddup2(&actions, output.rawValue, 2)
        }
        // The dup2s run in order in the child: a source numbered as an earlier pair's target
        // would be overwritten before it is copied (the child got the wrong object). Every
        // source at or below the highest target goes through a duplicate above it.
        let firstUnused = max(3, (descriptors.map(\.target).max() ?? 2) + 1)
        var moved: [FileDescriptor] = []
        defer { for fd in moved { Sys.close(fd) } }
        for (source, target) in descriptors {
            var from = source
            if source.rawValue < firstUnused, source.rawValue != target {
                switch duplicate(source, atLeast: firstUnused) {
                case .success(let copy):
                    moved.append(copy)
                    from = copy
                case .failure(let error):
                    return .failure(error)
                }
            }
            posix_spawn_file_actions_adddup2(&actions, from.rawValue, target)
        }
        // Nothing else crosses: descriptors this process holds without close-on-exec (every
        // socket swift-nio opens, a listener among them) would stay open in the child for its
        // whole life, holding a port, a connection's end or a pipe's writer open after this
        // process closed it (Python's subprocess: close_fds=True). The duplicates above go too.
        shmipc_spawn_add_closefrom(&actions, firstUnused)

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var envp: [UnsafeMutablePointer<CChar>?] = []
        if !environment.isEmpty {
            var merged = ProcessEnvironment.current
            for (key, value) in environment { merged[key] = value }
            envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        }
        defer { envp.forEach { free($0) } }

        var child: pid_t = 0
        let spawned = valueOrErrno(.posixSpawn) { () -> Int32 in
            let code = envp.isEmpty
                ? posix_spawn(&child, executable, &actions, &attributes, argv, environ)
                : posix_spawn(&child, executable, &actions, &attributes, argv, envp)
            if code == 0 { return 0 }
            errno = code
            return -1
        }
        return spawned.map { _ in child }
    }

    /// Reaps `pid` if it has ended (or waits for it to end, if `blocking`); nil if it still runs.
    package static func reap(_ pid: Int32, blocking: Bool) -> Result<TerminationStatus?, Errno> {
        var raw: Int32 = 0
        return valueOrErrno(.waitpid) { waitpid(pid, &raw, blocking ? 0 : WNOHANG) }.map { reaped in
            guard reaped == pid else { return nil }
            if shmipc_wifexited(raw) != 0 { return .exited(shmipc_wexitstatus(raw)) }
            if shmipc_wifsignaled(raw) != 0 { return .signaled(shmipc_wtermsig(raw)) }
            return nil
        }
    }

    /// A descriptor that becomes readable when `pid` (our unreaped child) exits.
    package static func pidfdOpen(_ pid: Int32) -> Result<FileDescriptor, Errno> {
        valueOrErrno(.pidfdOpen) { shmipc_pidfd_open(pid) }.map(FileDescriptor.init(rawValue:))
    }

    /// Waits until `fd` is readable or `deadline` passes; whether it is readable.
    package static func waitReadable(_ fd: FileDescriptor, deadline: Deadline) -> Bool {
        while true {
            var entry = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
            let milliseconds = deadline.pollMilliseconds
            let result = valueOrErrno(.poll) { Glibc.poll(&entry, 1, milliseconds) }
            switch result {
            case .success(let ready) where ready > 0: return true
            case .success: if deadline.hasPassed { return false }
            case .failure(let error): preconditionFailure("ShmIPC: poll failed with \(error): a ShmIPC bug")
            }
        }
    }

    /// A pipe, both ends close-on-exec.
    package static func makePipe(nonblockingReadEnd: Bool = false) -> Result<(read: FileDescriptor, write: FileDescriptor), Errno> {
        var ends: [Int32] = [-1, -1]
        return valueOrErrno(.pipe) { shmipc_pipe_cloexec(&ends, nonblockingReadEnd ? 1 : 0) }.map { _ in
            (FileDescriptor(rawValue: ends[0]), FileDescriptor(rawValue: ends[1]))
        }
    }

    /// A close-on-exec duplicate of `fd` numbered at least `minimum`.
    package static func duplicate(_ fd: FileDescriptor, atLeast minimum: Int32) -> Result<FileDescriptor, Errno> {
        valueOrErrno(.fcntl) { fcntl(fd.rawValue, F_DUPFD_CLOEXEC, minimum) }.map(FileDescriptor.init(rawValue:))
    }

    /// The number of threads in this process, from /proc/self/stat.
    package static var threadCount: Int { Int(shmipc_thread_count()) }

    /// How many CPUs are online (Python's `os.cpu_count()`).
    package static var onlineCPUCount: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    package static var parentPID: Int32 { getppid() }
}

extension Sys {
    /// Writes all of `bytes` to `fd` at `offset` (pwrite, retried until done).
    package static func writeAll(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer, offset: Int = 0) -> Result<Void, Errno> {
        var done = 0
        while done < bytes.count {
            let result = valueOrErrno(.write) {
                pwrite(fd.rawValue, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            }
            switch result {
            case .success(let count): done += count
            case .failure(let error): return .failure(error)
            }
        }
        return .success(())
    }

    /// Reads `fd` from `offset` to its end (pread until it returns 0).
    package static func readAll(_ fd: FileDescriptor, offset: Int = 0) -> Result<[UInt8], Errno> {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let result = buffer.withUnsafeMutableBytes { chunk in
                valueOrErrno(.read) { pread(fd.rawValue, chunk.baseAddress, chunk.count, off_t(offset + bytes.count)) }
            }
            switch result {
            case .success(0): return .success(bytes)
            case .success(let count): bytes.append(contentsOf: buffer[0..<count])
            case .failure(let error): return .failure(error)
            }
        }
    }

    /// fork(2). Only for a single-threaded process (Notes/0000-ground-rules.md, processes); the caller checks.
    package static func fork() -> Result<Int32, Errno> {
        valueOrErrno(.fork) { shmipc_fork() }
    }

    /// Flushes C stdio's buffers (before fork, so they are not written twice, and before _exit).
    package static func flushStandardStreams() { fflush(nil) }

    /// Ends this process at once with `code`: no atexit handlers (a forked child must not run
    /// its parent's).
    package static func exitImmediately(_ code: Int32) -> Never { _exit(code) }

    /// Writes `message` and a newline to stderr, unbuffered.
    package static func printError(_ message: String) {
        var line = message + "\n"
        line.withUTF8 { bytes in
            var done = 0
            while done < bytes.count {
                let count = Glibc.write(2, bytes.baseAddress! + done, bytes.count - done)
                if count > 0 { done += count } else if count == -1 && errno == EINTR { continue } else { return }
            }
        }
    }

    /// Starts the thread that ends this process when the lifeline pipe `fd` reads end of file.
    package static func startLifelineWatcher(_ fd: FileDescriptor) -> Result<Void, Errno> {
        let code = shmipc_start_lifeline_watcher(fd.rawValue)
        return code == 0 ? .success(()) : .failure(Errno(rawValue: code))
    }
}

extension Sys {
    /// exit(3): atexit handlers run, stdio is flushed.
    package static func exitProcess(_ code: Int32) -> Never { exit(code) }
}

extension Sys {
    /// Signals the process `pidfd` stands for (never a later holder of its pid).
    package static func signal(_ signal: Int32, pidfd: FileDescriptor) -> Result<Void, Errno> {
        valueOrErrno(.pidfdSendSignal) { shmipc_pidfd_send_signal(pidfd.rawValue, signal) }.map { _ in }
    }

    /// A close-on-exec AF_UNIX SOCK_SEQPACKET socket pair.
    package static func seqpacketPair() -> Result<(FileDescriptor, FileDescriptor), Errno> {
        var ends: [Int32] = [-1, -1]
        return valueOrErrno(.socketpair) { shmipc_seqpacket_pair(&ends) }.map { _ in
            (FileDescriptor(rawValue: ends[0]), FileDescriptor(rawValue: ends[1]))
        }
    }

    /// Sends `bytes` and `descriptors` (SCM_RIGHTS) as one message.
    package static func send(_ socket: FileDescriptor, _ bytes: [UInt8], descriptors: [FileDescriptor] = []) -> Result<Void, Errno> {
        let fds = descriptors.map(\.rawValue)
        return bytes.withUnsafeBytes { raw in
            valueOrErrno(.sendmsg) { shmipc_send_with_fds(socket.rawValue, raw.baseAddress, raw.count, fds, Int32(fds.count)) }
        }.map { _ in }
    }

    /// Receives one message of at most `capacity` bytes with up to `maxDescriptors`
    /// descriptors; empty bytes and no descriptors when the peer has closed.
    package static func receive(
        _ socket: FileDescriptor, capacity: Int, maxDescriptors: Int
    ) -> Result<(bytes: [UInt8], descriptors: [FileDescriptor]), Errno> {
        var bytes = [UInt8](repeating: 0, count: capacity)
        var fds = [Int32](repeating: -1, count: max(1, maxDescriptors))
        var count: Int32 = 0
        let received = bytes.withUnsafeMutableBytes { raw in
            valueOrErrno(.recvmsg) {
                shmipc_receive_with_fds(socket.rawValue, raw.baseAddress, raw.count, &fds, Int32(maxDescriptors), &count)
            }
        }
        return received.map { length in
            (Array(bytes[0..<length]), fds[0..<Int(count)].map(FileDescriptor.init(rawValue:)))
        }
    }

    /// Waits until one of `descriptors` is readable (or hung up) or `milliseconds` pass
    /// (-1: no limit); the indices of the ready ones.
    package static func pollReadable(_ descriptors: [FileDescriptor], milliseconds: Int32) -> [Int] {
        var entries = descriptors.map { pollfd(fd: $0.rawValue, events: Int16(POLLIN), revents: 0) }
        guard case .success(let ready) = valueOrErrno(.poll, { Glibc.poll(&entries, nfds_t(entries.count), milliseconds) }),
              ready > 0 else { return [] }
        return entries.indices.filter { entries[$0].revents != 0 }
    }
}

extension Sys {
    /// dup2(2): `fd` also as number `target` (not close-on-exec).
    package static func duplicate(_ fd: FileDescriptor, to target: Int32) -> Result<Void, Errno> {
        valueOrErrno(.fcntl) { dup2(fd.rawValue, target) }.map { _ in }
    }
}

extension Deadline {
    /// poll(2)'s timeout until this deadline: -1 for none, else milliseconds rounded up, so a
    /// wait never ends before its deadline.
    package var pollMilliseconds: Int32 {
        guard self != .distantFuture else { return -1 }
        let (seconds, attoseconds) = remaining.components
        return Int32(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }
}
