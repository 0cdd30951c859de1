import Testing

/// The root of every ShmIPC test suite: after all of them ran, nothing this test process
/// created may remain in /dev/shm.
@Suite(.noSharedMemoryLeaks, .blockingTestsTakeTurns)
struct ShmIPCTests {
    /// The time limit of the tests that exist to catch a hang: a watchdog, not a time a test
    /// must meet. It was a minute, and under the whole suite's load on two vCPUs (and a build
    /// beside it) a hostile-peer test whose calls all returned took 80 s.
    static let hangWatchdog: TimeLimitTrait.Duration = .minutes(10)
}
