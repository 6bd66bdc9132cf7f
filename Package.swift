// swift-tools-version: 6.1
// TenOps: an operator for highly available active/standby database pairs.
// Module boundaries follow ../shared/DESIGN.md; arrows there are the only allowed imports.
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "tenops",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tenops", targets: ["tenops"]),
        .executable(name: "tenops-bench", targets: ["tenops-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // System-library shims: a module map and one header each.
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CNcurses", providers: [.apt(["libncurses-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CMalloc"),

        // Kubernetes client. Knows nothing of TimesTen.
        .target(
            name: "KubeAPI",
            dependencies: [
                "CCurl",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: strict
        ),
        // Certificates over libssl.
        .target(name: "PKI", dependencies: ["COpenSSL"], swiftSettings: strict),
        // In-pod agent and the DatabaseEngine protocol.
        .target(
            name: "Agent",
            dependencies: [
                "PKI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: strict
        ),
        // TimesTenClassic types, state machine, reconciler.
        .target(
            name: "OperatorEngine",
            dependencies: [
                "KubeAPI", "PKI", "CMalloc",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                // The agents' status streams (AgentStreamTransport).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        // Local control plane: API server, controllers, process node.
        .target(
            name: "LocalCluster",
            dependencies: [
                "KubeAPI", "PKI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        // The ncurses operations console.
        .target(
            name: "Console",
            dependencies: ["OperatorEngine", "KubeAPI", "CNcurses", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),

        .executableTarget(
            name: "tenops",
            dependencies: [
                "KubeAPI", "PKI", "Agent", "OperatorEngine", "LocalCluster", "Console",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),

        // TEST DOUBLE: an HTTPS server on loopback that answers with real Kubernetes response
        // bodies, with faults on demand. Used by the KubeAPI tests and benchmarks until the local
        // API server exists. Never linked into `tenops`.
        .target(
            name: "KubeTestDouble",
            dependencies: [
                "PKI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "tenops-bench",
            dependencies: [
                "KubeAPI", "PKI", "KubeTestDouble", "LocalCluster", "Agent", "OperatorEngine",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),

        // Shared by the test targets: child processes that never block the cooperative pool.
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: strict),
        // Shared by the agent's tests and the engine's: a pair's PKI, pod directories, in-process agents.
        .target(
            name: "AgentTestSupport",
            dependencies: ["Agent", "PKI", "KubeAPI", .product(name: "Logging", package: "swift-log")],
            path: "Tests/AgentTestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "PKITests", dependencies: ["PKI", "KubeTestDouble"], swiftSettings: strict),
        .testTarget(name: "KubeAPITests", dependencies: ["KubeAPI", "PKI", "KubeTestDouble", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "AgentTests",
            dependencies: [
                "Agent", "PKI", "KubeAPI", "TestSupport", "AgentTestSupport", "OperatorEngine",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "LocalClusterTests", dependencies: ["LocalCluster", "KubeAPI", "PKI", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "OperatorEngineTests",
            dependencies: ["OperatorEngine", "KubeAPI", "PKI", "LocalCluster", "TestSupport", "Agent", "AgentTestSupport"],
            swiftSettings: strict
        ),
        // The console's pure pieces (grid, views, key map, themes) and its tmux end-to-end tests.
        .testTarget(
            name: "ConsoleTests",
            dependencies: ["Console", "OperatorEngine", "KubeAPI", "LocalCluster", "TestSupport", "AgentTestSupport"],
            swiftSettings: strict
        ),
    ]
)
