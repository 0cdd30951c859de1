import Glibc
@testable import ShmIPC
import SystemPackage
import Testing

extension ShmIPCTests {
    /// The hand-laid wire formats of Process/ and Pool/: round trips, and short or hostile
    /// bytes giving nil (never a read past the end).
    @Suite struct WireTests {
        @Test func forkServerMessagesRoundTrip() {
            let messages: [ForkServerMessage] = [
                .start, .started(pid: 4242), .failed(.tooManyOpenFiles),
                .ended(pid: 7, .exited(3)), .ended(pid: Int32.max, .signaled(SIGKILL)),
            ]
            for message in messages { #expect(ForkServerMessage(message.bytes) == message) }
        }

        @Test func truncatedOrUnknownForkServerMessagesAreRefused() {
            for message in [ForkServerMessage.started(pid: 1), .failed(.ioError), .ended(pid: 9, .exited(0))] {
                let bytes = message.bytes
                for length in 0..<bytes.count { #expect(ForkServerMessage(Array(bytes.prefix(length))) == nil) }
            }
            #expect(ForkServerMessage([]) == nil)
            #expect(ForkServerMessage([0]) == nil)
            #expect(ForkServerMessage([99, 1, 2, 3, 4]) == nil)
        }

        @Test func aPoolTaskParsesBackAndAShortOneIsRefusedWithItsReason() throws {
            var task = try PoolWire.task(header: PoolWire.header(entry: "t.square"), arguments: [3, 4])
            PoolWire.stamp(&task, id: 77)
            let parsed = try task.withUnsafeBytes { bytes in
                let task = try PoolWire.parseTask(bytes).get()
                return (task.id, task.entry, try BinaryMessageCoder().decode([Int].self, from: task.arguments))
            }
            #expect(parsed.0 == 77 && parsed.1 == "t.square" && parsed.2 == [3, 4])
            for length in 0..<(10 + "t.square".utf8.count) {
                let refusal = task.prefix(length).withUnsafeBytes { bytes -> PoolWire.ResultMessage? in
                    if case .failure(let refusal) = PoolWire.parseTask(bytes) { return refusal }
                    return nil
                }
                let reply = try #require(refusal).bytes.withUnsafeBytes { PoolWire.parseReply($0) }
                #expect(reply?.status == .unrunnable, "a task cut at \(length) bytes")
            }
        }

        @Test func aPoolReplyCarriesItsStatusAndAShortOneIsNone() throws {
            let cases: [(PoolWire.ResultMessage, Result<[UInt8], PoolError>)] = [
                (.init(id: 5, .ok, payload: [1, 2]), .success([1, 2])),
                (.init(id: 6, .threw, "boom"), .failure(.taskFailed("boom"))),
                (.init(id: 7, .unrunnable, "no entry"), .failure(.coding("no entry"))),
            ]
            for (message, expected) in cases {
                let reply = try #require(message.bytes.withUnsafeBytes { PoolWire.parseReply($0) })
                #expect(reply.result == expected)
                for length in 0..<9 { #expect(message.bytes.prefix(length).withUnsafeBytes { PoolWire.parseReply($0) } == nil) }
            }
            // An unknown status byte is a coding failure, not a crash.
            var forged = PoolWire.ResultMessage(id: 8, .ok, payload: [0]).bytes
            forged[8] = 200
            let reply = try #require(forged.withUnsafeBytes { PoolWire.parseReply($0) })
            #expect(reply.status == nil)
            #expect(reply.result == .failure(.coding("\u{0}")))
        }

        @Test func aWireReaderNeverReadsPastTheEnd() {
            let bytes: [UInt8] = [1, 0, 0, 0, 2]
            bytes.withUnsafeBytes { raw in
                var reader = WireReader(raw)
                #expect(reader.read(UInt32.self) == 1)
                #expect(reader.read(UInt32.self) == nil)
                #expect(reader.read(count: 2) == nil)
                #expect(reader.read(count: -1) == nil)
                #expect(reader.read(UInt8.self) == 2)
                #expect(reader.rest.isEmpty)
            }
        }

        @Test func signalsAndProcessIDsSayWhatTheyAre() {
            #expect(Signal.terminate.rawValue == SIGTERM && Signal.kill.rawValue == SIGKILL)
            #expect("\(Signal.terminate)" == "SIGTERM")
            #expect("\(Signal(rawValue: 63))" == "signal 63")
            #expect(ProcessID.current.rawValue == getpid())
            #expect(ProcessID(rawValue: 3) < ProcessID(rawValue: 4))
            #expect("\(ProcessID(rawValue: 42))" == "42")
        }
    }
}
