/// Calls `body` with the bytes of `array` (Array's own `withUnsafeBytes` throws untyped).
@usableFromInline
func withBytes(of array: [UInt8], _ body: (UnsafeRawBufferPointer) throws(ChannelError) -> Void) throws(ChannelError) {
    var failure: ChannelError?
    array.withUnsafeBytes { buffer in
        do throws(ChannelError) { try body(buffer) } catch { failure = error }
    }
    if let failure { throw failure }
}

/// Errors of byte-message channels: ``Connection`` and ``MessageQueue``.
public enum ChannelError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The timeout passed before the channel had room (send) or a message (receive).
    case timedOut
    /// A message of `size` bytes is larger than the channel's limit; nothing was sent.
    case messageTooLarge(size: Int, limit: Int)
    /// The buffer given to `receive(into:)` holds fewer than `needed` bytes; the message stays
    /// in the channel (Python's `BufferTooShort`).
    case bufferTooSmall(needed: Int)
    /// The peer closed its end, or died, and every message it sent has been received
    /// (Python's `EOFError`).
    case endOfStream
    /// Sending: the peer closed its end or died (Python's `BrokenPipeError`); for a
    /// ``MessageQueue``: the queue was closed.
    case brokenPipe
    /// This end was closed by ``Connection/close()``.
    case closed
    /// The operation needs the direction this end does not have (a one-way pipe's ends).
    case wrongDirection
    /// The end is held by the live process `pid`.
    case endTaken(pid: Int32)
    /// The connection has a loan out: send it or give it back first.
    case loanOutstanding
    /// The shared memory holds something no well-behaved peer writes (a length, offset or
    /// index out of range). The channel is unusable from here on; nothing outside the mapping
    /// was read.
    case corrupted(String)
    /// The value could not be encoded.
    case encodingFailed(String)
    /// The bytes received do not decode as the requested type.
    case decodingFailed(String)

    /// A description for people: logs and error messages.
    public var description: String {
        switch self {
        case .timedOut: "timed out"
        case .messageTooLarge(let size, let limit): "a message of \(size) bytes exceeds the channel's limit of \(limit) bytes"
        case .bufferTooSmall(let needed): "the buffer is too small: the message has \(needed) bytes"
        case .endOfStream: "end of stream: the peer closed its end"
        case .brokenPipe: "broken pipe: the peer closed its end"
        case .closed: "the connection is closed"
        case .wrongDirection: "this end of a one-way pipe cannot do that"
        case .endTaken(let pid): "the end is held by process \(pid)"
        case .loanOutstanding: "a loan is outstanding on this connection"
        case .corrupted(let what): "the channel's shared memory is corrupted: \(what)"
        case .encodingFailed(let why): "encoding failed: \(why)"
        case .decodingFailed(let why): "decoding failed: \(why)"
        }
    }
}
