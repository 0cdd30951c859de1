/// A 64-byte value whose words are all equal: a torn read shows as words that differ.
public struct Pattern64: BitwiseCopyable, Equatable, Sendable {
    public var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

    public init(_ word: UInt64) { words = (word, word, word, word, word, word, word, word) }

    /// Whether every word equals the first.
    public var isWhole: Bool {
        let w = words
        return w.0 == w.1 && w.0 == w.2 && w.0 == w.3 && w.0 == w.4 && w.0 == w.5 && w.0 == w.6 && w.0 == w.7
    }

    public var first: UInt64 { words.0 }

    public static func == (lhs: Pattern64, rhs: Pattern64) -> Bool {
        withUnsafeBytes(of: lhs) { l in withUnsafeBytes(of: rhs) { r in l.elementsEqual(r) } }
    }
}
