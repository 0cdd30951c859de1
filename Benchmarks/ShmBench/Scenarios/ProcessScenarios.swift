import ShmIPC

/// The entry points the process and pool scenarios start (registered first thing in main).
enum BenchEntries {
    static let nothing = Entry("bench.nothing") { (_: Int) in }
    static let square = Entry("bench.square") { (x: Int) in x &* x }
    static let all: [any EntryPoint] = [nothing, square]
}

/// `process.spawn` / `process.fork`: start and join a child that does nothing (ms each), as
/// Python's `Process(target=f).start(); p.join()`. The peer process only waits.
struct ProcessStartJoin: Scenario {
    let method: StartMethod
    let defaultIterations: Int
    var name: String {
        switch method {
        case .spawn: "process.spawn"
        case .fork: "process.fork"
        case .forkserver: "process.forkserver"
        }
    }
    let unit = Unit.milliseconds
    var summary: String {
        let how = switch method {
        case .spawn: "spawn (posix_spawn of shm-bench)"
        case .fork: "fork"
        case .forkserver: "forkserver (started before the timed loop)"
        }
        return "start + join of a child that returns at once, \(how), ms each"
    }

    func parent(_ session: Session) throws -> RunMeasurement {
        if method == .forkserver {  // the server starts once per program: not part of a start
            let first = try ShmIPC.Process(BenchEntries.nothing, argument: 0, startMethod: method)
            try first.start()
            first.join(timeout: .seconds(30))
        }
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

/// The pool rows: a `Pool` of 2 workers squaring Ints, as Python's baseline
/// (Benchmarks/python/multiprocessing_baseline.py). The measuring process is unpinned first,
/// so its workers (which inherit its CPU mask) may use both CPUs, as Python's do; the pool is
/// started and warmed up before the timed part. The peer process only waits.
protocol PoolScenario: Scenario {
    func measure(_ pool: Pool, iterations: Int) throws -> RunMeasurement
}

extension PoolScenario {
    func parent(_ session: Session) throws -> RunMeasurement {
        if case .failure(let error) = Sys.unpinCurrentThread() { throw BenchError.peerFailed("unpin: \(error)") }
        try session.barrier()
        return try Pool.with(processes: 2) { pool in
            _ = try pool.map(BenchEntries.square, Array(0..<10_000))  // warm-up: both workers run
            return try measure(pool, iterations: session.iterations)
        }
    }

    func child(_ session: Session) throws {
        try session.barrier()
    }
}

/// `pool.map.100k`: `map` of 100k squares, default chunk size (tasks/s).
struct PoolMap: PoolScenario {
    let name = "pool.map.100k"
    let unit = Unit.tasksPerSecond
    let summary = "Pool(2).map of 100k Int squares, default chunks (Python's: 100k / 8 chunks)"
    let defaultIterations = 20
    static let inputs = Array(0..<100_000)

    func measure(_ pool: Pool, iterations: Int) throws -> RunMeasurement {
        let watch = Stopwatch()
        for _ in 0..<iterations {
            let squares = try pool.map(BenchEntries.square, Self.inputs)
            guard squares.count == Self.inputs.count, squares.last == 99_999 * 99_999 else { throw BenchError.peerFailed("wrong squares") }
        }
        return .rate(Double(iterations * Self.inputs.count) / (Double(watch.elapsedNanoseconds()) / 1e9))
    }
}

/// `pool.imap.chunk1`: `imap` of squares with one task per message (tasks/s).
struct PoolIMap: PoolScenario {
    let name = "pool.imap.chunk1"
    let unit = Unit.tasksPerSecond
    let summary = "Pool(2).imap of Int squares, chunk size 1: one task per message"
    let defaultIterations = 200_000

    func measure(_ pool: Pool, iterations: Int) throws -> RunMeasurement {
        let watch = Stopwatch()
        var sum = 0
        for result in pool.imap(BenchEntries.square, 0..<iterations) { sum &+= try result.get() }
        let elapsed = watch.elapsedNanoseconds()
        let expected = (0..<iterations).reduce(0) { $0 &+ $1 &* $1 }
        guard sum == expected else { throw BenchError.peerFailed("wrong sum") }
        return .rate(Double(iterations) / (Double(elapsed) / 1e9))
    }
}

/// `pool.apply.rtt`: one synchronous `apply` after another (µs each).
struct PoolApply: PoolScenario {
    let name = "pool.apply.rtt"
    let unit = Unit.microseconds
    let summary = "Pool(2).apply(square, x), one call after another, µs each"
    let defaultIterations = 50_000

    func measure(_ pool: Pool, iterations: Int) throws -> RunMeasurement {
        try RoundTripSampler.measure(iterations: iterations, warmup: RoundTripSampler.warmup(for: iterations)) { i in
            guard try pool.apply(BenchEntries.square, i) == i &* i else { throw BenchError.peerFailed("wrong square") }
        }.scaled(by: 1e-3)
    }
}
