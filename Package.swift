// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "Meshward",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "meshward", targets: ["meshward"]),
        .executable(name: "meshward-bench", targets: ["meshward-bench"]),
        .library(name: "KernelSimulator", targets: ["KernelSimulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.21.0"),
    ],
    targets: [
        // System libraries and C shims.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(name: "CXfrm"),

        // What tests, fuzzers and benchmarks share: a seedable generator, an HTTP probe, and child
        // processes awaited without holding a thread (`ProcessExit`, `ProcessRun`).
        .target(name: "MeshwardTestSupport", swiftSettings: strict),

        // Values every module speaks: addresses, ciphers, SPIs, keys, traffic selectors.
        .target(name: "MeshwardCore", dependencies: ["COpenSSL"], swiftSettings: strict),

        // Spec files -> validated FleetIntent.
        .target(
            name: "DesiredState",
            dependencies: ["MeshwardCore", "COpenSSL", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        // A node's SA and policy databases: the protocol and the XFRM netlink backend.
        .target(
            name: "Kernel",
            dependencies: ["MeshwardCore", "CXfrm", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // The in-memory kernel with a packet model and fault injection.
        .target(
            name: "KernelSimulator",
            dependencies: ["MeshwardCore", "Kernel", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict),
        // SQLite state: generations with sealed keys, steps, revisions, journal, lease.
        .target(
            name: "Store",
            dependencies: [
                "MeshwardCore", "COpenSSL",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The Store on PostgreSQL: the same role protocols, for controllers on several machines.
        .target(
            name: "StorePostgres",
            dependencies: [
                "MeshwardCore", "Store",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Observe -> diff -> stage -> apply: planning and execution, over the Store's roles.
        .target(
            name: "Reconciler",
            dependencies: [
                "MeshwardCore", "DesiredState", "Kernel", "Store", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The controller: the commands' work with the modules wired together (one FleetSession
        // per process, the lease, the guards, apply, plan, status), the reconcile loop and the
        // documents it returns.
        .target(
            name: "Controller",
            dependencies: [
                "COpenSSL", "MeshwardCore", "DesiredState", "Kernel", "KernelSimulator", "Store", "StorePostgres",
                "Agent", "Identity", "Reconciler",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // What operators run next to the controller: metrics, health endpoints, log formats.
        .target(
            name: "Telemetry",
            dependencies: [
                "Reconciler", "Controller", "MeshwardCore", "Agent",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The agent's wire: generated protobuf + gRPC code and the codec to Kernel's values.
        .target(
            name: "AgentWire",
            dependencies: [
                "MeshwardCore", "Kernel",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["Protos"],
            swiftSettings: strict
        ),
        // The cluster CA, certificates and peer verification.
        .target(
            name: "Identity",
            dependencies: [
                "MeshwardCore",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict
        ),
        // The agent's server (on hosts) and AgentConnector, the controller's client.
        .target(
            name: "Agent",
            dependencies: [
                "MeshwardCore", "Kernel", "AgentWire", "Identity", "CXfrm",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // In-process agents on loopback for tests and benchmarks; production links none of it.
        .target(
            name: "AgentTestSupport",
            dependencies: [
                "Agent", "AgentWire", "Identity", "Kernel", "KernelSimulator", "MeshwardCore",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The commands: parse arguments, call the controller, print what it returns.
        .target(
            name: "MeshwardCommands",
            dependencies: [
                "MeshwardCore", "DesiredState", "Kernel", "KernelSimulator", "Store", "Reconciler", "Controller",
                "Telemetry",
                "Agent", "Identity",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "meshward", dependencies: ["MeshwardCommands"], swiftSettings: strict),

        // Test doubles that several test targets and the benchmarks share; production code does
        // not link it, and it needs no controller. `meshward-faulty` is `meshward` with its crash
        // fault, for the crash tests: it hands the kit's faults to its controllers.
        .target(
            name: "MeshwardTestKit",
            dependencies: ["MeshwardCore", "Kernel", "KernelSimulator", "Reconciler"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "meshward-faulty", dependencies: ["Controller", "MeshwardCommands", "MeshwardTestKit"],
            swiftSettings: strict),
        .executableTarget(
            name: "meshward-bench",
            dependencies: [
                "MeshwardCore", "DesiredState", "Kernel", "KernelSimulator", "Store", "StorePostgres", "Reconciler",
                "Controller", "MeshwardCommands", "MeshwardTestSupport", "MeshwardTestKit", "AgentTestSupport", "Agent",
                "Identity",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // A child process for the Store's crash-consistency and lease tests: writes until killed.
        .executableTarget(
            name: "store-crash-writer",
            dependencies: ["Store", "MeshwardCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),

        .testTarget(name: "MeshwardCoreTests", dependencies: ["MeshwardCore"], swiftSettings: strict),
        .testTarget(
            name: "DesiredStateTests",
            dependencies: ["DesiredState", "MeshwardCore", "MeshwardTestSupport"],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KernelTests",
            dependencies: [
                "Kernel", "KernelSimulator", "MeshwardCore", "MeshwardTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KernelSimulatorTests",
            dependencies: [
                "KernelSimulator", "Kernel", "MeshwardCore", "MeshwardTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "StoreTests",
            dependencies: [
                "Store", "StorePostgres", "MeshwardCore", "MeshwardTestSupport", "store-crash-writer",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),
        // The continuity harness, the planner fixture and the spec fixtures that the planning and
        // the controller tests share: a test target, as it reaches into Reconciler with
        // `@testable import`, and its own declarations are reached the same way.
        .testTarget(
            name: "ReconcilerTestSupport",
            dependencies: [
                "Reconciler", "DesiredState", "Kernel", "KernelSimulator", "Store", "MeshwardCore", "MeshwardTestKit",
                "MeshwardTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The planner and the executor, on the simulated fleet: no controller, no agent.
        .testTarget(
            name: "PlanningTests",
            dependencies: [
                "Reconciler", "DesiredState", "Kernel", "KernelSimulator", "Store", "MeshwardCore", "MeshwardTestKit",
                "MeshwardTestSupport", "ReconcilerTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The controller: its session, agents over the wire, the lease and the loop, enrollment,
        // certificates and revocation, the documents it returns.
        .testTarget(
            name: "ControllerTests",
            dependencies: [
                "Controller", "MeshwardCommands", "Reconciler", "DesiredState", "Kernel", "KernelSimulator", "Store",
                "MeshwardCore", "MeshwardTestKit", "MeshwardTestSupport", "ReconcilerTestSupport", "AgentTestSupport",
                "Agent", "Identity", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TelemetryTests",
            dependencies: [
                "Telemetry", "Reconciler", "Controller", "KernelSimulator", "Store", "MeshwardCore", "MeshwardTestKit",
                "Agent", "MeshwardTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "AgentTests",
            dependencies: [
                "Agent", "AgentWire", "AgentTestSupport", "Identity", "Kernel", "KernelSimulator", "MeshwardCore",
                "Telemetry", "MeshwardTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "meshward", "meshward-faulty", "MeshwardCore", "Store", "StorePostgres", "DesiredState", "Kernel",
                "KernelSimulator",
                "MeshwardTestSupport", "MeshwardTestKit", "Reconciler", "Controller", "MeshwardCommands", "Telemetry",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict
        ),
    ]
)
