/// The name of a named shared-memory segment, validated.
///
/// Users name segments without a prefix (`"orders"`); the operating-system name carries one
/// documented ShmIPC prefix, ``osPrefix``, so `/dev/shm/shmipc.orders` is recognisably ours and
/// tools can list or clean up ShmIPC objects without touching anyone else's.
///
/// Rules: 1 to ``maxLength`` characters from `A–Z a–z 0–9 . _ -`, not starting with `.`.
/// (No `/`: POSIX shared-memory names are a single path component.)
public struct SegmentName: Hashable, Sendable, CustomStringConvertible {
    /// The prefix of every ShmIPC object's name in /dev/shm.
    public static let osPrefix = "shmipc."
    /// NAME_MAX (255) minus the prefix.
    public static let maxLength = 255 - osPrefix.utf8.count

    /// The name as the user gave it.
    public let rawValue: String

    /// Validates `name`.
    public init(_ name: String) throws(SharedMemoryError) {
        if let problem = Self.problem(with: name) {
            throw .invalidName(name, problem)
        }
        rawValue = name
    }

    /// The name passed to shm_open: `/shmipc.<name>`.
    public var osName: String { "/" + Self.osPrefix + rawValue }

    /// The path of the segment's file on Linux.
    public var path: String { "/dev/shm/" + Self.osPrefix + rawValue }

    /// A description for people: logs and error messages.
    public var description: String { rawValue }

    /// Why a name is not accepted.
    public enum Problem: Hashable, Sendable, CustomStringConvertible {
        /// The name is empty.
        case empty
        /// The name is longer than the OS allows with the prefix.
        case tooLong(length: Int, maximum: Int)
        /// A character outside `A–Z a–z 0–9 . _ -`.
        case invalidCharacter(Character)
        /// The name starts with a dot.
        case leadingDot

        /// A description for people: logs and error messages.
        public var description: String {
            switch self {
            case .empty: "the name is empty"
            case .tooLong(let length, let maximum): "the name is \(length) bytes long; at most \(maximum) are allowed"
            case .invalidCharacter(let c): "the name contains \(c.debugDescription); only A-Z a-z 0-9 . _ - are allowed"
            case .leadingDot: "the name starts with '.'"
            }
        }
    }

    private static func problem(with name: String) -> Problem? {
        if name.isEmpty { return .empty }
        if name.utf8.count > maxLength { return .tooLong(length: name.utf8.count, maximum: maxLength) }
        if name.hasPrefix(".") { return .leadingDot }
        for c in name {
            let allowed = c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-")
            if !allowed { return .invalidCharacter(c) }
        }
        return nil
    }
}
