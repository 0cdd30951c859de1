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
