import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import SystemPackage
import Testing

extension ShmIPCTests {
    /// kill -9 at random instants inside a Pipe's operations: the sending end written in place
    /// (a loan) or copied, the receiving end reading in place; each time a new process takes
    /// the dead one's end over.
    @Suite(.serialized) struct PipeChaosTests {
        static let limit = 4096
        static let capacity = 16 * 1024
        static let stream = MessageStream(seed: 0xC4A05, sizes: 0...4096)

        static func arguments(_ extra: [String]) -> [String] {
            ["10", "\(limit)", "\(capacity)"] + extra
        }

        /// The sender SIGKILLed at random instants, 100 times, and replaced by a process that
        /// continues from the message after the last one received: the messages received are
        /// exactly 0, 1, 2, … with every byte right (a record cut short is never committed:
        /// none torn, none twice, no gap), and the receiver never waits for a dead sender.
        @Test func aSenderKilledAtRandomInstantsNeverCommitsATornMessage() throws {
            let pipe = try Pipe(maxMessageSize: Self.limit, capacity: Self.capacity)
            let receiver = try pipe.connection(.first, waitStrategy: .spin)
            var random = SystemRandomNumberGenerator()
            var next = 0
            func drain(until deadline: Deadline?) throws {
                while true {
                    let message = try receiver.tryReceiveInPlace { bytes in Self.stream.matches(next, bytes) }
                    guard let message else {
                        if let deadline, !deadline.hasPassed { continue }
                        return
                    }
                    #expect(message, "message \(next) torn, out of order or not the next")
                    if !message { throw ChannelError.corrupted("stop") }
                    next += 1
                }
            }
            let kills = Chaos.kills(100)
            for round in 0..<kills {
                guard let sender = try Chaos.startRunning(
                    "pipe-chaos-send", Self.arguments(["\(next)", "\(Self.stream.seed)", "0", "4096"]),
                    descriptors: [(pipe.inheritableDescriptor!, 10)], round: round) else { return }
                try drain(until: .after(.microseconds(Int.random(in: 0..<3000, using: &random))))
                #expect(sender.kill() == .signaled(SIGKILL), "round \(round): \(sender.output)")
                try drain(until: nil)   // what it committed before it died; nothing after
            }
            print("pipe chaos (senders): \(kills) kills, \(next) messages")
            #expect(next >= kills)
        }

        /// The receiver SIGKILLed at random instants, 100 times, while this process sends, and
        /// replaced by a process that takes its end over: every message a receiver accepts is
        /// whole and the next one (the first after a kill may skip the one message the dead
        /// receiver had taken), and the sender is never wedged by the dead receiver.
        @Test func aReceiverKilledAtRandomInstantsLosesAtMostTheMessageItWasTaking() throws {
            let pipe = try Pipe(maxMessageSize: Self.limit, capacity: Self.capacity)
            let sender = try pipe.connection(.first, waitStrategy: .spin)
            let state = try SharedArray<UInt64>(count: 4, repeating: 0)
            var random = SystemRandomNumberGenerator()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.limit, alignment: 16)
            defer { buffer.deallocate() }
            var sent = 0
            func sendUntil(_ deadline: Deadline) throws {
                while !deadline.hasPassed {
                    let length = Self.stream.write(sent, into: buffer)
                    if try sender.trySend(bytes: UnsafeRawBufferPointer(rebasing: buffer[..<length])) { sent += 1 }
                }
            }
            let descriptors = [(pipe.inheritableDescriptor!, Int32(10)), (state.inheritableDescriptor!, Int32(11))]
            let arguments = Self.arguments(["\(Self.stream.seed)", "0", "4096", "11"])
            let kills = Chaos.kills(100)
            for round in 0..<kills {
                guard let receiver = try Chaos.startRunning("pipe-chaos-receive", arguments, descriptors: descriptors, round: round) else { return }
                try sendUntil(.after(.microseconds(Int.random(in: 0..<3000, using: &random))))
                #expect(receiver.kill() == .signaled(SIGKILL), "round \(round): \(receiver.output)")
                #expect(state[1] == 0, "round \(round): \(receiver.output)")
            }
            // A last receiver takes everything that is left.
            guard let last = try Chaos.startRunning("pipe-chaos-receive", arguments, descriptors: descriptors, round: kills) else { return }
            let deadline = Deadline.after(.seconds(60))
            while state[0] < UInt64(sent), !deadline.hasPassed { Sys.sleep(.milliseconds(1)) }
            #expect(state[0] == UInt64(sent), "\(last.output)")
            #expect(last.kill() == .signaled(SIGKILL), "\(last.output)")
            #expect(state[1] == 0)
            #expect(state[2] <= UInt64(kills))
            print("pipe chaos (receivers): \(kills) kills, \(sent) messages sent, \(state[2]) lost with a killed receiver")
        }
    }
}
