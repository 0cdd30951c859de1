internal import Foundation

/// An element type whose every bit pattern of its size is a value of it: fixed-width
/// integers, `Float`, `Double`, and structs or tuples of those. A remote queue of such a type
/// (exported and used from a little-endian host, as every Linux host ShmIPC runs on is) moves
/// its streamed batches as the elements' memory, one copy and no coding per item, instead of
/// their binary Codable form: the throughput path's fastest form.
///
/// Conform only a type for which any bytes from the network are a valid value: not `Bool`,
/// not an enum, nothing with a pointer, a reference or an invariant between its fields. A
/// hostile peer's bytes become such values as they are. The padding between a struct's fields
/// travels too (whatever the sender's memory held there); order the fields so there is none.
public protocol RawRemoteElement: BitwiseCopyable, Codable, Sendable {}

extension Int: RawRemoteElement {}
extension Int8: RawRemoteElement {}
extension Int16: RawRemoteElement {}
extension Int32: RawRemoteElement {}
extension Int64: RawRemoteElement {}
extension UInt: RawRemoteElement {}
extension UInt8: RawRemoteElement {}
extension UInt16: RawRemoteElement {}
extension UInt32: RawRemoteElement {}
extension UInt64: RawRemoteElement {}
extension Float: RawRemoteElement {}
extension Double: RawRemoteElement {}

/// Batches in the raw form: the elements' memory, each `stride` bytes.
enum RawForm {
    /// The stride a raw batch of `T` has; 0 if `T` has no raw form here.
    static func stride<T>(_: T.Type) -> Int {
        #if _endian(little)
        T.self is any RawRemoteElement.Type ? MemoryLayout<T>.stride : 0
        #else
        0
        #endif
    }

    /// The items' memory. Only for a `T` whose ``stride(_:)`` is not 0.
    static func bytes<T>(_ items: some Collection<T>) -> Data {
        precondition(stride(T.self) > 0, "\(T.self) has no raw form")
        return Array(items).withUnsafeBytes { Data($0) }
    }

    /// The items whose memory `data` is; INVALID_ARGUMENT-worthy (nil) if its length is not a
    /// multiple of the stride. Only for a `T` whose ``stride(_:)`` is not 0.
    static func items<T>(_: T.Type, _ data: Data) -> [T]? {
        let stride = stride(T.self)
        precondition(stride > 0, "\(T.self) has no raw form")
        guard data.count % stride == 0 else { return nil }
        let count = data.count / stride
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            data.withUnsafeBytes { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: $0) }
            initialized = count
        }
    }
}
