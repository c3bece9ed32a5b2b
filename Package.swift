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
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
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

        // A seedable generator shared by tests, fuzzers and benchmarks.
        .target(name: "MeshwardTestSupport", swiftSettings: strict),

        // Values every module speaks: addresses, ciphers, SPIs, keys, traffic selectors.
        .target(name: "MeshwardCore", dependencies: ["COpenSSL"], swiftSettings: strict),

        // Spec files -> validated FleetIntent.
        .target(
            name: "DesiredState",
            dependencies: ["MeshwardCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        // A node's SA and policy databases: the protocol and the XFRM netlink backend.
        .target(
            name: "Kernel",
            dependencies: ["MeshwardCore", "CXfrm", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // The in-memory kernel with a packet model and fault injection.
        .target(name: "KernelSimulator", dependencies: ["MeshwardCore", "Kernel"], swiftSettings: strict),
        // SQLite state: generations with sealed keys, steps, revisions, journal, lease.
        .target(
            name: "Store",
            dependencies: [
                "MeshwardCore", "COpenSSL",
                .product(name: "GRDB", package: "GRDB.swift"),
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
        // Observe -> diff -> stage -> apply.
        .target(
            name: "Reconciler",
            dependencies: [
                "COpenSSL", "MeshwardCore", "DesiredState", "Kernel", "KernelSimulator", "Store", "StorePostgres",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "meshward",
            dependencies: [
                "MeshwardCore", "DesiredState", "Kernel", "KernelSimulator", "Store", "Reconciler",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "meshward-bench",
            dependencies: [
                "MeshwardCore", "DesiredState", "Kernel", "KernelSimulator", "Store", "Reconciler",
                "MeshwardTestSupport",
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
            dependencies: ["Kernel", "KernelSimulator", "MeshwardCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KernelSimulatorTests",
            dependencies: ["KernelSimulator", "Kernel", "MeshwardCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "StoreTests",
            dependencies: [
                "Store", "StorePostgres", "MeshwardCore", "MeshwardTestSupport", "store-crash-writer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ReconcilerTests",
            dependencies: [
                "Reconciler", "DesiredState", "Kernel", "KernelSimulator", "Store", "MeshwardCore",
                "MeshwardTestSupport",
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "meshward", "MeshwardCore", "Store", "DesiredState", "Kernel", "KernelSimulator", "MeshwardTestSupport",
                "Reconciler", .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)
