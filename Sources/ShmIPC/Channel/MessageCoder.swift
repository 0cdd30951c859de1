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
/// need self-description. Field names and type tags are not stored, so a struct of three
/// `Int`s is 24 bytes (JSON: ~30–60 bytes of text plus parsing), and encoding is appending
/// bytes. The cost: both ends must agree on the types (they do, being the same program or
/// sharing its model code); a mismatch is caught only as far as the bytes run out, don't fit
/// (a `Bool` byte other than 0 or 1, invalid UTF-8, a count past the end) or are left over.
///
/// The format, all little-endian:
/// - fixed-width integers and floating-point numbers at their width (`Int` and `UInt`: 8 bytes);
///   `Bool`: one byte, 0 or 1;
/// - `String`: a LEB128 byte count, then UTF-8;
/// - keyed containers (structs, classes, enums with payloads): their values in encoding order,
///   without keys; an optional (`encodeIfPresent`, `Optional`) is a presence byte, then the value;
/// - unkeyed containers (arrays, sets): a 4-byte element count, then the elements;
/// - dictionaries: a 4-byte entry count, then key and value pairs.
public struct BinaryMessageCoder: MessageCoder {
    public init() {}

    public func encode<T: Encodable>(_ value: T) throws(ChannelError) -> [UInt8] {
        let encoder = BinaryEncoder()
        do { try encoder.encodeValue(value) } catch {
            throw .encodingFailed("\(error)")
        }
        return encoder.bytes
    }

    public func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws(ChannelError) -> T {
        let decoder = BinaryDecoder(bytes)
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
