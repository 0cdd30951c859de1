import Testing

/// The root of every ShmIPC test suite: after all of them ran, nothing this test process
/// created may remain in /dev/shm.
@Suite(.noSharedMemoryLeaks)
struct ShmIPCTests {}
