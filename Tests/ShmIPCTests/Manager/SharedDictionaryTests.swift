import Glibc
@testable import ShmIPC
import Testing

/// A Codable value without a direct stored form: goes through BinaryMessageCoder.
struct Account: Codable, Hashable, Sendable {
    var owner: String
    var balance: Int
    var tags: [String]
}

extension ShmIPCTests {
    @Suite struct SharedDictionaryTests {
        @Test func setGetRemoveAndCountBehaveLikeADictionary() throws {
            let sut = try SharedDictionary<String, Int>(capacity: 64 << 10)
            #expect(sut["a"] == nil)
            sut["a"] = 1
            sut["b"] = 2
            #expect(sut["a"] == 1 && sut["b"] == 2)
            #expect(sut.count == 2)
            #expect(try sut.updateValue(10, forKey: "a") == 1)
            #expect(sut["a"] == 10)
            #expect(try sut.removeValue(forKey: "a") == 10)
            #expect(try sut.removeValue(forKey: "a") == nil)
            #expect(try sut.contains("b"))
            #expect(try !sut.contains("a"))
            sut["b"] = nil
            #expect(sut.isEmpty)
        }

        @Test func manyKeysSurviveRehashingAndRemovalChurn() throws {
            let sut = try SharedDictionary<Int, [UInt8]>(capacity: 4 << 20)
            var model: [Int: [UInt8]] = [:]
            var random = SystemRandomNumberGenerator()
            for step in 0..<20_000 {
                let key = Int.random(in: 0..<3000, using: &random)
                if step % 3 == 2 {
                    #expect(try sut.removeValue(forKey: key) == model.removeValue(forKey: key))
                } else {
                    let value = (0..<Int.random(in: 0...100, using: &random)).map { UInt8(truncatingIfNeeded: $0 &+ key &+ step) }
                    try sut.setValue(value, forKey: key)
                    model[key] = value
                }
            }
            #expect(sut.count == model.count)
            #expect(try sut.snapshot() == model)
            #expect(Set(try sut.keys()) == Set(model.keys))
            for (key, value) in model { #expect(sut[key] == value) }
        }

        @Test func codableValuesAndKeysRoundTrip() throws {
            let sut = try SharedDictionary<Account, Account>()
            let ada = Account(owner: "ada", balance: 10, tags: ["x", "y"])
            let bob = Account(owner: "bob", balance: -3, tags: [])
            sut[ada] = bob
            sut[bob] = ada
            #expect(sut[ada] == bob && sut[bob] == ada)
            #expect(try sut.values().count == 2)
            try sut.modify(ada) { $0?.balance += 5 }
            #expect(sut[ada]?.balance == 2)
        }

        @Test func modifyIsARoundTripThatRemovesOnNilAndRethrows() throws {
            let sut = try SharedDictionary<Int, Double>()
            try sut.modify(1) { $0 = ($0 ?? 0) + 1.5 }
            try sut.modify(1) { $0 = ($0 ?? 0) + 1.5 }
            #expect(sut[1] == 3.0)
            struct Refused: Error {}
            #expect(throws: Refused.self) { try sut.modify(1) { $0 = 99; throw Refused() } }
            #expect(sut[1] == 3.0)
            try sut.modify(1) { $0 = nil }
            #expect(sut[1] == nil && sut.isEmpty)
        }

        @Test func usingTheDictionaryInsideItsOwnModifyIsATypedError() throws {
            let sut = try SharedDictionary<Int, Int>()
            #expect(throws: ManagerError.lock(.wouldDeadlock)) {
                try sut.modify(1) { _ in try sut.setValue(2, forKey: 2) }
            }
            // Readers take no lock: reading inside modify works.
            sut[3] = 3
            try sut.modify(1) { $0 = sut[3] }
            #expect(sut[1] == 3)
        }

        @Test func removeAllEmptiesAndFreesTheHeap() throws {
            let sut = try SharedDictionary<Int, String>(capacity: 64 << 10)
            let empty = sut.statistics.used
            for i in 0..<500 { sut[i] = String(repeating: "x", count: i % 50) }
            #expect(sut.statistics.used > empty)
            try sut.removeAll()
            #expect(sut.isEmpty)
            #expect(sut.statistics.used == empty)
            sut[1] = "back"
            #expect(sut[1] == "back")
        }

