import Foundation
@testable import ShmIPC
import ShmIPCRemote
import Testing

/// The contract is real gRPC, not Swift-only: a Python `grpcio` client, its stubs generated
/// from the same `.proto`, authenticates, puts into a remote queue and reads a remote dict.
/// `.ci/run` installs grpcio and grpcio-tools; elsewhere the test is skipped, and says why.
@Suite struct RemoteInteropTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("python/remote_client.py").path

    /// Whether python3 with grpcio and grpcio-tools is here.
    static let pythonHasGRPC: Bool = {
        guard let child = try? ChildProcess(executable: "/usr/bin/env", arguments: ["python3", "-c", "import grpc, grpc_tools"]) else {
            return false
        }
        return child.wait(deadline: .after(.seconds(120))).map { $0 == .exited(0) } ?? { _ = child.kill(); return false }()
    }()

    @Test(.enabled(if: pythonHasGRPC, "python3 with grpcio and grpcio-tools is not installed (pip install grpcio grpcio-tools)"))
    func aPythonGRPCClientUsesTheRemoteObjects() async throws {
        let jobs = try Queue<UInt64>(capacity: 16)
        let counts = try SharedDictionary<String, Int>()
        try counts.setValue(41, forKey: "a")
        #expect(try jobs.tryPut(99))
        try await RemoteObjectsTests.withClient({
            $0.export("jobs", jobs)
            $0.export("counts", counts)
        }) { _, address in
            let child = try ChildProcess(executable: "/usr/bin/env", arguments: ["python3", Self.script, address.description, "objects secret"])
            var status: TerminationStatus?
            let deadline = Deadline.after(RemoteObjectsTests.watchdog)
            while status == nil, !deadline.hasPassed {
                status = child.wait(deadline: .now)
                if status == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            if status == nil {
                status = child.kill()
                Issue.record("watchdog: the Python client still ran after \(RemoteObjectsTests.watchdog); killed")
            }
            let output = child.output
            #expect(status == .exited(0), "the Python client failed:\n\(output)")
            #expect(output.contains("got 99 Swift.UInt64"), "\(output)")
            #expect(output.contains("a=41"), "\(output)")
            #expect(output.contains("ok"), "\(output)")
            var items: [UInt64] = []
            while let item = try jobs.tryGet() { items.append(item) }
            #expect(items == [7, 8, 9])
            #expect(try counts.value(forKey: "b") == 42)
        }
    }
}
