import ShmIPC

/// The entry points the process and pool scenarios start (registered first thing in main).
enum BenchEntries {
    static let nothing = Entry("bench.nothing") { (_: Int) in }
    static let all: [any EntryPoint] = [nothing]
}

/// `process.spawn` / `process.fork`: start and join a child that does nothing (ms each), as
/// Python's `Process(target=f).start(); p.join()`. The peer process only waits.
struct ProcessStartJoin: Scenario {
    let method: StartMethod
    let defaultIterations: Int
    var name: String { method == .spawn ? "process.spawn" : "process.fork" }
    let unit = Unit.milliseconds
    var summary: String { "start + join of a child that returns at once, \(method == .spawn ? "spawn (posix_spawn of shm-bench)" : "fork"), ms each" }

    func parent(_ session: Session) throws -> RunMeasurement {
        try session.barrier()
        var samples: [Double] = []
        let watch = Stopwatch()
        for _ in 0..<session.iterations {
            let start = Deadline.now
            let child = try ShmIPC.Process(BenchEntries.nothing, argument: 0, startMethod: method)
            try child.start()
            guard child.join(timeout: .seconds(30)) else {
                child.kill()
                throw BenchError.peerTimedOut("a child of \(name)")
            }
            guard child.exitCode == 0 else { throw BenchError.peerFailed("a child of \(name) exited with \(child.exitCode!)") }
            samples.append(Double(Deadline.now.uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
        }
        return .latencies(samples, mean: Double(watch.elapsedNanoseconds()) / 1e6 / Double(session.iterations))
    }

    func child(_ session: Session) throws {
        try session.barrier()
    }
}
