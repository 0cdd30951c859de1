import Glibc
@testable import ShmIPC
import Synchronization
import Testing

/// Names unique to this process and test, all under one prefix the suite-level leak check
/// looks for: `shmipc.t<pid>-<n>-<tag>` in /dev/shm.
enum TestNames {
    private static let counter = Atomic<Int>(0)

    static var prefix: String { "t\(getpid())-" }

    static func unique(_ tag: String = "seg") -> SegmentName {
        let n = counter.add(1, ordering: .relaxed).newValue  // relaxed: only uniqueness matters
        return try! SegmentName("\(prefix)\(n)-\(tag)")
    }

    /// ShmIPC files in /dev/shm whose names this test process made.
    static func leftovers() -> [String] {
        guard let dir = opendir("/dev/shm") else { return [] }
        defer { closedir(dir) }
        var found: [String] = []
        let mine = SegmentName.osPrefix + prefix
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name.hasPrefix(mine) { found.append(name) }
        }
        return found
    }

    /// Removes `name` if a failing test left it behind (never hides a leak: the leak check
    /// runs on the names the code under test should have removed itself).
    static func cleanUp(_ name: SegmentName) {
        _ = try? SharedMemory.removeLeftover(name)
    }
}

/// A suite trait: after the whole suite ran, nothing this process created may remain in
/// /dev/shm (any leftover is reported, then removed, so one leak does not cascade), and no
/// child of this process may be left a zombie (ended, never reaped).
struct NoSharedMemoryLeaks: SuiteTrait, TestScoping {
    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await function()
        let left = TestNames.leftovers()
        #expect(left.isEmpty, "the suite left shared memory behind: \(left)")
        for name in left { unlink("/dev/shm/" + name) }
        let zombies = ZombieChildren.list()
        #expect(zombies.isEmpty, "the suite left zombie children (pid, command): \(zombies)")
    }
}

/// This process's children that have ended but were never reaped, from /proc.
enum ZombieChildren {
    static func list() -> [(pid: Int32, command: String)] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var found: [(pid: Int32, command: String)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            guard let pid = Int32(name), let stat = read("/proc/\(pid)/stat"),
                  let close = stat.lastIndex(of: ")") else { continue }
            // "pid (comm) S ppid ...": the state and the parent follow the last ')'.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, fields[0] == "Z", Int32(fields[1]) == getpid() else { continue }
            found.append((pid, String(stat[..<close])))
        }
        return found
    }

    private static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil
    }
}

extension Trait where Self == NoSharedMemoryLeaks {
    static var noSharedMemoryLeaks: Self { Self() }
}

/// Runs the package's helper executable (`shmipc-test-helper`, built beside the test bundle)
/// as "the other process". Every wait has a watchdog: past its timeout the child is SIGKILLed
/// and the test fails; a test can fail, never hang.
enum Helper {
    static let path: String = {
        let exe = ProcessEnvironment.executablePath
        var directory = exe[..<(exe.lastIndex(of: "/") ?? exe.startIndex)]
        // On Linux the test bundle is `<bin>/ShmIPCPackageTests.xctest`, an executable.
        if directory.hasSuffix(".xctest") { directory = directory[..<(directory.lastIndex(of: "/") ?? directory.startIndex)] }
        return "\(directory)/shmipc-test-helper"
    }()

