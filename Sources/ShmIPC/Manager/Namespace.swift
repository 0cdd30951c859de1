public import SystemPackage

/// Attributes by name, shared between processes. Python: `multiprocessing.Manager().Namespace()`.
///
/// ```swift
/// let ns = try Namespace()
/// ns.x = 10                      // any Codable value; the type is fixed at the use site
/// ns.label = "ready"
/// let x: Int? = ns.x             // 10; nil if absent
/// try ns.modify("x", as: Int.self) { $0 = ($0 ?? 0) + 1 }   // atomic across processes
/// ```
///
/// Backed by a ``SharedDictionary`` from names to values (each stored with its type's
/// fingerprint): everything said there about concurrency, peer death and hostile peers holds.
/// Reading an attribute as another type than it was stored with is
/// ``ManagerError/attributeType(name:)`` from ``value(of:as:)``; the dynamic-member getter and
/// setter trap on that and on the other errors (as Python raises `AttributeError`), so use
/// ``value(of:as:)``, ``set(_:to:)`` and ``remove(_:)`` where an error must be handled.
@dynamicMemberLookup
public final class Namespace: @unchecked Sendable {
    /// `@unchecked Sendable`: one immutable stored property, itself Sendable.
    let attributes: SharedDictionary<String, [UInt8]>

    /// Creates an inheritable namespace with a heap of `capacity` bytes.
    public convenience init(capacity: Int = 64 << 10, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        try self.init(SharedStore(
            inheritable: .namespace, element: Self.fingerprint, capacity: capacity, waitStrategy: waitStrategy,
            format: DictionaryTable.format, repair: DictionaryTable.repair))
    }

    /// Creates or attaches the named namespace `name`.
    public convenience init(
        name: SegmentName, mode: CreationMode, capacity: Int = 64 << 10,
        permissions: FilePermissions = SharedMemory.defaultPermissions, waitStrategy: WaitStrategy = .default
    ) throws(SharedObjectError) {
        try self.init(SharedStore(
            name: name, mode: mode, kind: .namespace, element: Self.fingerprint, capacity: capacity,
            permissions: permissions, waitStrategy: waitStrategy, format: DictionaryTable.format, repair: DictionaryTable.repair))
    }

    /// Attaches an inheritable namespace.
    public convenience init(inheriting descriptor: FileDescriptor, waitStrategy: WaitStrategy = .default) throws(SharedObjectError) {
        try self.init(SharedStore(
            inheriting: descriptor, kind: .namespace, element: Self.fingerprint, waitStrategy: waitStrategy,
            repair: DictionaryTable.repair))
    }

    private init(_ store: SharedStore) { attributes = SharedDictionary(store: store) }

    static var fingerprint: TypeFingerprint { TypeFingerprint(of: Namespace.self) }

    // MARK: attributes

    /// The attribute `name` as a `T` (nil if absent); setting stores it, nil removes it.
    /// Traps on a type mismatch and on the errors of ``value(of:as:)`` and ``set(_:to:)``.
    public subscript<T: Codable>(dynamicMember name: String) -> T? {
        get {
            do { return try value(of: name, as: T.self) } catch { preconditionFailure("Namespace.\(name): \(error)") }
        }
        set {
            do {
                if let newValue { try set(name, to: newValue) } else { try remove(name) }
            } catch { preconditionFailure("Namespace.\(name) = …: \(error)") }
        }
    }

    /// The attribute `name` as a `T`, or nil if it is absent. Python: `getattr(ns, name, None)`.
    public func value<T: Decodable>(of name: String, as type: T.Type = T.self) throws(ManagerError) -> T? {
        guard let stored = try attributes.value(forKey: name) else { return nil }
        return try Self.decode(stored, name: name, as: T.self)
    }

    /// Sets the attribute `name` to `value`. Python: `setattr(ns, name, value)`.
    public func set<T: Encodable>(_ name: String, to value: T) throws(ManagerError) {
        try attributes.setValue(Self.encode(value), forKey: name)
    }

    /// Removes the attribute `name` (nothing if absent). Python: `delattr(ns, name)`.
    public func remove(_ name: String) throws(ManagerError) {
        _ = try attributes.removeValue(forKey: name)
    }

    /// Reads, changes and writes the attribute `name` atomically (nil: absent; leaving nil
    /// removes it). See ``SharedDictionary/modify(_:_:)``.
    public func modify<T: Codable, Result>(_ name: String, as type: T.Type = T.self, _ body: (inout T?) throws -> Result) throws -> Result {
        try attributes.modify(name) { stored in
            var value = try stored.map { (stored) throws(ManagerError) in try Self.decode(stored, name: name, as: T.self) }
            let result = try body(&value)
            stored = try value.map { (value) throws(ManagerError) in try Self.encode(value) }
            return result
        }
    }

    /// The attribute names (a snapshot). Python: `vars(ns).keys()`.
    public func names() throws(ManagerError) -> [String] { try attributes.keys() }

    /// Whether the attribute `name` exists. Python: `hasattr(ns, name)`.
    public func contains(_ name: String) throws(ManagerError) -> Bool { try attributes.contains(name) }

    // MARK: stored form: the type's fingerprint hash, then the value's stored bytes

    private static func encode<T: Encodable>(_ value: T) throws(ManagerError) -> [UInt8] {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: typeHash(T.self).littleEndian) { bytes.append(contentsOf: $0) }
        try StoredCoding.encode(value).withUnsafeBytes { (raw) throws(ManagerError) in bytes.append(contentsOf: raw) }
        return bytes
    }

    private static func decode<T: Decodable>(_ stored: [UInt8], name: String, as _: T.Type) throws(ManagerError) -> T {
        guard stored.count >= 8 else { throw .corrupted("namespace attribute '\(name)' of \(stored.count) bytes") }
        let hash = stored.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard hash == typeHash(T.self) else { throw .attributeType(name: name) }
        return try stored.withUnsafeBytes { raw in
            Result { () throws(ManagerError) -> T in try StoredCoding.decode(T.self, from: UnsafeRawBufferPointer(rebasing: raw[8...])) }
        }.get()
    }

    private static func typeHash<T>(_: T.Type) -> UInt64 { TypeFingerprint(of: T.self).nameHash }

    // MARK: facts

    /// How full the namespace's heap is, and how often it was repaired (a snapshot).
    public var statistics: SharedHeapStatistics { attributes.statistics }
    /// The descriptor to hand to a child process (`sharing:`); `nil` for a named object.
    public var inheritableDescriptor: FileDescriptor? { attributes.inheritableDescriptor }
    /// The segment's name, for named namespaces (not `name`: that is an attribute's, `ns.name`).
    public var segmentName: SegmentName? { attributes.name }
    /// Removes the object's name (only the process that created it may); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try attributes.unlink() }
}
