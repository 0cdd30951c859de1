import ArgumentParser
import BenchShim
import ShmIPC

/// `shm-bench instructions`: the fast paths' instruction counts, the one measure this noisy
/// machine repeats exactly. Each probe fills a ring with puts and drains it with gets on one
/// thread (no peer: what is counted is the code, not the cache-line traffic); the C references
/// run the same pattern. `Benchmarks/instructions.sh` runs each probe under callgrind at two
/// sizes and prints the difference per item: instructions per put + get.
struct Instructions: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the single-thread fast-path probes (for callgrind's instruction counts).")

    @Option(help: "Items per probe (a multiple of the 8,192-slot ring).")
    var items: Int = 8192 * 64

    @Argument(help: "Probes to run (default: all): \(Self.probes.map(\.name).joined(separator: ", ")).")
    var names: [String] = []

    static let probes: [(name: String, run: @Sendable (Int) -> UInt64)] = [
        ("spsc.8B", probeSPSC8), ("spsc.64B", probeSPSC64), ("spsc.8B.batch32", probeSPSC8Batch),
        ("mpmc.8B", probeMPMC8), ("connection.64B", probeConnection64),
        ("ref.spsc.8B", probeReferenceSPSC8), ("ref.spsc.64B", probeReferenceSPSC64),
        ("ref.spsc.8B.batch32", probeReferenceSPSCBatch), ("ref.mpmc.8B", probeReferenceMPMC),
    ]

    func validate() throws {
        for name in names where !Self.probes.contains(where: { $0.name == name }) {
            throw ValidationError("no probe \(name)")
        }
    }

    func run() {
        let rounds = max(1, items / Probe.capacity)
        print("each probe moves \(rounds * Probe.capacity) items (\(rounds) fills and drains of \(Probe.capacity) slots)")
        var sink: UInt64 = 0
        for probe in Self.probes where names.isEmpty || names.contains(probe.name) { sink &+= probe.run(rounds) }
        print("checksum \(sink)")
    }
}

enum Probe {
    static let capacity = 8192
}

/// A probe's body, outside its counted loop's error paths; a probe that fails is a bug here.
@inline(__always)
func orFail(_ body: () throws -> UInt64) -> UInt64 {
    do { return try body() } catch { fatalError("probe failed: \(error)") }
}

@inline(never)
func probeSPSC8(_ rounds: Int) -> UInt64 { orFail { try probeSPSC(rounds, UInt64.self) } }

@inline(never)
func probeSPSC64(_ rounds: Int) -> UInt64 { orFail { try probeSPSC(rounds, Message64.self) } }

@inline(__always)
func probeSPSC<Message: BenchMessage>(_ rounds: Int, _: Message.Type) throws -> UInt64 {
    let queue = try SPSCQueue<Message>(capacity: Probe.capacity)
    var producer = try queue.makeProducer(), consumer = try queue.makeConsumer()
    var sum: UInt64 = 0
    for round in 0..<rounds {
        let base = UInt64(round * Probe.capacity)
        for i in 0..<UInt64(Probe.capacity) { try producer.put(Message(sequence: base + i), timeout: .seconds(30)) }
        for _ in 0..<Probe.capacity { sum &+= try consumer.get(timeout: .seconds(30)).sequence }
    }
    return sum
}

@inline(never)
func probeSPSC8Batch(_ rounds: Int) -> UInt64 { orFail {
    let queue = try SPSCQueue<UInt64>(capacity: Probe.capacity)
    var producer = try queue.makeProducer(), consumer = try queue.makeConsumer()
    let buffer = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: 32)
    defer { buffer.deallocate() }
    var sum: UInt64 = 0
    for round in 0..<rounds {
        var next = UInt64(round * Probe.capacity)
        for _ in 0..<(Probe.capacity / 32) {
            for k in 0..<32 { buffer[k] = next; next &+= 1 }
            try producer.put(contentsOf: UnsafeBufferPointer(buffer), timeout: .seconds(30))
        }
        var taken = 0
        while taken < Probe.capacity {
            let count = try consumer.get(into: buffer, timeout: .seconds(30))
            for k in 0..<count { sum &+= buffer[k] }
            taken += count
        }
    }
    return sum
} }

