extension Pool {
    /// Runs a chunk that arrives already encoded: `entry`'s name, and its arguments as the
    /// ``BinaryMessageCoder`` form of an array of them (what a pool host on another machine
    /// sends a worker host, which runs it in its own local pool). `completion` runs on the
    /// pool's driving thread with the outputs' bytes, the same form of the array of outputs,
    /// or the error: ``PoolError/taskFailed(_:)`` if the entry threw, and
    /// ``PoolError/coding(_:)`` if the worker could not run the chunk (an entry it does not
    /// have, arguments that do not decode as its type). Nothing here decodes the bytes.
    package func submitEncoded(
        entry: String, arguments: [UInt8], completion: @escaping @Sendable (Result<[UInt8], PoolError>) -> Void
    ) throws(PoolError) {
        let message = PoolWire.header(entry: entry) + arguments
        guard message.count <= core.settings.maxMessageSize else {
            throw .messageTooLarge(size: message.count, limit: core.settings.maxMessageSize)
        }
        let core = self.core
        let job = PoolJob { _, result in
            completion(result)
            core.detachedChunkDone()
        }
        try core.submit([PoolTask(message: message, job: job, chunk: 0)], detached: true)
    }
}

extension Pool {
    /// Runs a chunk in the form ``submitEncoded(entry:arguments:completion:)`` takes, here, on
    /// the calling thread, with no worker process: what a worker host that runs its chunks on
    /// threads does. The same outcomes as `submitEncoded`'s completion: the outputs' bytes,
    /// ``PoolError/taskFailed(_:)`` if the entry threw, ``PoolError/coding(_:)`` if it cannot
    /// run (not registered in this program, arguments that do not decode as its type).
    package static func runEncoded(entry name: String, arguments: [UInt8], name process: String) -> Result<[UInt8], PoolError> {
        guard let entry = EntryRegistry.lookUp(name) else {
            return .failure(.coding("\(ProcessError.entryNotRegistered(name)) in the worker"))
        }
        do {
            return .success(try arguments.withUnsafeBytes { try entry.runChunk(encoded: $0, context: ChildContext(descriptors: [], name: process)) })
        } catch let error as ChannelError {
            return .failure(.coding("\(error)"))
        } catch {
            return .failure(.taskFailed(String(describing: error)))
        }
    }
}
