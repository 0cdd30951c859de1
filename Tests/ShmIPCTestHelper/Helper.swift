// The executable cross-process tests spawn: `shmipc-test-helper <scenario> [arguments…]`.
// Each scenario is one small program acting as "the other process"; it reports through its
// exit status (0 = as expected) and one-line messages on stdout that tests check.
import CShim
import Glibc
import ShmIPC
import ShmIPCTestSupport
import SystemPackage

@main
enum Helper {
    static func main() {
        // First: a child started by a test's `Process` runs its entry here and exits. Before
        // the death signal below, so the daemon test checks ShmIPC's lifeline, not prctl.
        Multiprocessing.bootstrap(TestEntries.all)
        // Die with the test process: a crashed or killed test must not leave helpers behind.
        _ = shmipc_set_parent_death_signal(SIGKILL)
        if let expected = ProcessEnvironment.value("SHMIPC_PARENT_PID"), Int32(expected) != getppid() {
            fail("parent \(expected) already gone")
        }
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard !arguments.isEmpty else { fail("usage: shmipc-test-helper <scenario> [arguments…]") }
        let scenario = arguments.removeFirst()
        guard let run = scenarios[scenario] else { fail("unknown scenario '\(scenario)'") }
        run(arguments)
        exit(0)
    }

    static let scenarios = segmentScenarios.merging(syncScenarios) { first, _ in first }
        .merging(queueScenarios) { first, _ in first }
        .merging(valueScenarios) { first, _ in first }
        .merging(channelScenarios) { first, _ in first }
        .merging(processScenarios) { first, _ in first }
        .merging(managerScenarios) { first, _ in first }
        .merging(asyncScenarios) { first, _ in first }

