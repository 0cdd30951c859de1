import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import ShmIPC
import ShmIPCRemote

/// `shmipc-remote` (also `shmipc serve` and `shmipc remote`, which hand over to it): serves
/// this host's named ShmIPC objects to other hosts, and lists what a server exports. Its own
/// executable, so that `shmipc` builds nothing of gRPC.
@main
struct RemoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shmipc-remote",
        abstract: "Serve this host's ShmIPC objects over gRPC, and list what a server exports.",
        subcommands: [Serve.self, Worker.self, Remote.self])
}

/// Prints to standard error.
func complain(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// The key in `path`, or exit status 2 with the reason.
func authKey(_ path: String) throws -> AuthKey {
    do { return try AuthKey(contentsOfFile: path) } catch {
        complain("shmipc: \(error)")
        throw ExitCode(2)
    }
}

/// `address`, or exit status 2 with the reason.
func remoteAddress(_ address: String) throws -> RemoteAddress {
    do { return try RemoteAddress(address) } catch {
        complain("shmipc: \(error)")
        throw ExitCode(2)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve named objects of this host (in /dev/shm) to clients holding the authkey.",
        discussion: """
            Each --export NAME opens an existing object: a queue, a joinable queue or a value of \
            a standard numeric type (Int, Int8…Int64, UInt, UInt8…UInt64, Double, Float, Bool), \
            a namespace, an event or a semaphore. Objects of an application's own types need a \
            RemoteManager in that application, which knows the types. Each --lock NAME serves a \
            lease lock the server holds itself, each --rlock NAME a reentrant one. Prints "serving ADDRESS" once it listens; SIGTERM or SIGINT stops it \
            gracefully (calls in flight finish).
            """)

    @Option(help: "Where to listen: HOST:PORT (port 0: any free port), or a Unix socket path.")
    var address: String

    @Option(name: .customLong("authkey-file"), help: "A file holding the authkey (one trailing newline is dropped).")
    var authkeyFile: String

    @Option(name: .customLong("export"), parsing: .upToNextOption, help: "Names of objects in /dev/shm to serve.")
    var exports: [String] = []

    @Option(name: .customLong("lock"), parsing: .upToNextOption, help: "Names of lease locks to serve.")
    var locks: [String] = []

    @Option(name: .customLong("rlock"), parsing: .upToNextOption, help: "Names of reentrant lease locks to serve.")
    var rlocks: [String] = []

    @Option(help: "The lease a lock grant gets when its asker does not say, in milliseconds.")
    var leaseMilliseconds = 10_000

    @Option(name: .customLong("tls-cert"), help: "TLS: this server's certificate chain (PEM).")
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "TLS: this server's private key (PEM).")
    var tlsKey: String?

    @Option(name: .customLong("tls-client-ca"), help: "mTLS: the CA (PEM) that must have signed every client's certificate.")
    var tlsClientCA: String?

    func validate() throws {
        guard (tlsCertificate == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard tlsClientCA == nil || tlsCertificate != nil else { throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key") }
    }

    func run() async throws {
        let tls = tlsCertificate.map { RemoteTLS.server(certificateChain: $0, privateKey: tlsKey!, clientCA: tlsClientCA) }
        let manager = RemoteManager(address: try remoteAddress(address), authKey: try authKey(authkeyFile), tls: tls)
        for name in exports {
            do { try Exports.export(name, to: manager) } catch {
                complain("shmipc: cannot serve '\(name)': \(error)")
                throw ExitCode(1)
            }
        }
        for name in locks { manager.export(name, LeaseLock(defaultLease: .milliseconds(leaseMilliseconds))) }
        for name in rlocks { manager.export(name, LeaseLock(defaultLease: .milliseconds(leaseMilliseconds), reentrant: true)) }
        let logger = Logger(label: "shmipc.serve")
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: manager)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            tasks.addTask {
                let listening = try await manager.listeningAddress
                print("serving \(listening)")
                fflush(nil)  // all streams: `stdout` is a C global Swift 6 will not touch
            }
            try await tasks.waitForAll()
        }
    }
}

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Be a worker host of a RemotePool: run the chunks it sends on a local pool.",
        discussion: """
            Dials the pool host at --connect, proves it holds the authkey, and runs every chunk it \
            is sent on a local pool of --processes workers, each one the program --executable \
            (which must register, with Multiprocessing.bootstrap, the entries the pool host \
            submits). Reconnects with backoff to a pool host that goes away or restarts. Prints \
            "working NAME" at the start; SIGTERM or SIGINT stops it (the chunks it runs are lost \
            to the pool host, which runs idempotent ones again elsewhere).
            """)

    @Option(help: "The pool host: HOST:PORT, or a Unix socket path.")
    var connect: String

    @Option(name: .customLong("authkey-file"), help: "A file holding the authkey (one trailing newline is dropped).")
    var authkeyFile: String

    @Option(help: "Local worker processes (default: this host's CPUs).")
    var processes: Int?

    @Option(help: "The program each local worker runs: the application, which registers the entries.")
    var executable: String

    @Option(help: "How this worker host names itself to the pool host (default: HOSTNAME:PID).")
    var name: String?

    @Option(help: "The largest chunk of arguments or results, in bytes: the pool host's limit.")
    var maxMessageSize = 1 << 20

    @Option(name: .customLong("tls-ca"), help: "TLS: the CA (PEM) the pool host's certificate must chain to.")
    var tlsCA: String?

    func validate() throws {
        if let processes, !(1...RemoteWorker.maxWorkers).contains(processes) {
            throw ValidationError("--processes must be 1–\(RemoteWorker.maxWorkers)")
        }
        guard access(executable, X_OK) == 0 else { throw ValidationError("--executable \(executable) is not an executable file") }
    }

    func run() async throws {
        let tls = tlsCA.map { RemoteTLS.client(trustRoots: $0) }
        let worker = RemoteWorker(
            connectingTo: try remoteAddress(connect), authKey: try authKey(authkeyFile), processes: processes ?? Multiprocessing.cpuCount,
            name: name, maxMessageSize: maxMessageSize, tls: tls, executable: executable)
        print("working \(worker.name)")
        fflush(nil)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: worker)], gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "shmipc.worker")))
        do { try await group.run() } catch {
            complain("shmipc: \(error)")
            throw ExitCode(1)
        }
    }
}

