import Foundation
import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import Testing

extension ShmIPCTests {
    @Suite struct ValueTests {
        @Test func integerOperationsAreAtomicReadModifyWrites() throws {
            let sut = try Value<Int>(40)
            #expect(sut.value == 40)
            #expect(sut.add(2) == 40)
            #expect(sut.subtract(1) == 42)
            #expect(sut.exchange(7) == 41)
            #expect(sut.compareExchange(expected: 8, desired: 9) == (false, 7))
            #expect(sut.compareExchange(expected: 7, desired: 12) == (true, 7))
            #expect(sut.bitwiseAnd(0b1010) == 12)
            #expect(sut.bitwiseOr(0b0001) == 8)
            #expect(sut.bitwiseXor(0b1001) == 9)
            #expect(sut.load() == 0)
            sut.value = -5
            #expect(sut.load() == -5)
        }

        @Test func boolsHaveAtomicLogicalOperations() throws {
            let sut = try Value<Bool>(false)
            #expect(sut.logicalOr(true) == false)
            #expect(sut.logicalXor(true) == true)
            #expect(sut.value == false)
            #expect(sut.compareExchange(expected: false, desired: true) == (true, false))
            #expect(sut.logicalAnd(false) == true)
            #expect(sut.exchange(true) == false)
            #expect(sut.load())
        }

        @Test func theRawPointerReachesTheStoredValue() throws {
            let word = try Value<Int32>(5)
            word.withUnsafeMutablePointer { $0.pointee += 1 }
            #expect(word.value == 6)
            let wide = try Value<Pattern64>(Pattern64(1))
            wide.store(Pattern64(2))  // now the value is in the second buffer
            #expect(wide.withUnsafeMutablePointer { $0.pointee } == Pattern64(2))
        }

        @Test func doublesAddByCompareExchange() throws {
            let sut = try Value<Double>(1.5)
            #expect(sut.add(2.25) == 3.75)
            #expect(sut.value == 3.75)
        }

        @Test func wideValuesRoundTripAndWithLockPublishes() throws {
            let sut = try Value<Pattern64>(Pattern64(1))
            #expect(sut.load() == Pattern64(1))
            sut.store(Pattern64(2))
            #expect(sut.load() == Pattern64(2))
            try sut.withLock { $0 = Pattern64($0.first + 40) }
            #expect(sut.load() == Pattern64(42))
            sut.store(Pattern64(3))  // alternates buffers: a second and third write
            #expect(sut.load() == Pattern64(3))
        }