    static let segmentScenarios: [String: @Sendable ([String]) -> Void] = [
        "exit": { args in exit(Int32(args.first ?? "0") ?? 0) },
        // descriptors: prints "descriptors N,N,…", the descriptors this process was started with.
        "descriptors": { _ in
            guard let directory = opendir("/proc/self/fd") else { fail("opendir: \(errno)") }
            defer { closedir(directory) }
            var open: [Int32] = []
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if let fd = Int32(name), fd != dirfd(directory) { open.append(fd) }
            }
            say("descriptors \(open.sorted().map(String.init).joined(separator: ","))")
        },
        "read-descriptors": { arguments in
            // read-descriptors FD…: one byte from each, as "read A B …".
            let bytes = arguments.map { argument -> String in
                var byte: UInt8 = 0
                guard let fd = Int32(argument), read(fd, &byte, 1) == 1 else { return "?" }
                return String(UnicodeScalar(byte))
            }
            say("read \(bytes.joined(separator: " "))")
        },
        "hang": { _ in
            say("hanging")
            while true { Sys.sleep(.seconds(1)) }
        },
        // segment-scribble <fd> <skip> <ms> <seed>: a hostile peer. For <ms> milliseconds,
        // writes forged words anywhere in the object's state after its first <skip> bytes:
        // random words, small numbers (indices, lengths, counts), its own pid (a live thread
        // id, in either half of a word), and the word that is there ± 1 or + 8 (a sequence or
        // index one step on or back, or a lap on).
        "segment-scribble": { args in
            let memory = attempt { () throws(SharedMemoryError) in try SharedMemory(inheriting: FileDescriptor(rawValue: Int32(args[0])!)) }
            let from = 128 + Int(args[1])!   // after the segment header
            let until = Deadline.after(.milliseconds(Int(args[2])!))
            var random = UInt64(args[3])!
            func next() -> UInt64 { random = MessageStream.mix(random); return random }
            let me = UInt64(UInt32(bitPattern: getpid()))
            var writes = 0
            memory.withUnsafeMutableBytes { bytes in
                let words = (bytes.count - from) / 8
                guard words > 0 else { return }
                while !until.hasPassed {
                    let offset = from + Int(next() % UInt64(words)) * 8
                    let word = bytes.load(fromByteOffset: offset, as: UInt64.self)
                    let forged: UInt64
                    switch next() % 8 {
                    case 0: forged = next()
                    case 1: forged = next() % 64
                    case 2: forged = me
                    case 3: forged = me << 32 | (word & 0xFFFF_FFFF)
                    case 4: forged = word &+ 1
                    case 5: forged = word &- 1
                    case 6: forged = word &+ 8
                    default: forged = 0
                    }
                    bytes.storeBytes(of: forged, toByteOffset: offset, as: UInt64.self)
                    writes += 1
                }
            }
            say("scribbled \(writes)")
        },
        "echo-named": { args in
            let memory = attempt { () throws(SharedMemoryError) in try SharedMemory.open(name: SegmentName(args[0])) }
            echo(memory)
        },
        "echo-inherited": { args in
            let fd = FileDescriptor(rawValue: Int32(args[0])!)
            let memory = attempt { () throws(SharedMemoryError) in try SharedMemory(inheriting: fd) }
            echo(memory)
        },
        "futex-wait": { args in
            let memory = attempt { () throws(SharedMemoryError) in try SharedMemory.open(name: SegmentName(args[0])) }
            memory.withUnsafeMutableBytes { bytes in
                let word = bytes.baseAddress!.assumingMemoryBound(to: UInt32.self)
                let deadline = Deadline.after(.seconds(20))
                say("waiting")
                while loadAcquire(word) == 0 {
                    if Futex(word).wait(expected: 0, deadline: deadline) == .timedOut { fail("timed out") }
                }
                say("saw \(loadAcquire(word))")
            }
        },
        // create-named <queue|lock|pipe> <name> <items> <exit|hold>: creates the named object
        // (a Queue<UInt64> of 16 holding <items> items; a Lock, held if <items> > 0; a Pipe
        // with <items> 10-byte messages sent), says "created", then exits (leaving the name
        // behind, its creator dead) or holds it until killed.
        "create-named": { args in
            let name = attempt { () throws(SharedMemoryError) in try SegmentName(args[1]) }
            let items = Int(args[2])!
            var keep: [AnyObject] = []
            switch args[0] {
            case "queue":
                let queue = attempt { () throws(SharedObjectError) in try Queue<UInt64>(name: name, mode: .createExclusive, capacity: 16) }
                for item in 0..<items { _ = attempt { () throws(QueueError) in try queue.tryPut(UInt64(item)) } }
                keep.append(queue)
            case "lock":
                let lock = attempt { () throws(SharedObjectError) in try Lock(name: name, mode: .createExclusive) }
                if items > 0 { _ = attempt { () throws(SyncError) in try lock.acquire() } }
                keep.append(lock)
            default:
                let pipe = attempt { () throws(SharedObjectError) in try Pipe(name: name, mode: .createExclusive, maxMessageSize: 64) }
                let connection = attempt { () throws(ChannelError) in try pipe.connection(.second) }
                for _ in 0..<items { attempt { () throws(ChannelError) in try connection.send(bytes: [UInt8](repeating: 1, count: 10)) } }
                keep.append(pipe)
                keep.append(connection)
            }
            say("created")
            if args[3] == "exit" { exit(0) }
            while true { Sys.sleep(.seconds(1)); withExtendedLifetime(keep) {} }
        },
        "create-object": { args in
            // create-object <name> <capacity> <hold-ms>: holds initialization open for hold-ms,
            // then publishes; stays the owner until the test sets the state's first word, then
            // unlinks the name (the one owner unlinks).
            let name = attempt { () throws(SharedMemoryError) in try SegmentName(args[0]) }
            let capacity = Int(args[1])!
            let hold = Duration.milliseconds(Int(args[2])!)
            let segment = attempt { () throws(SharedObjectError) in
                try SharedObjectSegment.create(
                    name: name, mode: .createExclusive, layout: TestObject.layout(capacity: capacity)
                ) { state in
                    say("initializing")
                    Sys.sleep(hold)
                    TestObject.fill(state)
                }
            }
            say("ready")
            segment.withState { state in
                let word = state.baseAddress!.assumingMemoryBound(to: UInt32.self)
                let deadline = Deadline.after(.seconds(20))
                while loadAcquire(word) == 0 {
                    if Futex(word).wait(expected: 0, deadline: deadline) == .timedOut { fail("never released") }
                }
            }
            do { try segment.unlink() } catch { fail("\(error)") }
            say("unlinked")
        },
    ]

    /// Reads 8 bytes at offset 0, reports them, and writes their double at offset 8.
    static func echo(_ memory: borrowing SharedMemory) {
        memory.withUnsafeMutableBytes { bytes in
            let value = bytes.load(fromByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: value &* 2, toByteOffset: 8, as: UInt64.self)
            say("read \(value) size \(bytes.count)")
        }
    }

    static func loadAcquire(_ word: UnsafeMutablePointer<UInt32>) -> UInt32 {
        SharedWord(word).loadAcquiring()
    }

    static func say(_ line: String) {
        print(line)
        fflush(nil)  // all streams: `stdout` is a C global Swift 6 will not touch
    }

    static func fail(_ message: String) -> Never {
        say("error: \(message)")
        exit(2)
    }

    static func attempt<T: ~Copyable, E: Error>(_ body: () throws(E) -> T) -> T {
        do { return try body() } catch { fail("\(error)") }
    }
}
