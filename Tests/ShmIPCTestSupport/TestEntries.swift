import Glibc
public import ShmIPC

/// The entry points the tests start as child processes (registered by the helper executable,
/// which the tests spawn with `executable:`), and the error the throwing one throws.
public enum TestEntries {
    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public var description: String { "TestEntries.Failure: \(message)" }
    }

    /// What `identity` checks about itself.
    public struct Identity: Codable, Sendable {
        public var name: String
        public var parentPID: Int32
        public init(name: String, parentPID: Int32) {
            self.name = name
            self.parentPID = parentPID
        }
    }

    /// Returns at once (exit code 0).
    public static let returns = Entry("t.returns") { (_: Int) in }
    /// Throws a `Failure` with the message (exit code 1).
    public static let throwing = Entry("t.throws") { (message: String) in throw Failure(message: message) }
    /// Traps (exit code -SIGILL or -SIGTRAP).
    public static let traps = Entry("t.traps") { (value: Int) in
        let values = [value]
        _ = values[value + 1]  // out of range: a trap
    }
    /// Sleeps for the milliseconds given.
    public static let sleeps = Entry("t.sleeps") { (milliseconds: Int) in
        Sys.sleep(.milliseconds(milliseconds))
    }
    /// Throws unless its name and parent are as given.
    public static let identity = Entry("t.identity") { (expected: Identity) in
        let me = Multiprocessing.currentProcess, parent = Multiprocessing.parentProcess
        guard me.name == expected.name, me.pid == getpid(), parent?.pid == expected.parentPID, parent?.pid == getppid() else {
            throw Failure(message: "I am \(me) with parent \(String(describing: parent)), expected \(expected)")
        }
    }
    /// Puts 0..<count into the `Queue<Int>` (capacity 64) handed over as its first descriptor,
    /// then returns count * 2 (for a Pool).
    public static let produce = Entry("t.produce") { (count: Int, context: ChildContext) -> Int in
        let queue = try Queue<Int>(inheriting: context.descriptors[0], capacity: 64)
        for i in 0..<count { try queue.put(i, timeout: .seconds(30)) }
        return count * 2
    }

    public static let all: [any EntryPoint] = [returns, throwing, traps, sleeps, identity, produce]
}
