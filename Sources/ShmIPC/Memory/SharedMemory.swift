#if canImport(Glibc)
internal import Glibc
#endif
public import SystemPackage

/// What creating or opening a named segment may do.
public enum CreationMode: Hashable, Sendable {
    /// Create a new segment; fail with ``SharedMemoryError/alreadyExists(_:)`` if the name exists.
    case createExclusive
    /// Open an existing segment; fail with ``SharedMemoryError/notFound(_:)`` if there is none.
    case openExisting
    /// Open the segment if it exists, create it otherwise. Exactly one of the racing callers
    /// creates it and becomes its owner.
    case openOrCreate
}

/// A mapping of a shared-memory segment: POSIX named (`shm_open`) or inheritable (`memfd`).
///
/// Python: `multiprocessing.shared_memory.SharedMemory`.
///
/// - Ownership: the handle that *created* a named segment owns its name (``isOwner``), and
///   only it may ``unlink()`` it. Every handle's `deinit` or ``close()`` only detaches (unmaps);
///   the name stays until its owner unlinks it, as in Python. Inheritable segments have no name:
///   the memory is freed when the last process holding a mapping or descriptor exits.
/// - Creation reserves the memory (`posix_fallocate`): a full /dev/shm is
///   ``SharedMemoryError/noSpace(bytes:)`` at creation, never a SIGBUS later. Sizes round up to
///   whole pages. Permissions are exactly those asked for (0600 by default), whatever the umask.
/// - Lifetime: the memory is reachable only inside ``withUnsafeMutableBytes(_:)``; a pointer
///   must not escape the closure, because the mapping ends with this value's lifetime.
/// - Concurrency: a handle may be used from many threads at once (it is immutable); what they
///   do with the bytes is theirs to synchronize.
/// - Peer death: none of this type's operations wait on a peer.
/// - Hostile peers: inheritable segments are sealed against shrinking and growing. A named
///   segment can be truncated by any process allowed to open it, which makes later accesses
///   raise SIGBUS: keep the permissions tight (the default 0600 admits only this user).
public struct SharedMemory: ~Copyable {
    private let base: UnsafeMutableRawPointer
    /// The mapped size in bytes (a whole number of pages for segments this process created).
    public let size: Int
    /// The segment's name; `nil` for inheritable segments.
    public let name: SegmentName?
    /// Whether this handle created the name and so is the one that unlinks it.
    public let isOwner: Bool
    /// Held open only for inheritable segments: it is what a child inherits.
    private let descriptor: FileDescriptor?

    /// Default permissions: read and write for the owning user only (0600).
    public static let defaultPermissions: FilePermissions = [.ownerRead, .ownerWrite]

    // MARK: named segments

    /// Creates or opens the named segment `name` as `mode` says.
    ///
    /// - Parameters:
    ///   - name: the segment's name (the file `/dev/shm/shmipc.<name>`).
    ///   - mode: create, open, or either (``CreationMode``).
    ///   - size: the size to create, rounded up to whole pages. When opening, the existing
    ///     segment must be at least this large (``SharedMemoryError/tooSmall(_:required:found:)``);
    ///     pass 0 to accept any size.
    ///   - permissions: applied exactly (not filtered by the umask) when this call creates.
    public init(
        name: SegmentName, mode: CreationMode, size: Int,
        permissions: FilePermissions = SharedMemory.defaultPermissions
    ) throws(SharedMemoryError) {
        switch mode {
        case .createExclusive:
            self = try Self.create(name, size: size, permissions: permissions)
        case .openExisting:
            self = try Self.open(name, minimumSize: size)
        case .openOrCreate:
            // Loop: a segment can be unlinked between our failed create and our open.
            while true {
                do {
                    self = try Self.create(name, size: size, permissions: permissions)
                    return
                } catch .alreadyExists {
                    do {
                        self = try Self.open(name, minimumSize: size)
                        return
                    } catch .notFound {
                        continue
                    }
                }
            }
        }
    }

    /// Creates a new named segment of at least `size` bytes.
    public static func create(
        name: SegmentName, size: Int, permissions: FilePermissions = SharedMemory.defaultPermissions
    ) throws(SharedMemoryError) -> SharedMemory {
        try SharedMemory(name: name, mode: .createExclusive, size: size, permissions: permissions)
    }

    /// Opens an existing named segment, whatever its size.
    public static func open(name: SegmentName) throws(SharedMemoryError) -> SharedMemory {
        try SharedMemory(name: name, mode: .openExisting, size: 0)
    }

    // MARK: inheritable segments

    /// Creates an anonymous segment (memfd) that can be handed to a spawned child through
    /// ``inheritableDescriptor``. Nothing appears in /dev/shm; the memory is freed when the last
    /// holder exits. Its size is sealed: no holder can shrink or grow it.
    public init(inheritableSize size: Int) throws(SharedMemoryError) {
        let rounded = try Self.roundedSize(size)
        let fd: FileDescriptor
        switch Sys.memfdCreate("shmipc") {
        case .success(let value): fd = value
        case .failure(let errno): throw .from(errno, name: nil, operation: "memfd_create", bytes: rounded)
        }
        do throws(SharedMemoryError) {
            try Self.reserve(fd, size: rounded, name: nil)
            if case .failure(let errno) = Sys.sealSize(fd) {
                throw .system(errno, operation: "fcntl(F_ADD_SEALS)")
            }
            base = try Self.map(fd, size: rounded, name: nil)
        } catch {
            Sys.close(fd)
            throw error
        }
        self.size = rounded
        self.name = nil
        self.isOwner = true
        self.descriptor = fd
    }

