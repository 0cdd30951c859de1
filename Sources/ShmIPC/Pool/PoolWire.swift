/// The messages between a ``Pool`` and its workers, one duplex ``Pipe`` per worker: the one
/// place their bytes are laid out, written and parsed (with ``WireWriter``/``WireReader``).
///
/// A task: task id (8 bytes), entry name length (2) and name, then the chunk's arguments as a
/// ``BinaryMessageCoder`` array. A result: task id (8), status (1), then the outputs as an
/// array, or the error's description in UTF-8.
@usableFromInline
enum PoolWire {
    /// A result's status byte.
    enum Status: UInt8 {
        case ok = 0
        /// The task threw: the payload is the error's description.
        case threw = 1
        /// The chunk could not be run (an unknown entry, bytes that do not decode, outputs
        /// too large): the payload says why.
        case unrunnable = 2
        /// Sent once, with task id 0, by a worker whose initializer threw, just before it exits.
        case initializerFailed = 3
    }

    // MARK: tasks

    /// A task message's header for `entry`: id 0 (the pool writes it at submission), the name.
    @usableFromInline static func header(entry: String) -> [UInt8] {
        let name = Array(entry.utf8)
        var writer = WireWriter(capacity: 10 + name.count)
        writer.append(UInt64(0))
        writer.append(UInt16(name.count))
        writer.append(contentsOf: name)
        return writer.bytes
    }

    /// A task message: `header`, then `arguments` encoded after it, in one buffer.
    @inlinable static func task<Argument: Encodable>(header: [UInt8], arguments: [Argument]) throws(ChannelError) -> [UInt8] {
        try BinaryMessageCoder().encode(arguments, after: header)
    }

    /// Writes the task id the pool gives a task at submission.
    static func stamp(_ message: inout [UInt8], id: UInt64) {
        message.withUnsafeMutableBytes { $0.storeBytes(of: id.littleEndian, as: UInt64.self) }
    }

    /// A task as a worker reads it, in place in its ring.
    struct Task {
        var id: UInt64
        var entry: String
        var arguments: UnsafeRawBufferPointer
    }

    /// The task in `message`, or the result message that says why it is none.
    static func parseTask(_ message: UnsafeRawBufferPointer) -> Result<Task, ResultMessage> {
        var reader = WireReader(message)
        guard let id = reader.read(UInt64.self), let length = reader.read(UInt16.self) else {
            return .failure(ResultMessage(id: 0, .unrunnable, "a task of \(message.count) bytes"))
        }
        guard let name = reader.read(count: Int(length)) else {
            return .failure(ResultMessage(id: id, .unrunnable, "a truncated task"))
        }
        return .success(Task(id: id, entry: String(decoding: name, as: UTF8.self), arguments: reader.rest))
    }

    // MARK: results

    /// A result message, as a worker writes it.
    struct ResultMessage: Error {
        var bytes: [UInt8]

        init(id: UInt64, _ status: Status, payload: [UInt8]) {
            var writer = WireWriter(capacity: 9 + payload.count)
            writer.append(id)
            writer.append(status.rawValue)
            writer.append(contentsOf: payload)
            bytes = writer.bytes
        }

        init(id: UInt64, _ status: Status, _ text: String) { self.init(id: id, status, payload: Array(text.utf8)) }
    }

    /// A result as the pool reads it, in place in its ring.
    struct Reply {
        var id: UInt64
        var status: Status?
        var payload: UnsafeRawBufferPointer

        var text: String { String(decoding: payload, as: UTF8.self) }

        /// What the task's job receives: the outputs' bytes, or why there are none.
        var result: Result<[UInt8], PoolError> {
            switch status {
            case .ok: .success([UInt8](payload))
            case .threw: .failure(.taskFailed(text))
            default: .failure(.coding(text))
            }
        }
    }

    /// The reply in `message`, or nil if it is too short to be one.
    static func parseReply(_ message: UnsafeRawBufferPointer) -> Reply? {
        var reader = WireReader(message)
        guard let id = reader.read(UInt64.self), let status = reader.read(UInt8.self) else { return nil }
        return Reply(id: id, status: Status(rawValue: status), payload: reader.rest)
    }

    /// The outputs a chunk's result holds.
    @inlinable
    static func outputs<Output: Decodable>(_ result: Result<[UInt8], PoolError>, _: Output.Type) throws(PoolError) -> [Output] {
        let bytes = try result.get()
        var outputs: [Output] = []
        do {
            try withBytes(of: bytes) { raw throws(ChannelError) in outputs = try BinaryMessageCoder().decode([Output].self, from: raw) }
        } catch {
            throw .coding("\(error)")
        }
        return outputs
    }

    /// The one output of a single-task result.
    static func output<Output: Decodable>(_ result: Result<[UInt8], PoolError>, _ type: Output.Type) throws(PoolError) -> Output {
        let outputs = try outputs(result, type)
        guard outputs.count == 1 else { throw .coding("\(outputs.count) outputs for one task") }
        return outputs[0]
    }
}