/// The objects `shmipc serve` can open without the application's types.
enum Exports {
    enum Failure: Error, CustomStringConvertible {
        case notFound, invalid(String), unsupported(kind: String, type: String)

        var description: String {
            switch self {
            case .notFound: "no such object in /dev/shm"
            case .invalid(let problem): "the segment does not validate: \(problem)"
            case .unsupported(let kind, let type):
                "a \(kind) of \(type.isEmpty ? "no type" : type) cannot be opened here; serve it from the application with a RemoteManager"
            }
        }
    }

    static func export(_ name: String, to manager: RemoteManager) throws {
        guard let report = SegmentInspector.report(name, mappings: false) else { throw Failure.notFound }
        guard report.valid, let kind = report.kind else { throw Failure.invalid(report.problem ?? "unknown") }
        let segment = try SegmentName(name)
        let type = report.elementType ?? ""
        switch kind {
        case "queue", "joinable-queue":
            guard let capacity = report.capacity, let open = queues[type] else { throw Failure.unsupported(kind: kind, type: type) }
            try open(manager, name, segment, capacity, kind == "joinable-queue")
        case "namespace":
            manager.export(name, try Namespace(name: segment, mode: .openExisting))
        case "value":
            guard let open = values[type] else { throw Failure.unsupported(kind: kind, type: type) }
            try open(manager, name, segment)
        case "event":
            manager.export(name, try Event(name: segment, mode: .openExisting))
        case "semaphore", "bounded-semaphore":
            manager.export(name, try ShmIPC.Semaphore(name: segment, mode: .openExisting))
        default:
            throw Failure.unsupported(kind: kind, type: type)
        }
    }

    typealias QueueOpener = @Sendable (RemoteManager, String, SegmentName, _ capacity: Int, _ joinable: Bool) throws -> Void
    typealias ValueOpener = @Sendable (RemoteManager, String, SegmentName) throws -> Void

    static let queues: [String: QueueOpener] = Dictionary(uniqueKeysWithValues: [
        queue(Int.self), queue(Int8.self), queue(Int16.self), queue(Int32.self), queue(Int64.self),
        queue(UInt.self), queue(UInt8.self), queue(UInt16.self), queue(UInt32.self), queue(UInt64.self),
        queue(Double.self), queue(Float.self), queue(Bool.self),
    ])

    static let values: [String: ValueOpener] = Dictionary(uniqueKeysWithValues: [
        value(Int.self), value(Int8.self), value(Int16.self), value(Int32.self), value(Int64.self),
        value(UInt.self), value(UInt8.self), value(UInt16.self), value(UInt32.self), value(UInt64.self),
        value(Double.self), value(Float.self), value(Bool.self),
    ])

