internal import CShim
#if canImport(Glibc)
internal import Glibc
#endif
package import SystemPackage

/// Thin wrappers over every libc/CShim call ShmIPC makes. Each goes through
/// ``valueOrErrno(_:_:)``, so EINTR policy and fault injection apply uniformly; nothing else
/// in the package calls libc for these operations.
package enum Sys {
    /// The page size, the unit segment sizes are rounded up to.
    package static let pageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))

    // MARK: shared-memory files

    package static func shmOpen(_ osName: String, flags: Int32, permissions: FilePermissions) -> Result<FileDescriptor, Errno> {
        valueOrErrno(.shmOpen) { shm_open(osName, flags | O_CLOEXEC, permissions.rawValue) }.map(FileDescriptor.init(rawValue:))
    }

    package static func shmUnlink(_ osName: String) -> Result<Void, Errno> {
        valueOrErrno(.shmUnlink) { shm_unlink(osName) }.map { _ in }
    }

    /// An anonymous shared file (close-on-exec, sealable); `debugName` shows in /proc/PID/fd.
    package static func memfdCreate(_ debugName: String) -> Result<FileDescriptor, Errno> {
        valueOrErrno(.memfdCreate) { shmipc_memfd_create(debugName, shmipc_memfd_default_flags()) }
            .map(FileDescriptor.init(rawValue:))
    }

    /// Seals a memfd's size: nobody holding it can shrink it under another's mapping (SIGBUS).
    package static func sealSize(_ fd: FileDescriptor) -> Result<Void, Errno> {
        valueOrErrno(.sealSize) { shmipc_memfd_seal_size(fd.rawValue) }.map { _ in }
    }

    package static func ftruncate(_ fd: FileDescriptor, size: Int) -> Result<Void, Errno> {
        valueOrErrno(.ftruncate) { Glibc.ftruncate(fd.rawValue, off_t(size)) }.map { _ in }
    }

    /// Reserves the file's blocks now, so a full /dev/shm fails here (ENOSPC) instead of
    /// raising SIGBUS on a later first touch. posix_fallocate returns the error number.
    package static func fallocate(_ fd: FileDescriptor, size: Int) -> Result<Void, Errno> {
        valueOrErrno(.fallocate) { () -> Int32 in
            let code = posix_fallocate(fd.rawValue, 0, off_t(size))
            if code == 0 { return 0 }
            errno = code
            return -1
        }.map { _ in }
    }

    package struct FileStatus {
        package var size: Int
        package var permissions: FilePermissions
        package var owner: UInt32
        /// Which file it is: (device, inode).
        package var identity: FileIdentity
    }

    package struct FileIdentity: Hashable, Sendable {
        package var device: UInt64
        package var inode: UInt64
    }

    package static func fstat(_ fd: FileDescriptor) -> Result<FileStatus, Errno> {
        var status = stat()
        return valueOrErrno(.fstat) { Glibc.fstat(fd.rawValue, &status) }.map { _ in
            FileStatus(
                size: Int(status.st_size),
                permissions: FilePermissions(rawValue: status.st_mode & 0o7777),
                owner: status.st_uid,
                identity: FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino)))
        }
    }

    /// Sets exact permissions: shm_open's mode is filtered by the umask, fchmod's is not.
    package static func fchmod(_ fd: FileDescriptor, _ permissions: FilePermissions) -> Result<Void, Errno> {
        valueOrErrno(.fchmod) { Glibc.fchmod(fd.rawValue, permissions.rawValue) }.map { _ in }
    }

    // MARK: mappings

    package static func mmapShared(_ fd: FileDescriptor, size: Int) -> Result<UnsafeMutableRawPointer, Errno> {
        var mapped: UnsafeMutableRawPointer?
        return valueOrErrno(.mmap) { () -> Int in
            let address = Glibc.mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.rawValue, 0)
            if address == MAP_FAILED { return -1 }
            mapped = address
            return 0
        }.map { _ in mapped! }
    }

    /// Unmaps a range ShmIPC mapped. Not retried (EINTR policy); any error is a ShmIPC bug.
    package static func munmap(_ address: UnsafeMutableRawPointer, size: Int) {
        ownBugIfFailed(.munmap, valueOrErrno(.munmap) { Glibc.munmap(address, size) })
    }

    /// Closes a descriptor ShmIPC owns. EINTR is not retried: on Linux the descriptor is
    /// released anyway and a retry could close one another thread just opened. EBADF means
    /// ShmIPC lost track of its own descriptor: a bug, so it traps.
    package static func close(_ fd: FileDescriptor) {
        let result = valueOrErrno(.close) { Glibc.close(fd.rawValue) }
        if case .failure(let error) = result, error != .interrupted {
            ownBugIfFailed(.close, result)
        }
    }

    // MARK: futex

    /// Raw futex wait; see ``Futex`` for the semantics built on it.
    package static func futexWait(
        _ word: UnsafeMutablePointer<UInt32>, expected: UInt32, deadline: Deadline
    ) -> Result<Void, Errno> {
        // EINTR is handed back (SyscallName.retriesOnInterrupt): Futex re-checks first.
        var ts = deadline.timespec
        return valueOrErrno(.futexWait) { () -> Int in
            if ts != nil {
                return withUnsafePointer(to: &ts!) { shmipc_futex_wait(word, expected, $0) }
            }
            return shmipc_futex_wait(word, expected, nil)
        }.map { _ in }
    }

    /// Wakes up to `count` waiters; returns how many woke.
    package static func futexWake(_ word: UnsafeMutablePointer<UInt32>, count: Int32) -> Int {
        let result = valueOrErrno(.futexWake) { shmipc_futex_wake(word, count) }
        switch result {
        case .success(let woken): return woken
        case .failure(let error):
            preconditionFailure("ShmIPC: FUTEX_WAKE failed with \(error): a misaligned or unmapped word")
        }
    }

    // MARK: processes and CPUs

    /// Whether a process with this pid exists (a zombie not yet reaped counts as existing).
    package static func processExists(_ pid: Int32) -> Bool {
        switch valueOrErrno(.kill, { Glibc.kill(pid, 0) }) {
        case .success: return true
        case .failure(let error): return error != .noSuchProcess
        }
    }

    package static func sendSignal(_ signal: Int32, to pid: Int32) -> Result<Void, Errno> {
        valueOrErrno(.kill) { Glibc.kill(pid, signal) }.map { _ in }
    }

    /// Pins the calling thread to `cpu`.
    package static func pinCurrentThread(to cpu: Int) -> Result<Void, Errno> {
        valueOrErrno(.pinThread) { shmipc_pin_current_thread(Int32(cpu)) }.map { _ in }
    }

    /// Lets the calling thread run on every online CPU (what a child it starts inherits).
    package static func unpinCurrentThread() -> Result<Void, Errno> {
        valueOrErrno(.pinThread) { shmipc_unpin_current_thread() }.map { _ in }
    }

    /// How many CPUs this thread may run on.
    package static var allowedCPUCount: Int { Int(max(1, shmipc_allowed_cpu_count())) }

    package static var currentPID: Int32 { getpid() }
}

