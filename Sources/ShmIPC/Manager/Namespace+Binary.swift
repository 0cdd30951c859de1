extension Namespace {
    /// The attribute `name` in ShmIPC's binary Codable form (``BinaryMessageCoder``'s), if it
    /// holds a value of the type named `typeName` (`String(reflecting:)`): for a peer that
    /// knows the type only by its name, as a remote manager serving a namespace does. nil if
    /// absent; ``ManagerError/attributeType(name:)`` if it holds a value of another type.
    package func binaryValue(of name: String, typeName: String) throws(ManagerError) -> [UInt8]? {
        guard let stored = try attributes.value(forKey: name) else { return nil }
        guard stored.count >= 8 else { throw .corrupted("namespace attribute '\(name)' of \(stored.count) bytes") }
        let hash = stored.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard hash == TypeFingerprint.fnv1a(typeName) else { throw .attributeType(name: name) }
        let body = Array(stored[8...])
        guard let form = Self.directForms[typeName] else { return body }
        return try form.binary(body)
    }

    /// Sets the attribute `name` to the value of the type named `typeName` whose binary Codable
    /// form is `bytes`, stored as a local ``set(_:to:)`` of that type stores it (so local
    /// readers of the type read it). The types with a direct stored form are decoded, so bytes
    /// that are not one of them are ``ManagerError/decodingFailed(_:)``; any other type's bytes
    /// are stored as they are, and a reader whose type they do not decode as gets that error.
    package func setBinaryValue(_ name: String, typeName: String, bytes: [UInt8]) throws(ManagerError) {
        var stored: [UInt8] = []
        stored.reserveCapacity(8 + bytes.count)
        withUnsafeBytes(of: TypeFingerprint.fnv1a(typeName).littleEndian) { stored.append(contentsOf: $0) }
        if let form = Self.directForms[typeName] { stored += try form.stored(bytes) } else { stored += bytes }
        try attributes.setValue(stored, forKey: name)
    }

    /// Converters between the binary Codable form and the stored form, for the types whose
    /// stored form is not the binary Codable one (``StoredCoding``'s direct forms); every other
    /// type is stored in its binary Codable form.
    private struct DirectForm: Sendable {
        let binary: @Sendable ([UInt8]) throws(ManagerError) -> [UInt8]
        let stored: @Sendable ([UInt8]) throws(ManagerError) -> [UInt8]

        init<T: Codable & Sendable>(_: T.Type) {
            binary = { (stored) throws(ManagerError) in
                let value = try StoredCoding.decode(T.self, from: stored)
                do { return try BinaryMessageCoder().encode(value) } catch { throw .encodingFailed("\(error)") }
            }
            stored = { (bytes) throws(ManagerError) in
                let value: T
                do { value = try bytes.withUnsafeBytes { raw throws(ChannelError) in try BinaryMessageCoder().decode(T.self, from: raw) } } catch {
                    throw .decodingFailed("\(error)")
                }
                return try StoredCoding.encode(value).withUnsafeBytes { [UInt8]($0) }
            }
        }
    }

    private static let directForms: [String: DirectForm] = {
        func entry<T: Codable & Sendable>(_ type: T.Type) -> (String, DirectForm) { (String(reflecting: type), DirectForm(type)) }
        let entries = [
            entry(Int.self), entry(String.self), entry([UInt8].self), entry(Double.self), entry(Bool.self), entry(Int64.self),
            entry(UInt64.self), entry(Int32.self), entry(UInt32.self), entry(UInt.self), entry(Float.self),
        ]
        return Dictionary(uniqueKeysWithValues: entries)
    }()
}
