internal import Atomics

/// The byte-level hash table behind ``SharedDictionary`` and ``Namespace``: all pointer
/// arithmetic on it lives here.
///
/// Layout, in the store's heap:
/// - `root` holds the unit index of the **index block**: `[UInt64 slotCount][UInt64 0]` then
///   `slotCount` 8-byte slots (a power of two, at least 8), open addressing with linear probing.
///   A slot is 0 (empty), or `tag << 32 | entry` where `tag` is the key hash's high half and
///   `entry` the entry block's unit index, `UInt32.max` for a removed entry (tombstone).
/// - an **entry block**: `[UInt64 hash][UInt32 keyLength][UInt32 valueLength]`, the key's bytes,
///   the value's bytes.
///
/// Changes are copy-then-publish: a new or replaced entry is written whole in a fresh block,
/// then published by one atomic store of its slot; an index that grows is built whole, then
/// published by one store of `root`. A writer killed at any instant leaves the key with its old
/// value or its new one, never a torn one; blocks it left unreferenced and the counts are
/// re-derived by ``repair(_:)``.
struct DictionaryTable {
    let store: SharedStore
    var heap: SharedHeap { store.heap }

    static let tombstone = UInt32.max
    static let minimumSlots = 8
    private static let indexHead = 16
    private static let entryHead = 16

    /// A located entry: its slot, its unit, and its value's bytes (in shared memory).
    struct Found {
        var slot: Int
        var entry: UInt32
        var value: UnsafeRawBufferPointer
    }

    /// An index block, checked: its slots are inside the heap.
    struct Index {
        var block: UInt32
        var slots: UnsafeMutablePointer<UInt64>
        var mask: Int
        var slotCount: Int { mask + 1 }

        @inline(__always)
        func slot(_ i: Int) -> UnsafeAtomic<UInt64> {
            UnsafeAtomic(at: UnsafeMutableRawPointer(slots + i).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
        }
    }

    // MARK: formatting

    /// Lays out an empty table in a freshly formatted heap.
    static func format(_ heap: SharedHeap) {
        // Cannot fail: the smallest heap holds far more than the first index.
        let block = try! makeIndex(heap, slotCount: minimumSlots)
        heap.state.pointee.root = UInt64(block)
    }

    private static func makeIndex(_ heap: SharedHeap, slotCount: Int) throws(ManagerError) -> UInt32 {
        let block = try heap.allocate(bytes: indexHead + slotCount * 8)
        let payload = heap.payload(block)
        // Plain stores: published by the releasing store of `root` (or by READY at creation).
        payload.storeBytes(of: UInt64(slotCount), as: UInt64.self)
        payload.storeBytes(of: UInt64(0), toByteOffset: 8, as: UInt64.self)
        (payload + indexHead).initializeMemory(as: UInt64.self, repeating: 0, count: slotCount)
        return block
    }

    // MARK: reading (lock-free readers and writers alike)

    /// The current index, checked.
    @inline(__always)
    func index() throws(ManagerError) -> Index {
        // Acquire: pairs with the releasing store of `root` in rehash(), so the new index's
        // contents are visible.
        let root = store.root.load(ordering: .acquiring)
        guard root <= UInt64(UInt32.max) else { throw .corrupted("dictionary root \(root)") }
        let block = UInt32(root)
        let payload = try heap.payload(checked: block)
        guard payload.count >= Self.indexHead else { throw .corrupted("dictionary index block \(block) too small") }
        let slotCount = WordAccess.atomic(payload.baseAddress!, UInt64.self).load(ordering: .relaxed)
        guard slotCount >= UInt64(Self.minimumSlots), slotCount & (slotCount - 1) == 0,
              slotCount <= UInt64((payload.count - Self.indexHead) / 8) else {
            throw .corrupted("dictionary index of \(slotCount) slots in a block of \(payload.count) bytes")
        }
        return Index(block: block, slots: (payload.baseAddress! + Self.indexHead).assumingMemoryBound(to: UInt64.self),
                     mask: Int(slotCount) - 1)
    }

