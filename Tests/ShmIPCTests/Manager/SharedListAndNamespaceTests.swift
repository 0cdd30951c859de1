import Glibc
@testable import ShmIPC
import Testing

extension ShmIPCTests {
    @Suite struct SharedListTests {
        @Test func appendInsertRemoveAndSubscriptsBehaveLikeAnArray() throws {
            let sut = try SharedList<String>(capacity: 64 << 10)
            var model: [String] = []
            try sut.append("a"); model.append("a")
            try sut.append(contentsOf: ["b", "c", "d"]); model.append(contentsOf: ["b", "c", "d"])
            try sut.insert("z", at: 0); model.insert("z", at: 0)
            try sut.insert("m", at: 3); model.insert("m", at: 3)
            try sut.insert("end", at: model.count); model.insert("end", at: model.count)
            #expect(try sut.snapshot() == model)
            #expect(try sut.remove(at: 2) == model.remove(at: 2))
            #expect(try sut.popLast() == model.popLast())
            sut[1] = "B"; model[1] = "B"
            #expect(sut[1] == "B")
            #expect(sut[1..<3] == Array(model[1..<3]))
            #expect(sut.count == model.count)
            try sut.modify(at: 0) { $0 += "!" }
            model[0] += "!"
            #expect(try sut.snapshot() == model)
            try sut.removeAll()
            #expect(sut.isEmpty)
            #expect(try sut.popLast() == nil)
        }

        @Test func outOfRangeIsATypedErrorInTheThrowingForms() throws {
            let sut = try SharedList<Int>()
            try sut.append(contentsOf: [1, 2, 3])
            #expect(throws: ManagerError.indexOutOfRange(index: 3, count: 3)) { _ = try sut.element(at: 3) }
            #expect(throws: ManagerError.indexOutOfRange(index: -1, count: 3)) { try sut.setElement(0, at: -1) }
            #expect(throws: ManagerError.indexOutOfRange(index: 5, count: 3)) { try sut.insert(0, at: 5) }
            #expect(throws: ManagerError.indexOutOfRange(index: 3, count: 3)) { try sut.remove(at: 3) }
            #expect(throws: ManagerError.indexOutOfRange(index: 4, count: 3)) { _ = try sut.elements(in: 1..<4) }
            #expect(try sut.snapshot() == [1, 2, 3])
        }

        @Test(.tags(.awaits)) func theSubscriptTrapsOutOfRange() async {
            await #expect(processExitsWith: .failure) {
                let list = try SharedList<Int>()
                try list.append(1)
                _ = list[1]
            }
        }

        @Test func aLongListOfCodableElementsGrowsAndShrinks() throws {
            let sut = try SharedList<Account>(capacity: 2 << 20)
            var model: [Account] = []
            for i in 0..<3000 {
                let account = Account(owner: "o\(i)", balance: i, tags: i % 7 == 0 ? ["seven"] : [])
                if i % 5 == 4 { try sut.insert(account, at: i % model.count); model.insert(account, at: i % model.count) }
                else { try sut.append(account); model.append(account) }
            }
            while model.count > 1000 { #expect(try sut.remove(at: model.count / 2) == model.remove(at: model.count / 2)) }
            #expect(try sut.snapshot() == model)
        }

        @Test func aFullHeapIsATypedErrorAndChangesNothing() throws {
            let sut = try SharedList<[UInt8]>(capacity: 16 << 10)
            var model: [[UInt8]] = []
            var failure: ManagerError?
            while failure == nil {
                do { try sut.append([UInt8](repeating: 7, count: 100)); model.append([UInt8](repeating: 7, count: 100)) }
                catch { failure = error }
            }
            guard case .noSpace = failure else { Issue.record("\(String(describing: failure))"); return }
            let before = sut.statistics
            #expect(throws: ManagerError.self) { try sut.append(contentsOf: [[1], [UInt8](repeating: 1, count: 4000)]) }
            #expect(throws: ManagerError.self) { try sut.insert([UInt8](repeating: 1, count: 4000), at: 0) }
            #expect(sut.statistics == before)
            #expect(try sut.snapshot() == model)
        }
    }

    @Suite struct NamespaceTests {
        @Test func attributesAreTypedAtTheUseSite() throws {
            let sut = try Namespace()
            sut.x = 10
            sut.label = "ready"
            sut.point = Account(owner: "p", balance: 1, tags: [])
            let x: Int? = sut.x
            let label: String? = sut.label
            let missing: Double? = sut.nothing
            #expect(x == 10 && label == "ready" && missing == nil)
            #expect(try sut.value(of: "point", as: Account.self)?.owner == "p")
            #expect(throws: ManagerError.attributeType(name: "x")) { _ = try sut.value(of: "x", as: String.self) }
            try sut.modify("x", as: Int.self) { $0 = ($0 ?? 0) + 1 }
            #expect(try sut.value(of: "x", as: Int.self) == 11)
            sut.x = nil as Int?
            #expect(try Set(sut.names()) == ["label", "point"])
        }
    }

    @Suite struct ManagerTests {
        @Test func aNamedManagerRemovesWhatItCreatedAtShutdown() throws {
            let prefix = TestNames.unique("mgr").rawValue
            try Manager.with(prefix: prefix, capacity: 16 << 10) { manager in
                let d = try manager.dict([1: "one"])
                let l = try manager.list([1, 2, 3], named: "numbers")
                let ns = try manager.namespace()
                let q = try manager.messageQueue(capacity: 5)
                let lock = try manager.lock()
                let v = try manager.value(7)
                ns.ready = true
                #expect(d[1] == "one" && l[2] == 3 && v.load() == 7 && !lock.isLocked)
                try q.put("hello")
                #expect(try q.get(as: String.self) == "hello")
                #expect(manager.createdNames.count == 6)
                let attached = try SharedList<Int>(name: SegmentName("\(prefix).numbers"), mode: .openExisting)
                #expect(try attached.snapshot() == [1, 2, 3])
            }
            #expect(TestNames.leftovers().filter { $0.contains(prefix) }.isEmpty)
        }

        @Test func anInheritableManagerLeavesNothingInDevShm() throws {
            let manager = Manager()
            let d: SharedDictionary<String, [Int]> = try manager.dict(["a": [1, 2]])
            let l = try manager.list(["x"])
            #expect(d["a"] == [1, 2] && l[0] == "x")
            #expect(d.inheritableDescriptor != nil && l.inheritableDescriptor != nil)
            #expect(d.name == nil && l.name == nil && manager.createdNames.isEmpty)
        }
    }
}
