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
    /// The `shared` line's address, for the C references.
    var sharedAddress: UnsafeMutablePointer<UInt64> { pointer(\.shared) }
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

/// Runs scenarios in one pair of processes: spawns the peer (this executable, `peer`
/// subcommand) pinned to `cpus.child`, pins this thread to `cpus.parent`, and measures each
/// scenario in turn, back to back (a row and its reference, on the same CPUs within the same
/// second). Each scenario has a control block of its own, so each starts behind its own barrier.
enum Harness {
    /// Descriptor numbers in the child: the control segment, then the transports', in order.
    static let firstChildDescriptor: Int32 = 100
    static let timeout = Duration.seconds(120)

    static func runOnce(
        _ scenario: any Scenario, iterations: Int, cpus: (parent: Int, child: Int)?
    ) throws -> RunMeasurement {
        try runTogether([(scenario, iterations)], cpus: cpus)[0]
    }

    static func runTogether(
        _ parts: [(scenario: any Scenario, iterations: Int)], cpus: (parent: Int, child: Int)?
    ) throws -> [RunMeasurement] {
        let blockSize = MemoryLayout<shmipc_bench_control>.stride
        let control: SharedMemory
        do { control = try SharedMemory(inheritableSize: blockSize * parts.count) }
        catch { throw BenchError.peerFailed("control segment: \(error)") }
        var channels: [Channels] = []
        defer { channels.forEach { $0.closeParentSide() } }
        do {
            for part in parts { channels.append(try part.scenario.makeChannels()) }
        } catch {
            channels.forEach { $0.closeChildSide() }
            throw error
        }

        var descriptors: [(source: FileDescriptor, target: Int32)] = [(control.inheritableDescriptor!, firstChildDescriptor)]
        for (index, fd) in channels.flatMap(\.child).enumerated() {
            descriptors.append((FileDescriptor(rawValue: fd), firstChildDescriptor + 1 + Int32(index)))
        }
        var arguments = ["peer"]
        for (part, channel) in zip(parts, channels) {
            arguments += ["--scenario", part.scenario.name, "--iterations", "\(part.iterations)", "--descriptors", "\(channel.child.count)"]
        }
        if let cpus { arguments += ["--cpu", "\(cpus.child)"] }
        let child: ChildProcess
        do {
            child = try ChildProcess(
                executable: ProcessEnvironment.executablePath, arguments: arguments,
                descriptors: descriptors, captureOutput: true)
        } catch {
            channels.forEach { $0.closeChildSide() }
            throw BenchError.system("posix_spawn", error)
        }
        channels.forEach { $0.closeChildSide() }

        var measurements: [RunMeasurement] = []
        do {
            try control.withUnsafeMutableBytes { bytes in
                for (index, (part, channel)) in zip(parts, channels).enumerated() {
                    let session = Session(
                        control: (bytes.baseAddress! + index * blockSize).bindMemory(to: shmipc_bench_control.self, capacity: 1),
                        descriptors: channel.parent, objects: channel.objects, iterations: part.iterations,
                        deadline: .after(timeout))
                    measurements.append(try part.scenario.parent(session))
                }
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
        return measurements
    }

    /// The child side: attaches the control segment and its descriptors, pins, runs each
    /// scenario's child in the parent's order.
    static func runPeer(_ parts: [(scenario: any Scenario, iterations: Int, descriptorCount: Int)], cpu: Int?) throws {
        if let cpu, case .failure(let errno) = pin(cpu) { throw BenchError.system("sched_setaffinity", errno) }
        let control: SharedMemory
        do { control = try SharedMemory(inheriting: FileDescriptor(rawValue: firstChildDescriptor)) }
        catch { throw BenchError.peerFailed("control segment: \(error)") }
        let blockSize = MemoryLayout<shmipc_bench_control>.stride
        var next = firstChildDescriptor + 1
        try control.withUnsafeMutableBytes { bytes in
            for (index, part) in parts.enumerated() {
                let descriptors = (0..<part.descriptorCount).map { next + Int32($0) }
                next += Int32(part.descriptorCount)
                let session = Session(
                    control: (bytes.baseAddress! + index * blockSize).bindMemory(to: shmipc_bench_control.self, capacity: 1),
                    descriptors: descriptors, iterations: part.iterations, deadline: .after(timeout))
                try part.scenario.child(session)
            }
        }
    }

    static func pin(_ cpu: Int) -> Result<Void, Errno> {
        Sys.pinCurrentThread(to: cpu)
    }
}
