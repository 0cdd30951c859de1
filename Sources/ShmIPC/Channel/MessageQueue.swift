internal import Atomics
internal import CShim
public import SystemPackage

/// A bounded multi-producer, multi-consumer queue of byte messages in shared memory: the
/// variable-size side of Python's `multiprocessing.Queue`, and the transport of Pool's tasks
/// and results.
///
/// Each message is at most ``maxMessageSize`` bytes (set at creation) and takes one slot of
/// a Vyukov ring like ``Queue``'s; ``capacity`` is in messages. Any number of threads and
/// processes may put and get at once; one producer thread's messages arrive in its order.
/// Waiting, timeouts, closing and peer death as ``Queue``: a producer or consumer killed at
/// any instant loses the one message it was moving (counted in ``abandoned``), never stalls
/// the others, and never makes a message arrive torn or twice.
///
/// A length read from a slot is checked against the limit before use: a hostile peer can
/// make a get throw ``ChannelError/corrupted(_:)``, never read outside the mapping.
public final class MessageQueue: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties over shared state designed for
    /// concurrent use; ``coder`` is a `Sendable` value set before sharing.
    private let storage: SharedState<shmipc_queue_state>
    let mpmc: MPMCControl
    var control: RingControl { mpmc.ring }
    /// The largest message, in bytes.
    public let maxMessageSize: Int
    /// How this process's threads wait on the queue.
    public let waitStrategy: WaitStrategy
    /// Encodes and decodes values for ``put(_:timeout:)-5ibv0`` and ``get(as:timeout:)-6mdfk``.
    public let coder: any MessageCoder
    /// When a failed try may next look for a slot held by a dead thread (process-local).
    let repairClock = ManagedAtomic<UInt64>(0)

    /// Creates an inheritable queue of `capacity` messages (exactly: the ring beneath is the next
    /// power of two; see ``Queue``) of at most `maxMessageSize` bytes each. The defaults fit a tutorial's strings and small
    /// Codable values: `MessageQueue()` is Python's `Queue()` for them.
    public convenience init(
        maxMessageSize: Int = defaultMaxMessageSize, capacity: Int = defaultCapacity, waitStrategy: WaitStrategy = .default,
        coder: any MessageCoder = BinaryMessageCoder()
    ) throws(SharedObjectError) {
        let layout = Self.layout(maxMessageSize: maxMessageSize, capacity: capacity)
        try self.init(
            storage: try SharedState(inheritable: layout.object) { Self.initialize($0, layout) },
            maxMessageSize: maxMessageSize, stride: layout.stride, waitStrategy: waitStrategy, coder: coder)
    }

    /// Creates or attaches the named queue `name`; an attacher's configuration must match.
    public convenience init(
        name: SegmentName, mode: CreationMode, maxMessageSize: Int, capacity: Int,
        permissions: FilePermissions = SharedMemory.defaultPermissions, waitStrategy: WaitStrategy = .default,
        coder: any MessageCoder = BinaryMessageCoder()
    ) throws(SharedObjectError) {
        let layout = Self.layout(maxMessageSize: maxMessageSize, capacity: capacity)
        try self.init(
            storage: try SharedState(name: name, mode: mode, layout: layout.object, permissions: permissions) {
                Self.initialize($0, layout)
            },
            maxMessageSize: maxMessageSize, stride: layout.stride, waitStrategy: waitStrategy, coder: coder)
    }

    /// Attaches an inherited queue; the configuration must match the creator's.
    public convenience init(
        inheriting descriptor: FileDescriptor, maxMessageSize: Int = defaultMaxMessageSize, capacity: Int = defaultCapacity,
        waitStrategy: WaitStrategy = .default, coder: any MessageCoder = BinaryMessageCoder()
    ) throws(SharedObjectError) {
        let layout = Self.layout(maxMessageSize: maxMessageSize, capacity: capacity)
        try self.init(
            storage: try SharedState(inheriting: descriptor, layout: layout.object),
            maxMessageSize: maxMessageSize, stride: layout.stride, waitStrategy: waitStrategy, coder: coder)
    }

    private init(
        storage: SharedState<shmipc_queue_state>, maxMessageSize: Int, stride: Int, waitStrategy: WaitStrategy,
        coder: any MessageCoder
    ) throws(SharedObjectError) {
        self.storage = storage
        // The geometry comes from the validated header and our own configuration, never from
        // the control block a peer can write.
        let capacity = storage.segment.layout.capacity
        mpmc = MPMCControl(RingControl(
            state: storage.state, capacity: QueueLayout.slotCount(forCapacity: capacity), stride: stride, elementOffset: 16),
            bound: capacity)
        self.maxMessageSize = maxMessageSize
        self.waitStrategy = waitStrategy
        self.coder = coder
    }

    /// A slot: the MPMC head (sequence, reserved), the message's length, the message.
    private static let lengthOffset = 16
    private static let payloadOffset = 24

    private static func layout(maxMessageSize: Int, capacity: Int) -> (object: ObjectLayout, stride: Int, slots: Int) {
        precondition(maxMessageSize >= 0 && maxMessageSize <= Int(UInt32.max) - 64, "maxMessageSize must be in 0...2^32 - 64")
        let slots = QueueLayout.slotCount(forCapacity: capacity)
        let stride = QueueLayout.roundUp(Self.payloadOffset + maxMessageSize, to: 16)
        // Version 4: the header's capacity is the bound, no longer the slot count.
        let object = ObjectLayout(
            kind: .messageQueue, version: 4,
            element: .named("ShmIPC.MessageQueue", size: maxMessageSize, stride: stride, alignment: 16),
            capacity: capacity, stateSize: QueueLayout.stateSize(slots: slots, stride: stride, mpmc: true))
        return (object, stride, slots)
    }

    private static func initialize(_ state: UnsafeMutableRawBufferPointer, _ layout: (object: ObjectLayout, stride: Int, slots: Int)) {
        QueueLayout.initialize(state, shape: (16, layout.stride), sequenced: true, slots: layout.slots, initialIndex: 0)
    }

    // MARK: putting

    /// Puts `bytes` as one message, waiting at most `timeout` (`nil`: forever) for room.
    public func put(bytes: UnsafeRawBufferPointer, timeout: Duration? = nil) throws(ChannelError) {
        if try tryPut(bytes: bytes) { return }
        let deadline = Deadline.after(timeout)
        while true {
            do {
                try control.await(consumers: false, deadline: deadline, strategy: waitStrategy, repairing: mpmc) { mpmc.mpmcLooksNotFull() }
            } catch {
                throw error == .timedOut ? .timedOut : .closed
            }
            if try tryPut(bytes: bytes) { return }
        }
    }

    /// Puts `bytes` as one message, waiting at most `timeout` for room.
    public func put(bytes: [UInt8], timeout: Duration? = nil) throws(ChannelError) {
        try withBytes(of: bytes) { buffer throws(ChannelError) in try put(bytes: buffer, timeout: timeout) }
    }

    /// Puts `bytes` if a slot is free now; false if the queue is full.
    public func tryPut(bytes: UnsafeRawBufferPointer) throws(ChannelError) -> Bool {
        let put = try putNow(bytes)
        if put { control.didPut() }
        return put
    }

    /// Puts `bytes` if a slot is free now, leaving the wake-up check to the caller.
    private func putNow(_ bytes: UnsafeRawBufferPointer) throws(ChannelError) -> Bool {
        guard bytes.count <= maxMessageSize else { throw .messageTooLarge(size: bytes.count, limit: maxMessageSize) }
        if control.isClosed { throw .closed }
        let put = mpmc.mpmcTryPut { slot in
            // Plain: the slot's sequence, stored with release after this, publishes it.
            slot.storeBytes(of: UInt64(bytes.count), toByteOffset: Self.lengthOffset, as: UInt64.self)
            if let source = bytes.baseAddress, !bytes.isEmpty { (slot + Self.payloadOffset).copyMemory(from: source, byteCount: bytes.count) }
        }
        if !put { mpmc.repairIfDue(consumers: false, repairClock) }
        return put
    }

    /// Puts every message of `messages` in order, waiting at most `timeout` (`nil`: forever,
    /// for the whole batch) for room, with one wake-up check per run of messages that fit.
    /// A batch is all or a prefix, as ``Queue/put(contentsOf:timeout:)``'s: each message is
    /// published on its own, so after a throw the consumers see a prefix of `messages`.
    public func put(contentsOf messages: some Sequence<[UInt8]>, timeout: Duration? = nil) throws(ChannelError) {
        var deadline: Deadline?
        var pending = 0
        defer { if pending > 0 { control.didPut(count: pending) } }
        for message in messages {
            var done = false
            try withBytes(of: message) { bytes throws(ChannelError) in done = try putNow(bytes) }
            if done { pending += 1; continue }
            if pending > 0 { control.didPut(count: pending); pending = 0 }  // wake before we wait
            if deadline == nil { deadline = .after(timeout) }
            try put(bytes: message, timeout: deadline! == .distantFuture ? nil : deadline!.remaining)
        }
    }

    /// Puts `value` encoded by ``coder``, waiting at most `timeout` for room.
    public func put(_ value: some Encodable, timeout: Duration? = nil) throws(ChannelError) {
        try put(bytes: try coder.encode(value), timeout: timeout)
    }

    // MARK: getting

    /// Takes the next message as a new array, waiting at most `timeout` (`nil`: forever).
    /// Throws ``ChannelError/endOfStream`` once the queue is closed and empty.
    public func get(timeout: Duration? = nil) throws(ChannelError) -> [UInt8] {
        try take(timeout: timeout, fits: { _ in true }) { [UInt8]($0) }
    }

    /// Takes the next message if there is one; nil if the queue is empty.
    public func tryGet() throws(ChannelError) -> [UInt8]? {
        try take(fits: { _ in true }) { [UInt8]($0) }
    }

    /// Takes the next message into `buffer`, returning its length. A message longer than the
    /// buffer throws ``ChannelError/bufferTooSmall(needed:)`` and stays in the queue.
    public func get(into buffer: UnsafeMutableRawBufferPointer, timeout: Duration? = nil) throws(ChannelError) -> Int {
        try take(timeout: timeout, fits: { $0 <= buffer.count }) { message in
            if let source = message.baseAddress, !message.isEmpty { buffer.baseAddress!.copyMemory(from: source, byteCount: message.count) }
            return message.count
        }
    }

    /// Waits at most `timeout` (`nil`: forever) for a message, then takes up to `maxCount` of
    /// those ready, as new arrays, with one wake-up check for them all. Throws
    /// ``ChannelError/endOfStream`` once the queue is closed and empty.
    public func get(upTo maxCount: Int, timeout: Duration? = nil) throws(ChannelError) -> [[UInt8]] {
        precondition(maxCount >= 1, "get(upTo:) takes at least one message")
        var messages = [try get(timeout: timeout)]
        var taken = 0
        defer { if taken > 0 { control.didGet(count: taken) } }
        while messages.count < maxCount {
            // A corrupted message after the first ends the batch; the next call reports it.
            guard let message = try? take(fits: { _ in true }, wakes: false, { [UInt8]($0) }) else { break }
            messages.append(message)
            taken += 1
        }
        return messages
    }

    /// Takes the next message and decodes it as `type` with ``coder`` (the message is consumed
    /// also if it does not decode: ``ChannelError/decodingFailed(_:)``).
    public func get<T: Decodable>(as type: T.Type, timeout: Duration? = nil) throws(ChannelError) -> T {
        let coder = self.coder
        let result: Result<T, ChannelError> = try take(timeout: timeout, fits: { _ in true }) { message in
            Result { () throws(ChannelError) in try coder.decode(type, from: message) }
        }
        return try result.get()
    }

    /// Waits for a message and takes it with `read`, or throws.
    private func take<Result>(
        timeout: Duration?, fits: (Int) -> Bool, _ read: (UnsafeRawBufferPointer) -> Result
    ) throws(ChannelError) -> Result {
        if let value = try take(fits: fits, read) { return value }
        let deadline = Deadline.after(timeout)
        while true {
            do {
                try control.await(consumers: true, deadline: deadline, strategy: waitStrategy, repairing: mpmc) { mpmc.mpmcLooksNonEmpty() }
            } catch {
                if error == .timedOut { throw .timedOut }
                if let value = try take(fits: fits, read) { return value }
                throw .endOfStream
            }
            if let value = try take(fits: fits, read) { return value }
        }
    }

    /// Takes a ready message with `read` if its length passes `fits`; nil if none is ready.
    /// With `wakes` false the caller makes the wake-up check (for a batch).
    private func take<Result>(
        fits: (Int) -> Bool, wakes: Bool = true, _ read: (UnsafeRawBufferPointer) -> Result
    ) throws(ChannelError) -> Result? {
        var failure: ChannelError?
        let limit = maxMessageSize
        let value = mpmc.mpmcTryGet(accept: { slot in
            // Relaxed: the slot's sequence (acquired by mpmcTryGet) published the length; it is
            // read once here and once after claiming, into a local, and checked both times.
            let length = Int(clamping: WordAccess.atomic(slot + Self.lengthOffset, UInt64.self).load(ordering: .relaxed))
            if length > limit { failure = .corrupted("a message of \(length) bytes in a queue limited to \(limit)"); return false }
            if !fits(length) { failure = .bufferTooSmall(needed: length); return false }
            return true
        }) { slot -> Result? in
            let length = Int(clamping: WordAccess.atomic(slot + Self.lengthOffset, UInt64.self).load(ordering: .relaxed))  // as above
            guard length <= limit else { failure = .corrupted("a message of \(length) bytes in a queue limited to \(limit)"); return nil }
            return read(UnsafeRawBufferPointer(start: slot + Self.payloadOffset, count: length))
        }
        if let failure { throw failure }
        guard let value else {
            if control.isClosed, !mpmc.mpmcLooksNonEmpty() { throw .endOfStream }
            mpmc.repairIfDue(consumers: true, repairClock)
            return nil
        }
        if wakes { control.didGet() }
        return value
    }

    // MARK: state

    /// Messages in the queue (a best-effort snapshot).
    public var count: Int { control.count }
    /// Whether it holds nothing (a snapshot).
    public var isEmpty: Bool { count == 0 }
    /// Whether the queue holds `capacity` messages (a snapshot). Python: `full()`.
    public var isFull: Bool { count >= capacity }

    /// The default largest message: 4 KiB.
    public static let defaultMaxMessageSize = 4096
    /// The default capacity: 64 messages.
    public static let defaultCapacity = 64
    /// Messages lost because a producer or consumer died in the middle of moving them.
    public var abandoned: Int { mpmc.abandoned }
    /// The most messages the queue holds: the capacity it was created with.
    public var capacity: Int { Int(mpmc.bound) }

    /// Closes the queue: puts fail with ``ChannelError/closed``; gets drain what is left, then
    /// fail with ``ChannelError/endOfStream``.
    public func close() { control.close() }
    /// Whether it was closed.
    public var isClosed: Bool { control.isClosed }

    /// The descriptor to hand to a child process (`sharing:`); `nil` for a named object.
    public var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }
    /// Removes the object's name (only the process that created it may); processes attached keep using it.
    public func unlink() throws(SharedMemoryError) { try storage.unlink() }
}
