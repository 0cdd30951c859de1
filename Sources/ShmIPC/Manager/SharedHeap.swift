internal import Atomics
internal import CShim

/// The variable-size heap of a shared structure (dictionary, list, Namespace): a fixed region
/// of 16-byte units after the structure's control block, addressed by unit index (an offset,
/// never a pointer), and used only by the structure's writers, under its lock.
///
/// Blocks are whole units; each starts with an 8-byte head: its size in units with a USED bit,
/// and the size of the block physically before it (for coalescing). Free blocks sit in
/// segregated doubly-linked lists (exact size classes below 64 units, then eight per power of
/// two, as TLSF), found through a bitmap in O(1); freeing merges a block with free neighbours.
/// An allocation of `n` units takes exactly `n` (any rest is split off), so a block's size
/// follows from what it holds, and a structure can re-derive every live block's extent.
///
/// Crash model: the free lists are *derived* state. A writer that dies in the middle of an
/// allocation or a free leaves them torn; the next writer calls ``rebuild(live:)`` with the
/// blocks the published structure references, which rewrites every head and list from scratch
/// (blocks allocated but never published, or unpublished but not yet freed, become free).
///
/// Every unit index, size and link read from shared memory is checked against the heap's size
/// (fixed at attach, never re-read) before use: a peer scribbling on the heap causes
/// ``ManagerError/corrupted(_:)``, never an access outside the mapping, and no walk is unbounded.
struct SharedHeap {
    let state: UnsafeMutablePointer<shmipc_store_state>
    /// Unit 0.
    let base: UnsafeMutableRawPointer
    /// Units in the heap, the two one-unit sentinels at 0 and `units - 1` included.
    let units: UInt32

    static let unitSize = Int(SHMIPC_HEAP_UNIT)
    static let headSize = 8
    static let minimumUnits: UInt32 = 3
    static let maximumUnits: UInt32 = 1 << 28
    static let classCount = Int(SHMIPC_HEAP_CLASSES)
    private static let used: UInt32 = 1 << 31

    // MARK: sizes

    /// Units a block with `bytes` of payload takes.
    static func units(forPayload bytes: Int) -> Int {
        (bytes + headSize + unitSize - 1) / unitSize
    }

    /// Payload bytes of a block of `units`.
    static func payloadCapacity(units: UInt32) -> Int { Int(units) * unitSize - headSize }

    /// The class a free block of `n` units is listed in.
    static func classFloor(_ n: UInt32) -> Int {
        if n < 64 { return Int(n) }
        let log = 31 - n.leadingZeroBitCount  // ≥ 6
        return 64 + (log - 6) * 8 + Int((n >> UInt32(log - 3)) & 7)
    }

    /// The smallest block a class holds.
    static func classLowerBound(_ c: Int) -> UInt32 {
        if c < 64 { return UInt32(c) }
        let log = 6 + (c - 64) / 8
        return UInt32(8 + (c - 64) % 8) << UInt32(log - 3)
    }

    /// The first class every block of which has at least `n` units.
    static func classCeiling(_ n: UInt32) -> Int {
        let c = classFloor(n)
        return classLowerBound(c) == n ? c : c + 1
    }

    // MARK: formatting

    /// Lays out an empty heap: the sentinels and one free block between them.
    func format() {
        writeHead(0, size: 1, used: true, previous: 0)
        writeHead(units - 1, size: 1, used: true, previous: units - 2)
        clearLists()
        writeHead(1, size: units - 2, used: false, previous: 1)
        insertFree(1, size: units - 2)
        usedUnits.store(0, ordering: .relaxed)
    }

    // MARK: allocating and freeing

