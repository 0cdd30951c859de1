/// What a shared object is, as recorded in its header. An attacher that expects one kind and
/// finds another fails with ``SharedObjectError/kindMismatch(expected:found:)``.
public struct ObjectKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw value.
    public let rawValue: UInt32
    /// The value with this raw value.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// ``Lock``.
    public static let lock = ObjectKind(rawValue: 1)
    /// ``RLock``.
    public static let recursiveLock = ObjectKind(rawValue: 2)
    /// ``Semaphore`` without a bound.
    public static let semaphore = ObjectKind(rawValue: 3)
    /// ``Semaphore`` with a bound (Python's `BoundedSemaphore`).
    public static let boundedSemaphore = ObjectKind(rawValue: 4)
    /// ``Event``.
    public static let event = ObjectKind(rawValue: 5)
    /// ``Condition``.
    public static let condition = ObjectKind(rawValue: 6)
    /// ``Barrier``.
    public static let barrier = ObjectKind(rawValue: 7)
    /// ``Queue``.
    public static let queue = ObjectKind(rawValue: 8)
    /// ``JoinableQueue``.
    public static let joinableQueue = ObjectKind(rawValue: 9)
    /// ``Value``.
    public static let value = ObjectKind(rawValue: 10)
    /// ``SharedArray``.
    public static let array = ObjectKind(rawValue: 11)
    /// ``Pipe``.
    public static let pipe = ObjectKind(rawValue: 12)
    /// ``SPSCQueue``.
    public static let spscQueue = ObjectKind(rawValue: 13)
    /// ``MessageQueue``.
    public static let messageQueue = ObjectKind(rawValue: 14)
    /// A ``Pool``'s doorbell (workers ring it when a result is ready).
    public static let doorbell = ObjectKind(rawValue: 15)
    /// ``SharedDictionary``.
    public static let dictionary = ObjectKind(rawValue: 16)
    /// ``SharedList``.
    public static let list = ObjectKind(rawValue: 17)
    /// ``Namespace``.
    public static let namespace = ObjectKind(rawValue: 18)
    /// For tests and tools that need a kind of their own.
    public static let testing = ObjectKind(rawValue: 0xFFFF)

    /// A description for people: logs and error messages.
    public var description: String {
        switch self {
        case .lock: "lock"
        case .recursiveLock: "rlock"
        case .semaphore: "semaphore"
        case .boundedSemaphore: "bounded-semaphore"
        case .event: "event"
        case .condition: "condition"
        case .barrier: "barrier"
        case .queue: "queue"
        case .joinableQueue: "joinable-queue"
        case .value: "value"
        case .array: "array"
        case .pipe: "pipe"
        case .spscQueue: "spsc-queue"
        case .messageQueue: "message-queue"
        case .doorbell: "doorbell"
        case .dictionary: "dictionary"
        case .list: "list"
        case .namespace: "namespace"
        case .testing: "testing"
        default: "kind(\(rawValue))"
        }
    }
}

/// The identity of an element type as two processes can compare it: size, stride, alignment
/// and a stable hash (FNV-1a, 64 bits) of the type's fully qualified name.
///
/// The name hash is stable across processes and runs of the same program, and across programs
/// that declare the type in a module of the same name. It cannot prove two types have the same
/// meaning; it catches the common mistake of attaching with the wrong type.
public struct TypeFingerprint: Hashable, Sendable, CustomStringConvertible {
    /// `MemoryLayout<T>.size`.
    public let size: Int
    /// `MemoryLayout<T>.stride`.
    public let stride: Int
    /// `MemoryLayout<T>.alignment`.
    public let alignment: Int
    /// FNV-1a (64 bits) of the type's fully qualified name.
    public let nameHash: UInt64
    /// The type's fully qualified name (`String(reflecting:)`), for people and tools: the
    /// header keeps its first 40 bytes. Not part of equality
    /// (the hash is).
    public let name: String

    /// A fingerprint from its parts (a type's own: ``init(of:)``).
    public init(size: Int, stride: Int, alignment: Int, nameHash: UInt64, name: String = "") {
        self.size = size
        self.stride = stride
        self.alignment = alignment
        self.nameHash = nameHash
        self.name = name
    }

    /// The fingerprint of `type`.
    public init<T>(of type: T.Type) {
        let name = String(reflecting: type)
        self.init(
            size: MemoryLayout<T>.size, stride: MemoryLayout<T>.stride,
            alignment: MemoryLayout<T>.alignment, nameHash: Self.fnv1a(name), name: name)
    }

    /// A fingerprint named `name` (objects whose "element" is a format of their own).
    static func named(_ name: String, size: Int, stride: Int, alignment: Int) -> TypeFingerprint {
        TypeFingerprint(size: size, stride: stride, alignment: alignment, nameHash: fnv1a(name), name: name)
    }

    /// For objects without an element type (locks, events…).
    public static let none = TypeFingerprint(size: 0, stride: 0, alignment: 0, nameHash: 0)

    /// Equal when size, stride, alignment and name hash are (the name is not compared).
    public static func == (lhs: TypeFingerprint, rhs: TypeFingerprint) -> Bool {
        lhs.size == rhs.size && lhs.stride == rhs.stride && lhs.alignment == rhs.alignment && lhs.nameHash == rhs.nameHash
    }

    /// Hashes the essential components.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(size)
        hasher.combine(stride)
        hasher.combine(alignment)
        hasher.combine(nameHash)
    }

    /// A description for people: logs and error messages.
    public var description: String {
        self == .none
            ? "no element type"
            : "\(name.isEmpty ? "" : name + ": ")size \(size), stride \(stride), alignment \(alignment), name hash 0x\(String(nameHash, radix: 16))"
    }

    /// FNV-1a, 64-bit: simple, fixed, and identical in every process (unlike `Hasher`,
    /// which is seeded per process).
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }
}

/// Everything an attacher checks against the header before it touches the object's state.
package struct ObjectLayout: Hashable, Sendable {
    package var kind: ObjectKind
    /// The version of this kind's state layout; bump it when the layout changes.
    package var version: UInt32
    package var element: TypeFingerprint
    package var capacity: Int
    /// Bytes of the object's state after the header.
    package var stateSize: Int

    package init(kind: ObjectKind, version: UInt32, element: TypeFingerprint, capacity: Int, stateSize: Int) {
        self.kind = kind
        self.version = version
        self.element = element
        self.capacity = capacity
        self.stateSize = stateSize
    }
}
