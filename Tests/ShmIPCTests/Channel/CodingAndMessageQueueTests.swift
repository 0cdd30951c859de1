import Foundation
import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import Testing

struct Order: Codable, Equatable {
    enum Side: String, Codable { case buy, sell }
    enum Kind: Codable, Equatable { case market, limit(price: Double), stop(Int, note: String?) }
    var id: Int
    var symbol: String
    var side: Side
    var kind: Kind
    var quantity: UInt32
    var tags: [String]
    var fills: [Int: Double]
    var attributes: [String: [Int8]]
    var note: String?
    var parent: Int?
    var flags: Set<Bool>
    var nested: [[Order.Side?]]
}

/// A coder other than the default: JSON from Foundation.
struct JSONCoder: MessageCoder {
    func encode<T: Encodable>(_ value: T) throws(ChannelError) -> [UInt8] {
        do { return Array(try JSONEncoder().encode(value)) } catch { throw .encodingFailed("\(error)") }
    }
    func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws(ChannelError) -> T {
        do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch { throw .decodingFailed("\(error)") }
    }
}

extension ShmIPCTests {
    @Suite struct CodingTests {
        static let order = Order(
            id: -42, symbol: "ÉTF€-✓", side: .sell, kind: .stop(7, note: nil), quantity: .max, tags: ["", "a b"],
            fills: [1: 1.5, -2: .infinity], attributes: ["x": [-128, 127], "": []], note: nil, parent: 9,
            flags: [true], nested: [[.buy, nil], [], [nil]])

        /// An Int that encodes itself through a single-value container: the element-by-element
        /// path that packed arrays must match byte for byte.
        struct Boxed<Value: Codable & Equatable>: Codable, Equatable {
            let value: Value
            init(_ value: Value) { self.value = value }
            init(from decoder: any Decoder) throws { value = try decoder.singleValueContainer().decode(Value.self) }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.singleValueContainer()
                try container.encode(value)
            }
        }

        @Test func numberArraysAreCopiedWholeInTheSameFormatAsElementByElement() throws {
            let sut = BinaryMessageCoder()
            let ints = [0, 1, -1, .max, .min, 42]
            #expect(try sut.encode(ints) == sut.encode(ints.map(Boxed.init)))
            #expect(try sut.encode(ints).count == 4 + 8 * ints.count)
            let doubles = [0.5, -.infinity, .pi]
            #expect(try sut.encode(doubles) == sut.encode(doubles.map(Boxed.init)))
            let bytes: [UInt8] = [0, 255, 7]
            #expect(try sut.encode(bytes) == sut.encode(bytes.map(Boxed.init)))
            #expect(try sut.encode([Int32(-5)]) == sut.encode([Boxed(Int32(-5))]))
            // Either form decodes as the other.
            let packed = try sut.encode(ints), boxed = try sut.encode(ints.map(Boxed.init))
            #expect(try packed.withUnsafeBytes { try sut.decode([Boxed<Int>].self, from: $0) } == ints.map(Boxed.init))
            #expect(try boxed.withUnsafeBytes { try sut.decode([Int].self, from: $0) } == ints)
            #expect(try sut.encode(doubles).withUnsafeBytes { try sut.decode([Double].self, from: $0) } == doubles)
            #expect(try sut.encode([Int]()).withUnsafeBytes { try sut.decode([Int].self, from: $0) } == [])
            // A count that runs past the end, and a cut last element, fail to decode.
            var lying = packed
            lying.replaceSubrange(0..<4, with: [0xFF, 0xFF, 0xFF, 0x00])
            for broken in [lying, Array(packed.dropLast())] {
                #expect(throws: ChannelError.self) { try broken.withUnsafeBytes { try sut.decode([Int].self, from: $0) } }
            }
        }

