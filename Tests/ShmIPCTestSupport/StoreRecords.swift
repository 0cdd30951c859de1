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
