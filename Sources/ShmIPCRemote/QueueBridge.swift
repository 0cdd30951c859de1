internal import Crypto
internal import Foundation
internal import GRPCCore
public import ShmIPC

/// Forwards a local `SPSCQueue` into a queue another host exports, in batches over one
/// stream, each acknowledged by the server (iceoryx2's tunnel, Aeron's same API over the
/// network): local producers put into the SPSC queue as usual, and the bridge is its consumer.
///
/// ```swift
/// let outbox = try SPSCQueue<Tick>(name: "ticks-out", mode: .openOrCreate, capacity: 4096)
/// let remote = try await RemoteManager.connect(to: address, authKey: key).queue("ticks", of: Tick.self)
/// try await QueueBridge(name: "ticks to host B", from: outbox, to: remote).run()
/// ```
///
/// **The guarantee.** Killed at any instant and started again (with the same name, on the
/// same queue), a bridge neither loses nor duplicates an element, and keeps their order:
/// - it reads elements without taking them (`SPSCQueue.Consumer.peek(from:into:)`) and takes
///   them only once the server acknowledged them, so a bridge that dies leaves what it had not
///   seen acknowledged in the local queue, for the next one to send again;
/// - each element is numbered by its position in the local queue (the count of elements taken
///   before it plus one, which the take itself keeps exact across a crash), and the stream is
///   named by the bridge's name and the queue's identity; the server remembers the last
///   number it put per stream and skips what it already has, so a resend is put once.
///
/// What it does not cover: the server's own restart (its memory of the numbers goes with it,
/// so a resend after that is put again), and more than 4,096 streams on
/// one server. A wait for the server's room is the server's, as with any remote put.
public struct QueueBridge<Element: BitwiseCopyable & Codable & Sendable>: Sendable {
    public let name: String
    public let source: SPSCQueue<Element>
    public let destination: RemoteQueue<Element>
    /// Elements per batch, and batches sent before their acknowledgements come back.
    public let batchSize: Int
    public let window: Int

    public init(name: String, from source: SPSCQueue<Element>, to destination: RemoteQueue<Element>, batchSize: Int = 256, window: Int = 4) {
        precondition(batchSize > 0 && window > 0, "a batch holds an element, and one is in flight at least")
        self.name = name
        self.source = source
        self.destination = destination
        self.batchSize = batchSize
        self.window = window
    }

    /// The stream's name on the server: the bridge's name, the local queue's identity (its
    /// creator, so a queue made again is a new stream) and the destination's name.
    var streamID: Data {
        let identity = "shmipc.remote.v1 bridge\u{0}\(name)\u{0}\(source.creatorPID)\u{0}\(destination.name)"
        return Data(SHA256.hash(data: Data(identity.utf8)).prefix(16))
    }

    /// Forwards until the task is cancelled, or the local queue is closed and everything in
    /// it acknowledged (then it returns). A broken stream is opened again, waiting 50 ms to 5 s
    /// (doubling) between attempts. Throws `QueueError.roleTaken(pid:)` if another live
    /// consumer holds the local queue, and the errors that trying again cannot cure
    /// (``RemoteError/notFound(_:)``, ``RemoteError/typeMismatch(expected:found:)``,
    /// ``RemoteError/authenticationFailed``).
    public func run() async throws {
        var consumer = try source.makeConsumer()
        var backoff: Duration = .milliseconds(50)
        while true {
            try Task.checkCancellation()
            do {
                if try await forward(&consumer) { return }
                backoff = .milliseconds(50)
            } catch let error as RemoteError {
                switch error {
                case .notFound, .typeMismatch, .authenticationFailed, .decodingFailed, .refused: throw error
                default:
                    try await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(5))
                }
            }
        }
    }

    /// One stream: sends what is ready from the first unacknowledged element on, takes what
    /// the server acknowledges; true once the local queue is closed and all of it is through.
    private func forward(_ consumer: inout SPSCQueue<Element>.Consumer) async throws -> Bool {
        let manager = destination.manager
        let objects = manager.objectsClient
        let acks = AsyncBuffer<UInt64>(capacity: 4 * window + 16)
        let writers = AsyncBuffer<RPCWriter<Shmipc_Remote_V1_QueuePutBatch>>(capacity: 1)
        let ending = AsyncBuffer<Void>(capacity: 1)
        let call = Task {
            do {
                try await manager.stream { metadata, options in
                    try await objects.queuePutStream(metadata: metadata, options: options) { writer in
                        _ = writers.tryPut(writer)
                        _ = try? await ending.take(deadline: nil)  // the request stream lasts until told
                    } onResponse: { response in
                        for try await ack in response.messages { _ = await acks.put(ack.throughSequence) }
                    }
                }
                acks.finish(.endOfStream)
            } catch {
                let failure = RemoteConnection.remoteError(error)
                acks.finish(failure)
                writers.finish(failure)
            }
        }
        defer {
            ending.finish(.closed)
            call.cancel()
        }
        let writer = try await writers.take(deadline: .after(.seconds(60)))
        let buffer = UnsafeMutableBufferPointer<Element>.allocate(capacity: batchSize)
        defer { buffer.deallocate() }
        var sent = consumer.taken  // the position of the next element to send
        var batch = Shmipc_Remote_V1_QueuePutBatch.with {
            $0.name = destination.name
            $0.type = String(reflecting: Element.self)
            $0.streamID = streamID
        }
        func acknowledged(_ through: UInt64, _ consumer: inout SPSCQueue<Element>.Consumer) {
            // Sequence n is position n - 1: everything before position `through` is there.
            if through > consumer.taken { consumer.discard(through: min(through, sent)) }
        }
        while true {
            while let through = acks.tryTake() { acknowledged(through, &consumer) }
            let inFlight = sent - consumer.taken
            if inFlight >= UInt64(batchSize * window) {
                acknowledged(try await acks.take(deadline: nil), &consumer)
                continue
            }
            let count = consumer.peek(from: sent, into: buffer)
            if count > 0 {
                batch.firstSequence = sent + 1
                batch.packed = try manager.bytes(Array(buffer[..<count]))
                try await writer.write(batch)
                batch.name = ""
                batch.type = ""
                sent += UInt64(count)
                continue
            }
            if inFlight > 0 {
                // Nothing new to send: an acknowledgement, or a short wait before looking again.
                do { acknowledged(try await acks.take(deadline: .after(.milliseconds(2))), &consumer) } catch RemoteError.timedOut {}
                continue
            }
            do {
                try await consumer.waitForElement(at: sent, timeout: .milliseconds(100))
            } catch QueueError.timedOut {
            } catch QueueError.closed {
                return true  // closed, and everything in it acknowledged
            }
        }
    }
}
