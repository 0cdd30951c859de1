import Glibc
@testable import ShmIPC
import SystemPackage
import Testing

extension ShmIPCTests {
    @Suite struct SharedMemoryTests {
        @Test func createRoundsUpToPagesAndZeroFills() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try SharedMemory.create(name: name, size: 10)
            #expect(sut.size == Sys.pageSize)
            #expect(sut.isOwner == true)
            #expect(sut.name == name)
            sut.withUnsafeMutableBytes { bytes in
                #expect(bytes.allSatisfy { $0 == 0 })
            }
            try sut.unlink()
        }

        @Test func openSeesTheCreatorsWritesAndIsNotTheOwner() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let creator = try SharedMemory.create(name: name, size: 8192)
            creator.withUnsafeMutableBytes { $0.storeBytes(of: 0xC0FFEE, toByteOffset: 4096, as: UInt64.self) }
            let sut = try SharedMemory.open(name: name)
            #expect(sut.isOwner == false)
            #expect(sut.size == 8192)
            #expect(sut.withUnsafeMutableBytes { $0.load(fromByteOffset: 4096, as: UInt64.self) } == 0xC0FFEE)
            do {
                try sut.unlink()
                Issue.record("a non-owner unlinked the name")
            } catch {
                #expect(error == .notOwner(name))
            }
            try creator.unlink()
        }

        @Test func exclusiveCreateOfAnExistingNameFailsClearly() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let first = try SharedMemory.create(name: name, size: 100)
            let error = #expect(throws: SharedMemoryError.self) { _ = try SharedMemory.create(name: name, size: 100) }
            #expect(error == .alreadyExists(name))
            #expect(error?.description == "shared memory '\(name)' already exists")
            try first.unlink()
        }

        @Test func openOfAMissingNameFailsWithNotFound() {
            let name = TestNames.unique()
            #expect(throws: SharedMemoryError.notFound(name)) { _ = try SharedMemory.open(name: name) }
        }

        @Test func openOrCreateCreatesOnceThenOpens() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let first = try SharedMemory(name: name, mode: .openOrCreate, size: 4096)
            let second = try SharedMemory(name: name, mode: .openOrCreate, size: 4096)
            #expect(first.isOwner == true)
            #expect(second.isOwner == false)
            first.withUnsafeMutableBytes { $0.storeBytes(of: 42, as: UInt32.self) }
            #expect(second.withUnsafeMutableBytes { $0.load(as: UInt32.self) } == 42)
            second.close()
            try first.unlink()
        }

        @Test func openRequiringMoreThanTheSegmentHasFails() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try SharedMemory.create(name: name, size: 4096)
            #expect(throws: SharedMemoryError.tooSmall(name, required: 3 * 4096, found: 4096)) {
                _ = try SharedMemory(name: name, mode: .openExisting, size: 3 * 4096)
            }
            try owner.unlink()
        }

        @Test func unlinkRemovesTheNameButAttachedHandlesKeepTheirMemory() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try SharedMemory.create(name: name, size: 64)
            let other = try SharedMemory.open(name: name)
            try owner.unlink()
            #expect(throws: SharedMemoryError.notFound(name)) { _ = try SharedMemory.open(name: name) }
            other.withUnsafeMutableBytes { $0.storeBytes(of: 7, as: UInt8.self) }
            #expect(other.withUnsafeMutableBytes { $0[0] } == 7)
        }

        @Test func removeLeftoverRemovesANameWhoseOwnerIsGone() throws {
            let name = TestNames.unique()
            do { let owner = try SharedMemory.create(name: name, size: 64); owner.close() }  // owner detaches, never unlinks
            #expect(try SharedMemory.removeLeftover(name))
            #expect(try !SharedMemory.removeLeftover(name))
        }

        @Test func permissionsAre0600ByDefault() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let sut = try SharedMemory.create(name: name, size: 64)
            #expect(try fileMode(name.path) == 0o600)
            try sut.unlink()
        }

        @Test func requestedPermissionsApplyExactlyWhateverTheUmask() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            // 0o660 would lose group-write under the usual umask 022 if passed to shm_open alone.
            let sut = try SharedMemory.create(name: name, size: 64, permissions: [.ownerReadWrite, .groupReadWrite])
            #expect(try fileMode(name.path) == 0o660)
            try sut.unlink()
        }

        @Test(arguments: [0, -1, Int.max])
        func invalidSizesAreRejected(size: Int) {
            let name = TestNames.unique()
            #expect(throws: SharedMemoryError.invalidSize(size)) { _ = try SharedMemory.create(name: name, size: size) }
            #expect(throws: SharedMemoryError.notFound(name)) { _ = try SharedMemory.open(name: name) }
        }

        @Test func anInheritableSegmentHasNoNameAndIsSealedAgainstShrinking() throws {
            let sut = try SharedMemory(inheritableSize: 5000)
            #expect(sut.name == nil)
            #expect(sut.size == 2 * Sys.pageSize)
            let descriptor = sut.inheritableDescriptor
            let fd = try #require(descriptor)
            #expect(ftruncate(fd.rawValue, 0) == -1)
            #expect(errno == EPERM)
            try sut.unlink()  // nothing to remove: no error
        }

        @Test func anInheritedDescriptorMapsTheSameMemory() throws {
            let sut = try SharedMemory(inheritableSize: 64)
            sut.withUnsafeMutableBytes { $0.storeBytes(of: 99, as: UInt64.self) }
            let descriptor = sut.inheritableDescriptor
            let fd = try #require(descriptor)
            let other = try SharedMemory(inheriting: FileDescriptor(rawValue: dup(fd.rawValue)))
            #expect(other.isOwner == false)
            #expect(other.withUnsafeMutableBytes { $0.load(as: UInt64.self) } == 99)
        }

        private func fileMode(_ path: String) throws -> mode_t {
            var status = stat()
            try #require(stat(path, &status) == 0)
            return status.st_mode & 0o777
        }
    }
}
