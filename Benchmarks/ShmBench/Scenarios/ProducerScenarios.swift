import BenchShim
import Foundation
import ShmIPC
import Synchronization
import SystemPackage

/// Runs `body(p)` for p in 0..<count on threads of their own and waits for them all (a
/// benchmark child's producers); the first error any of them threw, if one did.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
    let done = Atomic<Int>(0)
    let failure = Mutex<(any Error)?>(nil)
    try withExtendedLifetime(done) {
        for index in 0..<count {
            let started = Thread {
                do { try body(index) } catch { failure.withLock { if $0 == nil { $0 = error } } }
                done.add(1, ordering: .releasing)  // pairs with the acquire below
            }
            started.start()
        }
        let watchdog = Deadline.after(.seconds(120))
        while done.load(ordering: .acquiring) < count {
            if watchdog.hasPassed { throw BenchError.peerTimedOut("producer threads") }
            Sys.sleep(.milliseconds(1))
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }
}

/// `throughput.queue.mpmc.8B.producers<N>`: N producer threads in the child process, each
/// putting every N-th number, one consumer in the parent; every side parks when it must wait
/// (the machine has two CPUs, so the child's producers share one). Messages per second.
struct MPMCProducersThroughput: Scenario {
    let producers: Int
    var name: String { "throughput.queue.mpmc.8B.producers\(producers)" }
    let unit = Unit.messagesPerSecond
    var summary: String { "8-byte messages through an MPMC queue from \(producers) producer thread(s) in one process, park strategy" }
    let defaultIterations = 4_000_000
    static let capacity = 8192

    func makeChannels() throws -> Channels {
        let queue = try Queue<UInt64>(capacity: Self.capacity, waitStrategy: .park)
        return Channels(child: [try duplicate(queue.inheritableDescriptor)], objects: [queue])
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        guard let queue = session.objects[0] as? Queue<UInt64> else { throw BenchError.peerFailed("queue") }
        var sink: UInt64 = 0
        try session.barrier()
        let watch = Stopwatch()
        for _ in 0..<session.iterations { sink &+= try queue.get(timeout: .seconds(30)) }
        let elapsed = watch.elapsedNanoseconds()
        try expectSequenceSum(sink, session.iterations)
        return .rate(Double(session.iterations) / (Double(elapsed) / 1e9))
    }

    func child(_ session: Session) throws {
        let queue = try Queue<UInt64>(inheriting: FileDescriptor(rawValue: session.descriptors[0]), capacity: Self.capacity, waitStrategy: .park)
        let (count, producers) = (session.iterations, self.producers)
        try session.barrier()
        try onThreads(producers) { producer in
            for value in stride(from: producer, to: count, by: producers) { try queue.put(UInt64(value), timeout: .seconds(30)) }
        }
    }
}

/// `throughput.ref.mpmc.8B.producers<N>`: the same with Vyukov's C queue, which spins: N
/// producer threads in the child, one consumer in the parent.
struct ReferenceMPMCProducersThroughput: Scenario {
    let producers: Int
    var name: String { "throughput.ref.mpmc.8B.producers\(producers)" }
    let unit = Unit.messagesPerSecond
    var summary: String { "C reference: Vyukov's bounded MPMC queue (spinning), \(producers) producer thread(s) in one process" }
    let defaultIterations = 4_000_000

    func makeChannels() throws -> Channels {
        let segment = try ReferenceSegment(size: shmipc_ref_mpmc_size(UInt64(MPMCProducersThroughput.capacity)))
        shmipc_ref_mpmc_init(segment.base.assumingMemoryBound(to: shmipc_ref_mpmc.self), UInt64(MPMCProducersThroughput.capacity))
        return try segment.channels()
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        try ReferenceMPMCThroughput().parent(session)
    }

    func child(_ session: Session) throws {
        let segment = try ReferenceSegment(inheriting: session.descriptors[0])
        let address = UInt(bitPattern: segment.base)
        let (count, producers) = (session.iterations, self.producers)
        try session.barrier()
        try withExtendedLifetime(segment) {
            try onThreads(producers) { producer in
                let queue = UnsafeMutablePointer<shmipc_ref_mpmc>(bitPattern: address)!
                let deadline = CycleDeadline.after(seconds: 60)
                for value in stride(from: producer, to: count, by: producers) {
                    guard shmipc_ref_mpmc_put(queue, UInt64(value), deadline) == 0 else { throw BenchError.peerTimedOut("reference queue") }
                }
            }
        }
    }
}