        @Test func valuesRoundTripThroughAConnection() throws {
            let pipe = try Pipe(maxMessageSize: 4096)
            let first = try pipe.connection(.first), second = try pipe.connection(.second)
            try second.send(Self.order)
            try second.send(Order.Kind.limit(price: -0.5))
            try second.send([UInt8]([1, 2]))
            try second.send(Optional<Int>.none)
            #expect(try first.receive(as: Order.self) == Self.order)
            #expect(try first.receive(as: Order.Kind.self) == .limit(price: -0.5))
            #expect(try first.receive(as: [UInt8].self) == [1, 2])
            #expect(try first.receive(as: Int?.self) == nil)
        }

        @Test func theBinaryFormatIsCompact() throws {
            struct Point: Codable { var x: Int, y: Int, z: Int }
            #expect(try BinaryMessageCoder().encode(Point(x: 1, y: 2, z: 3)).count == 30)
            #expect(try BinaryMessageCoder().encode("héllo").count == 7)
            #expect(try BinaryMessageCoder().encode([Int32(1), 2]).count == 4 + 8)
        }

        @Test func bytesThatDoNotDecodeAreATypedError() throws {
            let coder = BinaryMessageCoder()
            func decode<T: Decodable>(_ bytes: [UInt8], as type: T.Type) -> ChannelError? {
                bytes.withUnsafeBytes { raw in
                    do throws(ChannelError) { _ = try coder.decode(type, from: raw); return nil } catch { return error }
                }
            }
            let good = try coder.encode(Self.order)
            for cut in [0, 1, 8, good.count / 2, good.count - 1] {
                #expect(decode(Array(good[..<cut]), as: Order.self) != nil, "cut at \(cut)")
            }
            #expect(decode(good + [0], as: Order.self) != nil)  // left-over bytes
            struct Other: Codable { var id: Int, name: String }
            #expect(decode(good, as: Other.self) != nil)  // another type: its field names differ
            #expect(decode([2], as: Bool.self) != nil)
            #expect(decode([2, 0xC3, 0x28], as: String.self) != nil)  // invalid UTF-8
            #expect(decode([0xFF, 0xFF, 0xFF, 0xFF], as: [Int].self) != nil)  // a count past the end
            #expect(decode([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], as: String.self) != nil)
            if case .decodingFailed = decode([7], as: Int?.self) {} else { Issue.record("a presence byte of 7 decoded") }
            // Random bytes never crash the decoder.
            var random: UInt64 = 1
            for _ in 0..<20_000 {
                random = MessageStream.mix(random)
                let bytes = (0..<Int(random % 64)).map { UInt8(truncatingIfNeeded: MessageStream.mix(random &+ UInt64($0))) }
                _ = decode(bytes, as: Order.self)
            }
        }

        @Test func aConnectionReportsDecodeErrorsAndGoesOn() throws {
            let pipe = try Pipe(maxMessageSize: 256)
            let first = try pipe.connection(.first), second = try pipe.connection(.second)
            try second.send(bytes: [9])
            try second.send(7 as Int)
            #expect(throws: ChannelError.self) { _ = try first.receive(as: Order.self) }
            #expect(try first.receive(as: Int.self) == 7)
        }

