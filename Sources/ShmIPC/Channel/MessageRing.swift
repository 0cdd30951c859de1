public import Atomics
public import CShim

/// The geometry of a byte-message ring, from a validated configuration (never re-read from
/// shared memory, which a hostile peer may scribble on).
@usableFromInline
struct RingGeometry: Hashable, Sendable {
    /// The ring's size in bytes: a power of two that holds at least one largest record.
    @usableFromInline let capacity: Int
    /// The largest payload a message may have.
    @usableFromInline let limit: Int

    /// Records are cache-line aligned: the 16-byte head, then the payload, padded to 64. With
    /// 16-byte alignment a small record shared its last line with the next record's head, so a
    /// receiver keeping up with the sender read a line the sender was still writing, and the
    /// line moved between the cores several times per message: `throughput.connection.64B`
    /// fell from ~60 to ~13–33 M/s whenever the receiver was the faster side (Notes/0003).
    @usableFromInline static let alignment = 64

    init(limit: Int, requestedCapacity: Int?) {
        precondition(limit >= 0 && limit <= Int(UInt32.max) - 64, "maxMessageSize must be in 0...2^32 - 64")
        self.limit = limit
        let record = Self.recordSize(limit)
        let wanted = max(requestedCapacity ?? max(4 * record, 64 * 1024), record, 256)
        precondition(wanted <= 1 << 40, "ring capacity must be at most 2^40 bytes")
        var capacity = 256
        while capacity < wanted { capacity <<= 1 }
        self.capacity = capacity
    }

    /// Bytes a record with `length` payload bytes takes in the ring.
    @inlinable @inline(__always)
    static func recordSize(_ length: Int) -> Int {
        (RingRecord.payload &+ length &+ (alignment &- 1)) & ~(alignment &- 1)
    }

    /// Bytes of shared state per ring: its control block, then the ring.
    var stateSize: Int { MemoryLayout<shmipc_queue_state>.stride + capacity }

    /// Writes a ring's initial state at `state`: empty, at position 0, every record head zero
    /// (so no commit word matches a position + 1 before it is written).
    static func initialize(_ state: UnsafeMutableRawPointer, geometry: RingGeometry) {
        let control = state.bindMemory(to: shmipc_queue_state.self, capacity: 1)
        control.pointee.capacity = UInt64(geometry.capacity)
        control.pointee.slot_stride = UInt32(alignment)
        control.pointee.element_offset = UInt32(MemoryLayout<shmipc_ring_record>.size)
    }

    func control(at state: UnsafeMutableRawPointer) -> RingControl {
        RingControl(
            state: state.assumingMemoryBound(to: shmipc_queue_state.self), capacity: capacity,
            stride: Self.alignment, elementOffset: MemoryLayout<shmipc_ring_record>.size)
    }
}

/// The sending half of a byte-message ring: the only writer of its tail and record heads.
///
/// A message is a record at the tail: its head (commit, length, kind) and payload, contiguous,
/// so a receiver can read it in place and a sender can write it in place (a loan). A record
/// that does not fit before the end of the ring is preceded by a wrap marker and starts the
/// next lap. The commit word is stored last, with release: it is the record's publication.
@usableFromInline
struct RingProducer: Sendable {
    @usableFromInline let control: RingControl
    @usableFromInline let geometry: RingGeometry
    /// The next position to write (bytes since the ring's start, never wrapping in practice).
    @usableFromInline var tail: UInt64
    /// The consumer's head as last read: re-read only when the ring looks full.
    @usableFromInline var cachedHead: UInt64
    /// Messages published so far (this producer's copy of `produced`).
    @usableFromInline var produced: UInt64

    /// Space for one record, not yet published.
    @usableFromInline
    struct Reservation {
        /// Where the record's head goes.
        @usableFromInline let position: UInt64
        /// The payload's first byte.
        @usableFromInline let payload: UnsafeMutableRawPointer
        /// The payload bytes reserved.
        @usableFromInline let length: Int

        @usableFromInline init(position: UInt64, payload: UnsafeMutableRawPointer, length: Int) {
            self.position = position
            self.payload = payload
            self.length = length
        }
    }

    init(control: RingControl, geometry: RingGeometry) throws(ChannelError) {
        self.control = control
        self.geometry = geometry
        tail = control.tail.load(ordering: .relaxed)  // relaxed: only a producer (us now) writes it
        produced = control.produced.load(ordering: .relaxed)  // relaxed: a statistic only producers write
        cachedHead = 0
        recoverTail()
        cachedHead = try readHead()
    }