        @Test func aFullHeapIsATypedErrorAndChangesNothing() throws {
            let sut = try SharedDictionary<Int, [UInt8]>(capacity: 16 << 10)
            var stored: [Int: [UInt8]] = [:]
            var key = 0
            var failure: ManagerError?
            while failure == nil {
                let value = [UInt8](repeating: UInt8(key & 0xFF), count: 200)
                do { try sut.setValue(value, forKey: key); stored[key] = value; key += 1 } catch { failure = error }
            }
            guard case .noSpace = failure else { Issue.record("\(String(describing: failure))"); return }
            let before = sut.statistics
            // A replacement too large, a new key: both refused, the dictionary as it was.
            #expect(throws: ManagerError.self) { try sut.setValue([UInt8](repeating: 1, count: 16 << 10), forKey: 0) }
            #expect(throws: ManagerError.self) { try sut.setValue([UInt8](repeating: 1, count: 8 << 10), forKey: -1) }
            #expect(sut.statistics == before)
            #expect(try sut.snapshot() == stored)
            // Space comes back with removals.
            _ = try sut.removeValue(forKey: 0)
            try sut.setValue([1], forKey: -1)
            #expect(sut[-1] == [1])
        }

        @Test func attachingWithAnotherKeyOrValueTypeIsATypedError() throws {
            let name = TestNames.unique("dict")
            defer { TestNames.cleanUp(name) }
            let owner = try SharedDictionary<Int, String>(name: name, mode: .createExclusive, capacity: 8192)
            owner[1] = "one"
            #expect {
                _ = try SharedDictionary<Int, Int>(name: name, mode: .openExisting)
            } throws: { error in
                if case SharedObjectError.typeMismatch = error { return true }
                return false
            }
            #expect(throws: SharedObjectError.kindMismatch(expected: .list, found: .dictionary)) {
                _ = try SharedList<Int>(name: name, mode: .openExisting)
            }
            // The right types attach, with the creator's capacity whatever is asked.
            let other = try SharedDictionary<Int, String>(name: name, mode: .openOrCreate, capacity: 1 << 20)
            #expect(other[1] == "one")
            #expect(other.statistics.capacity == owner.statistics.capacity)
            try owner.unlink()
        }
    }
}

extension ShmIPCTests {
    @Suite struct SharedHeapTests {
        /// Random-size inserts and removes (1–2048-byte values) while the live data stays
        /// under half the heap: no allocation fails, in 200k operations, and the contents
        /// match a model throughout. Then the dictionary is filled until the first failure, and
        /// the fill level it reached is reported.
        @Test func aChurnBelowHalfTheHeapNeverRunsOutOfSpace() throws {
            let capacity = 1 << 20
            let sut = try SharedDictionary<Int, [UInt8]>(capacity: capacity)
            var model: [Int: Int] = [:]   // key -> value length
            var live = 0                  // bytes of keys and values stored
            var random = Xorshift(seed: 42)
            var failures = 0
            for step in 0..<200_000 {
                let key = Int(random.next() % 4096)
                let length = 1 + Int(random.next() % 2048)
                if let old = model[key], random.next() % 2 == 0 || live + length - old > capacity / 2 {
                    _ = try sut.removeValue(forKey: key)
                    model[key] = nil
                    live -= old + 8
                } else if live + length + 8 - (model[key].map { $0 + 8 } ?? 0) <= capacity / 2 {
                    do {
                        try sut.setValue([UInt8](repeating: UInt8(truncatingIfNeeded: step), count: length), forKey: key)
                        live += length + 8 - (model[key].map { $0 + 8 } ?? 0)
                        model[key] = length
                    } catch {
                        failures += 1
                        Issue.record("step \(step): \(error) with \(live) live bytes of \(capacity)")
                        if failures > 3 { return }
                    }
                }
            }
            #expect(sut.count == model.count)
            for (key, length) in model.prefix(200) { #expect(sut[key]?.count == length) }
            // Fill until the first failure: how much of the heap can hold live data.
            var key = 10_000
            while true {
                let length = 1 + Int(random.next() % 2048)
                do { try sut.setValue([UInt8](repeating: 1, count: length), forKey: key) } catch { break }
                live += length + 8
                key += 1
            }
            print("heap churn: 200k operations below 50% without a failure; filled to \(100 * live / capacity)% of the heap before the first noSpace")
            #expect(live > capacity / 2)
        }

        @Test func sizeClassesCoverEverySizeInOrder() {
            var previous = 0
            for n in Array(UInt32(1)...UInt32(70_000)) + Array(stride(from: UInt32(70_000), to: SharedHeap.maximumUnits, by: 9_973)) {
                let c = SharedHeap.classFloor(n)
                #expect(c >= previous && c < SharedHeap.classCount)
                #expect(SharedHeap.classLowerBound(c) <= n)
                #expect(SharedHeap.classCeiling(n) == (SharedHeap.classLowerBound(c) == n ? c : c + 1))
                previous = c
            }
            #expect(SharedHeap.classFloor(SharedHeap.maximumUnits - 1) < SharedHeap.classCount)
        }
    }
}

/// A small deterministic generator for tests.
struct Xorshift {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