    /// A block with at least `bytes` of payload; its unit index. Throws
    /// ``ManagerError/noSpace(needed:free:)`` (changing nothing) when no free block is big enough.
    func allocate(bytes: Int) throws(ManagerError) -> UInt32 {
        let wanted = Self.units(forPayload: bytes)
        guard bytes >= 0, wanted <= Int(units) - 2 else { throw noSpace(bytes) }
        let n = UInt32(wanted)
        var block: UInt32 = 0
        var size: UInt32 = 0
        if let c = firstNonEmptyClass(from: Self.classCeiling(n)) {
            block = heads[c]
            size = try freeBlockSize(block, inClass: c)
        } else {
            // Blocks in n's own class may still fit (the class spans sizes around n).
            (block, size) = try searchClass(Self.classFloor(n), atLeast: n)
            guard block != 0 else { throw noSpace(bytes) }
        }
        try unlinkFree(block, size: size)
        if size > n {
            let rest = block + n
            writeHead(rest, size: size - n, used: false, previous: n)
            try setPrevious(of: rest + (size - n), to: size - n)
            insertFree(rest, size: size - n)
        }
        writeHead(block, size: n, used: true, previous: head(block).previous)
        usedUnits.wrappingIncrement(by: UInt64(n), ordering: .relaxed)
        return block
    }

    /// Frees the block at `block` (allocated, and referenced by nothing published), merging it
    /// with free neighbours.
    func free(_ block: UInt32) throws(ManagerError) {
        let size = try usedBlockSize(block)
        var start = block, total = size
        let next = block + size
        let nextHead = head(next)
        if !nextHead.used {
            let nextSize = try freeBlockSize(next, inClass: nil)
            try unlinkFree(next, size: nextSize)
            total += nextSize
        }
        let previous = head(block).previous
        if previous != 0 {
            guard previous <= block else { throw corrupted("block \(block): previous size \(previous)") }
            let before = block - previous
            let beforeHead = head(before)
            guard beforeHead.size == previous else { throw corrupted("block \(before): size \(beforeHead.size), its successor says \(previous)") }
            if !beforeHead.used {
                try unlinkFree(before, size: previous)
                start = before
                total += previous
            }
        }
        writeHead(start, size: total, used: false, previous: head(start).previous)
        try setPrevious(of: start + total, to: total)
        insertFree(start, size: total)
        usedUnits.wrappingDecrement(by: UInt64(size), ordering: .relaxed)
    }

    /// The size of an allocated block, checked: used, inside the heap.
    func usedBlockSize(_ block: UInt32) throws(ManagerError) -> UInt32 {
        guard block >= 1, block < units - 1 else { throw corrupted("block \(block) outside the heap") }
        let h = head(block)
        guard h.used, h.size >= 1, h.size <= units - 1 - block else {
            throw corrupted("block \(block): head \(h.size) used \(h.used)")
        }
        return h.size
    }

    /// Allocated units (derived). Relaxed atomic accesses: written under the lock, read as a
    /// statistic by anybody; it orders nothing.
    var usedUnits: UnsafeAtomic<UInt64> {
        WordAccess.atomic(UnsafeMutableRawPointer(state) + MemoryLayout<shmipc_store_state>.offset(of: \.used_units)!, UInt64.self)
    }

    /// Free bytes in all (a snapshot).
    var freeBytes: Int {
        (Int(units) - 2 - Int(clamping: usedUnits.load(ordering: .relaxed))) * Self.unitSize
    }

    // MARK: reading blocks (also from lock-free readers)

    /// The payload of the block at `block`, sized by its head, checked to lie inside the heap.
    /// For lock-free readers too: the head is read once, with a relaxed atomic load (the
    /// reader's sequence check validates what it read), and the buffer never leaves the heap.
    func payload(checked block: UInt32) throws(ManagerError) -> UnsafeMutableRawBufferPointer {
        guard block >= 1, block < units - 1 else { throw corrupted("block \(block) outside the heap") }
        let size = WordAccess.atomic(blockAddress(block), UInt32.self).load(ordering: .relaxed) & ~Self.used
        guard size >= 1, size <= units - 1 - block else { throw corrupted("block \(block) of \(size) units") }
        return UnsafeMutableRawBufferPointer(start: blockAddress(block) + Self.headSize, count: Self.payloadCapacity(units: size))
    }

