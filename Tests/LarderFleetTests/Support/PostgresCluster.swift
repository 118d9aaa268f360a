import Foundation
import Larder
import Logging
import PostgresNIO
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL cluster for the fleet tests: `initdb` in a temporary directory, a
/// server on a free loopback port with its socket in that directory, stopped and deleted after.
///
/// Debian's `initdb` and `pg_ctl` refuse to run as root, so as root they run as the `postgres`
/// user (through `runuser`) in a directory that user owns. Not root, they run as the current user.
final class PostgresCluster: Sendable {
    let directory: String
    let binDirectory: String
    let port: Int
    /// The superuser `initdb` created (trust authentication on loopback only).
    static let superuser = "larder"
    private let runsAsPostgres: Bool

    /// Why a cluster cannot be started here; nil when it can.
    static let unavailableReason: String? = {
        guard let bin = binDirectory() else {
            return "PostgreSQL's initdb is not installed (bash Tools/setup.sh installs Debian's postgresql)"
        }
        if getuid() == 0 {
            guard getpwnam("postgres") != nil else { return "running as root and there is no postgres user to run initdb as" }
            guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser") || FileManager.default.isExecutableFile(atPath: "/sbin/runuser") else {
                return "running as root and runuser is missing"
            }
        }
        _ = bin
        return nil
    }()

    /// The newest `/usr/lib/postgresql/*/bin` with initdb, or the one on PATH.
    static func binDirectory() -> String? {
        let base = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [])
            .compactMap(Int.init).sorted(by: >)
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(base)/\(version)/bin/initdb") {
            return "\(base)/\(version)/bin"
        }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        where FileManager.default.isExecutableFile(atPath: "\(directory)/initdb") && FileManager.default.isExecutableFile(atPath: "\(directory)/pg_ctl") {
            return String(directory)
        }
        return nil
    }

    /// Creates and starts a cluster.
    ///
    /// initdb and pg_ctl take seconds: they run on a thread of their own, never on one of the
    /// few threads that run every test's async code (blocking those stalled whole test runs).
    static func start() async throws -> PostgresCluster {
        try await offload { try startBlocking() }
    }

    /// Starts (or restarts) the server; returns when it accepts connections.
    func startServer() async throws {
        try await Self.offload { try self.startServerBlocking() }
    }

    /// Stops the server (fast: open connections are closed, their transactions rolled back).
    func stopServer() async throws {
        try await Self.offload { try self.stopServerBlocking() }
    }

    /// Stops the server and deletes the cluster.
    func destroy() async {
        _ = try? await Self.offload { self.destroyBlocking() }
    }

    static func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
        }
    }

    private static func startBlocking() throws -> PostgresCluster {
        guard unavailableReason == nil, let bin = binDirectory() else {
            throw ClusterError("PostgreSQL is unavailable: \(unavailableReason ?? "?")")
        }
        let asPostgres = getuid() == 0
        sweepAbandoned(binDirectory: bin, asPostgres: asPostgres)
        let directory = FileManager.default.temporaryDirectory.path + "/larder-pg-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if asPostgres {
            guard let user = getpwnam("postgres") else { throw ClusterError("no postgres user") }
            guard chown(directory, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else { throw ClusterError("chown \(directory) failed") }
        }
        chmod(directory, 0o700)
        var lastError: (any Error)?
        // A port found free can be taken before the server binds it: try a few.
        for _ in 0..<5 {
            let cluster = PostgresCluster(directory: directory, binDirectory: bin, port: try freePort(), runsAsPostgres: asPostgres)
            do {
                if !FileManager.default.fileExists(atPath: "\(directory)/data/PG_VERSION") {
                    try cluster.run("initdb", ["-D", "\(directory)/data", "-U", superuser, "-A", "trust", "-E", "UTF8",
                                               "--no-sync", "--locale=C"])
                }
                try cluster.startServerBlocking()
                return cluster
            } catch {
                lastError = error
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
        throw lastError ?? ClusterError("the server did not start")
    }

    private init(directory: String, binDirectory: String, port: Int, runsAsPostgres: Bool) {
        self.directory = directory
        self.binDirectory = binDirectory
        self.port = port
        self.runsAsPostgres = runsAsPostgres
    }

    private func startServerBlocking() throws {
        // Durability off: these tests check what is inserted, not what survives a power cut.
        let options = "-c listen_addresses=127.0.0.1 -p \(port) -k \(directory) -c fsync=off -c synchronous_commit=off "
            + "-c full_page_writes=off -c max_connections=200"
        try run("pg_ctl", ["-D", "\(directory)/data", "-l", "\(directory)/server.log", "-w", "-t", "60", "-o", options, "start"])
    }

    private func stopServerBlocking() throws {
        try run("pg_ctl", ["-D", "\(directory)/data", "-m", "fast", "-w", "-t", "60", "stop"])
    }

    private func destroyBlocking() {
        try? stopServerBlocking()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func url(database: String, user: String = superuser) -> String {
        "postgres://\(user)@127.0.0.1:\(port)/\(database)?sslmode=disable"
    }

    /// A new, empty database (each test gets its own, so tests run in parallel on one cluster).
    func createDatabase() async throws -> String {
        let name = "fleet_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "_"))"
        try await execute("CREATE DATABASE \(name)", database: "postgres")
        return name
    }

    /// Runs SQL statements (no binds; several separated by `;`) in `database`.
    func execute(_ sql: String, database: String, user: String = superuser) async throws {
        try await withConnection(database: database, user: user) { connection in
            for statement in sql.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                try await connection.query(PostgresQuery(unsafeSQL: String(statement)), logger: Self.logger)
            }
        }
    }

    /// The first column of every row, as text.
    func strings(_ sql: String, database: String) async throws -> [String?] {
        try await withConnection(database: database) { connection in
            var values: [String?] = []
            for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Self.logger).decode(String?.self) {
                values.append(value)
            }
            return values
        }
    }

    /// One integer.
    func integer(_ sql: String, database: String) async throws -> Int64 {
        try await withConnection(database: database) { connection in
            var result: Int64 = 0
            for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Self.logger).decode(Int64.self) {
                result = value
            }
            return result
        }
    }

    func withConnection<T: Sendable>(database: String, user: String = superuser,
                                     _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let configuration = PostgresConnection.Configuration(host: "127.0.0.1", port: port, username: user, password: nil,
                                                             database: database, tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Self.logger)
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    static let logger = Logger(label: "larder.tests.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    private func run(_ tool: String, _ arguments: [String]) throws {
        var command = ["\(binDirectory)/\(tool)"] + arguments
        if runsAsPostgres {
            let runuser = FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser") ? "/usr/sbin/runuser" : "/sbin/runuser"
            command = [runuser, "-u", "postgres", "--"] + command
        }
        let outputPath = "\(directory)/\(tool).out"
        let status = try Self.spawnAndWait(command, outputPath: outputPath)
        guard status == 0 else {
            let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            let log = (try? String(contentsOfFile: "\(directory)/server.log", encoding: .utf8)) ?? ""
            throw ClusterError("\(tool) \(arguments.joined(separator: " ")) exited \(status): \(text)\n\(log.suffix(2_000))")
        }
    }

    /// Runs a command to completion with its output in a file, and returns its exit status.
    ///
    /// Not Foundation's Process: it learns that a child ended when a socket it shares with the
    /// child closes, and the server `pg_ctl start` leaves behind inherits that socket, so waiting
    /// for pg_ctl would last as long as the server. waitpid knows better.
    static func spawnAndWait(_ command: [String], outputPath: String) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of this process may leak into the server pg_ctl leaves running: a pipe
        // or socket another test waits on would never see its end while the server lives.
        closeInheritedDescriptors(&actions)
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, command[0], &actions, nil, argv, environ)
        guard spawned == 0 else { throw ClusterError("could not start \(command[0]): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw ClusterError("waitpid failed: errno \(errno)") }
        }
        // WIFEXITED / WEXITSTATUS, spelled out (the macros do not import).
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }

    /// Adds "close every descriptor from 3 up" to `actions`: glibc's closefrom action when it has
    /// one (2.34 and later; looked up at run time, the module map does not declare it), otherwise
    /// one close per descriptor open now.
    static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            let closeFrom = unsafeBitCast(symbol, to: CloseFrom.self)
            if closeFrom(&actions, 3) == 0 { return }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            if let fd = Int32(name), fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
        }
    }

    /// Stops and deletes clusters left by earlier test processes that died without cleaning up
    /// (their directory names carry the dead process's id).
    static func sweepAbandoned(binDirectory: String, asPostgres: Bool) {
        let base = FileManager.default.temporaryDirectory.path
        for name in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where name.hasPrefix("larder-pg-") {
            let parts = name.split(separator: "-")
            guard parts.count >= 4, let pid = Int32(parts[2]), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let cluster = PostgresCluster(directory: "\(base)/\(name)", binDirectory: binDirectory, port: 0, runsAsPostgres: asPostgres)
            if FileManager.default.fileExists(atPath: "\(base)/\(name)/data/postmaster.pid") {
                try? cluster.run("pg_ctl", ["-D", "\(base)/\(name)/data", "-m", "immediate", "-w", "stop"])
            }
            try? FileManager.default.removeItem(atPath: "\(base)/\(name)")
        }
    }

    /// A loopback port nobody listens on right now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClusterError("socket failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw ClusterError("bind failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw ClusterError("getsockname failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct ClusterError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Starts one cluster around the whole fleet suite and stops it after, so the suite pays for
