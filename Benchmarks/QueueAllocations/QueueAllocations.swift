// Allocations per operation on the typed hot paths (the target is zero). In-process, one
// thread: what is measured is the operations' own cost and allocations, not cross-core transfer
// (shm-bench measures that). Run: `swift package benchmark`.
import Benchmark
import ShmIPC

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.mallocCountTotal, .wallClock], scalingFactor: .kilo, maxDuration: .seconds(2), maxIterations: 1_000)

    Benchmark("Queue<UInt64> put+get", configuration: configuration) { benchmark in
        let queue = try Queue<UInt64>(capacity: 1024)
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            try queue.put(UInt64(i))
            blackHole(try queue.get())
        }
    }

    Benchmark("SPSCQueue<UInt64> put+get", configuration: configuration) { benchmark in
        let queue = try SPSCQueue<UInt64>(capacity: 1024)
        var producer = try queue.makeProducer()
        var consumer = try queue.makeConsumer()
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            try producer.put(UInt64(i))
            blackHole(try consumer.get())
        }
    }

    Benchmark("SPSCQueue<64B> put+get", configuration: configuration) { benchmark in
        let queue = try SPSCQueue<SIMD8<UInt64>>(capacity: 1024)
        var producer = try queue.makeProducer()
        var consumer = try queue.makeConsumer()
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            try producer.put(SIMD8(repeating: UInt64(i)))
            blackHole(try consumer.get())
        }
    }

    Benchmark("Lock acquire+release", configuration: configuration) { benchmark in
        let lock = try Lock()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            _ = try lock.acquire()
            try lock.release()
        }
    }
}
