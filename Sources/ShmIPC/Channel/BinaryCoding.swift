// The Encoder and Decoder behind BinaryMessageCoder (the format is documented there).
// Keyed containers store each key before its value, and values decode in the order they were
// encoded.
import Glibc

/// Appends a value's binary form to `bytes`.
final class BinaryEncoder: Encoder {
    // Unchecked: a coder is one caller's, never shared, and the dynamic exclusivity checks of a
    // class's property cost ~10% of a small struct's coding (perf, the remote throughput row).
    @exclusivity(unchecked) var bytes: [UInt8] = []
    var codingPath: [any CodingKey] { [] }
    /// Empty but for a launch's argument (its ``LaunchCollector``), built only when asked.
    var userInfo: [CodingUserInfoKey: Any] { collector.map { [LaunchCollector.key: $0] } ?? [:] }
    /// A launch's collector, typed: no dictionary on any path that does not ask (a child
    /// building one per launch paid the dictionary's first-use metadata and conformance
    /// look-ups, process.forkserver +10%).
    let collector: LaunchCollector?

    init(prefix: [UInt8] = [], collector: LaunchCollector? = nil) {
        self.collector = collector
        bytes = prefix
        bytes.reserveCapacity(prefix.count + 64)
    }

    /// Whether arrays of numbers are copied whole (see `PackedArray`).
    #if _endian(little)
    static let packs = true
    #else
    static let packs = false
    #endif

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(KeyedContainer<Key>(encoder: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer { UnkeyedContainer(encoder: self) }
    func singleValueContainer() -> any SingleValueEncodingContainer { SingleValueContainer(encoder: self) }

    @inline(__always)
    func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    func appendVarint(_ value: Int) {
        var rest = UInt64(value)
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    func appendString(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            appendVarint(utf8.count)
            bytes.append(contentsOf: utf8)
        }
    }

    /// Encodes any value: optionals and dictionaries in the format's own way, the rest
    /// through their `encode(to:)`.
    func encodeValue<T: Encodable>(_ value: T) throws {
        if Self.packs, encodePackedByIdentity(value) { return }
        if let optional = value as? any EncodableOptional {
            guard let wrapped = optional.wrappedEncodable else { bytes.append(0); return }
            bytes.append(1)
            try encodeValue(wrapped)
        } else if let dictionary = value as? any EncodableDictionary {
            try dictionary.encodeEntries(to: self)
        } else if let array = value as? any EncodableArray {
            try array.encodeElements(to: self)
        } else {
            try value.encode(to: self)
        }
    }

    struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let encoder: BinaryEncoder
        var codingPath: [any CodingKey] { [] }

        mutating func encodeNil(forKey key: Key) throws { encoder.appendString(key.stringValue); encoder.bytes.append(0) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            encoder.appendString(key.stringValue)
            try encoder.encodeValue(value)
        }
        /// For `encodeIfPresent`: a missing value writes nothing (not even its key); a present
        /// one its key, a presence byte (read by `decodeNil(forKey:)`) and itself.
        func encodeValue<T: Encodable>(_ value: T?, forKey key: Key) throws {
            guard let value else { return }
            encoder.appendString(key.stringValue)
            encoder.bytes.append(1)
            try encoder.encodeValue(value)
        }
        /// Writes `key` before the primitive that follows.
        func key(_ key: Key) { encoder.appendString(key.stringValue) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            encoder.appendString(key.stringValue)
            return encoder.container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            encoder.appendString(key.stringValue)
            return encoder.unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder { encoder.appendString("super"); return encoder }
        mutating func superEncoder(forKey key: Key) -> any Encoder { encoder.appendString(key.stringValue); return encoder }
    }

    /// Reserves a 4-byte element count and raises it with every element.
    struct UnkeyedContainer: UnkeyedEncodingContainer {
        let encoder: BinaryEncoder
        let countOffset: Int
        var count = 0
        var codingPath: [any CodingKey] { [] }

        init(encoder: BinaryEncoder) {
            self.encoder = encoder
            countOffset = encoder.bytes.count
            encoder.append(UInt32(0))
        }

        mutating func counted() {
            count += 1
            encoder.bytes.withUnsafeMutableBytes {
                $0.storeBytes(of: UInt32(truncatingIfNeeded: count).littleEndian, toByteOffset: countOffset, as: UInt32.self)
            }
        }

        mutating func encodeNil() throws { counted(); encoder.bytes.append(0) }
        mutating func encode<T: Encodable>(_ value: T) throws { counted(); try encoder.encodeValue(value) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            counted()
            return encoder.container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            counted()
            return encoder.unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder { counted(); return encoder }
    }

    struct SingleValueContainer: SingleValueEncodingContainer {
        let encoder: BinaryEncoder
        var codingPath: [any CodingKey] { [] }
        mutating func encodeNil() throws { encoder.bytes.append(0) }
        mutating func encode<T: Encodable>(_ value: T) throws { try encoder.encodeValue(value) }
    }
}

/// Reads values back from bytes written by ``BinaryEncoder``, never past their end.
final class BinaryDecoder: Decoder {
    let base: UnsafeRawBufferPointer
    /// Unchecked, as the encoder's `bytes`.
    @exclusivity(unchecked) var offset = 0
    /// A key already read by `decodeNil(forKey:)` for a value that is present.
    @exclusivity(unchecked) var pendingKey: String?
    var codingPath: [any CodingKey] { [] }
    /// Empty but for a launch's argument (its ``LaunchDescriptors``), built only when asked.
    var userInfo: [CodingUserInfoKey: Any] { inherited.map { [LaunchDescriptors.key: $0] } ?? [:] }
    /// As the encoder's collector.
    let inherited: LaunchDescriptors?

    init(_ bytes: UnsafeRawBufferPointer, inherited: LaunchDescriptors? = nil) {
        base = bytes
        self.inherited = inherited
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(KeyedContainer<Key>(decoder: self))
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { try UnkeyedContainer(decoder: self) }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleValueContainer(decoder: self) }

    func failure(_ what: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: [], debugDescription: "\(what) at byte \(offset) of \(base.count)"))
    }

    @inline(__always)
    func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard base.count - offset >= size else { throw failure("\(size) bytes of \(T.self) run past the end") }
        defer { offset += size }
        return T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    func readBool() throws -> Bool {
        switch try read(UInt8.self) {
        case 0: return false
        case 1: return true
        case let byte: throw failure("a Bool byte of \(byte)")
        }
    }

    func readVarint() throws -> Int {
        var value: UInt64 = 0, shift: UInt64 = 0
        while true {
            let byte = try read(UInt8.self)
            guard shift < 63 || (shift == 63 && byte <= 1) else { throw failure("a length over 64 bits") }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        guard value <= UInt64(base.count - offset) else { throw failure("a length of \(value) runs past the end") }
        return Int(value)
    }

    func readString() throws -> String {
        let count = try readVarint()
        let utf8 = UnsafeRawBufferPointer(rebasing: base[offset..<(offset + count)])
        guard let string = String(validating: utf8.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw failure("invalid UTF-8")
        }
        offset += count
        return string
    }

    /// Reads the next entry's key, which must be `expected`.
    func readKey(_ expected: String) throws {
        if let pending = pendingKey {
            pendingKey = nil
            if pending == expected { return }
            throw failure("key '\(expected)' expected after '\(pending)'")
        }
        // The key's bytes compared in place: no String made and validated for a key that
        // matches (the common case; a keyed value's fields each have one).
        let start = offset
        let count = try readVarint()
        var expected = expected
        let matches = expected.withUTF8 { utf8 in
            utf8.count == count && (count == 0 || memcmp(utf8.baseAddress!, base.baseAddress! + offset, count) == 0)
        }
        if matches {
            offset += count
            return
        }
        offset = start
        let found = try readString()
        throw failure("key '\(expected)' expected, found '\(found)'")
    }

    /// The next entry's key, not consumed.
    func peekKey() throws -> String {
        let start = offset
        defer { offset = start }
        return try readString()
    }

    /// A presence byte: true for 0 (nil), false for 1; anything else is an error.
    func readNil() throws -> Bool {
        switch try read(UInt8.self) {
        case 0: return true
        case 1: return false
        case let byte: throw failure("a presence byte of \(byte)")
        }
    }

    /// A count of elements, each at least one byte, that must fit in what is left.
    func readCount() throws -> Int {
        let count = Int(try read(UInt32.self))
        guard count <= base.count - offset else {
            throw failure("a count of \(count) runs past the end")
        }
        return count
    }

    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        if BinaryEncoder.packs, let array = try decodePackedByIdentity(type) { return array }
        if let optional = type as? any DecodableOptional.Type {
            return try optional.decodeBinary(self) as! T
        }
        if let dictionary = type as? any DecodableDictionary.Type {
            return try dictionary.decodeEntries(from: self) as! T
        }
        if let array = type as? any DecodableArray.Type {
            return try array.decodeElements(from: self) as! T
        }
        return try T(from: self)
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context): context.debugDescription
        case DecodingError.typeMismatch(let type, let context): "type mismatch for \(type): \(context.debugDescription)"
        case DecodingError.valueNotFound(let type, let context): "no value for \(type): \(context.debugDescription)"
        case DecodingError.keyNotFound(let key, let context): "no key \(key.stringValue): \(context.debugDescription)"
        case EncodingError.invalidValue(_, let context): context.debugDescription
        default: "\(error)"
        }
    }

    struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let decoder: BinaryDecoder
        var codingPath: [any CodingKey] { [] }
        /// The next entry's key only (what an enum's decoding asks for: its case).
        var allKeys: [Key] { (try? decoder.peekKey()).flatMap { Key(stringValue: $0) }.map { [$0] } ?? [] }

        /// Whether the next entry is `key` (entries come in encoding order; a missing optional
        /// has none).
        func contains(_ key: Key) -> Bool { decoder.pendingKey == key.stringValue || (try? decoder.peekKey()) == key.stringValue }
        func decodeNil(forKey key: Key) throws -> Bool {
            try decoder.readKey(key.stringValue)
            if try decoder.readNil() { return true }
            decoder.pendingKey = key.stringValue  // present: its decode follows, without its key
            return false
        }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try decoder.readKey(key.stringValue)
            return try decoder.decodeValue(type)
        }
        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            try decoder.readKey(key.stringValue)
            return try decoder.container(keyedBy: type)
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try decoder.readKey(key.stringValue)
            return try decoder.unkeyedContainer()
        }
        func superDecoder() throws -> any Decoder { try decoder.readKey("super"); return decoder }
        func superDecoder(forKey key: Key) throws -> any Decoder { try decoder.readKey(key.stringValue); return decoder }
    }

    struct UnkeyedContainer: UnkeyedDecodingContainer {
        let decoder: BinaryDecoder
        let elements: Int
        var count: Int? { elements }
        var currentIndex = 0
        var codingPath: [any CodingKey] { [] }
        var isAtEnd: Bool { currentIndex >= elements }

        init(decoder: BinaryDecoder) throws {
            self.decoder = decoder
            elements = try decoder.readCount()
        }

        mutating func next() throws {
            guard !isAtEnd else { throw decoder.failure("more elements than the \(elements) encoded") }
            currentIndex += 1
        }

        mutating func decodeNil() throws -> Bool {
            try next()
            if try decoder.readNil() { return true }
            currentIndex -= 1  // present: the element itself is decoded next
            decoder.offset -= 1
            return false
        }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next(); return try decoder.decodeValue(type) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            try next()
            return try decoder.container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next(); return try decoder.unkeyedContainer() }
        mutating func superDecoder() throws -> any Decoder { try next(); return decoder }
    }

    struct SingleValueContainer: SingleValueDecodingContainer {
        let decoder: BinaryDecoder
        var codingPath: [any CodingKey] { [] }
        /// Custom code's optional: a 0 byte (consumed) means nil; a present value is read by
        /// the decode that follows, with its presence byte.
        func decodeNil() -> Bool {
            guard decoder.offset < decoder.base.count, decoder.base[decoder.offset] == 0 else { return false }
            decoder.offset += 1
            return true
        }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decodeValue(type) }
    }
}

