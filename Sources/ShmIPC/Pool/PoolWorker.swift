internal import SystemPackage

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
    /// The descriptors a worker is handed before the pool's `sharing:`: its pipe, the doorbell.
    static let ownDescriptors = 2

    static let entry = Entry("shmipc.pool-worker") { (configuration: PoolWorkerConfiguration, context: ChildContext) in
        let pipe = try Pipe(
            inheriting: context.descriptors[0], maxMessageSize: configuration.maxMessageSize, capacity: configuration.ringCapacity)
        let doorbell = try Doorbell(inheriting: context.descriptors[1])
        // The default strategy: an idle worker polls ~13 µs before it sleeps, so an `apply`
        // costs ~2 µs instead of ~12 µs for a parked worker's wake-up. With 2 workers and the
        // driver on 2 CPUs, polling 0 or 512 times measured the same `pool.imap.chunk1`
        // (594/625k vs 581/644k tasks/s) once the window was 1024 (Notes/0004).
        let connection = try pipe.connection(.second)
        // Tasks and the initializer see the pool's `sharing:` (after the worker's own), lent.
        let shared = LentDescriptors(Array(context.descriptors.dropFirst(ownDescriptors)))
        let workerContext = ChildContext(descriptors: shared.originals, name: context.name, lender: shared.isEmpty ? nil : shared)
        if let name = configuration.initializer {
            do {
                let initializer = try EntryRegistry.entry(named: name)
                _ = try configuration.initializerArgument.withUnsafeBytes {
                    try initializer.run(encoded: $0, context: workerContext)
                }
            } catch {
                // Tell the pool why, so it can tell a failing initializer from a crash.
                let report = PoolWire.ResultMessage(id: 0, .initializerFailed, String(describing: error))
                _ = report.bytes.withUnsafeBytes { try? connection.trySend(bytes: $0) }
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
                    try connection.send(bytes: result.bytes)
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
        _ message: UnsafeRawBufferPointer, entries: inout [String: any EncodedEntry], context: ChildContext, limit: Int
    ) -> PoolWire.ResultMessage {
        let task: PoolWire.Task
        switch PoolWire.parseTask(message) {
        case .success(let value): task = value
        case .failure(let refusal): return refusal
        }
        let entry: any EncodedEntry
        if let known = entries[task.entry] {
            entry = known
        } else {
            do { entry = try EntryRegistry.entry(named: task.entry) } catch {
                return PoolWire.ResultMessage(id: task.id, .unrunnable, "\(error) in the worker")
            }
            entries[task.entry] = entry
        }
        let outputs: [UInt8]
        do {
            outputs = try entry.runChunk(encoded: task.arguments, context: context)
        } catch let error as ChannelError {
            return PoolWire.ResultMessage(id: task.id, .unrunnable, "\(error)")
        } catch {
            return PoolWire.ResultMessage(id: task.id, .threw, String(describing: error))
        }
        guard outputs.count + 9 <= limit else {
            return PoolWire.ResultMessage(id: task.id, .unrunnable, "\(PoolError.messageTooLarge(size: outputs.count + 9, limit: limit))")
        }
        return PoolWire.ResultMessage(id: task.id, .ok, payload: outputs)
    }
}

/// The pool's `sharing:` descriptors, lent to each call of a task's entry (and of the
/// initializer) as duplicates (``ChildContext/lending(_:)``):
/// an object a task attaches with `init(inheriting:)` owns its descriptor and closes it when
/// it ends, and the originals must outlive every task. After the task, a duplicate still open
/// on the same file (one the task did not attach) is closed; a number the task's object
/// closed and something else reused is left alone. No syscall when nothing is shared.
final class LentDescriptors: Sendable {
    // A class: a `ChildContext` carries it by one reference, whatever it holds.
    let originals: [FileDescriptor]
    private let identities: [Sys.FileIdentity?]

    init(_ originals: [FileDescriptor]) {
        self.originals = originals
        identities = originals.map { fd in (try? Sys.fstat(fd).get())?.identity }
    }

    var isEmpty: Bool { originals.isEmpty }

    /// Duplicates of the originals (an original that cannot be duplicated is lent as is).
    func lend() -> [FileDescriptor] {
        originals.map { fd in (try? Sys.duplicate(fd, atLeast: 3).get()) ?? fd }
    }

    /// Closes what `lend()` returned that the task left open.
    func reclaim(_ lent: [FileDescriptor]) {
        for (index, fd) in lent.enumerated() where fd != originals[index] {
            guard let identity = identities[index], case .success(let status) = Sys.fstat(fd), status.identity == identity else { continue }
            Sys.close(fd)
        }
    }
}