    /// The payload of `block` without checks: for blocks this writer just allocated.
    func payload(_ block: UInt32) -> UnsafeMutableRawPointer { blockAddress(block) + Self.headSize }

    // MARK: rebuilding

    /// Rewrites every head and free list from the blocks the published structure references
    /// (`live`: unit index and size in units, any order). Throws ``ManagerError/corrupted(_:)``
    /// if two overlap or one leaves the heap.
    func rebuild(live: [(block: UInt32, size: UInt32)]) throws(ManagerError) {
        let sorted = live.sorted { $0.block < $1.block }
        var cursor: UInt32 = 1, previous: UInt32 = 1, usedUnits: UInt64 = 0
        for (block, size) in sorted {
            guard block >= cursor, block < units - 1, size >= 1, size <= units - 1 - block else {
                throw corrupted("live block \(block) of \(size) units overlaps another or leaves the heap")
            }
            usedUnits += UInt64(size)
            cursor = block + size
        }
        // Checked: now write.
        clearLists()
        writeHead(0, size: 1, used: true, previous: 0)
        cursor = 1
        for (block, size) in sorted {
            if block > cursor {
                writeHead(cursor, size: block - cursor, used: false, previous: previous)
                insertFree(cursor, size: block - cursor)
                previous = block - cursor
            }
            writeHead(block, size: size, used: true, previous: previous)
            previous = size
            cursor = block + size
        }
        if cursor < units - 1 {
            writeHead(cursor, size: units - 1 - cursor, used: false, previous: previous)
            insertFree(cursor, size: units - 1 - cursor)
            previous = units - 1 - cursor
        }
        writeHead(units - 1, size: 1, used: true, previous: previous)
        self.usedUnits.store(usedUnits, ordering: .relaxed)
    }

    // MARK: private: heads

    private struct Head {
        var size: UInt32
        var used: Bool
        var previous: UInt32
    }

    private func blockAddress(_ block: UInt32) -> UnsafeMutableRawPointer {
        base + Int(block) * Self.unitSize
    }

    /// A block's head; `block` must be inside the heap (callers check).
    private func head(_ block: UInt32) -> Head {
        let address = blockAddress(block)
        let word = address.load(as: UInt32.self)
        return Head(size: word & ~Self.used, used: word & Self.used != 0, previous: address.load(fromByteOffset: 4, as: UInt32.self))
    }

    private func writeHead(_ block: UInt32, size: UInt32, used: Bool, previous: UInt32) {
        let address = blockAddress(block)
        // Relaxed atomic: lock-free readers load this word (payload(_:atLeast:)).
        WordAccess.atomic(address, UInt32.self).store(size | (used ? Self.used : 0), ordering: .relaxed)
        address.storeBytes(of: previous, toByteOffset: 4, as: UInt32.self)
    }

    private func setPrevious(of block: UInt32, to size: UInt32) throws(ManagerError) {
        guard block >= 1, block <= units - 1 else { throw corrupted("block \(block) outside the heap") }
        blockAddress(block).storeBytes(of: size, toByteOffset: 4, as: UInt32.self)
    }

    /// The size of the free block `block`, checked: free, inside the heap, and (if `c` is
    /// given) of class `c`.
    private func freeBlockSize(_ block: UInt32, inClass c: Int?) throws(ManagerError) -> UInt32 {
        guard block >= 1, block < units - 1 else { throw corrupted("free block \(block) outside the heap") }
        let h = head(block)
        guard !h.used, h.size >= 1, h.size <= units - 1 - block else {
            throw corrupted("free block \(block): head \(h.size) used \(h.used)")
        }
        if let c, Self.classFloor(h.size) != c { throw corrupted("free block \(block) of \(h.size) units in class \(c)") }
        return h.size
    }

    // MARK: private: free lists

    // Free-list links and the `previous` half of heads are read and written only by writers,
    // under the store's lock (plain accesses; the lock orders them). Readers read only the
    // size word of a head (relaxed atomic).