    /// A producer killed between publishing a record (its commit word) and storing the tail
    /// leaves the tail behind records the receiver may already have taken: moves the tail past
    /// every record published at it (each checked: a known kind, a length within the limit,
    /// inside the lap), at most a ring's worth. Commit words hold absolute positions, so a
    /// record of an earlier lap never matches.
    mutating func recoverTail() {
        let capacity = UInt64(geometry.capacity)
        var position = tail, walked: UInt64 = 0
        walk: while walked < capacity {
            let head = control.slots + Int(truncatingIfNeeded: position & control.mask)
            // Acquire: pairs with the releasing commit store; the head's fields are whole.
            guard Self.commitWord(head).load(ordering: .acquiring) == position &+ 1 else { break walk }
            let offset = position & control.mask
            let size: UInt64
            switch head.load(fromByteOffset: RingRecord.kind, as: UInt32.self) {
            case SHMIPC_RECORD_WRAP:
                size = capacity &- offset
            case SHMIPC_RECORD_MESSAGE:
                let length = Int(head.load(fromByteOffset: RingRecord.length, as: UInt32.self))
                guard length <= geometry.limit else { break walk }
                size = UInt64(RingGeometry.recordSize(length))
                guard offset &+ size <= capacity else { break walk }
            default:
                break walk
            }
            position &+= size
            walked &+= size
            tail = position
        }
        let stored = control.tail.load(ordering: .relaxed)  // relaxed: we are its only writer
        if tail != stored {
            control.tail.store(tail, ordering: .releasing)  // as in commit()
            logRecovery(.notice, "a ring's previous producer died between publishing and storing its tail; the tail was recovered", [
                "bytes": "\(tail &- stored)",
            ])
        }
    }

    /// The consumer's head, validated against our tail.
    @usableFromInline
    func readHead() throws(ChannelError) -> UInt64 {
        // Acquire: pairs with the consumer's release store in RingConsumer.release(), so its
        // reads of the space we are about to reuse are done.
        let head = control.head.load(ordering: .acquiring)
        guard head % UInt64(RingGeometry.alignment) == 0, tail % UInt64(RingGeometry.alignment) == 0, tail &- head <= UInt64(geometry.capacity) else {
            throw .corrupted("ring head \(head) is inconsistent with tail \(tail)")
        }
        return head
    }

    /// Reserves room for a record of `length` payload bytes (at most the limit); nil if the
    /// ring has no room now. A record that does not fit before the end of the ring starts the
    /// next lap: the rest of this lap is published as padding (a wrap marker) at once, so the
    /// receiver can free it while we wait for room at the lap's start.
    @inlinable @inline(__always)
    mutating func reserve(_ length: Int) throws(ChannelError) -> Reservation? {
        let record = UInt64(RingGeometry.recordSize(length))
        let capacity = UInt64(geometry.capacity)
        let room = capacity &- (tail & control.mask)
        if record > room {
            // The padding must be free (the receiver is in this lap) before it is published.
            if tail &+ room &- cachedHead > capacity {
                cachedHead = try readHead()
                if tail &+ room &- cachedHead > capacity { return nil }
            }
            wrap(room)
        }
        if tail &+ record &- cachedHead > capacity {
            cachedHead = try readHead()
            if tail &+ record &- cachedHead > capacity { return nil }
        }
        let payload = control.slots + (Int(truncatingIfNeeded: tail & control.mask) &+ RingRecord.payload)
        return Reservation(position: tail, payload: payload, length: length)
    }

    /// The fast path of ``reserve(_:)``: room for `length` bytes (at most the limit) in this
    /// lap, on an open ring whose head reads as consistent; nil for everything else (full, a
    /// wrap, too long, closed, corrupted), which the checked path then handles.
    @inlinable @inline(__always)
    mutating func reserveIfRoom(_ length: Int) -> Reservation? {
        let record = UInt64(RingGeometry.recordSize(length))
        let capacity = UInt64(geometry.capacity)
        guard length <= geometry.limit, !control.isClosed, record <= capacity &- (tail & control.mask) else { return nil }
        if tail &+ record &- cachedHead > capacity {
            // Acquire: as in readHead(), which the checked path calls to report a bad head.
            let head = control.head.load(ordering: .acquiring)
            guard tail &+ record &- head <= capacity, tail &- head <= capacity else { return nil }
            cachedHead = head
        }
        let payload = control.slots + (Int(truncatingIfNeeded: tail & control.mask) &+ RingRecord.payload)
        return Reservation(position: tail, payload: payload, length: length)
    }

