@testable import ShmIPC
import Testing

extension ShmIPCTests {
    @Suite struct SegmentNameTests {
        @Test func validNamesCarryTheShmIPCPrefixAtTheOSLevel() throws {
            let sut = try SegmentName("orders_v2.feed-A")
            #expect(sut.osName == "/shmipc.orders_v2.feed-A")
            #expect(sut.path == "/dev/shm/shmipc.orders_v2.feed-A")
        }

        @Test func aNameWithASlashIsRejected() {
            #expect(throws: SharedMemoryError.invalidName("a/b", .invalidCharacter("/"))) { try SegmentName("a/b") }
            #expect(throws: SharedMemoryError.invalidName("/abs", .invalidCharacter("/"))) { try SegmentName("/abs") }
        }

        @Test func aNameLongerThanTheMaximumIsRejectedAndTheMaximumIsAccepted() throws {
            let longest = String(repeating: "x", count: SegmentName.maxLength)
            #expect(try SegmentName(longest).rawValue == longest)
            let tooLong = longest + "x"
            #expect(throws: SharedMemoryError.invalidName(tooLong, .tooLong(length: SegmentName.maxLength + 1, maximum: SegmentName.maxLength))) {
                try SegmentName(tooLong)
            }
        }

        @Test(arguments: [
            ("", SegmentName.Problem.empty),
            (".hidden", .leadingDot),
            ("sp ace", .invalidCharacter(" ")),
            ("ünï", .invalidCharacter("ü")),
            ("nul\0", .invalidCharacter("\0")),
        ])
        func otherInvalidNamesNameTheirProblem(name: String, problem: SegmentName.Problem) {
            #expect(throws: SharedMemoryError.invalidName(name, problem)) { try SegmentName(name) }
        }

        @Test func theLongestNameCanReallyBeCreated() throws {
            let name = try SegmentName(TestNames.unique().rawValue + String(repeating: "z", count: 200))
            let padded = try SegmentName(name.rawValue + String(repeating: "z", count: SegmentName.maxLength - name.rawValue.count))
            let sut = try SharedMemory.create(name: padded, size: 1)
            try sut.unlink()
        }
    }
}
