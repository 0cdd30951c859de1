internal import CShim
package import SystemPackage

/// A shared-memory segment holding one ShmIPC object: the common header, then the object's
/// state. The building block of every shared object (locks, queues, values…).
///
/// Creating writes the header, runs the caller's initializer on the zero-filled state while
/// the header says INITIALIZING, then publishes READY. Attaching waits (bounded) while the
/// creator is still initializing, then validates every header field against the layout the
/// attacher expects before it computes a single offset: magic, version, kind, element type,
/// capacity, sizes and offsets. A mismatch is a typed ``SharedObjectError``; nothing a peer
/// writes into the header can make this process access memory outside its mapping.
package struct SharedObjectSegment: ~Copyable {
    package let memory: SharedMemory
    package let layout: ObjectLayout

    /// How long an attacher waits for a creator that is still initializing, by default.
    package static let defaultInitializationTimeout: Duration = .seconds(5)

    // MARK: creating

    /// Creates a named object. With ``CreationMode/openOrCreate``, an existing object is
    /// attached (and validated) instead, and `initialize` is not called.
    package static func create(
        name: SegmentName,
        mode: CreationMode,
        layout: ObjectLayout,
        permissions: FilePermissions = SharedMemory.defaultPermissions,
        timeout: Duration = defaultInitializationTimeout,
        initialize: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(SharedObjectError) -> SharedObjectSegment {
        switch mode {
        case .openExisting:
            return try attach(name: name, expecting: layout, timeout: timeout)
        case .createExclusive:
            let size = try requiredSize(layout)
            let memory: SharedMemory
            do { memory = try SharedMemory(name: name, mode: .createExclusive, size: size, permissions: permissions) }
            catch { throw .segment(error) }
            return SharedObjectSegment(initializing: memory, layout: layout, initialize: initialize)
        case .openOrCreate:
            while true {
                do {
                    return try create(
                        name: name, mode: .createExclusive, layout: layout,
                        permissions: permissions, timeout: timeout, initialize: initialize)
                } catch .segment(.alreadyExists) {
                    do {
                        return try attach(name: name, expecting: layout, timeout: timeout)
                    } catch .segment(.notFound) {
                        continue  // unlinked between the two calls: try creating again
                    }
                }
            }
        }
    }

    /// Creates an inheritable (memfd) object; hand ``SharedMemory/inheritableDescriptor`` of
    /// its ``memory`` to a child, which attaches with ``attach(inheriting:expecting:timeout:)``.
    package static func createInheritable(
        layout: ObjectLayout,
        initialize: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(SharedObjectError) -> SharedObjectSegment {
        let size = try requiredSize(layout)
        let memory: SharedMemory
        do { memory = try SharedMemory(inheritableSize: size) } catch { throw .segment(error) }
        return SharedObjectSegment(initializing: memory, layout: layout, initialize: initialize)
    }

    // MARK: attaching

    /// Attaches to an existing named object, validating it against `layout`.
    package static func attach(
        name: SegmentName, expecting layout: ObjectLayout,
        timeout: Duration = defaultInitializationTimeout
    ) throws(SharedObjectError) -> SharedObjectSegment {
        try attach(name: name, timeout: timeout) { _ throws(SharedObjectError) in layout }
    }

    /// Attaches to an object through an inherited descriptor, validating it against `layout`.
    package static func attach(
        inheriting descriptor: FileDescriptor, expecting layout: ObjectLayout,
        timeout: Duration = defaultInitializationTimeout
    ) throws(SharedObjectError) -> SharedObjectSegment {
        try attach(inheriting: descriptor, timeout: timeout) { _ throws(SharedObjectError) in layout }
    }

    /// Attaches to an existing named object whose capacity the attacher does not know: once
    /// the creator published it, `layoutFor` turns the header's capacity (any value a peer
    /// wrote: check it before computing with it) into the layout every field is validated
    /// against.
    package static func attach(
        name: SegmentName, timeout: Duration = defaultInitializationTimeout,
        layoutFor: (_ capacity: UInt64) throws(SharedObjectError) -> ObjectLayout
    ) throws(SharedObjectError) -> SharedObjectSegment {
        let deadline = Deadline.after(timeout)
        let memory = try openWaitingForSize(name, deadline: deadline)
        let layout = try validate(memory, layoutFor: layoutFor, deadline: deadline)
        return SharedObjectSegment(memory: memory, layout: layout)
    }

    /// ``attach(name:timeout:layoutFor:)`` through an inherited descriptor.
    package static func attach(
        inheriting descriptor: FileDescriptor, timeout: Duration = defaultInitializationTimeout,
        layoutFor: (_ capacity: UInt64) throws(SharedObjectError) -> ObjectLayout
    ) throws(SharedObjectError) -> SharedObjectSegment {
        let memory: SharedMemory
        do { memory = try SharedMemory(inheriting: descriptor) } catch { throw .segment(error) }
        let layout = try validate(memory, layoutFor: layoutFor, deadline: .after(timeout))
        return SharedObjectSegment(memory: memory, layout: layout)
    }

    // MARK: access

    /// Calls `body` with the object's state (after the header), valid only inside `body`.
    package func withState<Result: ~Copyable, Failure: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try memory.withUnsafeMutableBytes { (bytes) throws(Failure) -> Result in
            try body(UnsafeMutableRawBufferPointer(rebasing: bytes[SegmentHeader.size..<(SegmentHeader.size + layout.stateSize)]))
        }
    }

    /// The pid of the process that created the object.
    package var creatorPID: Int32 {
        memory.withUnsafeMutableBytes { SegmentHeader($0.baseAddress!).snapshot().creator_pid }
    }

    // MARK: private

    private init(memory: consuming SharedMemory, layout: ObjectLayout) {
        self.memory = memory
        self.layout = layout
    }

    private init(
        initializing memory: consuming SharedMemory, layout: ObjectLayout,
        initialize: (UnsafeMutableRawBufferPointer) -> Void
    ) {
        memory.withUnsafeMutableBytes { bytes in
            let header = SegmentHeader(bytes.baseAddress!)
            header.publishInitializing(creatorPID: Sys.currentPID)
            header.write(layout, segmentSize: bytes.count)
            initialize(UnsafeMutableRawBufferPointer(rebasing: bytes[SegmentHeader.size..<(SegmentHeader.size + layout.stateSize)]))
            header.publishReady()
        }
        self.init(memory: memory, layout: layout)
    }

    private static func requiredSize(_ layout: ObjectLayout) throws(SharedObjectError) -> Int {
        let (size, overflow) = SegmentHeader.size.addingReportingOverflow(layout.stateSize)
        guard layout.stateSize >= 0, !overflow else { throw .segment(.invalidSize(layout.stateSize)) }
        return size
    }

    /// Opens the segment; while its creator has not sized it yet (size 0), waits until `deadline`.
    private static func openWaitingForSize(
        _ name: SegmentName, deadline: Deadline
    ) throws(SharedObjectError) -> SharedMemory {
        var pause: Duration = .microseconds(50)
        while true {
            do {
                return try SharedMemory.open(name: name)
            } catch .empty {
                if deadline.hasPassed { throw .initializationTimedOut(creatorPID: nil) }
                Sys.sleep(min(pause, deadline.remaining))
                pause = min(pause * 2, .milliseconds(10))
            } catch {
                throw .segment(error)
            }
        }
    }

    /// Waits (bounded) for READY, then checks the header against the layout `layoutFor` makes
    /// of its capacity, and against the mapping. Returns that layout.
    private static func validate(
        _ memory: borrowing SharedMemory, layoutFor: (UInt64) throws(SharedObjectError) -> ObjectLayout,
        deadline: Deadline
    ) throws(SharedObjectError) -> ObjectLayout {
        let mapped = memory.size
        guard mapped >= SegmentHeader.size else { throw .truncated(required: SegmentHeader.size, found: mapped) }
        return try memory.withUnsafeMutableBytes { (bytes) throws(SharedObjectError) -> ObjectLayout in
            let header = SegmentHeader(bytes.baseAddress!)
            try waitUntilReady(header, deadline: deadline)
            let snapshot = header.snapshot()  // one copy: the capacity checked is the one used
            guard snapshot.magic == SegmentHeader.magic else { throw .notAShmIPCObject }
            let expected = try layoutFor(snapshot.capacity)
            try check(snapshot, against: expected, mapped: mapped)
            return expected
        }
    }

    private static func waitUntilReady(_ header: SegmentHeader, deadline: Deadline) throws(SharedObjectError) {
        // How often a waiter re-checks that the creator is alive while it sleeps.
        let livenessInterval: Duration = .milliseconds(20)
        while true {
            let raw = header.loadState()
            guard let state = SegmentHeader.InitState(rawValue: raw) else {
                throw .corrupted(field: "init_state", value: UInt64(raw))
            }
            var creator: Int32?
            switch state {
            case .ready:
                return
            case .initializing:
                // creator_pid was written before INITIALIZING was released (acquired above).
                let pid = header.snapshot().creator_pid
                creator = pid
                if pid <= 0 { throw .corrupted(field: "creator_pid", value: UInt64(bitPattern: Int64(pid))) }
                if !Sys.processExists(pid) { throw .creatorDied(pid: pid) }
            case .empty:
                creator = nil
            }
            if deadline.hasPassed { throw .initializationTimedOut(creatorPID: creator) }
            let slice = min(deadline, .after(livenessInterval))
            _ = Futex(header.stateWord).wait(expected: raw, deadline: slice)
        }
    }

    private static func check(
        _ header: shmipc_segment_header, against expected: ObjectLayout, mapped: Int
    ) throws(SharedObjectError) {
        guard header.magic == SegmentHeader.magic else { throw .notAShmIPCObject }
        guard header.layout_version == expected.version else {
            throw .versionMismatch(expected: expected.version, found: header.layout_version)
        }
        guard header.kind == expected.kind.rawValue else {
            throw .kindMismatch(expected: expected.kind, found: ObjectKind(rawValue: header.kind))
        }
        let found = TypeFingerprint(
            size: Int(truncatingIfNeeded: header.element_size),
            stride: Int(truncatingIfNeeded: header.element_stride),
            alignment: Int(truncatingIfNeeded: header.element_alignment),
            nameHash: header.type_name_hash, name: SegmentHeader.typeName(of: header))
        guard found == expected.element else { throw .typeMismatch(expected: expected.element, found: found) }
        guard header.capacity == UInt64(expected.capacity) else {
            throw .capacityMismatch(expected: expected.capacity, found: Int(truncatingIfNeeded: header.capacity))
        }
        // Offsets and sizes: all in UInt64, so no value a peer writes can overflow or go negative.
        guard header.state_offset == UInt64(SegmentHeader.size) else {
            throw .corrupted(field: "state_offset", value: header.state_offset)
        }
        guard header.state_size == UInt64(expected.stateSize) else {
            throw .corrupted(field: "state_size", value: header.state_size)
        }
        let required = UInt64(SegmentHeader.size) + UInt64(expected.stateSize)
        guard header.segment_size >= required else {
            throw .corrupted(field: "segment_size", value: header.segment_size)
        }
        guard UInt64(mapped) >= header.segment_size else {
            throw .truncated(required: Int(clamping: header.segment_size), found: mapped)
        }
    }
}

extension SharedObjectSegment {
    /// Removes the object's name (owner only) and detaches. See ``SharedMemory/unlink()``.
    package consuming func unlink() throws(SharedMemoryError) {
        try memory.unlink()
    }
}
