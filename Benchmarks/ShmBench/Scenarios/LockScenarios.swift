import CShim
import BenchShim
import Glibc
import ShmIPC
import SystemPackage

/// A descriptor duplicated close-on-exec, for handing an object's segment to the child
/// (the object keeps its own descriptor).
func duplicate(_ descriptor: FileDescriptor?) throws -> Int32 {
    guard let descriptor else { throw BenchError.peerFailed("object has no inheritable descriptor") }
    let copy = fcntl(descriptor.rawValue, F_DUPFD_CLOEXEC, 0)
    guard copy >= 0 else { throw BenchError.system("fcntl(F_DUPFD_CLOEXEC)", Errno(rawValue: errno)) }
    return copy
}

/// A pthread mutex in an inheritable segment: the reference the locks are measured against.
final class PthreadMutexSegment {
    let memory: SharedMemory
    let mutex: UnsafeMutableRawPointer  // inside `memory`, which this object owns

    init(recursive: Bool) throws {
        memory = try SharedMemory(inheritableSize: shmipc_pthread_mutex_size())
        mutex = memory.withUnsafeMutableBytes { $0.baseAddress! }
        let code = shmipc_pthread_mutex_init_shared(mutex, recursive ? 1 : 0)
        guard code == 0 else { throw BenchError.system("pthread_mutex_init", Errno(rawValue: code)) }
    }

    init(inheriting fd: Int32) throws {
        memory = try SharedMemory(inheriting: FileDescriptor(rawValue: fd))
        mutex = memory.withUnsafeMutableBytes { $0.baseAddress! }
    }
}

/// What the lock scenarios lock: ShmIPC's Lock or RLock, or a process-shared pthread mutex.
enum LockKind: String {
    case lock, rlock, pthread, pthreadRecursive = "pthread-recursive"

    func make() throws -> AnyObject {
        switch self {
        case .lock: try Lock()
        case .rlock: try RLock()
        case .pthread: try PthreadMutexSegment(recursive: false)
        case .pthreadRecursive: try PthreadMutexSegment(recursive: true)
        }
    }

    func attach(_ fd: Int32) throws -> AnyObject {
        switch self {
        case .lock: try Lock(inheriting: FileDescriptor(rawValue: fd))
        case .rlock: try RLock(inheriting: FileDescriptor(rawValue: fd))
        case .pthread, .pthreadRecursive: try PthreadMutexSegment(inheriting: fd)
        }
    }

    func descriptor(of object: AnyObject) throws -> Int32 {
        switch object {
        case let lock as Lock: try duplicate(lock.inheritableDescriptor)
        case let lock as RLock: try duplicate(lock.inheritableDescriptor)
        case let mutex as PthreadMutexSegment: try duplicate(mutex.memory.inheritableDescriptor)
        default: throw BenchError.peerFailed("not a lock")
        }
    }

    /// `iterations` × (acquire, body, release): the measured loop, specialized per kind so the
    /// dispatch is outside it.
    func loop(_ object: AnyObject, _ iterations: Int, _ body: () -> Void) throws {
        switch object {
        case let lock as Lock:
            for _ in 0..<iterations {
                _ = try lock.acquire()
                body()
                try lock.release()
            }
        case let lock as RLock:
            for _ in 0..<iterations {
                _ = try lock.acquire()
                body()
                try lock.release()
            }
        case let mutex as PthreadMutexSegment:
            // Called directly, as a Swift user would: no wrapper between the loop and libc.
            let raw = mutex.mutex.assumingMemoryBound(to: pthread_mutex_t.self)
            for _ in 0..<iterations {
                pthread_mutex_lock(raw)
                body()
                pthread_mutex_unlock(raw)
            }
        default:
            throw BenchError.peerFailed("not a lock")
        }
    }
}

/// `lock.<kind>.uncontended`: ns per acquire + release, one process, nobody else on the lock.
struct UncontendedLock: Scenario {
    let kind: LockKind
    var name: String { "lock.\(kind.rawValue).uncontended" }
    let unit = Unit.nanosecondsPerOperation
    var summary: String { "acquire + release of an uncontended \(kind.rawValue) in shared memory, one process" }
    let defaultIterations = 5_000_000

