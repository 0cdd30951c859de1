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

/// Arrays of anything: the same bytes as an unkeyed container's (a 4-byte count, then each
/// element), with the element type's kind found once per array instead of once per element
/// (three conformance look-ups each, most of a small struct's decoding in a batch of them).
/// Arrays of numbers go on to `PackedArray`.
protocol EncodableArray { func encodeElements(to encoder: BinaryEncoder) throws }
protocol DecodableArray { static func decodeElements(from decoder: BinaryDecoder) throws -> Self }

extension Array: EncodableArray where Element: Encodable {
    func encodeElements(to encoder: BinaryEncoder) throws {
        if BinaryEncoder.packs, let packed = self as? any PackedArray {
            packed.encodePacked(to: encoder)
            return
        }
        encoder.append(UInt32(truncatingIfNeeded: count))
        // A plain element (no optional, dictionary or array, which the format writes its own
        // way) is written by its own encode(to:), as encodeValue would after its look-ups.
        let plain = !(Element.self is any EncodableOptional.Type || Element.self is any EncodableDictionary.Type
            || Element.self is any EncodableArray.Type)
        for element in self {
            if plain { try element.encode(to: encoder) } else { try encoder.encodeValue(element) }
        }
    }
}

extension Array: DecodableArray where Element: Decodable {
    static func decodeElements(from decoder: BinaryDecoder) throws -> Self {
        if BinaryEncoder.packs, let packed = Self.self as? any PackedArray.Type {
            return try packed.decodePacked(from: decoder) as! Self
        }
        let count = try decoder.readCount()
        let plain = !(Element.self is any DecodableOptional.Type || Element.self is any DecodableDictionary.Type
            || Element.self is any DecodableArray.Type)
        var elements: [Element] = []
        elements.reserveCapacity(Swift.min(count, 1024))  // a count is only as good as the bytes behind it
        for _ in 0..<count {
            elements.append(plain ? try Element(from: decoder) : try decoder.decodeValue(Element.self))
        }
        return elements
    }
}

// The common arrays of numbers, recognized by comparing metatypes (a pointer compare) before
// the dynamic casts to `any PackedArray` (conformance lookups costing ~100 ns each when the
// caller is generic code, as a Pool's is): one small task then costs no cast at all.
extension BinaryEncoder {
    @inline(__always)
    func encodePackedByIdentity<T>(_ value: T) -> Bool {
        encodeIfArray(of: Int.self, value) || encodeIfArray(of: Double.self, value) || encodeIfArray(of: UInt8.self, value)
            || encodeIfArray(of: Int64.self, value) || encodeIfArray(of: UInt64.self, value) || encodeIfArray(of: Int32.self, value)
            || encodeIfArray(of: UInt32.self, value) || encodeIfArray(of: Float.self, value)
    }

    @inline(__always)
    private func encodeIfArray<Element: PackedElement, T>(of _: Element.Type, _ value: T) -> Bool {
        guard T.self == [Element].self else { return false }
        withUnsafePointer(to: value) { pointer in
            UnsafeRawPointer(pointer).assumingMemoryBound(to: [Element].self).pointee.encodePacked(to: self)
        }
        return true
    }
}

extension BinaryDecoder {
    @inline(__always)
    func decodePackedByIdentity<T>(_: T.Type) throws -> T? {
        if let value = try decodeIfArray(of: Int.self, T.self) { return value }
        if let value = try decodeIfArray(of: Double.self, T.self) { return value }
        if let value = try decodeIfArray(of: UInt8.self, T.self) { return value }
        if let value = try decodeIfArray(of: Int64.self, T.self) { return value }
        if let value = try decodeIfArray(of: UInt64.self, T.self) { return value }
        if let value = try decodeIfArray(of: Int32.self, T.self) { return value }
        if let value = try decodeIfArray(of: UInt32.self, T.self) { return value }
        if let value = try decodeIfArray(of: Float.self, T.self) { return value }
        return nil
    }

    @inline(__always)
    private func decodeIfArray<Element: PackedElement, T>(of _: Element.Type, _: T.Type) throws -> T? {
        guard T.self == [Element].self else { return nil }
        let array = try [Element].decodePacked(from: self)
        return withUnsafePointer(to: array) { UnsafeRawPointer($0).assumingMemoryBound(to: T.self).pointee }
    }
}
