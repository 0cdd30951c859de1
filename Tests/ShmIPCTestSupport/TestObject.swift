package import ShmIPC

/// A shared object of kind `.testing` whose state is `capacity` UInt64 words; word 0 is a
/// control word (0 at creation), words 1... hold their own index times 3 once initialized.
public enum TestObject {
    public static let version: UInt32 = 1

    package static func layout(capacity: Int, version: UInt32 = version) -> ObjectLayout {
        ObjectLayout(
            kind: .testing, version: version, element: TypeFingerprint(of: UInt64.self),
            capacity: capacity, stateSize: max(1, capacity) * MemoryLayout<UInt64>.stride)
    }

    public static func fill(_ state: UnsafeMutableRawBufferPointer) {
        let words = state.bindMemory(to: UInt64.self)
        for index in words.indices.dropFirst() { words[index] = UInt64(index) * 3 }
    }

    /// Whether `state` holds what ``fill(_:)`` writes.
    public static func isFilled(_ state: UnsafeMutableRawBufferPointer) -> Bool {
        let words = state.bindMemory(to: UInt64.self)
        return words.indices.dropFirst().allSatisfy { words[$0] == UInt64($0) * 3 }
    }
}
