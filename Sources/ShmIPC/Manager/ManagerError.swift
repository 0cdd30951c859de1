/// Errors of the shared dictionary, list and ``Namespace``.
public enum ManagerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The object's heap has no free block of `needed` bytes (`free` bytes are free in all).
    /// Nothing was changed. The heap's size is fixed at creation (``SharedDictionary/init(capacity:waitStrategy:)``).
    case noSpace(needed: Int, free: Int)
    /// The shared memory holds something no writer of this object writes (a peer scribbled on
    /// it, or it is not what it claims to be); `detail` says what was found.
    case corrupted(String)
    /// An index outside `0..<count` (the throwing forms; the subscripts trap instead).
    case indexOutOfRange(index: Int, count: Int)
    /// The value could not be encoded (its `encode(to:)` threw).
    case encodingFailed(String)
    /// The stored bytes do not decode as the requested type.
    case decodingFailed(String)
    /// A ``Namespace`` attribute holds a value of another type than the one asked for.
    case attributeType(name: String)
    /// The object's lock could not be taken: ``SyncError/wouldDeadlock`` when a `modify`
    /// closure uses the object it is modifying.
    case lock(SyncError)

    /// A description for people: logs and error messages.
    public var description: String {
        switch self {
        case .noSpace(let needed, let free): "no free block of \(needed) bytes in the shared heap (\(free) bytes free in all)"
        case .corrupted(let detail): "corrupted shared structure: \(detail)"
        case .indexOutOfRange(let index, let count): "index \(index) out of range 0..<\(count)"
        case .encodingFailed(let detail): "encoding failed: \(detail)"
        case .decodingFailed(let detail): "decoding failed: \(detail)"
        case .attributeType(let name): "attribute '\(name)' holds a value of another type"
        case .lock(let error): "the object's lock: \(error)"
        }
    }
}
