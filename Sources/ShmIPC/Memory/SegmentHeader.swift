internal import CShim

/// The common header at offset 0 of every shared object (C layout `shmipc_segment_header`,
/// checked by `_Static_assert`s in CShim.h). All pointer arithmetic on it lives here.
struct SegmentHeader {
    static let size = Int(SHMIPC_HEADER_SIZE)
    static let magic: UInt64 = SHMIPC_MAGIC

    enum InitState: UInt32 {
        case empty = 0         // SHMIPC_INIT_EMPTY
        case initializing = 1  // SHMIPC_INIT_INITIALIZING
        case ready = 2         // SHMIPC_INIT_READY
    }

    let raw: UnsafeMutablePointer<shmipc_segment_header>

    /// A view on the header at `base`; the mapping must be at least ``size`` bytes.
    init(_ base: UnsafeMutableRawPointer) {
        raw = base.bindMemory(to: shmipc_segment_header.self, capacity: 1)
    }

    /// The init-state word: atomic, and a futex attachers park on.
    var stateWord: UnsafeMutablePointer<UInt32> {
        UnsafeMutableRawPointer(raw).advanced(by: MemoryLayout<shmipc_segment_header>.offset(of: \.init_state)!)
            .assumingMemoryBound(to: UInt32.self)
    }

    private var stateAtomic: SharedWord { SharedWord(stateWord) }

    /// Raw init state (may be garbage in a corrupted segment).
    func loadState() -> UInt32 {
        // Acquire: pairs with the release stores in publishInitializing() and publishReady(),
        // so the fields written before them are visible once their state is seen.
        stateAtomic.loadAcquiring()
    }

    /// Creator, step 1: records its pid, then announces that initialization is under way.
    func publishInitializing(creatorPID: Int32) {
        raw.pointee.creator_pid = creatorPID
        // Release: pairs with the acquire in loadState(); makes creator_pid visible first.
        stateAtomic.storeReleasing(InitState.initializing.rawValue)
    }

    /// Creator, step 2: fills every field (the state is written by the caller meanwhile).
    func write(_ layout: ObjectLayout, segmentSize: Int) {
        raw.pointee.magic = Self.magic
        raw.pointee.layout_version = layout.version
        raw.pointee.kind = layout.kind.rawValue
        raw.pointee.segment_size = UInt64(segmentSize)
        raw.pointee.capacity = UInt64(layout.capacity)
        raw.pointee.element_size = UInt64(layout.element.size)
        raw.pointee.element_stride = UInt64(layout.element.stride)
        raw.pointee.element_alignment = UInt64(layout.element.alignment)
        raw.pointee.type_name_hash = layout.element.nameHash
        raw.pointee.state_offset = UInt64(Self.size)
        raw.pointee.state_size = UInt64(layout.stateSize)
        Self.writeTypeName(layout.element.name, into: raw)
    }

    /// Bytes of the element type's name the header keeps (`type_name`).
    static let typeNameCapacity = MemoryLayout.size(ofValue: shmipc_segment_header().type_name)

    /// Writes `name` into the header's `type_name`, cut at a character boundary to fit, the
    /// rest zero.
    static func writeTypeName(_ name: String, into header: UnsafeMutablePointer<shmipc_segment_header>) {
        var bytes = Array(name.utf8)
        if bytes.count > typeNameCapacity {
            bytes = Array(bytes.prefix(typeNameCapacity))
            while let last = bytes.last, last & 0xC0 == 0x80 { bytes.removeLast() }  // continuation bytes
            if let last = bytes.last, last >= 0xC0 { bytes.removeLast() }  // a lead byte left alone
        }
        withUnsafeMutableBytes(of: &header.pointee.type_name) { field in
            field.initializeMemory(as: UInt8.self, repeating: 0)
            field.copyBytes(from: bytes)
        }
    }

    /// The type name a header records (up to the first NUL; bytes that are not UTF-8 replaced).
    static func typeName(of header: shmipc_segment_header) -> String {
        withUnsafeBytes(of: header.type_name) { field in String(decoding: field.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// Creator, step 3: publishes the object and wakes attachers parked on the state word.
    func publishReady() {
        // Release: pairs with the acquire in loadState(); every header field and the
        // object's initial state become visible to an attacher that sees READY.
        stateAtomic.storeReleasing(InitState.ready.rawValue)
        Futex(stateWord).wakeAll()
    }

    /// A copy of the header, taken once: attachers validate the copy, never re-read the
    /// shared fields, so a peer rewriting them cannot change what was checked.
    func snapshot() -> shmipc_segment_header { raw.pointee }
}