        @Test func theCoderIsPluggable() throws {
            let pipe = try Pipe(maxMessageSize: 4096)
            let first = try pipe.connection(.first), second = try pipe.connection(.second)
            first.coder = JSONCoder()
            second.coder = JSONCoder()
            var order = Self.order
            order.fills[-2] = 1e300  // JSON has no infinity
            try second.send(order)
            #expect(try first.receiveInPlace { String(decoding: $0, as: UTF8.self) }.contains("\"symbol\""))
            try second.send(order)
            #expect(try first.receive(as: Order.self) == order)
        }
    }

    @Suite struct MessageQueueTests {
        /// `MessageQueue()` is Python's `Queue()` for strings and small values: default sizes,
        /// `full()`/`empty()`.
        @Test func defaultSizesHoldTutorialMessagesAndSayWhenFull() throws {
            let queue = try MessageQueue()
            #expect(queue.capacity == MessageQueue.defaultCapacity && queue.isEmpty && !queue.isFull)
            for i in 0..<queue.capacity { try queue.put("message \(i)") }
            #expect(queue.isFull && !queue.isEmpty)
            #expect(throws: ChannelError.timedOut) { try queue.put("one too many", timeout: .milliseconds(10)) }
            #expect(try queue.get(as: String.self, timeout: .seconds(1)) == "message 0")
            #expect(!queue.isFull)
            let limit = MessageQueue.defaultMaxMessageSize
            try queue.put(bytes: [UInt8](repeating: 1, count: limit), timeout: .seconds(1))
            #expect(throws: ChannelError.messageTooLarge(size: limit + 1, limit: limit)) {
                try queue.put(bytes: [UInt8](repeating: 1, count: limit + 1), timeout: .seconds(1))
            }
        }

        /// Python's `Queue(5)` of strings holds 5 (the ring beneath has 8 slots).
        @Test func aMessageQueueHoldsExactlyItsCapacity() throws {
            let queue = try MessageQueue(maxMessageSize: 64, capacity: 5, waitStrategy: .park)
            #expect(queue.capacity == 5)
            for i in 0..<5 { try queue.put("item \(i)", timeout: .seconds(1)) }
            #expect(queue.isFull && queue.count == 5)
            #expect(try [UInt8]([1]).withUnsafeBytes { try queue.tryPut(bytes: $0) } == false)
            #expect(throws: ChannelError.timedOut) { try queue.put("one too many", timeout: .milliseconds(20)) }
            #expect(try queue.get(as: String.self, timeout: .seconds(1)) == "item 0")
            try queue.put("item 5", timeout: .seconds(1))
            for i in 1...5 { #expect(try queue.get(as: String.self, timeout: .seconds(1)) == "item \(i)") }
            #expect(queue.isEmpty)
        }

        /// A batch put of more than the queue holds times out after a prefix; `get(upTo:)`
        /// takes what is ready, in order, and ends at the end of the stream.
        @Test func aMessageQueueBatchIsAPrefixAndGetUpToTakesWhatIsReady() throws {
            let queue = try MessageQueue(maxMessageSize: 64, capacity: 5, waitStrategy: .park)
            let messages = (0..<8).map { [UInt8](repeating: UInt8($0), count: $0 + 1) }
            #expect(throws: ChannelError.timedOut) { try queue.put(contentsOf: messages, timeout: .milliseconds(20)) }
            #expect(try queue.get(upTo: 3, timeout: .seconds(1)) == Array(messages[0..<3]))
            try queue.put(contentsOf: messages[5...], timeout: .seconds(1))
            #expect(try queue.get(upTo: 10, timeout: .seconds(1)) == Array(messages[3..<5]) + Array(messages[5...]))
            #expect(throws: ChannelError.timedOut) { _ = try queue.get(upTo: 2, timeout: .milliseconds(20)) }
            try queue.put(contentsOf: [[9]])
            queue.close()
            #expect(try queue.get(upTo: 2, timeout: .seconds(1)) == [[9]])
            #expect(throws: ChannelError.endOfStream) { _ = try queue.get(upTo: 2, timeout: .seconds(1)) }
        }

        @Test func messagesOfEdgeSizesRoundTrip() throws {
            let queue = try MessageQueue(maxMessageSize: 100, capacity: 4)
            for size in [0, 1, 99, 100] { try queue.put(bytes: [UInt8](repeating: UInt8(size), count: size)) }
            #expect(throws: ChannelError.messageTooLarge(size: 101, limit: 100)) { try queue.put(bytes: [UInt8](repeating: 0, count: 101)) }
            for size in [0, 1, 99, 100] { #expect(try queue.get(timeout: .seconds(1)) == [UInt8](repeating: UInt8(size), count: size)) }
            #expect(try queue.tryGet() == nil)
        }

        @Test func aTooSmallBufferLeavesTheMessageAndFullQueuesBlockOrFail() throws {
            let queue = try MessageQueue(maxMessageSize: 16, capacity: 2, waitStrategy: .park)
            try queue.put(bytes: Array(0..<10))
            try queue.put(Order.Side.buy)
            #expect(try [UInt8]().withUnsafeBytes { try queue.tryPut(bytes: $0) } == false)
            #expect(throws: ChannelError.timedOut) { try queue.put(bytes: [1], timeout: .milliseconds(20)) }
            let small = UnsafeMutableRawBufferPointer.allocate(byteCount: 4, alignment: 1)
            defer { small.deallocate() }
            #expect(throws: ChannelError.bufferTooSmall(needed: 10)) { _ = try queue.get(into: small) }
            #expect(try queue.get() == Array(0..<10))
            #expect(try queue.get(as: Order.Side.self) == .buy)
            #expect(throws: ChannelError.timedOut) { _ = try queue.get(timeout: .milliseconds(20)) }
        }

        @Test func closingDrainsThenEndsTheStream() throws {
            let queue = try MessageQueue(maxMessageSize: 16, capacity: 4)
            try queue.put(bytes: [1])
            queue.close()
            #expect(throws: ChannelError.closed) { try queue.put(bytes: [2]) }
            #expect(try queue.get(timeout: .seconds(1)) == [1])
            #expect(throws: ChannelError.endOfStream) { _ = try queue.get(timeout: .seconds(1)) }
        }

        @Test func aLengthOverTheLimitIsReportedAsCorruption() throws {
            let queue = try MessageQueue(maxMessageSize: 16, capacity: 2)
            try queue.put(bytes: [1, 2, 3])
            // What a hostile peer could write into the published slot's length word.
            (queue.control.slots + 16).storeBytes(of: UInt64(UInt32.max), as: UInt64.self)
            if case .corrupted = Result(catching: { () throws(ChannelError) in try queue.get(timeout: .seconds(1)) }).failure {} else {
                Issue.record("a length of 2^32 - 1 was not reported")
            }
        }

        /// Two producer processes and this consumer, messages of 8 to 600 bytes through 64
        /// slots: every message arrives once, intact, each producer's in order.
        @Test func producersInOtherProcessesDeliverEveryMessageIntact() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let queue = try MessageQueue(name: name, mode: .createExclusive, maxMessageSize: 600, capacity: 64)
            let count = 100_000
            let producers = try [11, 12].map { seed in
                try Helper.start("mq-produce", [name.rawValue, "600", "64", "\(count)", "\(seed)", "8", "600"])
            }
            let streams = [11: MessageStream(seed: 11, sizes: 8...600), 12: MessageStream(seed: 12, sizes: 8...600)]
            var next = [11: 0, 12: 0], bad = 0
            for _ in 0..<(2 * count) {
                let ok: Bool
                do {
                    ok = try queue.get(as: Probe.self, streams: streams, next: &next)
                } catch {
                    Issue.record("after \(next): \(error); \(producers.map(\.output))")
                    break
                }
                if !ok { bad += 1 }
            }
            for producer in producers { #expect(Helper.finish(producer, timeout: .seconds(300)) == .exited(0), "\(producer.output)") }
            #expect(next == [11: count, 12: count])
            #expect(bad == 0)
            try queue.unlink()
        }
    }
}

/// Marker for the stream-checking get below.
enum Probe {}

extension MessageQueue {
    /// Takes one message and checks it against the next message of the producer it names.
    fileprivate func get(as _: Probe.Type, streams: [Int: MessageStream], next: inout [Int: Int]) throws -> Bool {
        let bytes = try get(timeout: .seconds(60))
        // The first word is the producer's seed (top 16 bits) and the message's index.
        let word = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        let seed = Int(word >> 48), index = Int(word & 0xFFFF_FFFF_FFFF)
        guard let stream = streams[seed], next[seed] == index, bytes.count == stream.length(index),
              (8..<bytes.count).allSatisfy({ bytes[$0] == stream.byte(index, $0) })
        else { return false }
        next[seed]! += 1
        return true
    }
}

extension Result {
    var failure: Failure? { if case .failure(let error) = self { error } else { nil } }
}