    /// Publishes the `room` bytes left in this lap as padding and moves to the next lap.
    @usableFromInline
    mutating func wrap(_ room: UInt64) {
        let marker = control.slots + Int(truncatingIfNeeded: tail & control.mask)
        marker.storeBytes(of: 0, toByteOffset: RingRecord.length, as: UInt32.self)
        marker.storeBytes(of: SHMIPC_RECORD_WRAP, toByteOffset: RingRecord.kind, as: UInt32.self)
        // Release: pairs with the acquire load in RingConsumer.next().
        Self.commitWord(marker).store(tail &+ 1, ordering: .releasing)
        tail &+= room
        control.tail.store(tail, ordering: .releasing)  // as in commit()
        control.didPut()  // a parked receiver frees the padding
    }

    /// Publishes the reserved record with `length` (at most the reserved length) payload bytes.
    @inlinable @inline(__always)
    mutating func commit(_ reservation: Reservation, length: Int) {
        commitRecord(reservation, length: length)
        publishTail()
    }

    /// Publishes the reserved record (its commit word: the receiver reads nothing else) and
    /// moves this producer past it; the shared tail, count and wake-up check wait for
    /// ``publishTail()`` (a batch makes them once). A producer killed in between leaves the
    /// tail behind published records, which the next producer's ``recoverTail()`` walks.
    @inlinable @inline(__always)
    mutating func commitRecord(_ reservation: Reservation, length: Int) {
        let head = reservation.payload.advanced(by: -RingRecord.payload)
        head.storeBytes(of: UInt32(truncatingIfNeeded: length), toByteOffset: RingRecord.length, as: UInt32.self)
        head.storeBytes(of: SHMIPC_RECORD_MESSAGE, toByteOffset: RingRecord.kind, as: UInt32.self)
        // Release: pairs with the acquire load in RingConsumer.next(); publishes the head's
        // other fields and the payload.
        Self.commitWord(head).store(reservation.position &+ 1, ordering: .releasing)
        tail = reservation.position &+ UInt64(RingGeometry.recordSize(length))
        produced &+= 1
    }

    /// Stores the tail and the message count, and wakes a parked receiver if one registered.
    @inlinable @inline(__always)
    func publishTail() {
        // Release: for snapshots and a later producer of this ring; no receiver waits on it.
        control.tail.store(tail, ordering: .releasing)
        control.produced.store(produced, ordering: .relaxed)  // relaxed: a statistic (on the tail's line)
        control.didPut()
    }

    @inlinable @inline(__always)
    static func commitWord(_ head: UnsafeMutableRawPointer) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: head.assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }

    /// Whether `reserve(length)` can make progress now (for waiting): publish the padding, if
    /// the record wraps, or reserve the record.
    func hasRoom(for length: Int) -> Bool {
        let record = UInt64(RingGeometry.recordSize(length))
        let capacity = UInt64(geometry.capacity)
        let room = capacity &- (tail & control.mask)
        // Acquire: as in readHead(); an inconsistent head counts as room, so the caller's
        // reserve() runs and reports it.
        let head = control.head.load(ordering: .acquiring)
        let needed = record > room ? room : record  // the padding first, if the record wraps
        return tail &+ needed &- head <= capacity || tail &- head > capacity
    }
}

/// The receiving half of a byte-message ring: the only writer of its head.
///
/// Everything read from the ring is validated before use: the kind, the length against the
/// limit, and the record against the end of the ring; each is read once into a local, so a
/// peer rewriting them meanwhile cannot change what was checked.
@usableFromInline
struct RingConsumer: Sendable {
    @usableFromInline let control: RingControl
    @usableFromInline let geometry: RingGeometry
    /// The next position to read.
    @usableFromInline var head: UInt64
    /// Messages taken so far (this consumer's copy of `consumed`).
    @usableFromInline var consumed: UInt64

    init(control: RingControl, geometry: RingGeometry) throws(ChannelError) {
        self.control = control
        self.geometry = geometry
        head = control.head.load(ordering: .acquiring)  // pairs with a previous consumer's release
        consumed = control.consumed.load(ordering: .relaxed)  // relaxed: a statistic only consumers write
        guard head % UInt64(RingGeometry.alignment) == 0 else { throw .corrupted("ring head \(head) is not record-aligned") }
    }

