import CShim
import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import Testing

extension ShmIPCTests {
    @Suite struct SharedObjectSegmentTests {
        let layout = TestObject.layout(capacity: 16)

        private func makeObject(_ name: SegmentName, layout: ObjectLayout? = nil) throws -> SharedObjectSegment {
            try SharedObjectSegment.create(name: name, mode: .createExclusive, layout: layout ?? self.layout) {
                TestObject.fill($0)
            }
        }

        @Test func headerLayoutMatchesTheCStruct() {
            #expect(MemoryLayout<shmipc_segment_header>.size == 128)
            #expect(MemoryLayout<shmipc_segment_header>.offset(of: \.init_state) == 16)
        }

        @Test func anAttacherSeesTheInitializedStateAndTheCreatorPID() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try makeObject(name)
            let sut = try SharedObjectSegment.attach(name: name, expecting: layout)
            #expect(sut.withState { TestObject.isFilled($0) })
            #expect(sut.creatorPID == getpid())
            try owner.unlink()
        }

        @Test func openOrCreateAttachesAnExistingObjectWithoutReinitializingIt() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try makeObject(name)
            owner.withState { $0.storeBytes(of: 5, as: UInt64.self) }
            let sut = try SharedObjectSegment.create(name: name, mode: .openOrCreate, layout: layout) { _ in
                Issue.record("initializer ran for an existing object")
            }
            #expect(sut.withState { $0.load(as: UInt64.self) } == 5)
            #expect(sut.memory.isOwner == false)
            try owner.unlink()
        }

        @Test func attachingWithAnotherKindFails() throws {
            try expectAttach(with: { $0.kind = .queue }, fails: .kindMismatch(expected: .queue, found: .testing))
        }

        @Test func attachingWithAnotherElementTypeFails() throws {
            try expectAttach(
                with: { $0.element = TypeFingerprint(of: Int64.self) },
                fails: .typeMismatch(expected: TypeFingerprint(of: Int64.self), found: TypeFingerprint(of: UInt64.self)))
        }

        @Test func attachingWithAnotherCapacityFails() throws {
            try expectAttach(with: { $0.capacity = 17 }, fails: .capacityMismatch(expected: 17, found: 16))
        }

        @Test func attachingWithAnotherVersionFails() throws {
            try expectAttach(with: { $0.version = 2 }, fails: .versionMismatch(expected: 2, found: 1))
        }

        @Test func attachingToATruncatedSegmentFails() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let big = TestObject.layout(capacity: 2000)  // 16 000 bytes of state: 4 pages
            let owner = try makeObject(name, layout: big)
            try truncate(name, to: 4096)
            #expect(throws: SharedObjectError.truncated(required: 4 * 4096, found: 4096)) {
                _ = try SharedObjectSegment.attach(name: name, expecting: big)
            }
            try owner.unlink()
        }

        @Test func attachingToASegmentSmallerThanAHeaderFails() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try makeObject(name)
            try truncate(name, to: 100)
            #expect(throws: SharedObjectError.truncated(required: 128, found: 100)) {
                _ = try SharedObjectSegment.attach(name: name, expecting: layout)
            }
            try owner.unlink()
        }

        @Test func attachingToSomethingElseFailsOnTheMagicNumber() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let foreign = try SharedMemory.create(name: name, size: 4096)
            foreign.withUnsafeMutableBytes { bytes in
                for i in bytes.indices { bytes[i] = 0xAB }
                bytes.storeBytes(of: 2, toByteOffset: 16, as: UInt32.self)  // "ready", but not ours
            }
            #expect(throws: SharedObjectError.notAShmIPCObject) {
                _ = try SharedObjectSegment.attach(name: name, expecting: layout)
            }
            try foreign.unlink()
        }

        @Test(arguments: [
            (16, UInt64(77), "init_state"),
            (72, UInt64(1 << 62), "state_offset"),
            (80, UInt64.max, "state_size"),
            (24, UInt64(3), "segment_size"),
        ])
        func corruptedHeaderFieldsAreNamedNeverFollowed(offset: Int, value: UInt64, field: String) throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try makeObject(name)
            owner.memory.withUnsafeMutableBytes { bytes in
                if offset == 16 {
                    bytes.storeBytes(of: UInt32(value), toByteOffset: offset, as: UInt32.self)
                } else {
                    bytes.storeBytes(of: value, toByteOffset: offset, as: UInt64.self)
                }
            }
            #expect(throws: SharedObjectError.corrupted(field: field, value: value)) {
                _ = try SharedObjectSegment.attach(name: name, expecting: layout, timeout: .milliseconds(100))
            }
            try owner.unlink()
        }

        @Test func aZeroFilledSegmentTimesOutWithoutACreator() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let blank = try SharedMemory.create(name: name, size: 4096)
            #expect(throws: SharedObjectError.initializationTimedOut(creatorPID: nil)) {
                _ = try SharedObjectSegment.attach(name: name, expecting: layout, timeout: .milliseconds(50))
            }
            try blank.unlink()
        }

        @Test func aSegmentNotYetSizedTimesOut() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let fd = shm_open(name.osName, O_RDWR | O_CREAT | O_EXCL, 0o600)  // a creator stuck before ftruncate
            try #require(fd >= 0)
            close(fd)
            #expect(throws: SharedObjectError.initializationTimedOut(creatorPID: nil)) {
                _ = try SharedObjectSegment.attach(name: name, expecting: layout, timeout: .milliseconds(50))
            }
            #expect(try SharedMemory.removeLeftover(name))
        }

        @Test func anAttacherWaitsWhileTheCreatorInAnotherProcessIsInitializing() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let creator = try Helper.start("create-object", [name.rawValue, "16", "300"])
            #expect(Helper.waitForOutput(creator, containing: "initializing"))

            let sut = try SharedObjectSegment.attach(name: name, expecting: layout, timeout: .seconds(30))

            #expect(sut.withState { TestObject.isFilled($0) })
            #expect(sut.creatorPID == creator.pid)
            release(sut)
            #expect(Helper.finish(creator) == .exited(0), "\(creator.output)")
            #expect(creator.output.contains("unlinked"))
        }

        @Test func anAttacherGivesUpOnASlowCreatorAtItsDeadline() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let creator = try Helper.start("create-object", [name.rawValue, "16", "5000"])
            #expect(Helper.waitForOutput(creator, containing: "initializing"))

            #expect(throws: SharedObjectError.initializationTimedOut(creatorPID: creator.pid)) {
                _ = try SharedObjectSegment.attach(name: name, expecting: layout, timeout: .milliseconds(100))
            }
            creator.kill()
        }

        @Test func anAttacherLearnsThatTheCreatorDiedDuringInitialization() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let creator = try Helper.start("create-object", [name.rawValue, "16", "60000"])
            #expect(Helper.waitForOutput(creator, containing: "initializing"))
            #expect(creator.kill() == .signaled(SIGKILL))

            #expect(throws: SharedObjectError.creatorDied(pid: creator.pid)) {
                _ = try SharedObjectSegment.attach(name: name, expecting: layout, timeout: .seconds(30))
            }
            #expect(try SharedMemory.removeLeftover(name))  // the dead owner could not unlink
        }

        @Test func anInheritedObjectIsValidatedLikeANamedOne() throws {
            let owner = try SharedObjectSegment.createInheritable(layout: layout) { TestObject.fill($0) }
            let descriptor = owner.memory.inheritableDescriptor
            let fd = try #require(descriptor)
            let sut = try SharedObjectSegment.attach(
                inheriting: FileDescriptor(rawValue: dup(fd.rawValue)), expecting: layout)
            #expect(sut.withState { TestObject.isFilled($0) })
            #expect(throws: SharedObjectError.capacityMismatch(expected: 3, found: 16)) {
                _ = try SharedObjectSegment.attach(
                    inheriting: FileDescriptor(rawValue: dup(fd.rawValue)), expecting: TestObject.layout(capacity: 3))
            }
        }

        // MARK: helpers

        private func expectAttach(
            with change: (inout ObjectLayout) -> Void, fails expected: SharedObjectError,
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let owner = try makeObject(name)
            var wrong = layout
            change(&wrong)
            #expect(throws: expected, sourceLocation: sourceLocation) {
                _ = try SharedObjectSegment.attach(name: name, expecting: wrong)
            }
            try owner.unlink()
        }

        /// Shrinks the segment's file, as a hostile or buggy peer could.
        private func truncate(_ name: SegmentName, to size: Int) throws {
            let fd = shm_open(name.osName, O_RDWR, 0)
            try #require(fd >= 0)
            defer { close(fd) }
            try #require(ftruncate(fd, off_t(size)) == 0)
        }

        /// Tells the helper's creator it may unlink and exit (word 0 of the state).
        private func release(_ segment: borrowing SharedObjectSegment) {
            segment.withState { state in
                let word = SharedWord(state.baseAddress!.assumingMemoryBound(to: UInt32.self))
                word.storeReleasing(1)  // pairs with the acquire load in the helper's wait loop
                word.futex.wakeAll()
            }
        }
    }
}
import SystemPackage