    /// An entry's key and value, checked to lie inside its block.
    @inline(__always)
    func entry(_ unit: UInt32) throws(ManagerError) -> (hash: UInt64, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let payload = try heap.payload(checked: unit)
        guard payload.count >= Self.entryHead else { throw .corrupted("entry block \(unit) too small") }
        let base = payload.baseAddress!
        // Relaxed loads, each read once: the reader's sequence check validates them.
        let hash = WordAccess.atomic(base, UInt64.self).load(ordering: .relaxed)
        let lengths = WordAccess.atomic(base + 8, UInt64.self).load(ordering: .relaxed)
        let keyLength = Int(UInt32(truncatingIfNeeded: lengths)), valueLength = Int(UInt32(truncatingIfNeeded: lengths >> 32))
        guard keyLength + valueLength <= payload.count - Self.entryHead else {
            throw .corrupted("entry block \(unit): \(keyLength) + \(valueLength) bytes in \(payload.count)")
        }
        let key = UnsafeRawBufferPointer(start: base + Self.entryHead, count: keyLength)
        return (hash, key, UnsafeRawBufferPointer(start: base + Self.entryHead + keyLength, count: valueLength))
    }

    /// Finds `key` (its stored bytes, and their hash). Probes at most every slot once.
    @inline(__always)
    func find(_ key: UnsafeRawBufferPointer, hash: UInt64) throws(ManagerError) -> Found? {
        try find(key, hash: hash, in: index())
    }

    /// ``find(_:hash:)`` in an index already loaded.
    @inline(__always)
    func find(_ key: UnsafeRawBufferPointer, hash: UInt64, in index: Index) throws(ManagerError) -> Found? {
        let tag = hash >> 32
        var i = Int(truncatingIfNeeded: hash) & index.mask
        for _ in 0...index.mask {
            // Acquire: pairs with the releasing slot store in set(), so the entry's bytes are
            // visible to a reader that sees the slot.
            let word = index.slot(i).load(ordering: .acquiring)
            let unit = UInt32(truncatingIfNeeded: word)
            if unit == 0 { return nil }
            if unit != Self.tombstone, word >> 32 == tag {
                let entry = try entry(unit)
                if Self.equal(entry.key, key) {
                    return Found(slot: i, entry: unit, value: entry.value)
                }
            }
            i = (i + 1) & index.mask
        }
        return nil
    }

    /// Calls `body` with every entry's key and value, in slot order.
    func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws(ManagerError) -> Void) throws(ManagerError) {
        let index = try index()
        for i in 0...index.mask {
            let word = index.slot(i).load(ordering: .acquiring)  // pairs with the slot stores in set()
            let unit = UInt32(truncatingIfNeeded: word)
            if unit == 0 || unit == Self.tombstone { continue }
            let entry = try entry(unit)
            try body(entry.key, entry.value)
        }
    }

    // MARK: writing (under the store's lock, inside `mutating`)

    /// Sets `key` to `value`: a new entry is written whole, then published by one slot store;
    /// a replaced entry is freed after. Throws ``ManagerError/noSpace(needed:free:)`` with the
    /// table unchanged.
    func set(_ key: UnsafeRawBufferPointer, hash: UInt64, value: UnsafeRawBufferPointer) throws(ManagerError) {
        let current = try index()
        if let found = try find(key, hash: hash, in: current) {
            let fresh = try writeEntry(key, hash: hash, value: value)  // allocates; the index stays
            // Release: pairs with the acquiring slot loads of readers (find, forEach).
            current.slot(found.slot).store(Self.slotWord(hash, fresh), ordering: .releasing)
            try heap.free(found.entry)
            return
        }
        // The entry first: if the index must grow and cannot, the entry is freed and the
        // table is as it was.
        let fresh = try writeEntry(key, hash: hash, value: value)
        do { try makeRoomForOne() } catch {
            try heap.free(fresh)
            throw error
        }
        let index = try index()
        let i = try freeSlot(in: index, hash: hash)
        let wasTombstone = UInt32(truncatingIfNeeded: index.slot(i).load(ordering: .relaxed)) == Self.tombstone
        index.slot(i).store(Self.slotWord(hash, fresh), ordering: .releasing)  // pairs with readers' acquiring loads
        // Relaxed: derived counts, published by the sequence's closing release.
        store.count.wrappingIncrement(ordering: .relaxed)
        if wasTombstone { store.tombstones.wrappingDecrement(ordering: .relaxed) }
    }

