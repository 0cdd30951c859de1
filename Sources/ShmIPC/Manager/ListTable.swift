internal import Atomics

/// The byte-level array behind ``SharedList``: all pointer arithmetic on it lives here.
///
/// Layout, in the store's heap:
/// - `root` is `count << 32 | index`: the element count and the unit index of the **index
///   block**, `[UInt64 capacity]` then `capacity` 4-byte element unit indices (the first
///   `count` in use). One 64-bit store publishes both.
/// - an **element block**: `[UInt64 length]`, then the element's bytes.
///
/// Changes are copy-then-publish. `append` writes the element and its index word beyond
/// `count`, then publishes the new count in `root`; `set` writes a new element and publishes it
/// by one 32-bit index store; `insert`, `remove` and a growing `append` build a new index and
/// publish it with its count by one store of `root`. A writer killed at any instant leaves the
/// list as it was before its change or after it; ``repair(_:)`` frees what it left behind.
struct ListTable {
    let store: SharedStore
    var heap: SharedHeap { store.heap }

    private static let indexHead = 8
    private static let elementHead = 8
    static let minimumCapacity = 8

    /// The published index, checked: `count` words inside the heap.
    struct Index {
        var block: UInt32
        var words: UnsafeMutablePointer<UInt32>
        var capacity: Int
        var count: Int

        func word(_ i: Int) -> UnsafeAtomic<UInt32> {
            UnsafeAtomic(at: UnsafeMutableRawPointer(words + i).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
        }
    }

    // MARK: formatting

    static func format(_ heap: SharedHeap) {
        // Cannot fail: the smallest heap holds far more than the first index.
        let block = try! makeIndex(heap, capacity: minimumCapacity)
        heap.state.pointee.root = UInt64(block)
    }

    private static func makeIndex(_ heap: SharedHeap, capacity: Int) throws(ManagerError) -> UInt32 {
        let block = try heap.allocate(bytes: indexHead + capacity * 4)
        heap.payload(block).storeBytes(of: UInt64(capacity), as: UInt64.self)
        return block
    }

    // MARK: reading

    @inline(__always)
    func index() throws(ManagerError) -> Index {
        // Acquire: pairs with the releasing stores of `root` (publish), so the index's words
        // and the elements they name are visible.
        let root = store.root.load(ordering: .acquiring)
        let block = UInt32(truncatingIfNeeded: root), count = Int(root >> 32)
        let payload = try heap.payload(checked: block)
        guard payload.count >= Self.indexHead else { throw .corrupted("list index block \(block) too small") }
        let capacity = WordAccess.atomic(payload.baseAddress!, UInt64.self).load(ordering: .relaxed)
        guard capacity <= UInt64((payload.count - Self.indexHead) / 4), count <= Int(capacity) else {
            throw .corrupted("list index of \(capacity) words in \(payload.count) bytes, count \(count)")
        }
        return Index(block: block, words: (payload.baseAddress! + Self.indexHead).assumingMemoryBound(to: UInt32.self),
                     capacity: Int(capacity), count: count)
    }

    /// The count alone (from the root word).
    func count() -> Int {
        Int(store.root.load(ordering: .acquiring) >> 32)  // pairs with the releasing root stores
    }

    /// The element unit at `i` (< count) of `index`, and its bytes, checked.
    @inline(__always)
    func element(_ index: Index, _ i: Int) throws(ManagerError) -> (unit: UInt32, bytes: UnsafeRawBufferPointer) {
        // Acquire: pairs with the releasing index store in set(_:at:).
        let unit = index.word(i).load(ordering: .acquiring)
        let payload = try heap.payload(checked: unit)
        guard payload.count >= Self.elementHead else { throw .corrupted("list element block \(unit) too small") }
        let length = WordAccess.atomic(payload.baseAddress!, UInt64.self).load(ordering: .relaxed)
        guard length <= UInt64(payload.count - Self.elementHead) else {
            throw .corrupted("list element block \(unit): \(length) bytes in \(payload.count)")
        }
        return (unit, UnsafeRawBufferPointer(start: payload.baseAddress! + Self.elementHead, count: Int(length)))
    }

    // MARK: writing (under the lock, inside `mutating`)

    /// Appends the elements (their bytes); all or none (``ManagerError/noSpace(needed:free:)``).
    func append(_ elements: [UnsafeRawBufferPointer]) throws(ManagerError) {
        var index = try index()
        let newCount = index.count + elements.count
        guard newCount <= Int(UInt32.max) else { throw .noSpace(needed: newCount * 4, free: heap.freeBytes) }
        let units = try writeElements(elements)
        if newCount <= index.capacity {
            for (k, unit) in units.enumerated() { index.word(index.count + k).store(unit, ordering: .relaxed) }
            publish(index.block, count: newCount)  // the words above are published by this release
            return
        }
        var capacity = max(Self.minimumCapacity, index.capacity)
        while capacity < newCount { capacity *= 2 }
        let fresh: UInt32
        do { fresh = try Self.makeIndex(heap, capacity: capacity) } catch {
            for unit in units { try heap.free(unit) }
            throw error
        }
        let words = (heap.payload(fresh) + Self.indexHead).assumingMemoryBound(to: UInt32.self)
        for i in 0..<index.count { words[i] = index.word(i).load(ordering: .relaxed) }
        for (k, unit) in units.enumerated() { words[index.count + k] = unit }
        publish(fresh, count: newCount)
        index.count = newCount
        try heap.free(index.block)
    }

