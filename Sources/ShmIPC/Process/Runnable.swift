public import SystemPackage

/// A process body as a type: Python's `class Worker(Process): def run(self): …`.
///
/// Its stored properties are the arguments (it is `Codable`: a spawned child decodes it);
/// `run()` is what the child does. Register its ``entry`` with
/// ``Multiprocessing/bootstrap(_:)`` like any entry, and start it with ``Process``:
///
/// ```swift
/// struct Worker: Runnable {
///     var label: String
///     var count: Int
///     func run() throws { for i in 0..<count { print(label, i) } }
/// }
/// // main: Multiprocessing.bootstrap([Worker.entry])
/// let worker = try Process(Worker(label: "w", count: 3), name: "counter")
/// try worker.start()
/// worker.join()                  // worker.exitCode == 0; 1 if run() threw
/// ```
///
/// A body that needs the descriptors it was handed (`sharing:`) implements
/// ``run(context:)`` instead.
public protocol Runnable: Codable, Sendable {
    /// The name a child looks the type up by: unique within the program. Default: the type's
    /// fully qualified name.
    static var entryName: String { get }

    /// What the child runs.
    func run() throws

    /// What the child runs, with its ``ChildContext``. Default: ``run()``.
    func run(context: ChildContext) throws
}

extension Runnable {
    /// The type's fully qualified name: the entry it registers under.
    public static var entryName: String { String(reflecting: Self.self) }

    /// Runs ``run()``, ignoring the context.
    public func run(context: ChildContext) throws { try run() }

    /// A `run()` for bodies that implement ``run(context:)`` only.
    public func run() throws {
        preconditionFailure("\(Self.self) implements neither run() nor run(context:)")
    }

    /// The entry point a child runs this type through: pass it to ``Multiprocessing/bootstrap(_:)``.
    public static var entry: Entry<Self, NoOutput> {
        Entry(entryName) { (body: Self, context: ChildContext) in try body.run(context: context) }
    }
}

extension Process {
    /// A process that will run `body` (a ``Runnable``): Python's `Worker(args).start()` for a
    /// `Process` subclass. The other parameters are as for an ``Entry``; the default name is
    /// the type's, numbered as any process (`Worker-3`), as Python names a subclass's
    /// instances after `type(self).__name__`.
    public convenience init<Body: Runnable>(
        _ body: Body, name: String? = nil, daemon: Bool = false, sharing: [FileDescriptor] = [],
        startMethod: StartMethod? = nil, executable: String? = nil
    ) throws(ProcessError) {
        try self.init(
            Body.entry, argument: body, name: name, prefix: String(describing: Body.self), daemon: daemon, sharing: sharing,
            startMethod: startMethod, executable: executable)
    }
}

extension Process {
    /// A process that will run `entry`, which takes no argument. Python: `Process(target=f)`.
    public convenience init<Output>(
        _ entry: Entry<NoArgument, Output>, name: String? = nil, daemon: Bool = false, sharing: [FileDescriptor] = [],
        startMethod: StartMethod? = nil, executable: String? = nil
    ) throws(ProcessError) {
        try self.init(
            entry, argument: NoArgument(), name: name, daemon: daemon, sharing: sharing, startMethod: startMethod,
            executable: executable)
    }

    /// A process that will run `entry` on two arguments. Python: `Process(target=f, args=(a, b))`.
    public convenience init<First, Second, Output>(
        _ entry: Entry<Pair<First, Second>, Output>, arguments: (First, Second), name: String? = nil, daemon: Bool = false,
        sharing: [FileDescriptor] = [], startMethod: StartMethod? = nil, executable: String? = nil
    ) throws(ProcessError) {
        try self.init(
            entry, argument: Pair(arguments.0, arguments.1), name: name, daemon: daemon, sharing: sharing,
            startMethod: startMethod, executable: executable)
    }
}
