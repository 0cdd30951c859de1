/// Self-checking values for the shared dictionary and list tests: each names what it is (a key
/// and version, or a writer and a counter) and carries a pattern derived from that, so a torn
/// or misplaced value is recognized by whoever reads it.
public enum StoreRecords {
    /// The value stored for `key` at `version`: 16 to 143 bytes, key and version first.
    public static func value(key: Int, version: UInt64) -> [UInt8] {
        let length = 16 + Int(MessageStream.mix(UInt64(bitPattern: Int64(key)) ^ version) % 128)
        var bytes = [UInt8](repeating: 0, count: length)
        bytes.withUnsafeMutableBytes {
            $0.storeBytes(of: UInt64(bitPattern: Int64(key)), as: UInt64.self)
            $0.storeBytes(of: version, toByteOffset: 8, as: UInt64.self)
        }
        var state = MessageStream.mix(UInt64(bitPattern: Int64(key)) &* 31 &+ version)
        for i in 16..<length {
            state = MessageStream.mix(state)
            bytes[i] = UInt8(truncatingIfNeeded: state)
        }
        return bytes
    }

    /// Whether `bytes` is a whole value of `key` (some version); the version if it is.
    public static func version(ofValue bytes: [UInt8], key: Int) -> UInt64? {
        guard bytes.count >= 16 else { return nil }
        let (storedKey, version) = bytes.withUnsafeBytes { ($0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self)) }
        guard storedKey == UInt64(bitPattern: Int64(key)), value(key: key, version: version) == bytes else { return nil }
        return version
    }

    /// The list element a writer `seed` appends as its `counter`th.
    public static func element(seed: UInt64, counter: UInt64) -> [UInt8] {
        value(key: Int(truncatingIfNeeded: seed << 32 | counter), version: seed)
    }

    /// (seed, counter) of a whole list element, or nil.
    public static func parseElement(_ bytes: [UInt8]) -> (seed: UInt64, counter: UInt64)? {
        guard bytes.count >= 16 else { return nil }
        let key = bytes.withUnsafeBytes { $0.load(as: UInt64.self) }
        let seed = key >> 32, counter = key & 0xFFFF_FFFF
        return element(seed: seed, counter: counter) == bytes ? (seed, counter) : nil
    }
}

/// An item of the queue chaos tests: who put it, its number, and 4 KiB derived from both (so
/// copying one in or out takes long enough for a kill to land inside a put or a get, and a torn
/// or forged item is recognized).
public struct ChaosItem: BitwiseCopyable, Sendable {
    public var producer: UInt64
    public var counter: UInt64
    public var body: (SIMD64<UInt64>, SIMD64<UInt64>, SIMD64<UInt64>, SIMD64<UInt64>,
                      SIMD64<UInt64>, SIMD64<UInt64>, SIMD64<UInt64>, SIMD64<UInt64>)

    public init(producer: UInt64, counter: UInt64) {
        self.producer = producer
        self.counter = counter
        let lane = Self.pattern(producer, counter)
        body = (lane, lane, lane, lane, lane, lane, lane, lane)
    }

    static func pattern(_ producer: UInt64, _ counter: UInt64) -> SIMD64<UInt64> {
        SIMD64(repeating: MessageStream.mix(producer &* 0x9E37_79B9 ^ counter))
    }

    /// Its first, middle and last words checked: cheap enough for a consumer's hot loop in a
    /// debug build, and a torn copy differs at an end.
    public var looksWhole: Bool {
        let word = Self.pattern(producer, counter)[0]
        return body.0[0] == word && body.3[63] == word && body.7[63] == word
    }

    public var isWhole: Bool {
        let lane = Self.pattern(producer, counter)
        return body.0 == lane && body.1 == lane && body.2 == lane && body.3 == lane
            && body.4 == lane && body.5 == lane && body.6 == lane && body.7 == lane
    }
}
