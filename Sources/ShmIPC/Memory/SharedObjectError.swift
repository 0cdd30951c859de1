/// Errors creating or attaching to a shared object (a segment with the common header).
public enum SharedObjectError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The segment itself could not be created or opened.
    case segment(SharedMemoryError)
    /// The segment does not start with ShmIPC's magic number: it is not a ShmIPC object.
    case notAShmIPCObject
    /// The object's layout version differs from the one this build understands.
    case versionMismatch(expected: UInt32, found: UInt32)
    /// The object is of another kind (a queue where a lock was expected…).
    case kindMismatch(expected: ObjectKind, found: ObjectKind)
    /// The object holds elements of another type.
    case typeMismatch(expected: TypeFingerprint, found: TypeFingerprint)
    /// The object was created with another capacity.
    case capacityMismatch(expected: Int, found: Int)
    /// The mapping is smaller than the object's layout requires.
    case truncated(required: Int, found: Int)
    /// A header field holds a value no creator writes; `field` names it.
    case corrupted(field: String, value: UInt64)
    /// The creator did not finish initializing before the deadline. `creatorPID` is nil when it
    /// had not even started (the segment was still zero-filled).
    case initializationTimedOut(creatorPID: Int32?)
    /// The creator died before it finished initializing the object.
    case creatorDied(pid: Int32)

    /// A description for people: logs and error messages.
    public var description: String {
        switch self {
        case .segment(let error): error.description
        case .notAShmIPCObject: "not a ShmIPC object (bad magic number)"
        case .versionMismatch(let expected, let found): "layout version \(found), expected \(expected)"
        case .kindMismatch(let expected, let found): "the object is a \(found), expected a \(expected)"
        case .typeMismatch(let expected, let found): "element type mismatch: found \(found), expected \(expected)"
        case .capacityMismatch(let expected, let found): "capacity \(found), expected \(expected)"
        case .truncated(let required, let found): "the segment is \(found) bytes; its layout requires \(required)"
        case .corrupted(let field, let value): "corrupted header: \(field) = \(value)"
        case .initializationTimedOut(let pid):
            "timed out waiting for the creator\(pid.map { " (pid \($0))" } ?? "") to initialize the object"
        case .creatorDied(let pid): "the creator (pid \(pid)) died before it initialized the object"
        }
    }
}
