/// Arrays of numbers, copied whole: a Pool's chunk of 10k `Int`s costs one copy, not 10k
/// trips through `Encoder`. The bytes are the format's own (a 4-byte count, then each element
/// little-endian at its width), so a packed array and one encoded element by element read the
/// same. Little-endian hosts only; a big-endian host takes the element-by-element path.
protocol PackedArray {
    func encodePacked(to encoder: BinaryEncoder)
    static func decodePacked(from decoder: BinaryDecoder) throws -> Self
}

/// Numbers whose in-memory bytes on a little-endian host are their encoding.
protocol PackedElement: BitwiseCopyable {}

extension Int: PackedElement {}
extension Int8: PackedElement {}
extension Int16: PackedElement {}
extension Int32: PackedElement {}
extension Int64: PackedElement {}
extension UInt: PackedElement {}
extension UInt8: PackedElement {}
extension UInt16: PackedElement {}
extension UInt32: PackedElement {}
extension UInt64: PackedElement {}
extension Float: PackedElement {}
extension Double: PackedElement {}

extension Array: PackedArray where Element: PackedElement {
    func encodePacked(to encoder: BinaryEncoder) {
        encoder.append(UInt32(truncatingIfNeeded: count))
        withUnsafeBytes { encoder.bytes.append(contentsOf: $0) }
    }

    static func decodePacked(from decoder: BinaryDecoder) throws -> Self {
        let count = Int(try decoder.read(UInt32.self))
        let size = count * MemoryLayout<Element>.stride
        guard size <= decoder.base.count - decoder.offset else {
            throw decoder.failure("\(count) elements of \(Element.self) run past the end")
        }
        let source = UnsafeRawBufferPointer(rebasing: decoder.base[decoder.offset..<(decoder.offset + size)])
        decoder.offset += size
        return Self(unsafeUninitializedCapacity: count) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
            initialized = count
        }
    }
}