/// `initdb` once. Tests reach it through ``FleetDatabase/cluster``.
struct SharedClusterTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let cluster = try await PostgresCluster.start()
        do {
            try await FleetDatabase.$shared.withValue(cluster) {
                try await function()
            }
        } catch {
            await cluster.destroy()
            throw error
        }
        await cluster.destroy()
    }
}

extension Trait where Self == SharedClusterTrait {
    static var sharedPostgresCluster: Self { SharedClusterTrait() }
}

enum FleetDatabase {
    @TaskLocal static var shared: PostgresCluster?

    static var cluster: PostgresCluster {
        guard let shared else { preconditionFailure("fleet tests run inside the suite that starts the cluster") }
        return shared
    }

    /// Whether the fleet tests can run; prints why not once when they cannot.
    static let isAvailable: Bool = {
        if let reason = PostgresCluster.unavailableReason {
            print("Fleet tests skipped: \(reason).")
            return false
        }
        return true
    }()
}

/// Runs `body` with a cluster of its own (for tests that stop their server), deleted after.
func withOwnCluster<T>(_ body: (PostgresCluster) async throws -> T) async throws -> T {
    let cluster = try await PostgresCluster.start()
    do {
        let value = try await body(cluster)
        await cluster.destroy()
        return value
    } catch {
        await cluster.destroy()
        throw error
    }
}

/// In CI the fleet tests must run, not skip: `.ci/run` installs PostgreSQL (Tools/setup.sh
/// --tests), and a skipped suite would pass without testing anything.
@Suite("fleet tests run in CI")
struct FleetTestsRunInCI {
    @Test func postgreSQLIsAvailableWhenCIIsSet() {
        guard ProcessInfo.processInfo.environment["CI"] == "true" else { return }
        #expect(PostgresCluster.unavailableReason == nil, "CI=true but \(PostgresCluster.unavailableReason ?? "")")
    }
}
