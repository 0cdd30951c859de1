import CShim
import BenchShim
import Glibc
import ShmIPC
import SystemPackage

/// What a scenario's two sides share for one run: the control block (start barrier and the
/// ping/pong words, in an inheritable segment) and the kernel descriptors of its transport.
struct Session {
    let control: UnsafeMutablePointer<shmipc_bench_control>
    /// This side's descriptors, in the order the scenario created them.
    let descriptors: [Int32]
    /// Parent side: the objects the scenario made in `makeChannels()`; child side: empty.
    var objects: [AnyObject] = []
    let iterations: Int
    /// A run that goes past this is abandoned (the peer died or hung).
    let deadline: Deadline

    var ping: SharedWord64 { SharedWord64(pointer(\.ping)) }
    var pong: SharedWord64 { SharedWord64(pointer(\.pong)) }
    var shared: SharedWord64 { SharedWord64(pointer(\.shared)) }
    var childResult: SharedWord64 { SharedWord64(pointer(\.child_result)) }
    /// The low half of `shared`, as a 32-bit futex word (futex scenarios use only this view).
    var sharedWord: SharedWord {
        SharedWord(UnsafeMutableRawPointer(pointer(\.shared)).assumingMemoryBound(to: UInt32.self))
    }

    private func pointer(_ field: KeyPath<shmipc_bench_control, UInt64>) -> UnsafeMutablePointer<UInt64> {
        (UnsafeMutableRawPointer(control) + MemoryLayout<shmipc_bench_control>.offset(of: field)!)
            .assumingMemoryBound(to: UInt64.self)
    }

    /// Both sides arrive; neither leaves before the other arrived. Spins (both are pinned).
    func barrier() throws(BenchError) {
        let arrived = SharedWord(UnsafeMutableRawPointer(control).assumingMemoryBound(to: UInt32.self))
        // acquiring-and-releasing: pairs with the other side's increment, so what each side
        // wrote before the barrier is visible to the other after it.
        arrived.addAcquiringAndReleasing(1)
        var spins = 0
        while arrived.loadAcquiring() < 2 {  // pairs with the increment above, on the other side
            shmipc_cpu_relax()
            spins &+= 1
            if spins & 0xFFFF == 0, deadline.hasPassed { throw .peerTimedOut("start barrier") }
        }
    }

    /// Spins until `word` holds `value`; checks the deadline every 64k spins.
    @inline(__always)
    func spin(until word: SharedWord64, equals value: UInt64) throws(BenchError) {
        var spins = 0
        while word.loadAcquiring() != value {  // acquire: pairs with the peer's release store
            shmipc_cpu_relax()
            spins &+= 1
            if spins & 0xFFFF == 0, deadline.hasPassed { throw .peerTimedOut("spin") }
        }
    }
}

enum BenchError: Error, CustomStringConvertible {
    case peerTimedOut(String)
    case peerFailed(String)
    case system(String, Errno)

    var description: String {
        switch self {
        case .peerTimedOut(let what): "the peer did not answer in time (\(what))"
        case .peerFailed(let what): "the peer process failed: \(what)"
        case .system(let call, let errno): "\(call) failed: \(errno)"
        }
    }
}

/// Descriptors a scenario's transport needs: this side's, and the child's (handed over by
/// posix_spawn and closed here once the child has them, so EOF propagates if it dies).
struct Channels {
    var parent: [Int32] = []
    var child: [Int32] = []
    /// Shared objects the parent keeps alive for the run (their descriptors, duplicated, are
    /// in `child`).
    var objects: [AnyObject] = []

    func closeParentSide() { parent.forEach { close($0) } }
    func closeChildSide() { child.forEach { close($0) } }
}

/// Runs one scenario once: spawns the peer (this executable, `peer` subcommand) pinned to
/// `cpus.child`, pins this thread to `cpus.parent`, and measures.
enum Harness {
    /// Descriptor numbers in the child: the control segment, then the transport's.
    static let firstChildDescriptor: Int32 = 100

    static func runOnce(
        _ scenario: any Scenario, iterations: Int, cpus: (parent: Int, child: Int)?
    ) throws -> RunMeasurement {
        let control: SharedMemory
        do { control = try SharedMemory(inheritableSize: MemoryLayout<shmipc_bench_control>.size) }
        catch { throw BenchError.peerFailed("control segment: \(error)") }
        let channels = try scenario.makeChannels()
        defer { channels.closeParentSide() }

        var descriptors: [(source: FileDescriptor, target: Int32)] = [(control.inheritableDescriptor!, firstChildDescriptor)]
        for (index, fd) in channels.child.enumerated() {
            descriptors.append((FileDescriptor(rawValue: fd), firstChildDescriptor + 1 + Int32(index)))
        }
        var arguments = ["peer", scenario.name, "--iterations", "\(iterations)", "--descriptors", "\(channels.child.count)"]
        if let cpus { arguments += ["--cpu", "\(cpus.child)"] }
        let child: ChildProcess
        do {
            child = try ChildProcess(
                executable: ProcessEnvironment.executablePath, arguments: arguments,
                descriptors: descriptors, captureOutput: true)
        } catch {
            channels.closeChildSide()
            throw BenchError.system("posix_spawn", error)
        }
        channels.closeChildSide()

        let timeout = Duration.seconds(120)
        let measurement: RunMeasurement
        do {
            measurement = try control.withUnsafeMutableBytes { bytes in
                let session = Session(
                    control: bytes.baseAddress!.bindMemory(to: shmipc_bench_control.self, capacity: 1),
                    descriptors: channels.parent, objects: channels.objects, iterations: iterations,
                    deadline: .after(timeout))
                return try scenario.parent(session)
            }
        } catch {
            child.kill()
            throw BenchError.peerFailed("\(error); peer output: \(child.output)")
        }
        guard let status = child.wait(deadline: .after(timeout)) else {
            child.kill()
            throw BenchError.peerTimedOut("exit")
        }
        guard status == .exited(0) else {
            throw BenchError.peerFailed("\(status): \(child.output)")
        }
        return measurement
    }

    /// The child side: attaches the control segment and its descriptors, pins, runs.
    static func runPeer(_ scenario: any Scenario, iterations: Int, descriptorCount: Int, cpu: Int?) throws {
        if let cpu, case .failure(let errno) = pin(cpu) { throw BenchError.system("sched_setaffinity", errno) }
        let control: SharedMemory
        do { control = try SharedMemory(inheriting: FileDescriptor(rawValue: firstChildDescriptor)) }
        catch { throw BenchError.peerFailed("control segment: \(error)") }
        let descriptors = (0..<descriptorCount).map { firstChildDescriptor + 1 + Int32($0) }
        try control.withUnsafeMutableBytes { bytes in
            let session = Session(
                control: bytes.baseAddress!.bindMemory(to: shmipc_bench_control.self, capacity: 1),
                descriptors: descriptors, iterations: iterations, deadline: .after(.seconds(120)))
            try scenario.child(session)
        }
    }

    static func pin(_ cpu: Int) -> Result<Void, Errno> {
        Sys.pinCurrentThread(to: cpu)
    }
}
