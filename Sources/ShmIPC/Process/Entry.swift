public import SystemPackage

/// A named function a child process can run: what Python's `Process(target=)` and a `Pool`'s
/// task function are, made nameable, because a closure cannot travel to another executable.
///
/// Declare entry points as `static let`s, register them all with
/// ``Multiprocessing/bootstrap(_:)`` first thing in `main`, and start them with ``Process`` or
/// ``Pool``. The argument and the output cross processes with ``BinaryMessageCoder``.
///
/// ```swift
/// static let square = Entry("square") { (x: Int) in x * x }
/// static let produce = Entry("produce") { (count: Int, context: ChildContext) in
///     let queue = try Queue<Int>(inheriting: context.descriptors[0], capacity: 64)
///     for i in 0..<count { try queue.put(i) }
/// }
/// ```
public struct Entry<Argument: Codable & Sendable, Output: Codable & Sendable>: EntryPoint {
    /// The name a child looks the entry up by: unique within the program.
    public let name: String
    let body: @Sendable (Argument, ChildContext) throws -> Output
    /// Whether running it twice on the same argument is harmless (``idempotent()``): a pool
    /// whose workers run on other hosts runs a chunk of it again elsewhere when the host
    /// running it goes away, instead of failing it.
    public private(set) var isIdempotent = false

    /// This entry, declared idempotent: running it again on the same argument does no harm
    /// (it computes, or its effects are keyed by the argument). Only pools across hosts use
    /// it (ShmIPCRemote's `RemotePool`); a local ``Pool`` knows when a worker died.
    public func idempotent() -> Entry {
        var entry = self
        entry.isIdempotent = true
        return entry
    }

    /// An entry point that takes an argument and returns an output.
    public init(_ name: String, _ body: @escaping @Sendable (Argument) throws -> Output) {
        self.name = name
        self.body = { argument, _ in try body(argument) }
    }

    /// An entry point that also receives its ``ChildContext`` (the descriptors handed to it).
    public init(_ name: String, _ body: @escaping @Sendable (Argument, ChildContext) throws -> Output) {
        self.name = name
        self.body = body
    }
}

extension Entry where Output == NoOutput {
    /// An entry point that returns nothing (a ``Process`` target).
    public init(_ name: String, _ body: @escaping @Sendable (Argument) throws -> Void) {
        self.name = name
        self.body = { argument, _ in try body(argument); return NoOutput() }
    }

    /// An entry point that returns nothing and receives its ``ChildContext``.
    public init(_ name: String, _ body: @escaping @Sendable (Argument, ChildContext) throws -> Void) {
        self.name = name
        self.body = { argument, context in try body(argument, context); return NoOutput() }
    }
}

extension Entry where Argument == NoArgument {
    /// An entry point that takes no argument: Python's `Process(target=f)` with no `args`.
    /// Start it with ``Process/init(_:name:daemon:sharing:startMethod:executable:)-(Entry<NoArgument,Output>,_,_,_,_,_)`` (no
    /// `argument:`).
    public init(_ name: String, _ body: @escaping @Sendable () throws -> Output) {
        self.name = name
        self.body = { _, _ in try body() }
    }
}

extension Entry where Argument == NoArgument, Output == NoOutput {
    /// An entry point that takes no argument and returns nothing.
    public init(_ name: String, _ body: @escaping @Sendable () throws -> Void) {
        self.name = name
        self.body = { _, _ in try body(); return NoOutput() }
    }
}

extension Entry {
    /// An entry point of two arguments: Python's `args=(a, b)`. Its argument is a ``Pair``;
    /// ``Process`` takes them as `arguments: (a, b)`, ``Pool/starmap(_:_:chunkSize:timeout:)``
    /// as pairs.
    public init<First, Second>(_ name: String, _ body: @escaping @Sendable (First, Second) throws -> Output)
    where Argument == Pair<First, Second> {
        self.name = name
        self.body = { pair, _ in try body(pair.first, pair.second) }
    }
}

extension Entry where Output == NoOutput {
    /// An entry point of two arguments that returns nothing (the usual `Process` target).
    public init<First, Second>(_ name: String, _ body: @escaping @Sendable (First, Second) throws -> Void)
    where Argument == Pair<First, Second> {
        self.name = name
        self.body = { pair, _ in try body(pair.first, pair.second); return NoOutput() }
    }
}

