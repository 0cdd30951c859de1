import ShmIPC

/// `rtt.floor.spin`: the hardware floor. A counter on one shared cache line, ping-ponged by
/// two busy-spinning processes: each round trip moves the line to the peer and back.
struct SpinFloor: Scenario {
    let name = "rtt.floor.spin"
    let unit = Unit.nanoseconds
    let summary = "round trip of a counter on one shared cache line, both sides busy-spinning"
    let defaultIterations = 200_000

    func parent(_ session: Session) throws -> RunMeasurement {
        let line = session.shared
        try session.barrier()
        return try RoundTripSampler.measure(
            iterations: session.iterations, warmup: RoundTripSampler.warmup(for: session.iterations)
        ) { i in
            let odd = UInt64(2 * i + 1)
            line.storeReleasing(odd)  // pairs with the child's acquire in spin(until:)
            try session.spin(until: line, equals: odd + 1)
        }
    }

    func child(_ session: Session) throws {
        let line = session.shared
        try session.barrier()
        let total = session.iterations + RoundTripSampler.warmup(for: session.iterations)
        for i in 0..<total {
            let odd = UInt64(2 * i + 1)
            try session.spin(until: line, equals: odd)
            line.storeReleasing(odd + 1)  // pairs with the parent's acquire in spin(until:)
        }
    }
}

/// `rtt.floor.futex`: the blocking floor. The same handoff, but each side parks in
/// FUTEX_WAIT at once and the other always calls FUTEX_WAKE: two sleeps and two wake-ups
/// per round trip, no spinning, no waiter accounting.
struct FutexFloor: Scenario {
    let name = "rtt.floor.futex"
    let unit = Unit.nanoseconds
    let summary = "the same round trip with futex wait/wake on each side (blocking floor)"
    let defaultIterations = 20_000

    func parent(_ session: Session) throws -> RunMeasurement {
        let word = session.sharedWord
        try session.barrier()
        return try RoundTripSampler.measure(
            iterations: session.iterations, warmup: RoundTripSampler.warmup(for: session.iterations)
        ) { i in
            let sent = UInt32(truncatingIfNeeded: 2 * i + 1)
            word.storeReleasing(sent)  // pairs with the child's acquire load in await()
            word.futex.wake(count: 1)
            try Self.await(word, leaves: sent, session)
        }
    }

    func child(_ session: Session) throws {
        let word = session.sharedWord
        try session.barrier()
        let total = session.iterations + RoundTripSampler.warmup(for: session.iterations)
        for i in 0..<total {
            try Self.await(word, leaves: UInt32(truncatingIfNeeded: 2 * i), session)
            word.storeReleasing(UInt32(truncatingIfNeeded: 2 * i + 2))  // pairs with the parent's acquire
            word.futex.wake(count: 1)
        }
    }

    /// Parks until the word no longer holds `value`; bounded slices so a dead peer is noticed.
    private static func await(_ word: SharedWord, leaves value: UInt32, _ session: Session) throws {
        while word.loadAcquiring() == value {  // acquire: pairs with the peer's release store
            if word.futex.wait(expected: value, deadline: .after(.milliseconds(200))) == .timedOut,
               session.deadline.hasPassed {
                throw BenchError.peerTimedOut("futex")
            }
        }
    }
}

/// `atomic.floor.add.2proc`: both processes fetch-add one shared counter; the cost of an
/// increment when the line bounces between cores (the floor of any shared counter).
struct AtomicAddFloor: Scenario {
    let name = "atomic.floor.add.2proc"
    let unit = Unit.nanosecondsPerOperation
    let summary = "two processes fetch-adding one shared counter (ns per increment, both sides)"
    let defaultIterations = 2_000_000

    func parent(_ session: Session) throws -> RunMeasurement {
        let counter = session.shared
        try session.barrier()
        let watch = Stopwatch()
        for _ in 0..<session.iterations {
            counter.addRelaxed(1)  // relaxed: only the final total is read, after the join below
        }
        try session.spin(until: session.pong, equals: 1)  // the child's "done" (release store)
        let elapsed = watch.elapsedNanoseconds()
        let total = counter.loadAcquiring()
        guard total == UInt64(2 * session.iterations) else {
            throw BenchError.peerFailed("counter is \(total), expected \(2 * session.iterations)")
        }
        return .cost(Double(elapsed) / Double(2 * session.iterations))
    }

    func child(_ session: Session) throws {
        let counter = session.shared
        try session.barrier()
        for _ in 0..<session.iterations {
            counter.addRelaxed(1)  // relaxed: published by the release store of pong below
        }
        session.pong.storeReleasing(1)  // pairs with the parent's acquire in spin(until:)
    }
}

/// Not a measurement: both pinned processes spin for `duration` before the first round, so the
/// first timed round does not start on vCPUs that were idle. (Whole invocations on this VM
/// sometimes run up to 2× slower, pipes included; the warm-up does not remove that host noise,
/// which is why rows are compared within one run.)
struct WarmUp: Scenario {
    let name = "warm-up"
    let unit = Unit.nanosecondsPerOperation
    let summary = "both CPUs spin before the first round"
    let defaultIterations = 1
    static let duration: Duration = .seconds(1)

    func parent(_ session: Session) throws -> RunMeasurement {
        try session.barrier()
        let end = Deadline.after(Self.duration)
        var spins: UInt64 = 0
        while !end.hasPassed { spins &+= 1 }
        session.pong.storeReleasing(1)  // pairs with the child's acquire below
        return .cost(Double(spins))
    }

    func child(_ session: Session) throws {
        try session.barrier()
        try session.spin(until: session.pong, equals: 1)
    }
}
