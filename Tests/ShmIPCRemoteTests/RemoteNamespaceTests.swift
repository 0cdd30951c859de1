import Foundation
@testable import ShmIPC
import ShmIPCRemote
import SystemPackage
import Testing

/// Two network namespaces joined by a veth pair: a server in one, clients in the other, so
/// the traffic crosses a real (virtual) link with its own addresses, not loopback. Needs root
/// and iproute2 (`.ci/run` installs it); skipped, saying why, elsewhere.
@Suite(.serialized) struct RemoteNamespaceTests {
    static let ipPath: String? = ([String])(["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]).first { access($0, X_OK) == 0 }

    /// Runs `ip` with `arguments` to its end; whether it exited 0 (and its output).
    @discardableResult
    static func ip(_ arguments: [String]) -> (ok: Bool, output: String) {
        guard let ipPath, let child = try? ChildProcess(executable: ipPath, arguments: arguments) else { return (false, "no ip") }
        guard let status = child.wait(deadline: Deadline.after(Duration.seconds(60))) else { _ = child.kill(); return (false, "ip \(arguments) hung") }
        return (status == .exited(0), child.output)
    }

    /// Whether this process may make network namespaces (root, iproute2, no sandbox refusing).
    static let available: Bool = {
        guard geteuid() == 0, ipPath != nil else { return false }
        let probe = "shp\(getpid())"
        defer { ip(["netns", "del", probe]) }
        return ip(["netns", "add", probe]).ok
    }()

    /// Two namespaces joined by a veth pair, `10.199.N.1` in the first and `.2` in the second,
    /// while `body` runs; removed after.
    static func withTwoHosts(_ body: (_ server: String, _ client: String, _ serverAddress: String) async throws -> Void) async throws {
        let pid = getpid(), subnet = Int(pid % 250) + 1
        let (a, b) = ("sha\(pid)", "shb\(pid)")
        defer {
            ip(["netns", "del", a])
            ip(["netns", "del", b])
        }
        for step in [
            ["netns", "add", a], ["netns", "add", b],
            ["link", "add", "vsa\(pid)", "type", "veth", "peer", "name", "vsb\(pid)"],
            ["link", "set", "vsa\(pid)", "netns", a], ["link", "set", "vsb\(pid)", "netns", b],
            ["-n", a, "addr", "add", "10.199.\(subnet).1/24", "dev", "vsa\(pid)"],
            ["-n", b, "addr", "add", "10.199.\(subnet).2/24", "dev", "vsb\(pid)"],
            ["-n", a, "link", "set", "vsa\(pid)", "up"], ["-n", b, "link", "set", "vsb\(pid)", "up"],
            ["-n", a, "link", "set", "lo", "up"], ["-n", b, "link", "set", "lo", "up"],
        ] {
            let (ok, output) = ip(step)
            try #require(ok, "ip \(step.joined(separator: " ")): \(output)")
        }
        try await body(a, b, "10.199.\(subnet).1")
    }

    @Test(.enabled(if: available, "needs root and iproute2's ip with network namespaces (apt-get install iproute2)"))
    func aClientInAnotherNetworkNamespaceUsesTheServersQueue() async throws {
        let queueName = try SegmentName("remote-netns-\(getpid())-jobs")
        let jobs = try Queue<UInt64>(name: queueName, mode: .createExclusive, capacity: 64)
        defer { try? jobs.unlink() }
        let key = try RemoteToolTests.keyFile("netns secret")
        defer { try? FileManager.default.removeItem(atPath: key) }
        try await Self.withTwoHosts { serverHost, clientHost, serverAddress in
            let server = try ChildProcess(
                executable: Self.ipPath!,
                arguments: ["netns", "exec", serverHost, "\(RemoteToolTests.directory)/shmipc-remote", "serve",
                            "--address", "\(serverAddress):0", "--authkey-file", key, "--export", queueName.rawValue])
            defer { if server.status == nil { _ = server.kill() } }
            guard let line = try await RemoteHelper.waitForLine(server, prefix: "serving ", timeout: RemoteObjectsTests.watchdog) else {
                Issue.record("the server did not start:\n\(server.output)")
                return
            }
            let address = String(line.dropFirst("serving ".count))
            #expect(address.hasPrefix(serverAddress + ":"))

            // Not reachable from this namespace's loopback: the server listens on the link only.
            let (read, write) = try Sys.makePipe().get()
            defer { try? write.close() }
            let client = try ChildProcess(
                executable: Self.ipPath!,
                arguments: ["netns", "exec", clientHost, RemoteHelper.path, "put", address, "netns secret", queueName.rawValue, "1", "2", "3"],
                descriptors: [(read, 0)])
            try? read.close()
            defer { if client.status == nil { _ = client.kill() } }
            let put = try await RemoteHelper.waitForLine(client, prefix: "put ", timeout: RemoteObjectsTests.watchdog)
            #expect(put == "put 3", "\(client.output)")
            var items: [UInt64] = []
            while let item = try jobs.tryGet() { items.append(item) }
            #expect(items == [1, 2, 3])

            let listing = try await RemoteToolTests.run("shmipc-remote", ["remote", "list", "--address", address, "--authkey-file", key])
            // From the root namespace, 10.199.N.1 has no route: unreachable, exit 4, no hang.
            #expect(listing.0 == .exited(4), "\(listing.1)")
        }
    }
}