    private func link(_ block: UInt32) -> (next: UInt32, previous: UInt32) {
        let payload = payload(block)
        return (payload.load(as: UInt32.self), payload.load(fromByteOffset: 4, as: UInt32.self))
    }

    private func setLink(_ block: UInt32, next: UInt32? = nil, previous: UInt32? = nil) {
        let payload = payload(block)
        if let next { payload.storeBytes(of: next, as: UInt32.self) }
        if let previous { payload.storeBytes(of: previous, toByteOffset: 4, as: UInt32.self) }
    }

    private func clearLists() {
        heads.update(repeating: 0, count: Self.classCount)
        bitmap.update(repeating: 0, count: Self.classCount / 64)
    }

    private func insertFree(_ block: UInt32, size: UInt32) {
        let c = Self.classFloor(size)
        let first = heads[c]
        setLink(block, next: first, previous: 0)
        if first != 0, first < units - 1 { setLink(first, previous: block) }
        heads[c] = block
        setBit(c, true)
    }

    private func unlinkFree(_ block: UInt32, size: UInt32) throws(ManagerError) {
        let c = Self.classFloor(size)
        let (next, previous) = link(block)
        guard next < units - 1, previous < units - 1 else { throw corrupted("free block \(block): links \(next), \(previous)") }
        if previous == 0 {
            guard heads[c] == block else { throw corrupted("free block \(block) is not the head of its list") }
            heads[c] = next
            if next == 0 {
                setBit(c, false)
            }
        } else {
            setLink(previous, next: next)
        }
        if next != 0 { setLink(next, previous: previous) }
    }

    private func firstNonEmptyClass(from c: Int) -> Int? {
        var word = c / 64
        guard word < Self.classCount / 64 else { return nil }
        var bits = bitmap[word] & (~0 << UInt64(c % 64))
        while true {
            if bits != 0 { return word * 64 + bits.trailingZeroBitCount }
            word += 1
            guard word < Self.classCount / 64 else { return nil }
            bits = bitmap[word]
        }
    }

    /// Walks class `c` for a block of at least `n` units; (0, 0) if none. Bounded by the
    /// number of blocks the heap can hold, so a cycle planted by a peer ends.
    private func searchClass(_ c: Int, atLeast n: UInt32) throws(ManagerError) -> (UInt32, UInt32) {
        var block = heads[c]
        var steps: UInt32 = 0
        while block != 0 {
            let size = try freeBlockSize(block, inClass: c)
            if size >= n { return (block, size) }
            block = link(block).next
            steps += 1
            guard steps < units else { throw corrupted("a cycle in free list \(c)") }
        }
        return (0, 0)
    }

    private func noSpace(_ bytes: Int) -> ManagerError { .noSpace(needed: bytes, free: max(0, freeBytes)) }
    private func corrupted(_ detail: String) -> ManagerError { .corrupted("heap: " + detail) }
}

extension SharedHeap {
    /// `free_heads[SHMIPC_HEAP_CLASSES]` (a tuple in Swift), as a pointer.
    private var heads: UnsafeMutablePointer<UInt32> {
        (UnsafeMutableRawPointer(state) + MemoryLayout<shmipc_store_state>.offset(of: \.free_heads)!)
            .assumingMemoryBound(to: UInt32.self)
    }

    /// `class_bitmap[SHMIPC_HEAP_CLASSES / 64]`, as a pointer.
    private var bitmap: UnsafeMutablePointer<UInt64> {
        (UnsafeMutableRawPointer(state) + MemoryLayout<shmipc_store_state>.offset(of: \.class_bitmap)!)
            .assumingMemoryBound(to: UInt64.self)
    }

    private func setBit(_ c: Int, _ on: Bool) {
        if on { bitmap[c / 64] |= 1 << UInt64(c % 64) } else { bitmap[c / 64] &= ~(1 << UInt64(c % 64)) }
    }
}