@inline(never)
func probeMPMC8(_ rounds: Int) -> UInt64 { orFail {
    let queue = try Queue<UInt64>(capacity: Probe.capacity)
    var sum: UInt64 = 0
    for round in 0..<rounds {
        let base = UInt64(round * Probe.capacity)
        for i in 0..<UInt64(Probe.capacity) { try queue.put(base + i, timeout: .seconds(30)) }
        for _ in 0..<Probe.capacity { sum &+= try queue.get(timeout: .seconds(30)) }
    }
    return sum
} }

@inline(never)
func probeConnection64(_ rounds: Int) -> UInt64 { orFail {
    // 8,192 messages of 64 bytes fit a 1 MiB ring with their frames.
    let pipe = try Pipe(duplex: false, maxMessageSize: 64, capacity: 1 << 20)
    let (receiver, sender) = (try pipe.connection(.first), try pipe.connection(.second))
    let message = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 64)
    defer { message.deallocate() }
    message.initializeMemory(as: UInt8.self, repeating: 0x5A)
    var sum: UInt64 = 0
    for round in 0..<rounds {
        let base = UInt64(round * Probe.capacity)
        for i in 0..<UInt64(Probe.capacity) {
            message.storeBytes(of: base + i, as: UInt64.self)
            try sender.send(bytes: UnsafeRawBufferPointer(message), timeout: .seconds(30))
        }
        for _ in 0..<Probe.capacity {
            _ = try receiver.receive(into: message, timeout: .seconds(30))
            sum &+= message.load(as: UInt64.self)
        }
    }
    return sum
} }

/// The C ring at `itemSize`, filled and drained as the Swift probes do.
@inline(__always)
func probeReference(_ rounds: Int, itemSize: Int, batch: UInt64) -> UInt64 {
    let ring = UnsafeMutableRawPointer.allocate(
        byteCount: shmipc_ref_spsc_size(UInt64(Probe.capacity), UInt64(itemSize)), alignment: 128
    ).assumingMemoryBound(to: shmipc_ref_spsc.self)
    defer { ring.deallocate() }
    shmipc_ref_spsc_init(ring, UInt64(Probe.capacity), UInt64(itemSize))
    var sum: UInt64 = 0
    for _ in 0..<rounds {
        var checksum: UInt64 = 0
        _ = shmipc_ref_spsc_produce(ring, UInt64(Probe.capacity), batch, 0)
        _ = shmipc_ref_spsc_consume(ring, UInt64(Probe.capacity), batch, 0, &checksum)
        sum &+= checksum
    }
    return sum
}

@inline(never)
func probeReferenceSPSC8(_ rounds: Int) -> UInt64 { probeReference(rounds, itemSize: 8, batch: 1) }

@inline(never)
func probeReferenceSPSC64(_ rounds: Int) -> UInt64 { probeReference(rounds, itemSize: 64, batch: 1) }

@inline(never)
func probeReferenceSPSCBatch(_ rounds: Int) -> UInt64 { probeReference(rounds, itemSize: 8, batch: 32) }

@inline(never)
func probeReferenceMPMC(_ rounds: Int) -> UInt64 {
    let queue = UnsafeMutableRawPointer.allocate(byteCount: shmipc_ref_mpmc_size(UInt64(Probe.capacity)), alignment: 128)
        .assumingMemoryBound(to: shmipc_ref_mpmc.self)
    defer { queue.deallocate() }
    shmipc_ref_mpmc_init(queue, UInt64(Probe.capacity))
    var sum: UInt64 = 0
    for _ in 0..<rounds {
        var checksum: UInt64 = 0
        _ = shmipc_ref_mpmc_produce(queue, UInt64(Probe.capacity), 0)
        _ = shmipc_ref_mpmc_consume(queue, UInt64(Probe.capacity), 0, &checksum)
        sum &+= checksum
    }
    return sum
}
