/// Every scenario shm-bench knows, in report order. Registration only: workloads live in
/// their own files.
enum Registry {
    static let all: [any Scenario] = [
        SpinFloor(),
        FutexFloor(),
        KernelRoundTrip(transport: .pipe),
        KernelRoundTrip(transport: .socketpair),
        PipeThroughput(messageSize: 8, label: "8B", defaultIterations: 200_000),
        PipeThroughput(messageSize: 64, label: "64B", defaultIterations: 200_000),
        PipeThroughput(messageSize: 4096, label: "4KiB", defaultIterations: 50_000),
        PipeThroughput(messageSize: 1 << 20, label: "1MiB", defaultIterations: 400),
        AtomicAddFloor(),
        UncontendedLock(kind: .lock),
        UncontendedLock(kind: .pthread),
        UncontendedLock(kind: .rlock),
        UncontendedLock(kind: .pthreadRecursive),
        LockedCounter(kind: .lock),
        LockedCounter(kind: .pthread),
        EventPingPong(),
        SPSCRoundTrip(label: "spin", strategy: .spin),
        SPSCRoundTrip(label: "default", strategy: .default),
        SPSCRoundTrip(label: "park", strategy: .park),
        MPMCRoundTrip(),
        QueueThroughput<UInt64>(spsc: true, label: "8B") { $0 },
        QueueThroughput<Message64>(spsc: true, label: "64B") { Message64($0) },
        QueueThroughput<UInt64>(spsc: false, label: "8B") { $0 },
        IdleConsumerCPU(),
        ValueAdd(locked: false),
        ValueRead64(),
        ValueAdd(locked: true),
    ]
}
