import Foundation
@testable import ShmIPC
import ShmIPCTestSupport
import Testing

// What the README tells a program importing Foundation beside ShmIPC: say once which
// `Process` and `Pipe` it means; the tutorials' spelling then works.
private typealias Process = ShmIPC.Process
private typealias Pipe = ShmIPC.Pipe

extension ShmIPCTests {
    @Suite struct FoundationSpellingTests {
        @Test func theTutorialSpellingWorksBesideFoundation() throws {
            let process = try Process(TestEntries.returns, argument: 0, daemon: true, executable: Helper.path)
            try process.start()
            #expect(process.join(timeout: .seconds(60)))
            #expect(process.exitCode == 0)
            let pipe = try Pipe()
            let (first, second) = (try pipe.connection(.first), try pipe.connection(.second))
            try first.send("hello")
            #expect(try second.receive(as: String.self, timeout: .seconds(10)) == "hello")
            #expect(Foundation.Process().isRunning == false, "Foundation's stays reachable by its module name")
        }
    }
}