    /// Removes the entry found at `found`: its slot becomes a tombstone (one store), then its
    /// block is freed.
    func remove(_ found: Found) throws(ManagerError) {
        let index = try index()
        index.slot(found.slot).store(UInt64(Self.tombstone), ordering: .releasing)  // pairs with readers' acquiring loads
        try heap.free(found.entry)
        store.count.wrappingDecrement(ordering: .relaxed)  // relaxed: derived, published by the sequence
        store.tombstones.wrappingIncrement(ordering: .relaxed)
        // An emptied table shrinks back (an optional compaction: its failure changes nothing).
        if store.count.load(ordering: .relaxed) == 0, index.slotCount > Self.minimumSlots {
            try? rehash(slotCount: Self.minimumSlots)
        }
    }

    /// Removes every entry: a fresh empty index is published, then the old blocks are freed.
    func removeAll() throws(ManagerError) {
        let old = try index()
        var entries: [UInt32] = []
        for i in 0...old.mask {
            let unit = UInt32(truncatingIfNeeded: old.slot(i).load(ordering: .relaxed))
            if unit != 0 && unit != Self.tombstone { entries.append(unit) }
        }
        let fresh = try Self.makeIndex(heap, slotCount: Self.minimumSlots)
        store.root.store(UInt64(fresh), ordering: .releasing)  // pairs with the acquire in index()
        store.count.store(0, ordering: .relaxed)  // relaxed: derived, published by the sequence
        store.tombstones.store(0, ordering: .relaxed)
        for unit in entries { try heap.free(unit) }
        try heap.free(old.block)
    }

