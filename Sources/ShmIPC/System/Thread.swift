package import SystemPackage
#if canImport(Glibc)
internal import Glibc
#endif

extension Sys {
    private final class ThreadBody {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts a detached pthread running `body` (ShmIPC has no Foundation `Thread`). A failure
    /// (EAGAIN: the process is out of threads) is returned, not trapped.
    package static func startDetachedThread(_ body: @escaping @Sendable () -> Void) -> Result<Void, Errno> {
        let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        var thread = pthread_t()
        let code = pthread_create(&thread, nil, { context in
            Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, box)
        guard code == 0 else {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            return .failure(Errno(rawValue: code))
        }
        pthread_detach(thread)
        return .success(())
    }
}