    /// Maps an inheritable segment from a descriptor this process inherited (or received).
    /// The handle takes ownership of the descriptor and closes it when it ends.
    public init(inheriting descriptor: FileDescriptor) throws(SharedMemoryError) {
        let status: Sys.FileStatus
        switch Sys.fstat(descriptor) {
        case .success(let value): status = value
        case .failure: throw .invalidDescriptor(descriptor.rawValue)
        }
        guard status.size > 0 else { throw .invalidDescriptor(descriptor.rawValue) }
        base = try Self.map(descriptor, size: status.size, name: nil)
        size = status.size
        name = nil
        isOwner = false
        self.descriptor = descriptor
    }

    /// The descriptor to hand to a child process (dup it onto the child's descriptor table,
    /// e.g. with a posix_spawn file action); `nil` for named segments. It is close-on-exec here,
    /// so only children it is explicitly given to receive it.
    public var inheritableDescriptor: FileDescriptor? { descriptor }

    // MARK: access

    /// Calls `body` with the mapped bytes. The buffer is valid only inside `body`.
    public func withUnsafeMutableBytes<Result: ~Copyable, Failure: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeMutableRawBufferPointer(start: base, count: size))
    }

    // MARK: ending

    /// Detaches: unmaps this process's view. The name, if any, stays (see ``unlink()``).
    public consuming func close() {}

    /// Removes the name and detaches. Only the owner (the handle that created the name) may
    /// unlink; processes still attached keep their mappings until they detach.
    public consuming func unlink() throws(SharedMemoryError) {
        guard let name else { return }  // inheritable: nothing to remove
        guard isOwner else { throw .notOwner(name) }
        if case .failure(let errno) = Sys.shmUnlink(name.osName) {
            throw .from(errno, name: name, operation: "shm_unlink")
        }
    }

    /// Removes a name whatever its owner, for cleaning up after an owner that crashed
    /// (Python: `SharedMemory(name).unlink()`). Returns whether a segment was removed.
    @discardableResult
    public static func removeLeftover(_ name: SegmentName) throws(SharedMemoryError) -> Bool {
        switch Sys.shmUnlink(name.osName) {
        case .success: return true
        case .failure(.noSuchFileOrDirectory): return false
        case .failure(let errno): throw .from(errno, name: name, operation: "shm_unlink")
        }
    }

    deinit {
        Sys.munmap(base, size: size)
        if let descriptor { Sys.close(descriptor) }
    }

    // MARK: private

    private init(base: UnsafeMutableRawPointer, size: Int, name: SegmentName, isOwner: Bool) {
        self.base = base
        self.size = size
        self.name = name
        self.isOwner = isOwner
        self.descriptor = nil
    }

    private static func create(
        _ name: SegmentName, size: Int, permissions: FilePermissions
    ) throws(SharedMemoryError) -> SharedMemory {
        let rounded = try roundedSize(size)
        let fd: FileDescriptor
        switch Sys.shmOpen(name.osName, flags: O_RDWR | O_CREAT | O_EXCL, permissions: permissions) {
        case .success(let value): fd = value
        case .failure(let errno): throw .from(errno, name: name, operation: "shm_open", bytes: rounded)
        }
        defer { Sys.close(fd) }  // the mapping outlives the descriptor
        do throws(SharedMemoryError) {
            if case .failure(let errno) = Sys.fchmod(fd, permissions) {
                throw .from(errno, name: name, operation: "fchmod")
            }
            try reserve(fd, size: rounded, name: name)
            let base = try map(fd, size: rounded, name: name)
            return SharedMemory(base: base, size: rounded, name: name, isOwner: true)
        } catch {
            _ = Sys.shmUnlink(name.osName)  // ours: created above, never published
            throw error
        }
    }

    private static func open(_ name: SegmentName, minimumSize: Int) throws(SharedMemoryError) -> SharedMemory {
        let fd: FileDescriptor
        switch Sys.shmOpen(name.osName, flags: O_RDWR, permissions: []) {
        case .success(let value): fd = value
        case .failure(let errno): throw .from(errno, name: name, operation: "shm_open")
        }
        defer { Sys.close(fd) }
        let status: Sys.FileStatus
        switch Sys.fstat(fd) {
        case .success(let value): status = value
        case .failure(let errno): throw .from(errno, name: name, operation: "fstat")
        }
        guard status.size > 0 else { throw .empty(name) }
        guard status.size >= minimumSize else {
            throw .tooSmall(name, required: minimumSize, found: status.size)
        }
        let base = try map(fd, size: status.size, name: name)
        return SharedMemory(base: base, size: status.size, name: name, isOwner: false)
    }

    private static func roundedSize(_ size: Int) throws(SharedMemoryError) -> Int {
        let page = Sys.pageSize
        guard size > 0, size <= Int.max - page else { throw .invalidSize(size) }
        return (size + page - 1) / page * page
    }

    private static func reserve(_ fd: FileDescriptor, size: Int, name: SegmentName?) throws(SharedMemoryError) {
        if case .failure(let errno) = Sys.ftruncate(fd, size: size) {
            throw .from(errno, name: name, operation: "ftruncate", bytes: size)
        }
        if case .failure(let errno) = Sys.fallocate(fd, size: size) {
            throw .from(errno, name: name, operation: "posix_fallocate", bytes: size)
        }
    }

    private static func map(
        _ fd: FileDescriptor, size: Int, name: SegmentName?
    ) throws(SharedMemoryError) -> UnsafeMutableRawPointer {
        switch Sys.mmapShared(fd, size: size) {
        case .success(let base): return base
        case .failure(let errno): throw .from(errno, name: name, operation: "mmap", bytes: size)
        }
    }
}
