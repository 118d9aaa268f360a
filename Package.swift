// swift-tools-version:6.1
import PackageDescription

// Compiler settings shared by every Swift target: Swift 6 language mode (strict concurrency) plus
// the upcoming features Hummingbird builds with, so that imports and existentials stay explicit.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Larder",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Larder", targets: ["Larder"]),
        .library(name: "LarderAdmin", targets: ["LarderAdmin"]),
        .library(name: "LarderTesting", targets: ["LarderTesting"]),
        // Ships a box's audit log to PostgreSQL and queries and re-verifies the fleet there.
        .library(name: "LarderFleet", targets: ["LarderFleet"]),
        .executable(name: "larder", targets: ["larder"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        // Only LarderAdmin and its tests depend on Hummingbird; the store itself stays server-free.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0"),
        // Already in the graph through Hummingbird; named so LarderAdmin can import HTTPTypes
        // (header names), NIOCore (timeouts, the bound port), and the HTTP/1 pieces its own
        // connection pipeline is built from (NIOHTTP1, NIOHTTPTypesHTTP1, Logging) explicitly.
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.20.0"),
        // Logging and metrics are part of the store's API: tiny, dependency-free packages, so the
        // embedded product stays light. Only LarderAdmin renders Prometheus text.
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Only LarderFleet talks to PostgreSQL; the embedded store never links a database client.
        .package(url: "https://github.com/vapor/postgres-nio.git", .upToNextMinor(from: "1.33.0")),
        // Already in the graph through postgres-nio; named so LarderFleet can build TLS
        // configurations explicitly.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.25.0"),
        // Only the command-line tool parses arguments.
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    ],
    targets: [
        // Layer 1: the C library. Only LarderStorage imports it.
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        // Layer 2: the storage core (environment, tables, transactions, the single writer).
        .target(
            name: "LarderStorage",
            dependencies: ["CLMDB"],
            swiftSettings: strictSettings
        ),
        // Layers 3 and 4: domain stores and the one write path.
        .target(
            name: "Larder",
            dependencies: [
                "LarderStorage",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            // The operator's description of the failure policy lives beside the code that enforces it.
            exclude: ["Policy/POLICY.md"],
            swiftSettings: strictSettings
        ),
        // Layer 5: the read-only admin HTTP server.
        .target(
            name: "LarderAdmin",
            dependencies: [
                "Larder",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "LarderTesting",
            dependencies: ["Larder", "LarderStorage"],
            swiftSettings: strictSettings
        ),
        // The fleet: ships audit logs to PostgreSQL and verifies them there. The only target
        // that depends on postgres-nio.
        .target(
            name: "LarderFleet",
            dependencies: [
                "Larder",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The `larder` tool's commands, as a library so tests can drive them in-process.
        .target(
            name: "LarderCLI",
            dependencies: [
                "Larder", "LarderAdmin", "LarderFleet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "larder",
            dependencies: ["LarderCLI"],
            path: "Tools/larder",
            swiftSettings: strictSettings
        ),
        // A second process for the multi-process, kill -9 and disk-full tests.
        .executableTarget(
            name: "larder-fixture",
            dependencies: ["Larder", "LarderTesting"],
            path: "Tests/Fixtures/larder-fixture",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LarderStorageTests",
            dependencies: ["LarderStorage", "LarderTesting"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LarderTests",
            dependencies: [
                "Larder", "LarderStorage", "LarderTesting", "larder-fixture",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LarderAdminTests",
            dependencies: [
                "LarderAdmin", "Larder", "LarderStorage", "LarderTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LarderFleetTests",
            dependencies: [
                "LarderFleet", "LarderCLI", "Larder", "LarderTesting", "larder",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LarderCLITests",
            dependencies: [
                "LarderCLI", "Larder", "LarderAdmin", "LarderStorage", "LarderTesting", "larder",
                // Live loopback servers for `larder witness`.
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)

// Benchmarks are opt-in (as in Hummingbird): only with LARDER_BENCHMARKS set does the manifest
// name ordo-one/benchmark and the benchmark targets, so `swift build`, `swift test` and CI never
// resolve or build them. Run them with
//   LARDER_BENCHMARKS=1 swift package --allow-writing-to-package-directory benchmark
//   LARDER_BENCHMARKS=1 swift run -c release larder-compare
if Context.environment["LARDER_BENCHMARKS"] != nil {
    package.dependencies.append(
        // The MallocInterposer trait is what makes 1.38 resolve here: without it, 1.38 asks for a
        // package this build environment does not have.
        .package(url: "https://github.com/ordo-one/benchmark.git", .upToNextMinor(from: "1.38.0"),
                 traits: ["MallocInterposer"])
    )
    package.targets += [
        .executableTarget(
            name: "LarderBenchmarks",
            dependencies: [
                "Larder",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/LarderBenchmarks",
            swiftSettings: strictSettings,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // SQLite 3 for the side-by-side harness only; the store never links it.
        .systemLibrary(
            name: "CSQLite",
            path: "Benchmarks/CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // Valgrind's callgrind client requests (header-only; no-ops without valgrind's headers),
        // so larder-compare can count a phase's instructions alone.
        .systemLibrary(
            name: "CCallgrind",
            path: "Benchmarks/CCallgrind"
        ),
        // Larder, raw LMDB and SQLite on the same workloads, in one process (and the same puts in
        // C, Benchmarks/Compare/c, as a child process). Its sources sit one folder deeper than the
        // suites on purpose: the benchmark plugin runs every executable target whose folder is
        // directly in Benchmarks/ as a benchmark suite.
        .executableTarget(
            name: "larder-compare",
            dependencies: [
                "Larder", "CLMDB", "CSQLite", "CCallgrind",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Benchmarks/Compare/Sources",
            swiftSettings: strictSettings
        ),
    ]
}
