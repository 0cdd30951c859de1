internal import CShim
public import SystemPackage

/// A two-ended channel of byte messages in shared memory: Python's `multiprocessing.Pipe`.
///
/// Each direction is a ring of byte records (see ``Connection``); a duplex pipe has two, a
/// one-way pipe one, carrying messages from its ``End/second`` end to its ``End/first``.
/// Messages are at most ``maxMessageSize`` bytes, set at creation; the ring size (bytes per
/// direction) bounds what can be in flight before a sender waits.
///
/// Share a pipe by name, or create it inheritable and hand ``inheritableDescriptor`` to a
/// spawned child, which attaches with ``init(inheriting:duplex:maxMessageSize:capacity:)``
/// (the configuration must match: attaching validates it). Each process then takes its end
/// with ``connection(_:waitStrategy:)``.
public final class Pipe: @unchecked Sendable {
    /// `@unchecked Sendable`: immutable stored properties over shared state designed for
    /// concurrent use by the two ends.
    let storage: SharedState<shmipc_queue_state>
    let geometry: RingGeometry
    /// Whether messages flow both ways.
    public let isDuplex: Bool

    /// The ends of a pipe. A one-way pipe's first end receives, its second end sends
    /// (Python's `r, w = Pipe(duplex=False)`).
    public enum End: Sendable, Hashable {
        /// The first end (a one-way pipe's receiving end).
        case first
        /// The second end (a one-way pipe's sending end).
        case second
    }

    /// Creates an inheritable pipe. `capacity` is the ring size in bytes per direction
    /// (rounded up to a power of two that holds a largest message; by default 4 of them, at
    /// least 64 KiB).
    public init(duplex: Bool = true, maxMessageSize: Int = 64 * 1024, capacity: Int? = nil) throws(SharedObjectError) {
        isDuplex = duplex
        geometry = RingGeometry(limit: maxMessageSize, requestedCapacity: capacity)
        let (geometry, rings) = (geometry, duplex ? 2 : 1)
        storage = try SharedState(inheritable: Self.layout(geometry, duplex: duplex)) { state in
            for ring in 0..<rings { RingGeometry.initialize(state.baseAddress! + ring * geometry.stateSize, geometry: geometry) }
        }
    }

    /// Creates or attaches the named pipe `name`; an attacher's configuration must match the
    /// creator's.
    public init(
        name: SegmentName, mode: CreationMode, duplex: Bool = true, maxMessageSize: Int = 64 * 1024,
        capacity: Int? = nil, permissions: FilePermissions = SharedMemory.defaultPermissions
    ) throws(SharedObjectError) {
        isDuplex = duplex
        geometry = RingGeometry(limit: maxMessageSize, requestedCapacity: capacity)
        let (geometry, rings) = (geometry, duplex ? 2 : 1)
        storage = try SharedState(name: name, mode: mode, layout: Self.layout(geometry, duplex: duplex), permissions: permissions) { state in
            for ring in 0..<rings { RingGeometry.initialize(state.baseAddress! + ring * geometry.stateSize, geometry: geometry) }
        }
    }

    /// Attaches an inherited pipe; the configuration must match the creator's.
    public init(inheriting descriptor: FileDescriptor, duplex: Bool = true, maxMessageSize: Int = 64 * 1024, capacity: Int? = nil) throws(SharedObjectError) {
        isDuplex = duplex
        geometry = RingGeometry(limit: maxMessageSize, requestedCapacity: capacity)
        storage = try SharedState(inheriting: descriptor, layout: Self.layout(geometry, duplex: duplex))
    }

    /// The segment's layout: the header's capacity is the ring size, the element fingerprint
    /// encodes the message limit and the direction count, so a mismatch fails to attach.
    static func layout(_ geometry: RingGeometry, duplex: Bool) -> ObjectLayout {
        ObjectLayout(
            kind: .pipe, version: 1,
            element: .named(
                duplex ? "ShmIPC.Pipe.duplex" : "ShmIPC.Pipe.oneWay",
                size: geometry.limit, stride: RingGeometry.alignment, alignment: RingGeometry.alignment),
            capacity: geometry.capacity, stateSize: (duplex ? 2 : 1) * geometry.stateSize)
    }

    /// The largest message, in bytes.
    public var maxMessageSize: Int { geometry.limit }
    /// The ring size per direction, in bytes.
    public var capacity: Int { geometry.capacity }

    /// Takes `end` of the pipe for this process. Throws ``ChannelError/endTaken(pid:)`` while
    /// another live connection (in any process) holds it; a dead holder's end can be taken
    /// again.
    public func connection(_ end: End, waitStrategy: WaitStrategy = .default) throws(ChannelError) -> Connection {
        try Connection(pipe: self, end: end, waitStrategy: waitStrategy)
    }

    /// The ring carrying messages from the second end to the first (0), or back (1).
    func ring(_ index: Int) -> RingControl {
        geometry.control(at: UnsafeMutableRawPointer(storage.state) + index * geometry.stateSize)
    }

    /// The descriptor to hand to a child process (`sharing:`); `nil` for a named object.
    public var inheritableDescriptor: FileDescriptor? { storage.inheritableDescriptor }
    /// The object's name; `nil` for an inheritable object.
    public var name: SegmentName? { storage.name }

    /// Removes the pipe's name (creator only); open connections keep working.
    public func unlink() throws(SharedMemoryError) { try storage.unlink() }
}
