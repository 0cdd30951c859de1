/// Turns values into message bytes and back, for the Codable conveniences of ``Connection``
/// and ``MessageQueue``. Plug in any format (JSON, property lists, …) by conforming to it.
public protocol MessageCoder: Sendable {
    /// The bytes of `value`.
    func encode<T: Encodable>(_ value: T) throws(ChannelError) -> [UInt8]
    /// A `T` decoded from `bytes`; ``ChannelError/decodingFailed(_:)`` if they do not decode.
    func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws(ChannelError) -> T
}

/// The default coder: a compact binary format, both ends built from the same Swift types.
///
/// Why this and not JSON or a property list: messages between processes of one program do not
/// need self-description, and should cost little to make. Numbers are stored at their width,
/// strings as UTF-8 with a short length, and nothing else is added but each field's name (so
/// enums with payloads decode, and a decode into the wrong type fails at the first name that
/// differs). A struct of three `Int`s `x`, `y`, `z` is 30 bytes; JSON's is ~20–40 bytes of text
/// that must be formatted and parsed. Both ends must be built from the same Swift types (they
/// are, being the same program or sharing its model code).
///
/// The format, all little-endian:
/// - fixed-width integers and floating-point numbers at their width (`Int` and `UInt`: 8 bytes);
///   `Bool`: one byte, 0 or 1;
/// - `String`: a LEB128 byte count, then UTF-8;
/// - keyed containers (structs, classes, enums): for each value in encoding order, its key's
///   name as a string, then the value; an absent optional (`encodeIfPresent`) writes nothing, a
///   present one a presence byte 1 before the value; an `Optional` value elsewhere is a
///   presence byte (0 or 1), then the value;
/// - unkeyed containers (arrays, sets): a 4-byte element count, then the elements;
/// - dictionaries: a 4-byte entry count, then key and value pairs.
public struct BinaryMessageCoder: MessageCoder {
    /// The coder.
    public init() {}

    /// Encodes `value` in the compact binary form.
    public func encode<T: Encodable>(_ value: T) throws(ChannelError) -> [UInt8] {
        try encode(value, after: [])
    }

    /// `prefix`, then the bytes of `value` (a message with a header, built in one buffer).
    @usableFromInline
    func encode<T: Encodable>(_ value: T, after prefix: [UInt8]) throws(ChannelError) -> [UInt8] {
        try encode(value, after: prefix, collector: nil)
    }

    /// The bytes of `value`, encoded for a launch with its ``LaunchCollector``. Inlined into
    /// the per-message entry points, whose bodies stay what they were.
    @inline(__always)
    func encode<T: Encodable>(_ value: T, after prefix: [UInt8] = [], collector: LaunchCollector?) throws(ChannelError) -> [UInt8] {
        let encoder = BinaryEncoder(prefix: prefix, collector: collector)
        do { try encoder.encodeValue(value) } catch {
            throw .encodingFailed(BinaryDecoder.describe(error))
        }
        return encoder.bytes
    }

    /// Decodes a `type` from `bytes`; bytes that do not decode throw ``ChannelError/decodingFailed(_:)``.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws(ChannelError) -> T {
        try decode(type, from: bytes, inherited: nil)
    }

    /// A `T` decoded in a child, with the descriptors it was handed (``LaunchDescriptors``).
    /// Inlined as the encoder's.
    @inline(__always)
    func decode<T: Decodable>(
        _ type: T.Type, from bytes: UnsafeRawBufferPointer, inherited: LaunchDescriptors?
    ) throws(ChannelError) -> T {
        let decoder = BinaryDecoder(bytes, inherited: inherited)
        do {
            let value = try decoder.decodeValue(T.self)
            guard decoder.offset == bytes.count else {
                throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "\(bytes.count - decoder.offset) bytes left over after a \(T.self)"))
            }
            return value
        } catch {
            throw .decodingFailed(BinaryDecoder.describe(error))
        }
    }
}
