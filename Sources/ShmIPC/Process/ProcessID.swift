#if canImport(Glibc)
internal import Glibc
#endif

/// A process id. Python hands out plain ints; a type keeps pids apart from exit codes, signal
/// numbers and descriptors in signatures (``Process/pid``, ``Pool/workerPIDs``).
public struct ProcessID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The raw value.
    public let rawValue: Int32

    /// The value with this raw value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// This process's id. Python: `os.getpid()`.
    public static var current: ProcessID { ProcessID(rawValue: Sys.currentPID) }

    /// Ordered by number.
    public static func < (lhs: ProcessID, rhs: ProcessID) -> Bool { lhs.rawValue < rhs.rawValue }

    /// A description for people: logs and error messages.
    public var description: String { String(rawValue) }
}

/// A signal to send to a child (``Process/signal(_:)``). The common ones are named; any other
/// number is `Signal(rawValue:)`.
public struct Signal: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw value.
    public let rawValue: Int32

    /// The value with this raw value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// SIGTERM: asks the process to end (``Process/terminate()``).
    public static let terminate = Signal(rawValue: SIGTERM)
    /// SIGKILL: ends it at once; it cannot be caught (``Process/kill()``).
    public static let kill = Signal(rawValue: SIGKILL)
    /// SIGINT: what Ctrl-C sends.
    public static let interrupt = Signal(rawValue: SIGINT)
    /// SIGHUP.
    public static let hangup = Signal(rawValue: SIGHUP)
    /// SIGQUIT.
    public static let quit = Signal(rawValue: SIGQUIT)
    /// SIGUSR1.
    public static let user1 = Signal(rawValue: SIGUSR1)
    /// SIGUSR2.
    public static let user2 = Signal(rawValue: SIGUSR2)
    /// SIGSTOP: suspends it; it cannot be caught.
    public static let stop = Signal(rawValue: SIGSTOP)
    /// SIGCONT: resumes a stopped process.
    public static let `continue` = Signal(rawValue: SIGCONT)

    /// "SIGTERM", or "signal N" for one without a name here.
    public var description: String {
        let names: [Int32: String] = [
            SIGTERM: "SIGTERM", SIGKILL: "SIGKILL", SIGINT: "SIGINT", SIGHUP: "SIGHUP", SIGQUIT: "SIGQUIT",
            SIGUSR1: "SIGUSR1", SIGUSR2: "SIGUSR2", SIGSTOP: "SIGSTOP", SIGCONT: "SIGCONT",
            SIGABRT: "SIGABRT", SIGSEGV: "SIGSEGV", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP", SIGBUS: "SIGBUS",
        ]
        return names[rawValue] ?? "signal \(rawValue)"
    }
}

/// A process's pid and name.
public struct ProcessIdentity: Hashable, Sendable {
    /// The process's id.
    public let pid: ProcessID
    /// The process's name (`Process-N`, or the one given).
    public let name: String
}