    /// Replaces element `i` (< count): a new block published by one index store.
    func set(_ bytes: UnsafeRawBufferPointer, at i: Int) throws(ManagerError) {
        let index = try index()
        let old = try element(index, i).unit
        let unit = try writeElements([bytes])[0]
        index.word(i).store(unit, ordering: .releasing)  // pairs with the acquire in element(_:_:)
        try heap.free(old)
    }

    /// Inserts before `i` (≤ count): a new index with the element in place, published by one
    /// store of `root`.
    func insert(_ bytes: UnsafeRawBufferPointer, at i: Int) throws(ManagerError) {
        let index = try index()
        if i == index.count { return try append([bytes]) }
        let unit = try writeElements([bytes])[0]
        var capacity = max(Self.minimumCapacity, index.capacity)
        while capacity < index.count + 1 { capacity *= 2 }
        let fresh: UInt32
        do { fresh = try Self.makeIndex(heap, capacity: capacity) } catch {
            try heap.free(unit)
            throw error
        }
        let words = (heap.payload(fresh) + Self.indexHead).assumingMemoryBound(to: UInt32.self)
        for k in 0..<i { words[k] = index.word(k).load(ordering: .relaxed) }
        words[i] = unit
        for k in i..<index.count { words[k + 1] = index.word(k).load(ordering: .relaxed) }
        publish(fresh, count: index.count + 1)
        try heap.free(index.block)
    }

    /// Removes element `i` (< count). The last one: the count drops by one store of `root`;
    /// another: a new index without it is published by one store of `root`.
    func remove(at i: Int) throws(ManagerError) {
        let index = try index()
        let removed = try element(index, i).unit
        if i == index.count - 1 {
            publish(index.block, count: i)
            try heap.free(removed)
            return
        }
        let fresh = try Self.makeIndex(heap, capacity: index.capacity)
        let words = (heap.payload(fresh) + Self.indexHead).assumingMemoryBound(to: UInt32.self)
        for k in 0..<i { words[k] = index.word(k).load(ordering: .relaxed) }
        for k in (i + 1)..<index.count { words[k - 1] = index.word(k).load(ordering: .relaxed) }
        publish(fresh, count: index.count - 1)
        try heap.free(index.block)
        try heap.free(removed)
    }

    /// Removes every element: an empty index is published, then the blocks are freed.
    func removeAll() throws(ManagerError) {
        let index = try index()
        var units: [UInt32] = []
        for i in 0..<index.count { units.append(try element(index, i).unit) }
        let fresh = try Self.makeIndex(heap, capacity: Self.minimumCapacity)
        publish(fresh, count: 0)
        for unit in units { try heap.free(unit) }
        try heap.free(index.block)
    }

    private func publish(_ block: UInt32, count: Int) {
        // Release: pairs with the acquire in index(); publishes the index's words and elements.
        store.root.store(UInt64(count) << 32 | UInt64(block), ordering: .releasing)
        store.count.store(UInt64(count), ordering: .relaxed)  // relaxed: a statistic mirror
    }

    /// Writes each element whole in a fresh block; all or none.
    private func writeElements(_ elements: [UnsafeRawBufferPointer]) throws(ManagerError) -> [UInt32] {
        var units: [UInt32] = []
        units.reserveCapacity(elements.count)
        for bytes in elements {
            let unit: UInt32
            do { unit = try heap.allocate(bytes: Self.elementHead + bytes.count) } catch {
                for written in units { try heap.free(written) }
                throw error
            }
            let payload = heap.payload(unit)
            // Plain stores: published by the releasing store of `root` or of the index word.
            payload.storeBytes(of: UInt64(bytes.count), as: UInt64.self)
            if bytes.count > 0 { (payload + Self.elementHead).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
            units.append(unit)
        }
        return units
    }

    // MARK: repair

    /// After a writer died: the heap re-derived from the published index and its elements.
    static func repair(_ store: SharedStore) throws(ManagerError) {
        let table = ListTable(store: store)
        let index = try table.index()
        var live: [(block: UInt32, size: UInt32)] = [
            (index.block, UInt32(SharedHeap.units(forPayload: indexHead + index.capacity * 4)))
        ]
        for i in 0..<index.count {
            let element = try table.element(index, i)
            live.append((element.unit, UInt32(SharedHeap.units(forPayload: elementHead + element.bytes.count))))
        }
        try store.heap.rebuild(live: live)
        store.count.store(UInt64(index.count), ordering: .relaxed)  // relaxed: published by the sequence
    }
}
