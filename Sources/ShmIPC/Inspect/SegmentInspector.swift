internal import Atomics
internal import CShim
package import SystemPackage
#if canImport(Glibc)
internal import Glibc
#endif

/// What an operator's tool learns of one named object in /dev/shm, read from outside: the
/// validated header, who created it and whether that process lives, which processes map it
/// now, and a few live figures of its state (depth, holder, counts). Every field read from the
/// segment is validated first; a segment that does not validate is reported with the typed
/// error's text, never trusted (and never a crash).
package struct SegmentReport: Codable, Sendable, Equatable {
    /// The ShmIPC name (the file is `/dev/shm/shmipc.<name>`).
    package var name: String
    /// Bytes of the file.
    package var fileSize: Int
    /// Whether the header validated (magic, initialized, sizes and offsets in bounds).
    package var valid: Bool
    /// Why it did not, in words.
    package var problem: String?
    package var kind: String?
    package var layoutVersion: UInt32?
    /// The element type's name as the creator recorded it (objects made before names were
    /// recorded: empty), and its fingerprint.
    package var elementType: String?
    package var elementTypeHash: String?
    package var elementSize: Int?
    package var capacity: Int?
    package var creatorPID: Int32?
    package var creatorAlive: Bool?
    /// Processes that map the object now (from /proc/*/maps; other users' are not visible).
    package var mappedBy: [Int32]
    /// Items (queues) or bytes (pipes) in flight.
    package var depth: Int?
    package var depthUnit: String?
    /// A lock's (or a condition's, a barrier's internal lock's) holder thread, and whether it lives.
    package var holder: Int32?
    package var holderAlive: Bool?
    /// Live counters, by name (puts and gets so far, parked waiters, items abandoned…).
    package var counters: [String: UInt64]

    /// Safe to remove: its creator is recorded and dead, and no process maps it. (An object
    /// whose creator is not recorded yet, one being created, is never stale.)
    package var isStale: Bool { mappedBy.isEmpty && creatorAlive == false }
}

