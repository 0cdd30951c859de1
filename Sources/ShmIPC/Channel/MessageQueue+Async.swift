extension MessageQueue {
    /// Takes the next message, suspending the task (never blocking a thread) while the queue
    /// is empty, at most `timeout`. Throws ``ChannelError/timedOut``,
    /// ``ChannelError/endOfStream`` once closed and drained, or `CancellationError`.
    public func get(timeout: Duration? = nil) async throws -> [UInt8] {
        if let message = try tryGet() { return message }
        let deadline = Deadline.after(timeout), check = mpmc.asyncCheck(consumers: true)
        while true {
            do {
                try await control.awaitAsync(consumers: true, deadline: deadline, strategy: waitStrategy, check: check) {
                    mpmc.mpmcLooksNonEmpty()
                }
            } catch QueueError.timedOut {
                throw ChannelError.timedOut
            } catch QueueError.closed {
                if let message = try tryGet() { return message }
                throw ChannelError.endOfStream
            }
            if let message = try tryGet() { return message }
        }
    }

    /// Takes the next message and decodes it with ``coder``, suspending as ``get(timeout:)-45emi``.
    public func get<T: Decodable>(as type: T.Type, timeout: Duration? = nil) async throws -> T {
        let message = try await get(timeout: timeout)
        return try message.withUnsafeBytes { bytes throws(ChannelError) in try coder.decode(type, from: bytes) }
    }

    /// Puts `bytes` as one message, suspending the task while the queue is full, at most
    /// `timeout`. Throws ``ChannelError/messageTooLarge(size:limit:)``,
    /// ``ChannelError/timedOut``, ``ChannelError/closed``, or `CancellationError`.
    public func put(bytes: [UInt8], timeout: Duration? = nil) async throws {
        let put = { [self] () throws(ChannelError) -> Bool in
            var done = false
            try withBytes(of: bytes) { buffer throws(ChannelError) in done = try tryPut(bytes: buffer) }
            return done
        }
        if try put() { return }
        let deadline = Deadline.after(timeout), check = mpmc.asyncCheck(consumers: false)
        while true {
            do {
                try await control.awaitAsync(consumers: false, deadline: deadline, strategy: waitStrategy, check: check) {
                    mpmc.mpmcLooksNotFull()
                }
            } catch QueueError.timedOut {
                throw ChannelError.timedOut
            } catch QueueError.closed {
                throw ChannelError.closed
            }
            if try put() { return }
        }
    }

    /// Encodes `value` with ``coder`` and puts it, suspending as ``put(bytes:timeout:)-4udqu``.
    public func put(_ value: some Encodable, timeout: Duration? = nil) async throws {
        try await put(bytes: try coder.encode(value), timeout: timeout)
    }
}