    /// The next message's payload and length, skipping a wrap marker; nil if none is published.
    @inlinable @inline(__always)
    mutating func next() throws(ChannelError) -> UnsafeRawBufferPointer? {
        while true {
            let offset = Int(truncatingIfNeeded: head & control.mask)
            let record = control.slots + offset
            // Acquire: pairs with the release store in RingProducer.commit(): the record is whole.
            guard RingProducer.commitWord(record).load(ordering: .acquiring) == head &+ 1 else { return nil }
            // The payload's next line, fetched while we validate (a hint: harmless past the end).
            shmipc_prefetch(record + 64)
            // Relaxed atomics: read once each, whatever a hostile peer writes meanwhile.
            let length = Int(Self.word(record, RingRecord.length).load(ordering: .relaxed))
            let kind = Self.word(record, RingRecord.kind).load(ordering: .relaxed)
            if kind == SHMIPC_RECORD_MESSAGE {
                guard length <= geometry.limit, offset &+ RingGeometry.recordSize(length) <= geometry.capacity else {
                    throw .corrupted("a record of \(length) bytes at offset \(offset) (limit \(geometry.limit), ring \(geometry.capacity))")
                }
                return UnsafeRawBufferPointer(start: record + RingRecord.payload, count: length)
            }
            guard kind == SHMIPC_RECORD_WRAP, offset != 0 else {
                throw .corrupted("a record of kind \(kind) at offset \(offset)")
            }
            head &+= UInt64(geometry.capacity &- offset)  // the rest of the lap is padding
            control.head.store(head, ordering: .releasing)  // as in release(): frees the padding
            control.didGet()
        }
    }

    /// The fast path of ``next()``: the message at the head if one is published, is a message
    /// (not a wrap marker) and is valid; nil for everything else, which ``next()`` then
    /// handles (and reports).
    @inlinable @inline(__always)
    func nextIfValid() -> UnsafeRawBufferPointer? {
        let offset = Int(truncatingIfNeeded: head & control.mask)
        let record = control.slots + offset
        // Acquire: pairs with the release store in RingProducer.commit(): the record is whole.
        guard RingProducer.commitWord(record).load(ordering: .acquiring) == head &+ 1 else { return nil }
        // Relaxed atomics: read once each, as in next().
        let length = Int(Self.word(record, RingRecord.length).load(ordering: .relaxed))
        guard Self.word(record, RingRecord.kind).load(ordering: .relaxed) == SHMIPC_RECORD_MESSAGE,
              length <= geometry.limit, offset &+ RingGeometry.recordSize(length) <= geometry.capacity else { return nil }
        return UnsafeRawBufferPointer(start: record + RingRecord.payload, count: length)
    }

    /// Frees the message `next()` returned (of `length` bytes) for the producer.
    @inlinable @inline(__always)
    mutating func release(_ length: Int) {
        advance(past: length)
        publishHead()
    }

    /// Moves past the message `next()` returned (of `length` bytes) without freeing it yet:
    /// ``publishHead()`` frees everything moved past (a batch does so once).
    @inlinable @inline(__always)
    mutating func advance(past length: Int) {
        head &+= UInt64(RingGeometry.recordSize(length))
        consumed &+= 1
    }

    /// Frees what this consumer moved past for the producer, and wakes it if it is parked.
    @inlinable @inline(__always)
    func publishHead() {
        // Release: pairs with the acquire in RingProducer.readHead(): our reads are done.
        control.head.store(head, ordering: .releasing)
        control.consumed.store(consumed, ordering: .relaxed)  // relaxed: a statistic (on the head's line)
        control.didGet()
    }

    /// Whether a record (a message or a wrap marker) is published at `position` (for waiting).
    @usableFromInline
    func isPublished(at position: UInt64) -> Bool {
        let record = control.slots + Int(truncatingIfNeeded: position & control.mask)
        return RingProducer.commitWord(record).load(ordering: .acquiring) == position &+ 1  // as in next()
    }

    @inlinable @inline(__always)
    static func word(_ record: UnsafeMutableRawPointer, _ offset: Int) -> UnsafeAtomic<UInt32> {
        UnsafeAtomic(at: (record + offset).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }
}

/// Where the fields of a record's head (`shmipc_ring_record`) lie, by name.
@usableFromInline
enum RingRecord {
    @inlinable static var length: Int { MemoryLayout<shmipc_ring_record>.offset(of: \.length)! }
    @inlinable static var kind: Int { MemoryLayout<shmipc_ring_record>.offset(of: \.kind)! }
    /// The payload follows the head.
    @inlinable static var payload: Int { MemoryLayout<shmipc_ring_record>.stride }
}
