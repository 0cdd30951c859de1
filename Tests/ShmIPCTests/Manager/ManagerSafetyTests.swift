import CShim
import Glibc
@testable import ShmIPC
import SystemPackage
import Testing

extension ShmIPCTests {
    @Suite struct ManagerSafetyTests {
        /// Random words written over a populated dictionary's and list's control blocks and
        /// heaps (forged roots, slots, block heads, lengths, links; the lock word is
        /// ``Lock``'s to test), then every API called: each call returns (possibly wrong but
        /// whole values) or throws a ``ManagerError``; none crashes or hangs.
        @Test func scribbledSegmentsGiveTypedErrorsNeverACrash() throws {
            // A fixed seed, so a failure reproduces; SHMIPC_FUZZ_SEED and SHMIPC_FUZZ_ROUNDS
            // run other (and longer) fuzzes.
            let seed = ProcessEnvironment.value("SHMIPC_FUZZ_SEED").flatMap { UInt64($0) } ?? 7
            let rounds = ProcessEnvironment.value("SHMIPC_FUZZ_ROUNDS").flatMap { Int($0) } ?? 300
            var random = Xorshift(seed: seed)
            var outcomes: [String: Int] = [:]
            func record(_ body: () throws -> Void) {
                do { try body(); outcomes["ok", default: 0] += 1 } catch let error as ManagerError {
                    outcomes[Self.kind(error), default: 0] += 1
                } catch {
                    Issue.record("an untyped error: \(error)")
                }
            }
            for round in 0..<rounds {
                let d = try SharedDictionary<Int, [UInt8]>(capacity: 8192)
                let s = try SharedDictionary<String, Account>(capacity: 8192)
                let l = try SharedList<String>(capacity: 8192)
                for i in 0..<40 {
                    try d.setValue([UInt8](repeating: UInt8(i), count: i), forKey: i)
                    try s.setValue(Account(owner: "o\(i)", balance: i, tags: ["t"]), forKey: "k\(i)")
                    try l.append(String(repeating: "e", count: i))
                }
                for store in [d.store, s.store, l.store] { Self.scribble(store, round: round, &random) }
                for i in 0..<60 {
                    record { _ = try d.value(forKey: i % 45) }
                    record { _ = try s.value(forKey: "k\(i % 45)") }
                    record { _ = try l.element(at: i % 45) }
                    switch i % 12 {
                    case 0: record { try d.setValue([1, 2, 3], forKey: i) }
                    case 1: record { _ = try d.removeValue(forKey: i % 40) }
                    case 2: record { try d.modify(i % 40) { $0 = ($0 ?? []) + [9] } }
                    case 3: record { _ = try d.snapshot() }
                    case 4: record { _ = try s.keys(); _ = try s.values() }
                    case 5: record { try s.setValue(Account(owner: "x", balance: 0, tags: []), forKey: "new\(i)") }
                    case 6: record { try l.append("appended") }
                    case 7: record { try l.insert("inserted", at: min(3, l.count)) }
                    case 8: record { _ = try l.remove(at: 0) }
                    case 9: record { _ = try l.snapshot(); _ = try l.popLast() }
                    case 10: record { try l.setElement("set", at: 1) }
                    default: record { _ = (d.count, s.count, l.count); _ = try d.contains(i); try d.removeAll() }
                    }
                }
            }
            print("scribbled segments: \(outcomes)")
            #expect(Set(outcomes.keys).isSubset(of: ["ok", "corrupted", "decodingFailed", "indexOutOfRange", "noSpace"]), "\(outcomes)")
            #expect(outcomes["corrupted", default: 0] > 0, "the scribbles never got noticed: \(outcomes)")
            #expect(outcomes["ok", default: 0] > 0)
        }