        @Test func attachingWithAnotherTypeFails() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try Value<Int64>(name: name, mode: .createExclusive, initial: 1)
            #expect(throws: SharedObjectError.typeMismatch(expected: TypeFingerprint(of: Double.self), found: TypeFingerprint(of: Int64.self))) {
                _ = try Value<Double>(name: name, mode: .openExisting, initial: 0)
            }
            let other = try Value<Int64>(name: name, mode: .openExisting, initial: 99)
            #expect(other.value == 1)  // attaching never re-initializes
            try owner.unlink()
        }

        @Test(arguments: ["atomic", "locked"])
        func twoProcessesIncrementingGetTheExactTotal(how: String) throws {
            let name = TestNames.unique(), startName = TestNames.unique("start")
            defer { [name, startName].forEach(TestNames.cleanUp) }
            let sut = try Value<Int>(name: name, mode: .createExclusive, initial: 0)
            let start = try Barrier(name: startName, mode: .createExclusive, parties: 2)
            let increments = how == "atomic" ? 1_000_000 : 100_000
            let children = try (0..<2).map { _ in
                try Helper.start("value-add", [name.rawValue, "\(increments)", startName.rawValue, "2", how])
            }
            for child in children { #expect(Helper.finish(child, timeout: .seconds(300)) == .exited(0), "\(child.output)") }
            #expect(sut.value == 2 * increments)
            try start.unlink()
            try sut.unlink()
        }

        @Test func aReaderInAnotherProcessNeverSeesAMixOfTwoWrites() throws {
            let name = TestNames.unique(), stopName = TestNames.unique("stop")
            defer { [name, stopName].forEach(TestNames.cleanUp) }
            let initial = Pattern64(0xAAAA_AAAA_AAAA_AAAA)
            let sut = try Value<Pattern64>(name: name, mode: .createExclusive, initial: initial)
            let stop = try Value<Int>(name: stopName, mode: .createExclusive, initial: 0)
            let writer = try Helper.start("value-alternate", [name.rawValue, stopName.rawValue])
            try #require(Helper.waitForOutput(writer, containing: "writing"))
            var torn = 0, changes = 0
            var previous = initial.first
            for _ in 0..<10_000_000 {
                let read = sut.load()
                if !read.isWhole || (read.first != 0xAAAA_AAAA_AAAA_AAAA && read.first != 0x5555_5555_5555_5555) { torn += 1 }
                if read.first != previous { changes += 1; previous = read.first }
            }
            stop.store(1)
            #expect(Helper.finish(writer) == .exited(0), "\(writer.output)")
            #expect(torn == 0)
            #expect(changes > 0, "the reader never saw the writer's stores: the test proved nothing")
            try stop.unlink()
            try sut.unlink()
        }
    }

    @Suite struct SharedArrayTests {
        @Test func subscriptsSlicesAndBulkAccess() throws {
            let sut = try SharedArray<Int>(count: 6, repeating: 0)
            for i in 0..<6 { sut[i] = i * 10 }
            #expect(sut[2..<5] == [20, 30, 40])
            #expect(sut.add(5, at: 1) == 10)
            #expect(sut[1] == 15)
            sut.withUnsafeMutableBufferPointer { $0[5] = 99 }
            #expect(try sut.element(at: 5) == 99)
            let total = try sut.withLock { $0.reduce(0, +) }
            #expect(total == 0 + 15 + 20 + 30 + 40 + 99)
        }

        @Test func outOfRangeAccessIsATypedError() throws {
            let sut = try SharedArray<UInt8>(count: 4, repeating: 1)
            #expect(throws: SharedArrayError.indexOutOfRange(index: 4, count: 4)) { _ = try sut.element(at: 4) }
            #expect(throws: SharedArrayError.indexOutOfRange(index: -1, count: 4)) { try sut.setElement(0, at: -1) }
            #expect(throws: SharedArrayError.rangeOutOfRange(lower: 2, upper: 6, count: 4)) { _ = try sut.elements(in: 2..<6) }
            #expect(SharedArrayError.indexOutOfRange(index: 4, count: 4).description == "index 4 is out of range 0..<4")
        }

        @Test func attachingWithAnotherCountOrTypeFails() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try SharedArray<Int32>(name: name, mode: .createExclusive, count: 8, repeating: 0)
            #expect(throws: SharedObjectError.capacityMismatch(expected: 9, found: 8)) {
                _ = try SharedArray<Int32>(name: name, mode: .openExisting, count: 9, repeating: 0)
            }
            #expect(throws: SharedObjectError.typeMismatch(expected: TypeFingerprint(of: UInt32.self), found: TypeFingerprint(of: Int32.self))) {
                _ = try SharedArray<UInt32>(name: name, mode: .openExisting, count: 8, repeating: 0)
            }
            try owner.unlink()
        }

        @Test func concurrentElementUpdatesFromTwoProcessesAreExact() throws {
            let name = TestNames.unique(), startName = TestNames.unique("start")
            defer { [name, startName].forEach(TestNames.cleanUp) }
            let count = 16, increments = 200_000
            let sut = try SharedArray<Int>(name: name, mode: .createExclusive, count: count, repeating: 0)
            let start = try Barrier(name: startName, mode: .createExclusive, parties: 2)
            let children = try (0..<2).map { _ in
                try Helper.start("array-add", [name.rawValue, "\(count)", "\(increments)", startName.rawValue, "2"])
            }
            for child in children { #expect(Helper.finish(child, timeout: .seconds(300)) == .exited(0), "\(child.output)") }
            #expect((0..<count).map { sut[$0] } == Array(repeating: 2 * increments / count, count: count))
            try start.unlink()
            try sut.unlink()
        }
    }
}