extension Sys {
    /// Gives the processor up to another runnable thread (sched_yield).
    package static func yield() { _ = sched_yield() }

    /// Sleeps for `duration` (nanosleep; EINTR resumes with the time left).
    package static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        guard seconds > 0 || attoseconds > 0 else { return }
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) == -1 && errno == EINTR {
            request = remaining
        }
    }
}

extension Sys {
    /// The calling thread's kernel thread id (cached per thread; see CShim).
    @inline(__always)
    package static var currentThreadID: Int32 { shmipc_thread_id() }

    /// Whether the thread `tid` still runs. A zombie (dead, not yet reaped) counts as dead,
    /// which `kill(tid, 0)` would not tell: the state letter in /proc/<tid>/stat does.
    /// An unreadable entry of an existing thread (another user's) counts as alive.
    package static func threadIsAlive(_ tid: Int32) -> Bool {
        guard tid > 0 else { return false }
        let fd: Int32
        switch valueOrErrno(.open, { Glibc.open("/proc/\(tid)/stat", O_RDONLY | O_CLOEXEC) }) {
        case .success(let value): fd = value
        case .failure(.noSuchFileOrDirectory), .failure(.noSuchProcess): return false
        case .failure: return true
        }
        defer { close(FileDescriptor(rawValue: fd)) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = buffer.withUnsafeMutableBytes { bytes in
            valueOrErrno(.read) { Glibc.read(fd, bytes.baseAddress, bytes.count) }
        }
        guard case .success(let length) = count, length > 0 else { return false }  // raced with exit
        // "pid (comm) S ...": the state follows the last ')' (comm may contain ')').
        guard let close = buffer[0..<length].lastIndex(of: UInt8(ascii: ")")), close + 2 < length else { return true }
        let state = buffer[close + 2]
        return state != UInt8(ascii: "Z") && state != UInt8(ascii: "X")
    }
}
