// Generated boilerplate: the per-type requirements of the Codable container protocols.
// Each forwards to BinaryEncoder/BinaryDecoder; see BinaryCoding.swift for the format.

extension BinaryEncoder.KeyedContainer {
    mutating func encode(_ value: Bool, forKey key: Key) throws { self.key(key); encoder.bytes.append(value ? 1 : 0) }
    mutating func encode(_ value: String, forKey key: Key) throws { self.key(key); encoder.appendString(value) }
    mutating func encode(_ value: Double, forKey key: Key) throws { self.key(key); encoder.append(value.bitPattern) }
    mutating func encode(_ value: Float, forKey key: Key) throws { self.key(key); encoder.append(value.bitPattern) }
    mutating func encode(_ value: Int, forKey key: Key) throws { self.key(key); encoder.append(value) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { self.key(key); encoder.append(value) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { self.key(key); encoder.append(value) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { self.key(key); encoder.append(value) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { self.key(key); encoder.append(value) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { self.key(key); encoder.append(value) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { self.key(key); encoder.append(value) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { self.key(key); encoder.append(value) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { self.key(key); encoder.append(value) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { self.key(key); encoder.append(value) }
    mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Float?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int8?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int16?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encodeIfPresent(_ value: UInt?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws { try encodeValue(value, forKey: key) }
}

extension BinaryEncoder.UnkeyedContainer {
    mutating func encode(_ value: Bool) throws { counted(); encoder.bytes.append(value ? 1 : 0) }
    mutating func encode(_ value: String) throws { counted(); encoder.appendString(value) }
    mutating func encode(_ value: Double) throws { counted(); encoder.append(value.bitPattern) }
    mutating func encode(_ value: Float) throws { counted(); encoder.append(value.bitPattern) }
    mutating func encode(_ value: Int) throws { counted(); encoder.append(value) }
    mutating func encode(_ value: Int8) throws { counted(); encoder.append(value) }
    mutating func encode(_ value: Int16) throws { counted(); encoder.append(value) }
    mutating func encode(_ value: Int32) throws { counted(); encoder.append(value) }
    mutating func encode(_ value: Int64) throws { counted(); encoder.append(value) }
    mutating func encode(_ value: UInt) throws { counted(); encoder.append(value) }
    mutating func encode(_ value: UInt8) throws { counted(); encoder.append(value) }
    mutating func encode(_ value: UInt16) throws { counted(); encoder.append(value) }
    mutating func encode(_ value: UInt32) throws { counted(); encoder.append(value) }
    mutating func encode(_ value: UInt64) throws { counted(); encoder.append(value) }
}

extension BinaryEncoder.SingleValueContainer {
    mutating func encode(_ value: Bool) throws { encoder.bytes.append(value ? 1 : 0) }
    mutating func encode(_ value: String) throws { encoder.appendString(value) }
    mutating func encode(_ value: Double) throws { encoder.append(value.bitPattern) }
    mutating func encode(_ value: Float) throws { encoder.append(value.bitPattern) }
    mutating func encode(_ value: Int) throws { encoder.append(value) }
    mutating func encode(_ value: Int8) throws { encoder.append(value) }
    mutating func encode(_ value: Int16) throws { encoder.append(value) }
    mutating func encode(_ value: Int32) throws { encoder.append(value) }
    mutating func encode(_ value: Int64) throws { encoder.append(value) }
    mutating func encode(_ value: UInt) throws { encoder.append(value) }
    mutating func encode(_ value: UInt8) throws { encoder.append(value) }
    mutating func encode(_ value: UInt16) throws { encoder.append(value) }
    mutating func encode(_ value: UInt32) throws { encoder.append(value) }
    mutating func encode(_ value: UInt64) throws { encoder.append(value) }
}

extension BinaryDecoder.KeyedContainer {
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decoder.readKey(key.stringValue); return try decoder.readBool() }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decoder.readKey(key.stringValue); return try decoder.readString() }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decoder.readKey(key.stringValue); return Double(bitPattern: try decoder.read(UInt64.self)) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decoder.readKey(key.stringValue); return Float(bitPattern: try decoder.read(UInt32.self)) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decoder.readKey(key.stringValue); return try decoder.read(Int.self) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decoder.readKey(key.stringValue); return try decoder.read(Int8.self) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decoder.readKey(key.stringValue); return try decoder.read(Int16.self) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decoder.readKey(key.stringValue); return try decoder.read(Int32.self) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decoder.readKey(key.stringValue); return try decoder.read(Int64.self) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decoder.readKey(key.stringValue); return try decoder.read(UInt.self) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decoder.readKey(key.stringValue); return try decoder.read(UInt8.self) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decoder.readKey(key.stringValue); return try decoder.read(UInt16.self) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decoder.readKey(key.stringValue); return try decoder.read(UInt32.self) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decoder.readKey(key.stringValue); return try decoder.read(UInt64.self) }
}

extension BinaryDecoder.UnkeyedContainer {
    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(); return try decoder.readBool() }
    mutating func decode(_ type: String.Type) throws -> String { try next(); return try decoder.readString() }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(); return Double(bitPattern: try decoder.read(UInt64.self)) }
    mutating func decode(_ type: Float.Type) throws -> Float { try next(); return Float(bitPattern: try decoder.read(UInt32.self)) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next(); return try decoder.read(Int.self) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next(); return try decoder.read(Int8.self) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next(); return try decoder.read(Int16.self) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next(); return try decoder.read(Int32.self) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next(); return try decoder.read(Int64.self) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next(); return try decoder.read(UInt.self) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next(); return try decoder.read(UInt8.self) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next(); return try decoder.read(UInt16.self) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next(); return try decoder.read(UInt32.self) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next(); return try decoder.read(UInt64.self) }
}

extension BinaryDecoder.SingleValueContainer {
    func decode(_ type: Bool.Type) throws -> Bool { try decoder.readBool() }
    func decode(_ type: String.Type) throws -> String { try decoder.readString() }
    func decode(_ type: Double.Type) throws -> Double { Double(bitPattern: try decoder.read(UInt64.self)) }
    func decode(_ type: Float.Type) throws -> Float { Float(bitPattern: try decoder.read(UInt32.self)) }
    func decode(_ type: Int.Type) throws -> Int { try decoder.read(Int.self) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decoder.read(Int8.self) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decoder.read(Int16.self) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decoder.read(Int32.self) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decoder.read(Int64.self) }
    func decode(_ type: UInt.Type) throws -> UInt { try decoder.read(UInt.self) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decoder.read(UInt8.self) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decoder.read(UInt16.self) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decoder.read(UInt32.self) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decoder.read(UInt64.self) }
}