    /// Byte equality, a word at a time (keys are short; no libc call on the read path).
    @inline(__always)
    static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        var offset = 0
        while offset + 8 <= a.count {
            if a.loadUnaligned(fromByteOffset: offset, as: UInt64.self) != b.loadUnaligned(fromByteOffset: offset, as: UInt64.self) {
                return false
            }
            offset += 8
        }
        while offset < a.count {
            if a[offset] != b[offset] { return false }
            offset += 1
        }
        return true
    }

    private static func slotWord(_ hash: UInt64, _ unit: UInt32) -> UInt64 { (hash >> 32) << 32 | UInt64(unit) }

    private func writeEntry(_ key: UnsafeRawBufferPointer, hash: UInt64, value: UnsafeRawBufferPointer) throws(ManagerError) -> UInt32 {
        guard key.count <= Int(UInt32.max), value.count <= Int(UInt32.max) else {
            throw .noSpace(needed: key.count + value.count, free: heap.freeBytes)
        }
        let unit = try heap.allocate(bytes: Self.entryHead + key.count + value.count)
        let payload = heap.payload(unit)
        // Plain stores: nothing references the block until the slot's releasing store
        // publishes it, and readers that meet it earlier (a reused block) are inside a
        // sequence change and retry.
        payload.storeBytes(of: hash, as: UInt64.self)
        payload.storeBytes(of: UInt64(key.count) | UInt64(value.count) << 32, toByteOffset: 8, as: UInt64.self)
        if key.count > 0 { (payload + Self.entryHead).copyMemory(from: key.baseAddress!, byteCount: key.count) }
        if value.count > 0 { (payload + Self.entryHead + key.count).copyMemory(from: value.baseAddress!, byteCount: value.count) }
        return unit
    }

    /// The slot a new key with `hash` goes to: the first tombstone or empty slot of its probe.
    private func freeSlot(in index: Index, hash: UInt64) throws(ManagerError) -> Int {
        var i = Int(truncatingIfNeeded: hash) & index.mask
        for _ in 0...index.mask {
            let unit = UInt32(truncatingIfNeeded: index.slot(i).load(ordering: .relaxed))
            if unit == 0 || unit == Self.tombstone { return i }
            i = (i + 1) & index.mask
        }
        throw .corrupted("dictionary index full")
    }

    /// Keeps live entries and tombstones at most 3/4 of the slots, for one more entry:
    /// rebuilds the index (larger if the live entries need it) when they would pass it.
    private func makeRoomForOne() throws(ManagerError) {
        let index = try index()
        // Relaxed: we hold the lock. Clamped: derived counts a peer may have scribbled on (a
        // rehash recounts them).
        let live = Int(min(store.count.load(ordering: .relaxed), UInt64(index.slotCount)))
        let dead = Int(min(store.tombstones.load(ordering: .relaxed), UInt64(index.slotCount)))
        guard (live + dead + 1) * 4 > index.slotCount * 3 else { return }
        var slots = Self.minimumSlots
        while slots < (live + 1) * 2 { slots *= 2 }
        try rehash(slotCount: slots)
    }

    /// Builds an index of `slotCount` slots holding every live entry, publishes it by one store
    /// of `root`, and frees the old one.
    private func rehash(slotCount: Int) throws(ManagerError) {
        let old = try index()
        let fresh = try Self.makeIndex(heap, slotCount: slotCount)
        let slots = (heap.payload(fresh) + Self.indexHead).assumingMemoryBound(to: UInt64.self)
        let mask = slotCount - 1
        var live = 0
        for i in 0...old.mask {
            let word = old.slot(i).load(ordering: .relaxed)
            let unit = UInt32(truncatingIfNeeded: word)
            if unit == 0 || unit == Self.tombstone { continue }
            let hash = try entry(unit).hash
            var j = Int(truncatingIfNeeded: hash) & mask
            var probes = 0
            while slots[j] != 0 {
                j = (j + 1) & mask
                probes += 1
                guard probes < slotCount else { try? heap.free(fresh); throw .corrupted("more entries than slots") }
            }
            slots[j] = Self.slotWord(hash, unit)
            live += 1
        }
        store.root.store(UInt64(fresh), ordering: .releasing)  // pairs with the acquire in index()
        store.count.store(UInt64(live), ordering: .relaxed)  // relaxed: derived, published by the sequence
        store.tombstones.store(0, ordering: .relaxed)
        try heap.free(old.block)
    }

    // MARK: repair

    /// After a writer died: re-derives the counts and the heap from the published index.
    static func repair(_ store: SharedStore) throws(ManagerError) {
        let table = DictionaryTable(store: store)
        let index = try table.index()
        var live: [(block: UInt32, size: UInt32)] = [
            (index.block, UInt32(SharedHeap.units(forPayload: indexHead + index.slotCount * 8)))
        ]
        var tombstones = 0
        for i in 0...index.mask {
            let unit = UInt32(truncatingIfNeeded: index.slot(i).load(ordering: .relaxed))
            if unit == 0 { continue }
            if unit == tombstone { tombstones += 1; continue }
            let entry = try table.entry(unit)
            live.append((unit, UInt32(SharedHeap.units(forPayload: entryHead + entry.key.count + entry.value.count))))
        }
        try store.heap.rebuild(live: live)
        store.count.store(UInt64(live.count - 1), ordering: .relaxed)  // relaxed: published by the sequence
        store.tombstones.store(UInt64(tombstones), ordering: .relaxed)
    }
}

extension SharedStore {
    /// The value bytes stored for `key` in this dictionary store, copied out (lock-free, under
    /// the sequence), or nil. Not generic, so the generic layer's inlined get costs one call.
    @usableFromInline
    func copyDictionaryValue(forKey key: UnsafeRawBufferPointer) throws(ManagerError) -> [UInt8]? {
        let hash = StoredCoding.hash(key)
        let table = DictionaryTable(store: self)
        return try read { () throws(ManagerError) -> [UInt8]? in
            try table.find(key, hash: hash).map { [UInt8]($0.value) }
        }
    }
}
