public import SystemPackage

/// Errors creating, opening, removing or sizing a shared-memory segment.
public enum SharedMemoryError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The name breaks the naming rules (see ``SegmentName``).
    case invalidName(String, SegmentName.Problem)
    /// ``CreationMode/createExclusive``, and a segment of that name exists.
    case alreadyExists(SegmentName)
    /// ``CreationMode/openExisting``, and no segment of that name exists.
    case notFound(SegmentName)
    /// The segment exists but this process may not open it (permissions, owner).
    case permissionDenied(SegmentName)
    /// Not enough shared memory for `bytes` (a full /dev/shm, or a memory limit).
    case noSpace(bytes: Int)
    /// A size of zero, a negative size, or one too large to map.
    case invalidSize(Int)
    /// The segment exists but has a size of zero: its creator has not sized it (yet).
    case empty(SegmentName)
    /// The segment is smaller than required.
    case tooSmall(SegmentName, required: Int, found: Int)
    /// `unlink()` on a handle that does not own the name (it opened, not created, it).
    case notOwner(SegmentName)
    /// The descriptor handed in is not a usable shared-memory file.
    case invalidDescriptor(Int32)
    /// Any other failure of a system call, with the operation that failed.
    case system(Errno, operation: String)

    /// A description for people: logs and error messages.
    public var description: String {
        switch self {
        case .invalidName(let name, let problem): "invalid shared-memory name '\(name)': \(problem)"
        case .alreadyExists(let name): "shared memory '\(name)' already exists"
        case .notFound(let name): "shared memory '\(name)' does not exist"
        case .permissionDenied(let name): "permission denied for shared memory '\(name)'"
        case .noSpace(let bytes): "not enough shared memory for \(bytes) bytes (is /dev/shm full?)"
        case .invalidSize(let size): "invalid shared-memory size \(size)"
        case .empty(let name): "shared memory '\(name)' has size 0 (its creator has not sized it)"
        case .tooSmall(let name, let required, let found):
            "shared memory '\(name)' is \(found) bytes; \(required) are required"
        case .notOwner(let name): "this handle does not own '\(name)'; only its creator unlinks it"
        case .invalidDescriptor(let fd): "descriptor \(fd) is not a usable shared-memory file"
        case .system(let errno, let operation): "\(operation) failed: \(errno)"
        }
    }

    /// Maps the errno of an operation on `name` to the error a user can act on.
    static func from(_ errno: Errno, name: SegmentName?, operation: String, bytes: Int = 0) -> SharedMemoryError {
        switch errno {
        case .fileExists where name != nil: .alreadyExists(name!)
        case .noSuchFileOrDirectory where name != nil: .notFound(name!)
        case .permissionDenied where name != nil, .notPermitted where name != nil: .permissionDenied(name!)
        case .noSpace, .noMemory, .fileTooLarge: .noSpace(bytes: bytes)
        default: .system(errno, operation: operation)
        }
    }
}
