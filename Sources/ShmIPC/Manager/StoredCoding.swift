/// How keys, values and elements of the shared structures are stored as bytes.
///
/// The common types have a direct form, written and read without `Encoder`/`Decoder` (recognized
/// by comparing metatypes, a pointer compare): fixed-width integers, `Double`, `Float` and
/// `Bool` at their width, little-endian; `String` as its UTF-8 bytes; `[UInt8]` as itself.
/// Every other type goes through ``BinaryMessageCoder``. A structure's key and value types are
/// fixed by its header's type fingerprint, so one stored form never meets another.
///
/// Keys are compared by their stored bytes: two keys are the same key when their bytes are
/// equal. That is `==` for integers, `String`s compared by their UTF-8 (not by Unicode canonical
/// equivalence: "é" precomposed and decomposed are two keys), and for any other type the bytes
/// `BinaryMessageCoder` writes, which are canonical for structs and enums of those, but not for
/// types with an unordered encoding (`Set`, `Dictionary`): do not use those as keys.
@usableFromInline
enum StoredCoding {
    /// The stored bytes of `value`; for the direct forms without an allocation. Inlinable (as
    /// the rest of this type), so a client's specialization folds the type tests away.
    @inlinable @inline(__always)
    static func encode<T: Encodable>(_ value: T) throws(ManagerError) -> StoredBytes {
        if T.self == Int.self { return .fixed(unsafeBitCast(value, to: Int.self)) }
        if T.self == String.self { return StoredBytes(.string(unsafeBitCast(value, to: String.self))) }
        if T.self == [UInt8].self { return StoredBytes(.bytes(unsafeBitCast(value, to: [UInt8].self))) }
        if T.self == Double.self { return .fixed(unsafeBitCast(value, to: Double.self).bitPattern) }
        if T.self == Bool.self { return .fixed(unsafeBitCast(value, to: Bool.self) ? UInt8(1) : 0) }
        if T.self == Int64.self { return .fixed(unsafeBitCast(value, to: Int64.self)) }
        if T.self == UInt64.self { return .fixed(unsafeBitCast(value, to: UInt64.self)) }
        if T.self == Int32.self { return .fixed(unsafeBitCast(value, to: Int32.self)) }
        if T.self == UInt32.self { return .fixed(unsafeBitCast(value, to: UInt32.self)) }
        if T.self == UInt.self { return .fixed(unsafeBitCast(value, to: UInt.self)) }
        if T.self == Float.self { return .fixed(unsafeBitCast(value, to: Float.self).bitPattern) }
        do { return StoredBytes(.bytes(try BinaryMessageCoder().encode(value))) } catch {
            throw .encodingFailed("\(error)")
        }
    }

    /// Whether `T` has a direct form: its decoding only copies, so it may run on bytes a writer
    /// is changing (the result is discarded if one was). Other types are copied out first,
    /// because their `init(from:)` is the user's code and must only see whole values.
    @inlinable @inline(__always)
    static func isDirect<T>(_: T.Type) -> Bool {
        T.self == Int.self || T.self == String.self || T.self == [UInt8].self || T.self == Double.self
            || T.self == Bool.self || T.self == Int64.self || T.self == UInt64.self || T.self == Int32.self
            || T.self == UInt32.self || T.self == UInt.self || T.self == Float.self
    }

    /// A `T` from its stored bytes copied out: `[UInt8]` is the copy itself.
    @inlinable @inline(__always)
    static func decode<T: Decodable>(_: T.Type, from bytes: [UInt8]) throws(ManagerError) -> T {
        if T.self == [UInt8].self { return unsafeBitCast(bytes, to: T.self) }
        return try bytes.withUnsafeBytes { raw in Result { () throws(ManagerError) -> T in try decode(T.self, from: raw) } }.get()
    }

