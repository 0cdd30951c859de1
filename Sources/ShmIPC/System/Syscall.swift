internal import CShim
#if canImport(Glibc)
internal import Glibc
#endif
package import SystemPackage

/// The system calls ShmIPC makes, by name: the key of the EINTR policy and of fault injection.
package enum SyscallName: String, Sendable, Hashable, CaseIterable {
    case shmOpen, shmUnlink, memfdCreate, sealSize, ftruncate, fallocate, fstat, fchmod
    case mmap, munmap, close, futexWait, futexWake, kill
    case posixSpawn, waitpid, pipe, open, read, write, pinThread, pidfdOpen, pidfdSendSignal, poll, fcntl, fork, socketpair, sendmsg, recvmsg

    /// The EINTR policy: retry, except `close` and `munmap` (a retry could act on a descriptor
    /// or range another thread has reused meanwhile, see close(2)) and `futexWait`, which
    /// ``Futex`` retries itself after re-checking its word and its deadline.
    package var retriesOnInterrupt: Bool {
        switch self {
        case .close, .munmap, .futexWait: false
        default: true
        }
    }
}

/// The one chokepoint between ShmIPC and libc/CShim (Notes/0000-ground-rules.md: one chokepoint for errno).
///
/// `body` follows the C convention: it returns `-1` and sets `errno` on failure. The result
/// is the value, or the `Errno` it failed with. EINTR is retried as
/// ``SyscallName/retriesOnInterrupt`` says.
@inline(__always)
package func valueOrErrno<Value: FixedWidthInteger>(
    _ name: SyscallName,
    _ body: () -> Value
) -> Result<Value, Errno> {
    let retriesInterrupts = name.retriesOnInterrupt
    while true {
        let value: Value
        #if DEBUG
        if let forced = FaultInjection.forcedError(for: name) {
            errno = forced.rawValue
            value = -1
        } else {
            value = body()
        }
        #else
        value = body()
        #endif
        if value != -1 { return .success(value) }
        let error = Errno(rawValue: errno)
        if error == .interrupted && retriesInterrupts { continue }
        return .failure(error)
    }
}

/// A call whose errors can only mean a bug in ShmIPC (EBADF on our own descriptor, EINVAL on
/// our own mapping) traps with the call's name, as swift-nio does, instead of returning junk.
@inline(__always)
package func ownBugIfFailed(_ name: SyscallName, _ result: Result<some FixedWidthInteger, Errno>) {
    if case .failure(let error) = result {
        preconditionFailure("ShmIPC: \(name.rawValue) failed with \(error): a ShmIPC bug")
    }
}
