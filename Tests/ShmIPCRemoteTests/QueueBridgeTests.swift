import Foundation
@testable import ShmIPC
@testable import ShmIPCRemote
import SystemPackage
import Testing

/// A bridge from a local SPSC queue into a remote queue, SIGKILLed at random instants and
/// started again, many times: the remote queue ends up with every element once, in order.
@Suite struct QueueBridgeTests {
    @Test func aBridgeKilledAtRandomInstantsLosesAndDuplicatesNothing() async throws {
        let count: UInt64 = 30_000, kills = 200, capacity = 1024
        let sink = try Queue<UInt64>(capacity: 65_536)
        let outboxName = try SegmentName("remote-bridge-\(getpid())")
        let outbox = try SPSCQueue<UInt64>(name: outboxName, mode: .createExclusive, capacity: capacity)
        defer { try? outbox.unlink() }
        try await RemoteObjectsTests.withClient({ $0.export("sink", sink) }) { _, address in
            let producing = Task {
                var producer = try outbox.makeProducer()
                for value in 1...count {
                    while !(try producer.tryPut(value)) { try await Task.sleep(for: .microseconds(200)) }
                }
                outbox.close()  // the bridge ends once everything is through
            }
            defer { producing.cancel() }
            let arguments = ["bridge", address.description, "objects secret", outboxName.rawValue, "\(capacity)", "sink", "test bridge"]
            var killedWhileBridging = 0
            for kill in 0..<kills {
                let bridge = try RemoteHelper.start(arguments)
                defer { bridge.end() }
                if kill % 2 == 0 {
                    // Anywhere: starting, connecting, or forwarding.
                    try await Task.sleep(for: .milliseconds(Int.random(in: 0...150)))
                } else if try await RemoteHelper.waitForLine(bridge.child, prefix: "bridging", timeout: RemoteObjectsTests.watchdog) != nil {
                    try await Task.sleep(for: .microseconds(Int.random(in: 0...30_000)))  // while forwarding
                    killedWhileBridging += 1
                }
                bridge.child.send(SIGKILL)
                _ = bridge.child.wait(deadline: .after(RemoteObjectsTests.watchdog))  // reaped: its consumer role is free
                #expect(bridge.child.status == .signaled(SIGKILL) || bridge.child.output.contains("bridged"),
                        "bridge \(kill) failed on its own:\n\(bridge.child.output)")
            }
            // The last one runs to the end.
            let last = try RemoteHelper.start(arguments)
            defer { last.end() }
            let ended = try await RemoteHelper.waitForLine(last.child, prefix: "bridged", timeout: RemoteObjectsTests.watchdog)
            #expect(ended != nil, "the last bridge did not finish:\n\(last.child.output)")
            try await producing.value
            var received: [UInt64] = []
            while let item = try sink.tryGet() { received.append(item) }
            #expect(received.count == Int(count), "\(received.count) of \(count) arrived")
            #expect(received == Array(1...count), "lost, duplicated or out of order")
            #expect(killedWhileBridging >= kills / 4)
        }
    }
}