package enum SegmentInspector {
    /// The names of every ShmIPC object in /dev/shm, sorted.
    package static func names() -> [String] {
        guard let directory = opendir("/dev/shm") else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let file = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if file.hasPrefix(SegmentName.osPrefix), file.count > SegmentName.osPrefix.count {
                names.append(String(file.dropFirst(SegmentName.osPrefix.count)))
            }
        }
        return names.sorted()
    }

    /// Reports on every object in /dev/shm (one scan of /proc for the mappings).
    package static func reportAll() -> [SegmentReport] {
        let mappings = mappingProcesses()
        return names().map { report($0, mappings: mappings) }
    }

    /// Reports on the object `name`; nil if there is no such file. Without `mappings`, the
    /// report's `mappedBy` stays empty and /proc is not scanned (a metrics update's figures).
    package static func report(_ name: String, mappings: Bool = true) -> SegmentReport? {
        guard access("/dev/shm/" + SegmentName.osPrefix + name, F_OK) == 0 else { return nil }
        return report(name, mappings: mappings ? mappingProcesses() : [:])
    }

    /// Removes the name of object `name` (processes mapping it keep it until they unmap).
    package static func remove(_ name: String) -> Errno? {
        shm_unlink("/" + SegmentName.osPrefix + name) == 0 ? nil : Errno(rawValue: errno)
    }

    // MARK: reading

    static func report(_ name: String, mappings: [String: [Int32]]) -> SegmentReport {
        var report = SegmentReport(
            name: name, fileSize: 0, valid: false, mappedBy: (mappings[name] ?? []).filter { $0 != getpid() }.sorted(),
            counters: [:])
        let fd = open("/dev/shm/" + SegmentName.osPrefix + name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            report.problem = "cannot open: \(Errno(rawValue: errno))"
            return report
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            report.problem = "cannot stat: \(Errno(rawValue: errno))"
            return report
        }
        report.fileSize = Int(status.st_size)
        guard report.fileSize >= SegmentHeader.size else {
            report.problem = "\(report.fileSize) bytes: smaller than a header (\(SegmentHeader.size))"
            return report
        }
        guard let base = mmap(nil, report.fileSize, PROT_READ, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            report.problem = "cannot map: \(Errno(rawValue: errno))"
            return report
        }
        defer { munmap(base, report.fileSize) }
        read(UnsafeRawPointer(base), into: &report)
        return report
    }

    /// Validates the header at `base` (the whole file mapped, read-only) and reads the state.
    private static func read(_ base: UnsafeRawPointer, into report: inout SegmentReport) {
        // Acquire: pairs with the creator's release stores of INITIALIZING (its pid) and READY
        // (every field), so the copy below, taken after it, holds whole fields.
        let initState = UnsafeAtomic<UInt32>(at: UnsafeMutablePointer(mutating: base.advanced(
            by: MemoryLayout<shmipc_segment_header>.offset(of: \.init_state)!).assumingMemoryBound(to: UInt32.AtomicRepresentation.self)))
            .load(ordering: .acquiring)
        // One copy of the header: what is checked is what is used.
        let header = base.loadUnaligned(as: shmipc_segment_header.self)
        guard header.magic == SegmentHeader.magic else {
            report.problem = "\(SharedObjectError.notAShmIPCObject)"
            return
        }
        let kind = ObjectKind(rawValue: header.kind)
        report.kind = kind.description
        report.layoutVersion = header.layout_version
        report.creatorPID = header.creator_pid
        report.creatorAlive = header.creator_pid > 0 ? Sys.threadIsAlive(header.creator_pid) : nil
        guard initState == SegmentHeader.InitState.ready.rawValue else {
            report.problem = initState == SegmentHeader.InitState.initializing.rawValue
                ? "still initializing (its creator, \(header.creator_pid), \(report.creatorAlive == true ? "is alive" : "is gone"))"
                : "not initialized (state \(initState))"
            return
        }
        report.elementType = SegmentHeader.typeName(of: header)
        report.elementTypeHash = "0x" + String(header.type_name_hash, radix: 16)
        report.elementSize = Int(truncatingIfNeeded: header.element_size)
        report.capacity = Int(truncatingIfNeeded: header.capacity)
        guard header.segment_size == UInt64(report.fileSize) else {
            report.problem = "the header says \(header.segment_size) bytes, the file has \(report.fileSize)"
            return
        }
        guard header.state_offset == UInt64(SegmentHeader.size),
              header.state_size <= header.segment_size &- header.state_offset
        else {
            report.problem = "its state (\(header.state_size) bytes at \(header.state_offset)) is outside the segment"
            return
        }
        report.valid = true
        readState(kind, base + SegmentHeader.size, size: Int(header.state_size), capacity: header.capacity, into: &report)
    }

    /// The live figures of each kind's state (`size` bytes at `state`, validated against each
    /// struct's size before it is read).
    private static func readState(
        _ kind: ObjectKind, _ state: UnsafeRawPointer, size: Int, capacity: UInt64, into report: inout SegmentReport
    ) {
        func word32(_ offset: Int) -> UInt32 { load(state, offset, UInt32.self) }
        func word64(_ offset: Int) -> UInt64 { load(state, offset, UInt64.self) }
        func holder(at offset: Int) {
            let owner = Int32(bitPattern: word32(offset) & SHMIPC_LOCK_OWNER_MASK)
            report.holder = owner == 0 ? nil : owner
            report.holderAlive = owner == 0 ? nil : Sys.threadIsAlive(owner)
        }
        let queue = MemoryLayout<shmipc_queue_state>.self
        switch kind {
        case .queue, .joinableQueue, .spscQueue, .messageQueue:
            guard size >= queue.size else { return }
            let tail = word64(queue.offset(of: \.tail)!), head = word64(queue.offset(of: \.head)!)
            let initial = word64(queue.offset(of: \.initial_index)!)
            report.depth = Int(clamping: tail &- head <= UInt64(Int.max) ? tail &- head : 0)
            report.depthUnit = "items"
            report.counters["puts"] = tail &- initial
            report.counters["gets"] = head &- initial
            report.counters["consumersParked"] = UInt64(word32(queue.offset(of: \.not_empty_waiters)!))
            report.counters["producersParked"] = UInt64(word32(queue.offset(of: \.not_full_waiters)!))
            report.counters["closed"] = UInt64(word32(queue.offset(of: \.closed)!))
            if kind == .spscQueue {
                report.counters["producerPID"] = UInt64(UInt32(bitPattern: Int32(bitPattern: word32(queue.offset(of: \.producer_pid)!))))
                report.counters["consumerPID"] = UInt64(UInt32(bitPattern: Int32(bitPattern: word32(queue.offset(of: \.consumer_pid)!))))
            } else {
                report.counters["abandoned"] = word64(queue.offset(of: \.abandoned)!)
            }
            if kind == .joinableQueue {
                report.counters["unfinishedTasks"] = UInt64(word32(queue.offset(of: \.unfinished)!))
                report.counters["joinersParked"] = UInt64(word32(queue.offset(of: \.join_waiters)!))
            }
        case .pipe:
            // One or two rings, each a queue state and its bytes (the header's capacity).
            let ringSize = queue.stride + Int(truncatingIfNeeded: min(capacity, UInt64(Int.max / 4)))
            var bytes: UInt64 = 0, sent: UInt64 = 0, received: UInt64 = 0, messagesSent: UInt64 = 0, messagesReceived: UInt64 = 0
            var ring = 0
            while ring < 2, (ring + 1) * ringSize <= size {
                let base = ring * ringSize
                let tail = word64(base + queue.offset(of: \.tail)!), head = word64(base + queue.offset(of: \.head)!)
                bytes &+= tail &- head <= capacity ? tail &- head : 0
                sent &+= tail
                received &+= head
                messagesSent &+= word64(base + queue.offset(of: \.produced)!)
                messagesReceived &+= word64(base + queue.offset(of: \.consumed)!)
                ring += 1
            }
            report.depth = Int(clamping: bytes)
            report.depthUnit = "bytes"
            report.counters["directions"] = UInt64(ring)
            report.counters["bytesSent"] = sent
            report.counters["bytesReceived"] = received
            report.counters["messagesSent"] = messagesSent
            report.counters["messagesReceived"] = messagesReceived
        case .lock, .recursiveLock:
            guard size >= MemoryLayout<shmipc_lock_state>.size else { return }
            holder(at: 0)
            report.counters["ownerDiedRecoveries"] = UInt64(word32(MemoryLayout<shmipc_lock_state>.offset(of: \.recoveries)!))
            report.counters["ownerDiedUnrepaired"] = UInt64(word32(MemoryLayout<shmipc_lock_state>.offset(of: \.inconsistent)!))
        case .condition:
            guard size >= MemoryLayout<shmipc_condition_state>.size else { return }
            holder(at: 0)
            report.counters["ownerDiedRecoveries"] = UInt64(word32(MemoryLayout<shmipc_lock_state>.offset(of: \.recoveries)!))
            report.counters["waiting"] = UInt64(word32(MemoryLayout<shmipc_condition_state>.offset(of: \.waiting)!))
        case .barrier:
            guard size >= MemoryLayout<shmipc_barrier_state>.size else { return }
            holder(at: 0)
            let barrier = MemoryLayout<shmipc_barrier_state>.self
            report.counters["ownerDiedRecoveries"] = UInt64(word32(MemoryLayout<shmipc_lock_state>.offset(of: \.recoveries)!))
            report.counters["parties"] = UInt64(word32(barrier.offset(of: \.parties)!))
            report.counters["waiting"] = UInt64(word32(barrier.offset(of: \.count)!))
            report.counters["broken"] = UInt64(word32(barrier.offset(of: \.broken)!))
            report.counters["generation"] = UInt64(word32(barrier.offset(of: \.generation)!))
        case .semaphore, .boundedSemaphore:
            guard size >= MemoryLayout<shmipc_semaphore_state>.size else { return }
            report.counters["value"] = UInt64(word32(MemoryLayout<shmipc_semaphore_state>.offset(of: \.value)!))
            report.counters["parked"] = UInt64(word32(MemoryLayout<shmipc_semaphore_state>.offset(of: \.waiters)!))
        case .event:
            guard size >= MemoryLayout<shmipc_event_state>.size else { return }
            report.counters["set"] = UInt64(word32(MemoryLayout<shmipc_event_state>.offset(of: \.flag)!))
            report.counters["parked"] = UInt64(word32(MemoryLayout<shmipc_event_state>.offset(of: \.waiters)!))
        default:
            break
        }
    }

    /// A relaxed atomic load of a `T` at `offset` (the caller checked the bounds).
    private static func load<T: AtomicInteger>(_ state: UnsafeRawPointer, _ offset: Int, _: T.Type) -> T
    where T.AtomicRepresentation.Value == T {
        UnsafeAtomic<T>(at: UnsafeMutablePointer(mutating: (state + offset).assumingMemoryBound(to: T.AtomicRepresentation.self)))
            .load(ordering: .relaxed)  // relaxed: a snapshot
    }

    // MARK: mappings

    /// For every ShmIPC name mapped by a process we can read: the processes that map it.
    static func mappingProcesses() -> [String: [Int32]] {
        guard let proc = opendir("/proc") else { return [:] }
        defer { closedir(proc) }
        let marker = "/dev/shm/" + SegmentName.osPrefix
        var result: [String: Set<Int32>] = [:]
        while let entry = readdir(proc) {
            let file = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = Int32(file), let maps = readFile("/proc/\(pid)/maps") else { continue }
            for line in maps.split(separator: "\n") {
                guard let range = line.firstRange(of: marker) else { continue }
                var name = line[range.upperBound...]
                if name.hasSuffix(" (deleted)") { continue }  // unlinked: another object by now, maybe
                name = name.prefix { $0 != " " }
                result[String(name), default: []].insert(pid)
            }
        }
        return result.mapValues { Array($0) }
    }

    private static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += buffer[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
