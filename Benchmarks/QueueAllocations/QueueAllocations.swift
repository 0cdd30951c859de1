// Allocations per operation on the typed hot paths (the target is zero), and on the shared
// dictionary's get and set (not zero: a get returns a new value). In-process, one
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

    // The manager rows' workload: SharedDictionary<Int, [UInt8]>, 10k keys, 64-byte values.
    // Made once, outside the measured closures: filling 10k keys (or reserving a large list)
    // would otherwise count in every sample.
    let keys = 10_000
    let value = [UInt8](repeating: 0x5A, count: 64)
    let dictionary = try! SharedDictionary<Int, [UInt8]>(capacity: 4 << 20)
    for key in 0..<keys { try! dictionary.setValue(value, forKey: key) }
    let counters = try! SharedDictionary<Int, Int>(capacity: 64 << 10)
    let list = try! SharedList<Int>(capacity: 16 << 20)

    Benchmark("SharedDictionary<Int, [UInt8]> get", configuration: configuration) { benchmark in
        for i in benchmark.scaledIterations { blackHole(try dictionary.value(forKey: (i &* 7919) % keys)) }
    }

    Benchmark("SharedDictionary<Int, [UInt8]> set", configuration: configuration) { benchmark in
        for i in benchmark.scaledIterations { try dictionary.setValue(value, forKey: (i &* 7919) % keys) }
    }

    Benchmark("SharedDictionary<Int, Int> modify", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { try counters.modify(1) { $0 = ($0 ?? 0) + 1 } }
    }

    Benchmark("SharedList<Int> append (cleared every 1000)", configuration: configuration) { benchmark in
        for i in benchmark.scaledIterations { try list.append(i) }
        benchmark.stopMeasurement()
        try list.removeAll()
    }
}