    func makeChannels() throws -> Channels { Channels(objects: [try kind.make()]) }

    func parent(_ session: Session) throws -> RunMeasurement {
        let lock = session.objects[0]
        try session.barrier()
        try kind.loop(lock, session.iterations / 10) {}  // warm-up
        let watch = Stopwatch()
        try kind.loop(lock, session.iterations) {}
        return .cost(Double(watch.elapsedNanoseconds()) / Double(session.iterations))
    }

    func child(_ session: Session) throws {
        try session.barrier()  // nothing to do: a one-process scenario
    }
}

/// `lock.counter.2proc`, `lock.pthread.counter.2proc`: two pinned processes incrementing one
/// counter under the lock; ns per increment (total time / both processes' increments).
struct LockedCounter: Scenario {
    let kind: LockKind
    var name: String { kind == .lock ? "lock.counter.2proc" : "lock.\(kind.rawValue).counter.2proc" }
    let unit = Unit.nanosecondsPerOperation
    var summary: String { "two processes incrementing a shared counter under a \(kind.rawValue), ns per increment" }
    let defaultIterations = 500_000

    func makeChannels() throws -> Channels {
        let lock = try kind.make()
        return Channels(child: [try kind.descriptor(of: lock)], objects: [lock])
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        let counter = session.shared.pointer
        try session.barrier()
        let watch = Stopwatch()
        try kind.loop(session.objects[0], session.iterations) { counter.pointee &+= 1 }  // plain: under the lock
        try session.spin(until: session.pong, equals: 1)  // the child's release store: done
        let elapsed = watch.elapsedNanoseconds()
        let total = session.shared.loadAcquiring()
        guard total == UInt64(2 * session.iterations) else {
            throw BenchError.peerFailed("counter is \(total), expected \(2 * session.iterations): the lock failed")
        }
        return .cost(Double(elapsed) / Double(2 * session.iterations))
    }

    func child(_ session: Session) throws {
        let lock = try kind.attach(session.descriptors[0])
        let counter = session.shared.pointer
        try session.barrier()
        try kind.loop(lock, session.iterations) { counter.pointee &+= 1 }
        session.pong.storeReleasing(1)  // pairs with the parent's acquire in spin(until:)
    }
}

/// `rtt.event.park`: ping-pong where each side parks on an Event (wait strategy `.park`):
/// ShmIPC's blocking handoff, to compare with `rtt.floor.futex`.
struct EventPingPong: Scenario {
    let name = "rtt.event.park"
    let unit = Unit.nanoseconds
    let summary = "round trip through two Events, each side parked (compare rtt.floor.futex)"
    let defaultIterations = 20_000

    func makeChannels() throws -> Channels {
        let ping = try Event(waitStrategy: .park), pong = try Event(waitStrategy: .park)
        return Channels(child: [try duplicate(ping.inheritableDescriptor), try duplicate(pong.inheritableDescriptor)],
                        objects: [ping, pong])
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        guard let ping = session.objects[0] as? Event, let pong = session.objects[1] as? Event else {
            throw BenchError.peerFailed("events")
        }
        try session.barrier()
        return try RoundTripSampler.measure(
            iterations: session.iterations, warmup: RoundTripSampler.warmup(for: session.iterations)
        ) { _ in
            ping.set()
            guard pong.wait(timeout: .seconds(30)) else { throw BenchError.peerTimedOut("event") }
            pong.clear()
        }
    }

    func child(_ session: Session) throws {
        let ping = try Event(inheriting: FileDescriptor(rawValue: session.descriptors[0]), waitStrategy: .park)
        let pong = try Event(inheriting: FileDescriptor(rawValue: session.descriptors[1]), waitStrategy: .park)
        try session.barrier()
        for _ in 0..<(session.iterations + RoundTripSampler.warmup(for: session.iterations)) {
            guard ping.wait(timeout: .seconds(30)) else { throw BenchError.peerTimedOut("event") }
            ping.clear()
            pong.set()
        }
    }
}
