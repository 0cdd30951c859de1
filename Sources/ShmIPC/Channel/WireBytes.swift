/// Little-endian fixed-width fields, for ShmIPC's small hand-laid wire formats (the fork
/// server's messages, the pool's task and result headers): the one place their bytes are
/// written and read.
@usableFromInline
struct WireWriter {
    @usableFromInline var bytes: [UInt8]

    @inlinable init(capacity: Int = 16) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inlinable mutating func append<Value: FixedWidthInteger>(_ value: Value) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inlinable mutating func append(contentsOf tail: some Collection<UInt8>) { bytes.append(contentsOf: tail) }
}

/// Reads what a ``WireWriter`` wrote, checking every length: a short or hostile message gives
/// nil, never a read past its end.
@usableFromInline
struct WireReader {
    @usableFromInline let bytes: UnsafeRawBufferPointer
    @usableFromInline var offset = 0

    @inlinable init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable mutating func read<Value: FixedWidthInteger>(_: Value.Type) -> Value? {
        guard bytes.count - offset >= MemoryLayout<Value>.size else { return nil }
        defer { offset += MemoryLayout<Value>.size }
        return Value(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Value.self))
    }

    /// The next `count` bytes, or nil if fewer are left.
    @inlinable mutating func read(count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, bytes.count - offset >= count else { return nil }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    /// Everything not read yet.
    @inlinable var rest: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[offset...]) }
}