    static func queue<T: BitwiseCopyable & Codable & Sendable>(_: T.Type) -> (String, QueueOpener) {
        (String(reflecting: T.self), { manager, name, segment, capacity, joinable in
            if joinable {
                manager.export(name, try JoinableQueue<T>(name: segment, mode: .openExisting, capacity: capacity))
            } else {
                manager.export(name, try Queue<T>(name: segment, mode: .openExisting, capacity: capacity))
            }
        })
    }

    static func value<T: BitwiseCopyable & Codable & Sendable & HasZeroValue>(_: T.Type) -> (String, ValueOpener) {
        (String(reflecting: T.self), { manager, name, segment in
            manager.export(name, try ShmIPC.Value<T>(name: segment, mode: .openExisting, initial: T.zeroValue))
        })
    }
}

/// A value to pass as `initial` when opening an existing Value (which keeps its own).
protocol HasZeroValue { static var zeroValue: Self { get } }
extension Int: HasZeroValue { static var zeroValue: Self { 0 } }
extension Int8: HasZeroValue { static var zeroValue: Self { 0 } }
extension Int16: HasZeroValue { static var zeroValue: Self { 0 } }
extension Int32: HasZeroValue { static var zeroValue: Self { 0 } }
extension Int64: HasZeroValue { static var zeroValue: Self { 0 } }
extension UInt: HasZeroValue { static var zeroValue: Self { 0 } }
extension UInt8: HasZeroValue { static var zeroValue: Self { 0 } }
extension UInt16: HasZeroValue { static var zeroValue: Self { 0 } }
extension UInt32: HasZeroValue { static var zeroValue: Self { 0 } }
extension UInt64: HasZeroValue { static var zeroValue: Self { 0 } }
extension Double: HasZeroValue { static var zeroValue: Self { 0 } }
extension Float: HasZeroValue { static var zeroValue: Self { 0 } }
extension Bool: HasZeroValue { static var zeroValue: Self { false } }

struct Remote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask a remote ShmIPC server.", subcommands: [RemoteList.self])
}

struct RemoteList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List what a server exports: name, kind, type, count, capacity.",
        discussion: "Exit status 3 if the server refuses the authkey (the message says authentication failed), 4 if it cannot be reached.")

    @Option(help: "The server: HOST:PORT or a Unix socket path.")
    var address: String

    @Option(name: .customLong("authkey-file"), help: "A file holding the authkey.")
    var authkeyFile: String

    @Option(help: "How long to wait for the server, in seconds.")
    var timeout = 10

    @Flag(help: "Print JSON (an array of objects).")
    var json = false

    @Option(name: .customLong("tls-ca"), help: "TLS: the CA certificates (PEM) to trust the server's certificate from.")
    var tlsCA: String?

    @Option(name: .customLong("tls-cert"), help: "mTLS: this client's certificate chain (PEM).")
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "mTLS: this client's private key (PEM).")
    var tlsKey: String?

    @Flag(name: .customLong("tls-no-hostname-check"), help: "TLS: accept a server certificate that does not name the address's host.")
    var noHostnameCheck = false

    func validate() throws {
        guard (tlsCertificate == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
    }

    var tls: RemoteTLS? {
        guard tlsCA != nil || tlsCertificate != nil || noHostnameCheck else { return nil }
        return .client(trustRoots: tlsCA, certificateChain: tlsCertificate, privateKey: tlsKey, verifyHostname: !noHostnameCheck)
    }

    struct Entry: Encodable {
        let name, kind, valueType, keyType: String
        let count, capacity: Int
    }

    func run() async throws {
        let objects: [RemoteObjectInfo]
        do {
            let client = try await RemoteManager.connect(
                to: try remoteAddress(address), authKey: try authKey(authkeyFile), handshakeTimeout: .seconds(timeout), tls: tls)
            defer { client.close() }
            objects = try await client.list()
        } catch RemoteError.authenticationFailed {
            complain("shmipc: authentication failed: \(address) does not accept this authkey")
            throw ExitCode(3)
        } catch let error as RemoteError {
            complain("shmipc: \(address): \(error)")
            throw ExitCode(4)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let entries = objects.map {
                Entry(name: $0.name, kind: $0.kind, valueType: $0.valueType, keyType: $0.keyType, count: $0.count, capacity: $0.capacity)
            }
            print(String(decoding: try encoder.encode(entries), as: UTF8.self))
            return
        }
        var rows = [["NAME", "KIND", "TYPE", "COUNT", "CAPACITY"]]
        for object in objects {
            let type = object.keyType.isEmpty ? object.valueType : "[\(object.keyType): \(object.valueType)]"
            rows.append([object.name, object.kind, type.isEmpty ? "-" : type, String(object.count), object.capacity == 0 ? "-" : String(object.capacity)])
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
    }
}
