internal import SystemPackage

/// The child side of every start method: one path from "this process was started as a child"
/// to its exit status. The three entrances differ only in how the child learns what to run
/// (a launch record, or the forked parent's memory) and where its descriptors are; then
/// ``run(as:identity:parent:daemon:lifeline:context:exit:_:)`` takes this process's identity, starts
/// the lifeline watcher of a daemon, runs the entry, and exits.
enum ChildBootstrap {
    /// argv[1] of a child ShmIPC spawned.
    static let childFlag = "--shmipc-child"

    /// In `bootstrap`: runs the child this process was started as, if it was (never returns
    /// then); returns at once in any other process.
    static func runIfStartedAsChild() {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2 else { return }
        if arguments[1] == childFlag { runSpawned() }
        if arguments[1] == ForkServer.flag { ForkServer.run() }
    }

    /// A spawned child: its launch record at 3, its lifeline at 4, shared descriptors at 5….
    static func runSpawned() -> Never {
        let launchFD = FileDescriptor(rawValue: DescriptorLayout.launchRecord)
        let launch: LaunchRecord
        switch LaunchRecord.read(from: launchFD) {
        case .success(let value): launch = value
        case .failure(let error):
            Sys.printError("ShmIPC: a child started with \(childFlag) could not read its launch record: \(error)")
            Sys.exitProcess(1)
        }
        Sys.close(launchFD)
        run(launched: launch, lifeline: FileDescriptor(rawValue: DescriptorLayout.lifeline), exit: Sys.exitProcess)
    }

    /// A child the fork server forked: the server's descriptors closed, the shared ones at 5….
    static func runForkServerChild(_ launch: LaunchRecord, sharing: [FileDescriptor], lifeline: FileDescriptor) -> Never {
        if !launch.daemon { Sys.close(lifeline) }
        guard DescriptorLayout.placeShared(sharing) else { Sys.exitImmediately(1) }
        run(launched: launch, lifeline: lifeline, exit: Sys.exitImmediately)
    }

    /// A child forked from its parent: single-threaded, a copy of the parent, which already
    /// holds the argument and the shared descriptors (at the parent's numbers).
    static func runForked(_ request: LaunchRequest, parent: ProcessIdentity, lifeline: FileDescriptor?) -> Never {
        run(
            as: request.name, identity: request.identity, parent: parent, daemon: request.daemon, lifeline: lifeline,
            context: ChildContext(descriptors: request.sharing, name: request.name), exit: Sys.exitImmediately
        ) { context in try request.forkBody(context) }
    }

    /// Runs the entry a launch record names, on its encoded argument.
    private static func run(launched launch: LaunchRecord, lifeline: FileDescriptor, exit: (Int32) -> Never) -> Never {
        run(
            as: launch.name, identity: launch.identity, parent: launch.parent, daemon: launch.daemon, lifeline: lifeline,
            context: ChildContext(descriptors: DescriptorLayout.shared(count: launch.descriptorCount), name: launch.name),
            exit: exit
        ) { context in
            guard let entry = EntryRegistry.lookUp(launch.entry) else {
                throw ProcessError.entryNotRegistered(launch.entry)
            }
            try launch.argument.withUnsafeBytes { raw in _ = try entry.run(encoded: raw, context: context) }
        }
    }

    /// The one path: becomes the child `name`, watches the lifeline if a daemon, runs `body`,
    /// flushes and exits with 0, or 1 if it threw (the error on stderr, as Python prints a
    /// child's traceback).
    private static func run(
        as name: String, identity: [Int], parent: ProcessIdentity, daemon: Bool, lifeline: FileDescriptor?, context: ChildContext,
        exit: (Int32) -> Never, _ body: (ChildContext) throws -> Void
    ) -> Never {
        Multiprocessing.becomeChild(named: name, identity: identity, of: parent)
        if daemon {
            guard let lifeline else { exit(1) }
            if case .failure(let error) = Sys.startLifelineWatcher(lifeline) {
                Sys.printError("ShmIPC: daemon \(name) could not watch its parent: \(error)")
                exit(1)
            }
        }
        var code: Int32 = 0
        do { try body(context) } catch {
            if case ProcessError.entryNotRegistered = error {
                Sys.printError("ShmIPC: \(error) in \(ProcessEnvironment.executablePath)")
            } else {
                Sys.printError("Process \(name) (pid \(Sys.currentPID)): \(error)")
            }
            code = 1
        }
        Sys.flushStandardStreams()
        exit(code)
    }
}
