/// The messages between a ``Pool`` and its workers, one duplex ``Pipe`` per worker.
///
/// A task: task id (8 bytes), entry name length (2) and name, then the chunk's arguments as a
/// ``BinaryMessageCoder`` array. A result: task id (8), status (1: 0 ok, 1 the task threw,
/// 2 the chunk could not be run), then the outputs as an array, or the error's description
/// in UTF-8.
@usableFromInline
enum PoolWire {
    static let ok: UInt8 = 0
    static let threw: UInt8 = 1
    static let unrunnable: UInt8 = 2
    /// Sent once, with task id 0, by a worker whose initializer threw, just before it exits.
    static let initializerFailed: UInt8 = 3

    /// A task message's header for `entry`: id 0 (the pool writes it at submission), the name.
    @usableFromInline static func header(entry: String) -> [UInt8] {
        let name = Array(entry.utf8)
        var header = [UInt8](repeating: 0, count: 10)
        header.withUnsafeMutableBytes { $0.storeBytes(of: UInt16(name.count).littleEndian, toByteOffset: 8, as: UInt16.self) }
        return header + name
    }

    /// A task message: `header`, then `arguments` encoded after it, in one buffer.
    @inlinable static func task<Argument: Encodable>(header: [UInt8], arguments: [Argument]) throws(ChannelError) -> [UInt8] {
        try BinaryMessageCoder().encode(arguments, after: header)
    }

    static func result(id: UInt64, status: UInt8, payload: [UInt8]) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(9 + payload.count)
        withUnsafeBytes(of: id.littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(status)
        bytes += payload
        return bytes
    }

    static func taskID(of message: UnsafeRawBufferPointer) -> UInt64? {
        message.count >= 8 ? UInt64(littleEndian: message.loadUnaligned(as: UInt64.self)) : nil
    }
}

/// How a worker is set up (its entry's argument).
struct PoolWorkerConfiguration: Codable, Sendable {
    var maxMessageSize: Int
    var ringCapacity: Int
    var maxTasks: Int?
    var initializer: String?
    var initializerArgument: [UInt8]
}

/// The worker process's loop: run tasks until the pool closes the pipe (or `maxTasks` ran).
enum PoolWorker {
    static let entry = Entry("shmipc.pool-worker") { (configuration: PoolWorkerConfiguration, context: ChildContext) in
        let pipe = try Pipe(
            inheriting: context.descriptors[0], maxMessageSize: configuration.maxMessageSize, capacity: configuration.ringCapacity)
        let doorbell = try Doorbell(inheriting: context.descriptors[1])
        // The default strategy: an idle worker polls ~13 µs before it sleeps, so an `apply`
        // costs ~2 µs instead of ~12 µs for a parked worker's wake-up. With 2 workers and the
        // driver on 2 CPUs, polling 0 or 512 times measured the same `pool.imap.chunk1`
        // (594/625k vs 581/644k tasks/s) once the window was 1024 (Notes/0004).
        let connection = try pipe.connection(.second)
        let workerContext = ChildContext(descriptors: [], name: context.name)
        if let name = configuration.initializer {
            do {
                let initializer = try Multiprocessing.entry(named: name)
                _ = try configuration.initializerArgument.withUnsafeBytes {
                    try initializer.run(encoded: $0, context: workerContext)
                }
            } catch {
                // Tell the pool why, so it can tell a failing initializer from a crash.
                let report = PoolWire.result(id: 0, status: PoolWire.initializerFailed, payload: Array(String(describing: error).utf8))
                _ = report.withUnsafeBytes { try? connection.trySend(bytes: $0) }
                doorbell.ring()
                throw error
            }
        }
        var entries: [String: any EncodedEntry] = [:]
        var done = 0
        while configuration.maxTasks.map({ done < $0 }) ?? true {
            // The task is read where it lies in the ring, and answered before it is freed.
            do {
                try connection.receiveInPlace { task in
                    let result = run(task, entries: &entries, context: workerContext, limit: configuration.maxMessageSize)
                    try connection.send(bytes: result)
                }
            } catch ChannelError.endOfStream {
                return  // the pool closed this worker's pipe
            }
            doorbell.ring()
            done += 1
        }
    }

    /// Runs one task message; the result message.
    static func run(
        _ task: UnsafeRawBufferPointer, entries: inout [String: any EncodedEntry], context: ChildContext, limit: Int
    ) -> [UInt8] {
        guard task.count >= 10 else { return PoolWire.result(id: 0, status: PoolWire.unrunnable, payload: Array("a task of \(task.count) bytes".utf8)) }
        let id = UInt64(littleEndian: task.loadUnaligned(as: UInt64.self))
        let nameLength = Int(UInt16(littleEndian: task.loadUnaligned(fromByteOffset: 8, as: UInt16.self)))
        guard task.count >= 10 + nameLength else {
            return PoolWire.result(id: id, status: PoolWire.unrunnable, payload: Array("a truncated task".utf8))
        }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: task[10..<(10 + nameLength)]), as: UTF8.self)
        let arguments = UnsafeRawBufferPointer(rebasing: task[(10 + nameLength)...])
        let entry: any EncodedEntry
        if let known = entries[name] {
            entry = known
        } else {
            do { entry = try Multiprocessing.entry(named: name) } catch {
                return PoolWire.result(id: id, status: PoolWire.unrunnable, payload: Array("\(error) in the worker".utf8))
            }
            entries[name] = entry
        }
        let outputs: [UInt8]
        do {
            outputs = try entry.runChunk(encoded: arguments, context: context)
        } catch let error as ChannelError {
            return PoolWire.result(id: id, status: PoolWire.unrunnable, payload: Array("\(error)".utf8))
        } catch {
            return PoolWire.result(id: id, status: PoolWire.threw, payload: Array(String(describing: error).utf8))
        }
        guard outputs.count + 9 <= limit else {
            return PoolWire.result(
                id: id, status: PoolWire.unrunnable, payload: Array("\(PoolError.messageTooLarge(size: outputs.count + 9, limit: limit))".utf8))
        }
        return PoolWire.result(id: id, status: PoolWire.ok, payload: outputs)
    }
}