    /// A `T` from its stored bytes.
    @inlinable @inline(__always)
    static func decode<T: Decodable>(_: T.Type, from bytes: UnsafeRawBufferPointer) throws(ManagerError) -> T {
        if T.self == Int.self { return unsafeBitCast(try fixed(Int.self, bytes), to: T.self) }
        if T.self == String.self { return unsafeBitCast(String(decoding: bytes, as: UTF8.self), to: T.self) }
        if T.self == [UInt8].self { return unsafeBitCast([UInt8](bytes), to: T.self) }
        if T.self == Double.self { return unsafeBitCast(Double(bitPattern: try fixed(UInt64.self, bytes)), to: T.self) }
        if T.self == Bool.self {
            let byte = try fixed(UInt8.self, bytes)
            guard byte <= 1 else { throw .decodingFailed("a Bool stored as \(byte)") }
            return unsafeBitCast(byte == 1, to: T.self)
        }
        if T.self == Int64.self { return unsafeBitCast(try fixed(Int64.self, bytes), to: T.self) }
        if T.self == UInt64.self { return unsafeBitCast(try fixed(UInt64.self, bytes), to: T.self) }
        if T.self == Int32.self { return unsafeBitCast(try fixed(Int32.self, bytes), to: T.self) }
        if T.self == UInt32.self { return unsafeBitCast(try fixed(UInt32.self, bytes), to: T.self) }
        if T.self == UInt.self { return unsafeBitCast(try fixed(UInt.self, bytes), to: T.self) }
        if T.self == Float.self { return unsafeBitCast(Float(bitPattern: try fixed(UInt32.self, bytes)), to: T.self) }
        do { return try BinaryMessageCoder().decode(T.self, from: bytes) } catch {
            if case .decodingFailed(let detail) = error { throw .decodingFailed(detail) }
            throw .decodingFailed("\(error)")
        }
    }

    @inlinable @inline(__always)
    static func fixed<I: FixedWidthInteger>(_: I.Type, _ bytes: UnsafeRawBufferPointer) throws(ManagerError) -> I {
        guard bytes.count == MemoryLayout<I>.size else {
            throw .decodingFailed("\(bytes.count) bytes for a \(I.self) of \(MemoryLayout<I>.size)")
        }
        return I(littleEndian: bytes.loadUnaligned(as: I.self))
    }

    /// A 64-bit hash of stored key bytes, identical in every process (unlike `Hasher`, which
    /// is seeded per process): 8-byte words folded by multiply-rotate, then murmur3's
    /// finalizer, so both the low bits (the slot) and the high bits (the slot's tag) vary.
    /// Not keyed: a peer that chooses keys can make probes long (they stay bounded by the
    /// index's size).
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.count)
        var offset = 0
        while offset + 8 <= bytes.count {
            h = mix(h, bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            offset += 8
        }
        if offset < bytes.count {
            var tail: UInt64 = 0
            for i in offset..<bytes.count { tail |= UInt64(bytes[i]) << UInt64(8 * (i - offset)) }
            h = mix(h, tail)
        }
        h ^= h >> 33
        h &*= 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h &*= 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return h
    }

    @inline(__always)
    private static func mix(_ h: UInt64, _ word: UInt64) -> UInt64 {
        let k = (word &* 0x87C3_7B91_1142_53D5).rotateLeft(31) &* 0x4CF5_AD43_2745_937F
        return (h ^ k).rotateLeft(27) &* 5 &+ 0x52DC_E729
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotateLeft(_ n: UInt64) -> UInt64 { (self << n) | (self >> (64 - n)) }
}

/// A key's or value's stored bytes, held without an allocation where the form allows.
@usableFromInline
struct StoredBytes {
    @usableFromInline
    enum Storage {
        /// A fixed-width number, little-endian in the first `count` bytes of the word.
        case word(UInt64, count: Int)
        case string(String)
        case bytes([UInt8])
    }

    @usableFromInline var storage: Storage

    @inlinable
    init(_ storage: Storage) { self.storage = storage }

    @inlinable @inline(__always)
    static func fixed<I: FixedWidthInteger>(_ value: I) -> StoredBytes {
        StoredBytes(.word(UInt64(truncatingIfNeeded: value).littleEndian, count: MemoryLayout<I>.size))
    }

    /// Calls `body` with the bytes (valid only inside it).
    @inlinable @inline(__always)
    func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        // The library's closures are rethrows, not typed: carry the typed error out in a Result.
        switch storage {
        case .word(var word, let count):
            return try Swift.withUnsafeBytes(of: &word) { (bytes) throws(E) -> R in
                try body(UnsafeRawBufferPointer(rebasing: bytes[..<count]))
            }
        case .string(var string):
            return try string.withUTF8 { utf8 in Result { () throws(E) -> R in try body(UnsafeRawBufferPointer(utf8)) } }.get()
        case .bytes(let bytes):
            return try bytes.withUnsafeBytes { raw in Result { () throws(E) -> R in try body(raw) } }.get()
        }
    }
}
