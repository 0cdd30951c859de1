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