        /// A peer process scribbles on a dictionary's segment while this process reads and
        /// writes it through every API: typed errors or values, never a crash or a hang.
        @Test func aHostilePeerScribblingConcurrentlyGetsTypedErrorsNeverACrash() throws {
            let d = try SharedDictionary<Int, [UInt8]>(capacity: 16 << 10)
            for i in 0..<60 { try d.setValue([UInt8](repeating: UInt8(i), count: i), forKey: i) }
            let scribbler = try Helper.start(
                "store-scribble", ["10", "1500", "\(UInt64(getpid()))"], descriptors: [(d.inheritableDescriptor!, 10)])
            var outcomes: [String: Int] = [:]
            var i = 0
            while scribbler.wait(deadline: .after(.zero)) == nil || i < 1000 {
                i += 1
                do {
                    switch i % 6 {
                    case 0: try d.setValue([1, 2, 3], forKey: i % 80)
                    case 1: _ = try d.removeValue(forKey: i % 80)
                    case 2: try d.modify(i % 80) { $0 = ($0 ?? []) + [1] }
                    case 3: _ = try d.snapshot()
                    default: _ = try d.value(forKey: i % 80)
                    }
                    outcomes["ok", default: 0] += 1
                } catch {
                    outcomes[(error as? ManagerError).map(Self.kind) ?? "untyped: \(error)", default: 0] += 1
                }
                if i > 2_000_000 { break }
            }
            #expect(Helper.finish(scribbler) == .exited(0), "\(scribbler.output)")
            print("hostile peer: \(i) calls, \(outcomes)")
            #expect(Set(outcomes.keys).isSubset(of: ["ok", "corrupted", "decodingFailed", "noSpace"]), "\(outcomes)")
            #expect(outcomes["corrupted", default: 0] > 0, "\(outcomes)")
        }

        /// Forged header capacities are refused on attach, before any offset is computed.
        @Test func aForgedCapacityIsRefusedOnAttach() throws {
            let sut = try SharedDictionary<Int, Int>(capacity: 8192)
            sut.store.storage.segment.memory.withUnsafeMutableBytes { bytes in
                let header = SegmentHeader(bytes.baseAddress!)
                header.raw.pointee.capacity = 8192 + 8  // not whole units
            }
            #expect(throws: SharedObjectError.corrupted(field: "capacity", value: 8200)) {
                _ = try SharedDictionary<Int, Int>(inheriting: FileDescriptor(rawValue: dup(sut.inheritableDescriptor!.rawValue)))
            }
            sut.store.storage.segment.memory.withUnsafeMutableBytes { bytes in
                SegmentHeader(bytes.baseAddress!).raw.pointee.capacity = 1 << 40
            }
            #expect(throws: SharedObjectError.corrupted(field: "capacity", value: 1 << 40)) {
                _ = try SharedDictionary<Int, Int>(inheriting: FileDescriptor(rawValue: dup(sut.inheritableDescriptor!.rawValue)))
            }
        }

        /// Writes random words (and forged values where they hurt most) over the store's
        /// control block (past its lock) and heap.
        static func scribble(_ store: SharedStore, round: Int, _ random: inout Xorshift) {
            let base = UnsafeMutableRawPointer(store.state)
            let bytes = MemoryLayout<shmipc_store_state>.stride + Int(store.heap.units) * SharedHeap.unitSize
            let writes = 1 + Int(random.next() % 12)
            for _ in 0..<writes {
                let offset = 16 + Int(random.next() % UInt64((bytes - 16) / 8)) * 8
                var word = random.next()
                switch random.next() % 4 {
                case 0: word &= 0xFFFF  // small: plausible unit indices and lengths
                case 1: word = UInt64(random.next() % UInt64(store.heap.units + 4))
                default: break
                }
                base.storeBytes(of: word, toByteOffset: offset, as: UInt64.self)
            }
            if round % 5 == 0 {  // the root itself
                store.root.store(random.next() % 3 == 0 ? random.next() : random.next() % UInt64(store.heap.units + 4), ordering: .relaxed)
            }
        }

        static func kind(_ error: ManagerError) -> String {
            switch error {
            case .corrupted: "corrupted"
            case .decodingFailed: "decodingFailed"
            case .indexOutOfRange: "indexOutOfRange"
            case .noSpace: "noSpace"
            default: "\(error)"
            }
        }
    }
}
