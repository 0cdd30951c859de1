// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "ShmIPC",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ShmIPC", targets: ["ShmIPC"]),
        .executable(name: "shm-bench", targets: ["ShmBench"]),
        .executable(name: "shmipc-test-helper", targets: ["ShmIPCTestHelper"]),
        .executable(name: "shmipc-remote-test-helper", targets: ["ShmIPCRemoteTestHelper"]),
        .executable(name: "shmipc-examples", targets: ["ShmIPCExamples"]),
        .executable(name: "shmipc", targets: ["ShmIPCTool"]),
        .executable(name: "shmipc-remote", targets: ["ShmIPCRemoteTool"]),
        .executable(name: "shm-bench-remote", targets: ["ShmBenchRemote"]),
        // ShmIPC beyond one host, over gRPC: a product of its own, so that a user of the core
        // builds no networking (nothing of gRPC, NIO or protobuf is a dependency of ShmIPC).
        .library(name: "ShmIPCRemote", targets: ["ShmIPCRemote"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        // Recoveries reported through swift-log (silent unless the application sets a logger).
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // Objects' live figures for a service's metrics backend (ShmIPCMetrics).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // The async examples (a ServiceGroup service with graceful shutdown; merged queues); examples only.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // `swift package generate-documentation --target ShmIPC` (the DocC catalogue).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.1.4"),
        // The tutorials' HTTP programs keep their shape against a loopback server: Hummingbird
        // serves, AsyncHTTPClient asks (examples only).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // The remote layer (ShmIPCRemote only): gRPC over HTTP/2 with NIO, protobuf messages,
        // HMAC-SHA256 for the authkey handshake.
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        // gRPC's own transport, named for ShmIPCRemote's closing of server connections and for
        // shm-bench-remote's bare NIO echo (remote.rtt.nio).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // Micro benchmarks (allocations per operation); resolves here only with this trait.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // C: only what Swift cannot import (futex syscalls, GNU-only calls, macros, layout structs).
        .target(name: "CShim", path: "CShim"),
        .target(
            name: "ShmIPC",
            dependencies: [
                "CShim",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // Code the tests and their helper executable share (test object layouts).
        .target(
            name: "ShmIPCTestSupport",
            dependencies: ["ShmIPC"],
            path: "Tests/ShmIPCTestSupport",
            swiftSettings: strict
        ),
        // The executable cross-process tests spawn: runs one named scenario in another process.
        .executableTarget(
            name: "ShmIPCTestHelper",
            dependencies: ["ShmIPC", "ShmIPCTestSupport", "CShim", .product(name: "SystemPackage", package: "swift-system")],
            path: "Tests/ShmIPCTestHelper",
            swiftSettings: strict
        ),
        // The tutorials' programs: `swift run shmipc-examples NAME` (`--list`).
        .executableTarget(
            name: "ShmIPCExamples",
            dependencies: [
                "ShmIPC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Examples",
            swiftSettings: strict
        ),
        .testTarget(
            name: "ShmIPCTests",
            dependencies: [
                "ShmIPC", "CShim", "ShmIPCTestSupport", "ShmIPCTestHelper", "ShmIPCExamples", "ShmIPCTool",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // ShmIPC's objects over gRPC: Listener/Client connections (Protos/ holds the contract;
        // Generated/ is its code, regenerated by Protos/generate.sh, never by the build).
        .target(
            name: "ShmIPCRemote",
            dependencies: [
                "ShmIPC",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // Only to close a server's connections outright (Transports.swift).
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // The other process of the remote tests (a lease holder to kill, a bridge).
        .executableTarget(
            name: "ShmIPCRemoteTestHelper",
            dependencies: ["ShmIPCRemote", "ShmIPC", "ShmIPCTestSupport"],
            path: "Tests/ShmIPCRemoteTestHelper",
            swiftSettings: strict
        ),
        .testTarget(
            name: "ShmIPCRemoteTests",
            dependencies: [
                "ShmIPCRemote", "ShmIPC", "ShmIPCRemoteTestHelper", "ShmIPCRemoteTool", "ShmIPCTool", "ShmIPCTestSupport",
                // To speak to a listener as a peer that skips the handshake would.
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                // To stop a RemoteManager as a ServiceGroup does.
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The operator's command: `shmipc list | inspect | remove | clean`.
        .executableTarget(
            name: "ShmIPCTool",
            dependencies: ["ShmIPC", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/shmipc",
            swiftSettings: strict
        ),
        // `shmipc serve` / `shmipc remote list` (which `shmipc` hands over to): its own
        // executable, so that `shmipc` builds no gRPC.
        .executableTarget(
            name: "ShmIPCRemoteTool",
            dependencies: [
                "ShmIPC", "ShmIPCRemote",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tools/shmipc-remote",
            swiftSettings: strict
        ),
        // C only shm-bench needs (its control block, a cycle counter, the pthread mutex reference).
        .target(name: "BenchShim", path: "Benchmarks/BenchShim"),
        .executableTarget(
            name: "ShmBench",
            dependencies: [
                "ShmIPC",
                "CShim",
                "BenchShim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/ShmBench",
            swiftSettings: strict
        ),
        // The remote rows over loopback (their own executable: shm-bench builds no gRPC).
        .executableTarget(
            name: "ShmBenchRemote",
            dependencies: [
                "ShmIPC", "ShmIPCRemote",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/ShmBenchRemote",
            swiftSettings: strict
        ),
        // In-process micro benchmarks (package-benchmark): `swift package benchmark`.
        .executableTarget(
            name: "QueueAllocations",
            dependencies: ["ShmIPC", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/QueueAllocations",
            swiftSettings: strict,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
