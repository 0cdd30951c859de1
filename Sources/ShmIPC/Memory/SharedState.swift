internal import SystemPackage

/// The storage behind a shared primitive object: its segment, and a pointer to its state.
///
/// A final class, so a primitive can be shared by the threads of a process (Python's
/// primitives are shared the same way). `@unchecked Sendable`: all stored properties are
/// immutable, and the state is shared memory designed for concurrent atomic access.
///
/// Lifetime: `state` points into `segment`'s mapping, which is unmapped only when this object
/// (its sole owner) is deinitialized; every use goes through a method of an object that holds
/// this storage, so the pointer never outlives the mapping.
final class SharedState<State>: @unchecked Sendable {
    let segment: SharedObjectSegment
    let state: UnsafeMutablePointer<State>

    init(_ segment: consuming SharedObjectSegment) {
        state = segment.withState { $0.baseAddress!.bindMemory(to: State.self, capacity: 1) }
        self.segment = segment
    }

    /// Creates or attaches a named object.
    convenience init(
        name: SegmentName, mode: CreationMode, layout: ObjectLayout, permissions: FilePermissions,
        initialize: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(SharedObjectError) {
        self.init(try SharedObjectSegment.create(
            name: name, mode: mode, layout: layout, permissions: permissions, initialize: initialize))
    }

    /// Creates an inheritable object.
    convenience init(inheritable layout: ObjectLayout, initialize: (UnsafeMutableRawBufferPointer) -> Void) throws(SharedObjectError) {
        self.init(try SharedObjectSegment.createInheritable(layout: layout, initialize: initialize))
    }

    /// Attaches through an inherited descriptor.
    convenience init(inheriting descriptor: FileDescriptor, layout: ObjectLayout) throws(SharedObjectError) {
        self.init(try SharedObjectSegment.attach(inheriting: descriptor, expecting: layout))
    }

    /// The bytes after the fixed state struct (the Barrier's pid table).
    var trailing: UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(state) + MemoryLayout<State>.stride
    }

    var inheritableDescriptor: FileDescriptor? { segment.memory.inheritableDescriptor }
    var name: SegmentName? { segment.memory.name }
    var isOwner: Bool { segment.memory.isOwner }

    func unlink() throws(SharedMemoryError) {
        guard let name = segment.memory.name else { return }
        guard segment.memory.isOwner else { throw .notOwner(name) }
        _ = try SharedMemory.removeLeftover(name)
    }
}