// MARK: optionals and dictionaries

/// Optionals encode as a presence byte and the value, wherever they appear.
protocol EncodableOptional { var wrappedEncodable: (any Encodable)? { get } }
protocol DecodableOptional { static func decodeBinary(_ decoder: BinaryDecoder) throws -> Self }

extension Optional: EncodableOptional where Wrapped: Encodable {
    var wrappedEncodable: (any Encodable)? { self }
}

extension Optional: DecodableOptional where Wrapped: Decodable {
    static func decodeBinary(_ decoder: BinaryDecoder) throws -> Self {
        try decoder.readNil() ? nil : try decoder.decodeValue(Wrapped.self)
    }
}

/// Dictionaries encode as an entry count and key-value pairs: their own `encode(to:)` writes
/// String and Int keys as container keys, which this format does not store.
protocol EncodableDictionary { func encodeEntries(to encoder: BinaryEncoder) throws }
protocol DecodableDictionary { static func decodeEntries(from decoder: BinaryDecoder) throws -> Self }

extension Dictionary: EncodableDictionary where Key: Encodable, Value: Encodable {
    func encodeEntries(to encoder: BinaryEncoder) throws {
        encoder.append(UInt32(count))
        for (key, value) in self {
            try encoder.encodeValue(key)
            try encoder.encodeValue(value)
        }
    }
}

extension Dictionary: DecodableDictionary where Key: Decodable, Value: Decodable {
    static func decodeEntries(from decoder: BinaryDecoder) throws -> Self {
        let count = try decoder.readCount()
        var result = Self(minimumCapacity: count)
        for _ in 0..<count {
            let key = try decoder.decodeValue(Key.self)
            guard result.updateValue(try decoder.decodeValue(Value.self), forKey: key) == nil else {
                throw decoder.failure("a repeated dictionary key")
            }
        }
        return result
    }
}