    /// Starts `scenario`; pass inherited descriptors as (source, number in the child).
    static func start(
        _ scenario: String, _ arguments: [String] = [],
        descriptors: [(source: FileDescriptor, target: Int32)] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> ChildProcess {
        #expect(access(path, X_OK) == 0, "helper executable missing at \(path)", sourceLocation: sourceLocation)
        let path = self.path, parent = getpid()
        return try SpawningThread.run {
            try ChildProcess(
                executable: path, arguments: [scenario] + arguments, descriptors: descriptors,
                environment: ["SHMIPC_PARENT_PID": "\(parent)"])
        }
    }

    /// Waits for `child` with a watchdog; on timeout kills it and records a failure.
    @discardableResult
    static func finish(
        _ child: ChildProcess, timeout: Duration = .seconds(60),
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> TerminationStatus {
        if let status = child.wait(deadline: .after(timeout)) { return status }
        let status = child.kill()
        Issue.record("watchdog: helper pid \(child.pid) still running after \(timeout); killed. Output:\n\(child.output)",
                     sourceLocation: sourceLocation)
        return status
    }

    /// Runs `scenario` to completion under the watchdog.
    static func run(
        _ scenario: String, _ arguments: [String] = [],
        descriptors: [(source: FileDescriptor, target: Int32)] = [],
        timeout: Duration = .seconds(60),
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> (status: TerminationStatus, output: String) {
        let child = try start(scenario, arguments, descriptors: descriptors, sourceLocation: sourceLocation)
        let status = finish(child, timeout: timeout, sourceLocation: sourceLocation)
        return (status, child.output)
    }

    /// Waits until the child has printed `line` (or exited, or the timeout passed).
    static func waitForOutput(_ child: ChildProcess, containing line: String, timeout: Duration = .seconds(30)) -> Bool {
        let deadline = Deadline.after(timeout)
        while !child.output.contains(line) {
            if child.wait(deadline: .after(.milliseconds(2))) != nil { return child.output.contains(line) }
            if deadline.hasPassed { return false }
        }
        return true
    }
}

import SystemPackage

/// The thread that spawns every helper, alive as long as the test process. A helper dies
/// with its parent (PR_SET_PDEATHSIG), which the kernel reads as the *thread* that spawned
/// it: spawned from a test's thread of the cooperative pool, which may exit when idle, a
/// helper was SIGKILLed in the middle of an async test.
enum SpawningThread {
    /// A lock ThreadSanitizer sees (`Mutex` it does not: Notes/0009).
    private static let jobs = ThreadLock<[() -> Void]>([])
    /// Bumped for each job; the thread sleeps on it.
    private nonisolated(unsafe) static let bell: UnsafeMutablePointer<UInt32> = {
        let word = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
        word.initialize(to: 0)
        return word
    }()
    private static let started: Void = {
        let address = UInt(bitPattern: bell)
        guard case .success = Sys.startDetachedThread({
            let bell = SharedWord(UnsafeMutablePointer<UInt32>(bitPattern: address)!)
            while true {
                let seen = bell.loadAcquiring()
                let work: [() -> Void] = SpawningThread.jobs.withLock { jobs in
                    defer { jobs.removeAll() }
                    return jobs
                }
                for job in work { job() }
                if work.isEmpty { _ = bell.futex.wait(expected: seen) }
            }
        }) else { fatalError("the spawning thread did not start") }
    }()

    /// Runs `body` on the spawning thread and returns what it returned (or threw).
    static func run<T>(_ body: @escaping () throws -> T) throws -> T {
        _ = started
        nonisolated(unsafe) var result: Result<T, any Error>?
        let done = SharedWord(UnsafeMutablePointer<UInt32>.allocate(capacity: 1))
        done.pointer.initialize(to: 0)
        defer { done.pointer.deallocate() }
        jobs.withLock { jobs in
            jobs.append {
                result = Result { try body() }
                done.storeReleasing(1)
                done.futex.wake()
            }
        }
        let bell = SharedWord(Self.bell)
        bell.addAcquiringAndReleasing(1)
        bell.futex.wake()
        while done.loadAcquiring() == 0 { _ = done.futex.wait(expected: 0) }
        return try result!.get()
    }
}

/// A suite trait, recursive: the tests under it that block their thread take turns, one at a
/// time.
///
/// swift-testing runs a synchronous test on the cooperative pool, which has one thread per
/// CPU: two here. Most of these tests are synchronous and wait for helper processes (a chaos
/// test blocks its thread for a minute), so two of them at once held both threads, and every
/// async test (and the remote suites' servers, in the same process) stood still meanwhile: in
/// one CI run for over two minutes, long enough to fail a watchdog and a 600 ms lease. Taking
/// turns leaves one thread to the async tests. A test waiting for its turn is suspended, not
/// blocking. Tests and suites tagged `.awaits` (async ones, which yield their thread) skip it.
struct BlockingTestsTakeTurns: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        testCase == nil || test.tags.contains(.awaits) ? nil : self
    }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        await Self.turn.acquire()
        defer { Self.turn.release() }
        try await function()
    }

    private static let turn = AsyncGate()
}

extension Trait where Self == BlockingTestsTakeTurns {
    static var blockingTestsTakeTurns: Self { Self() }
}

extension Tag {
    /// An async test (or suite of them): it yields its thread while it waits.
    @Tag static var awaits: Self
}

/// One holder at a time; waiters suspend, first come first served.
final class AsyncGate: Sendable {
    private struct State {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func acquire() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                guard state.held else {
                    state.held = true
                    return true
                }
                state.waiters.append(waiter)
                return false
            }
            if granted { waiter.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiters.isEmpty else {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst()  // the gate stays held, by the next
        }
        next?.resume()
    }
}