/// The argument of an entry point that takes none (encoded as one byte, as ``NoOutput``).
public struct NoArgument: Codable, Hashable, Sendable {
    /// The empty argument.
    public init() {}

    /// Decodes the one byte ``NoOutput`` encodes.
    public init(from decoder: any Decoder) throws { _ = try NoOutput(from: decoder) }

    /// Encodes one byte, as ``NoOutput``.
    public func encode(to encoder: any Encoder) throws { try NoOutput().encode(to: encoder) }
}

/// The output of an entry point that returns nothing (Python's `None`).
///
/// Encoded as one byte, not as nothing: a decoder takes an array's count only if that many
/// elements can fit in the bytes left (a hostile count must not make it loop or reserve), so
/// `pool.map` of an entry returning nothing needs its outputs to take room.
public struct NoOutput: Codable, Hashable, Sendable {
    /// The empty output.
    public init() {}

    /// Decodes the one byte (any other content is a decoding error).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        guard try container.decode(UInt8.self) == 0 else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "NoOutput is the byte 0")
        }
    }

    /// Encodes one byte.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(UInt8(0))
    }
}

/// What ``Multiprocessing/bootstrap(_:)`` takes: any ``Entry``.
public protocol EntryPoint: Sendable {
    /// The name the entry is registered under (the same in every process).
    var name: String { get }
}

/// What a child knows about how it was started.
public struct ChildContext: Sendable {
    /// The descriptors the parent handed over (``Process``'s `sharing:`), in order: attach the
    /// shared objects they stand for with their `init(inheriting:)`.
    public let descriptors: [FileDescriptor]
    /// This process's name.
    public let name: String
    /// In a pool worker: lends every call its own duplicates of the pool's `sharing:`.
    let lender: LentDescriptors?

    init(descriptors: [FileDescriptor], name: String, lender: LentDescriptors? = nil) {
        self.descriptors = descriptors
        self.name = name
        self.lender = lender
    }

    /// Runs `body` with the context one call sees: with lent descriptors in a pool worker
    /// (reclaimed after the call), as is elsewhere.
    func lending<Result>(_ body: (ChildContext) throws -> Result) rethrows -> Result {
        guard let lender else { return try body(self) }
        let lent = lender.lend()
        defer { lender.reclaim(lent) }
        return try body(ChildContext(descriptors: lent, name: name))
    }
}

/// An entry point behind its types: runs it on encoded bytes.
protocol EncodedEntry: EntryPoint {
    func run(encoded argument: UnsafeRawBufferPointer, context: ChildContext) throws -> [UInt8]
    /// Runs the entry on each of an encoded array of arguments: the encoded array of outputs.
    /// A ``ChannelError`` means the bytes did not decode (or the outputs did not encode); any
    /// other error is the entry's own.
    func runChunk(encoded arguments: UnsafeRawBufferPointer, context: ChildContext) throws -> [UInt8]
}

extension Entry: EncodedEntry {
    func run(encoded argument: UnsafeRawBufferPointer, context: ChildContext) throws -> [UInt8] {
        let coder = BinaryMessageCoder()
        // Shared objects in the argument attach to the descriptors the child was handed.
        let value = try coder.decode(Argument.self, from: argument, inherited: LaunchDescriptors(context.descriptors))
        return try coder.encode(try context.lending { try body(value, $0) })
    }

    func runChunk(encoded arguments: UnsafeRawBufferPointer, context: ChildContext) throws -> [UInt8] {
        let coder = BinaryMessageCoder()
        let values = try coder.decode([Argument].self, from: arguments)
        var outputs: [Output] = []
        outputs.reserveCapacity(values.count)
        if context.lender == nil {
            // The common case, kept a plain loop: the lending closure, generic and called
            // from unspecialized code, cost pool.map.100k ~7%.
            for value in values { outputs.append(try body(value, context)) }
        } else {
            for value in values { outputs.append(try context.lending { try body(value, $0) }) }
        }
        return try coder.encode(outputs)
    }
}
