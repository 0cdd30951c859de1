/// A deterministic stream of variable-size messages, for checking byte channels end to end:
/// message `index` of stream `seed` has a length drawn from `sizes` and bytes derived from
/// (seed, index, position), so a receiver can verify every byte without being told them.
public struct MessageStream: Sendable {
    public let seed: UInt64
    public let sizes: ClosedRange<Int>

    public init(seed: UInt64, sizes: ClosedRange<Int>) {
        self.seed = seed
        self.sizes = sizes
    }

    /// SplitMix64 of `value`.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Message `index`'s length: mostly small, one in 16 anywhere in `sizes`, and the range's
    /// ends now and then, so wrap-around sees every shape.
    public func length(_ index: Int) -> Int {
        let r = Self.mix(seed ^ UInt64(index) &* 0x1000_0000_01B3)
        let span = UInt64(sizes.upperBound - sizes.lowerBound + 1)
        switch r & 63 {
        case 0: return sizes.lowerBound
        case 1: return sizes.upperBound
        case 2...5: return sizes.lowerBound + Int((r >> 8) % span)
        default: return sizes.lowerBound + Int((r >> 8) % min(span, 97))
        }
    }

    /// Byte `position` of message `index`.
    @inline(__always)
    public func byte(_ index: Int, _ position: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: (seed &+ UInt64(index) &* 31) &+ UInt64(position) &* 7 &+ UInt64(position >> 8))
    }

    /// Writes message `index` into `buffer` (which must hold its length); returns the length.
    public func write(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let length = length(index)
        for position in 0..<length { buffer[position] = byte(index, position) }
        return length
    }

    /// Whether `bytes` is message `index`.
    public func matches(_ index: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count == length(index) else { return false }
        for position in 0..<bytes.count where bytes[position] != byte(index, position) { return false }
        return true
    }
}
