import ArgumentParser
import Foundation
import Hummingbird
import Larder
import LarderAdmin

/// `larder serve`: the read-only admin HTTP server.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the read-only admin HTTP API over a store.",
        discussion: "Opens the store writable only to record each forensic read as a FORENSIC_ACCESS audit event; it may run beside the application that writes the store.")

    @OptionGroup var location: StoreLocation

    @Option(name: .long, help: "Address to bind; loopback by default.")
    var host = "127.0.0.1"

    @Option(name: .long, help: "TCP port (0 picks a free one).")
    var port = 8080

    @Option(name: .long, help: "The token file (see `larder token create`).")
    var tokens: String

    @Option(name: .customLong("budget-units"), help: "Budget units each token may spend per window; a page costs 1.")
    var budgetUnits = AdminConfiguration().budgetUnitsPerWindowMax

    @Option(name: .customLong("budget-window-seconds"), help: "Length of the budget window, in seconds.")
    var budgetWindowSeconds = AdminConfiguration().budgetWindowSeconds

    @Option(name: .customLong("cost-page"), help: "Units a page, record, incident, account or decision costs.")
    var costPage = AdminCosts().pageUnits

    @Option(name: .customLong("cost-verify"), help: "Units /v1/audit/verify costs.")
    var costVerify = AdminCosts().verifyUnits

    @Option(name: .customLong("cost-export"), help: "Units /v1/audit/export costs to start (covers its first page).")
    var costExport = AdminCosts().exportUnits

    @Option(name: .customLong("cost-export-page"), help: "Units each further export page costs, charged as it streams.")
    var costExportPage = AdminCosts().exportPageUnits

    @Option(name: .customLong("expensive-max"), help: "Verifies and exports running at once on the server, all tokens together.")
    var expensiveMax = AdminConfiguration().expensiveRequestsConcurrentMax

    @Option(name: .customLong("log-level"), help: "Log to standard error at this level and above: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(name: .customLong("signing-key"), help: "Sign checkpoints with this key file (outside the store) and serve them at /v1/audit/checkpoint and /tlog/.")
    var signingKey: String?

    @Option(name: .customLong("checkpoint-every-records"), help: "With --signing-key: sign after this many new records (0: never for this reason).")
    var checkpointEveryRecords: UInt64 = CheckpointPolicy().everyRecords ?? 0

    @Option(name: .customLong("checkpoint-every-seconds"), help: "With --signing-key: sign after this many seconds if any record is new (0: never for this reason).")
    var checkpointEverySeconds: Int64 = CheckpointPolicy().everySeconds ?? 0

    /// The checkpoint policy from the options (0 turns a reason off), validated.
    func checkpointPolicy() throws(LarderError) -> CheckpointPolicy {
        let policy = CheckpointPolicy(everyRecords: checkpointEveryRecords == 0 ? nil : checkpointEveryRecords,
                                      everySeconds: checkpointEverySeconds == 0 ? nil : checkpointEverySeconds)
        try policy.validate()
        return policy
    }

    /// The server's configuration from the options, validated before the store is opened so a
    /// mistyped limit fails fast and touches nothing.
    func adminConfiguration() throws(LarderError) -> AdminConfiguration {
        var configuration = AdminConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.budgetUnitsPerWindowMax = budgetUnits
        configuration.budgetWindowSeconds = budgetWindowSeconds
        configuration.costs.pageUnits = costPage
        configuration.costs.verifyUnits = costVerify
        configuration.costs.exportUnits = costExport
        configuration.costs.exportPageUnits = costExportPage
        configuration.expensiveRequestsConcurrentMax = expensiveMax
        try configuration.validate()
        return configuration
    }

    func run() async throws {
        var configuration = try adminConfiguration()
        let console = Console.current
        let logger = Parse.stderrLogger(level: try Parse.logLevel(logLevel))
        let policy = try checkpointPolicy()
        let key = try signingKey.map { path throws(LarderError) in try SigningKeyFile.load(path, store: location.db) }
        configuration.checkpointKey = key?.verifierKey
        // The store records its counters into the registry that /metrics renders.
        let store = try location.open(readOnly: false, logger: logger, metricsFactory: AdminServer.metricsFactory())
        defer { store.close() }
        let tokenFile = try TokenFile.load(from: tokens)
        let server = try AdminServer(store: store, tokens: tokenFile, configuration: configuration, logger: logger)
        let signer = try key.map { key throws(LarderError) in try CheckpointSigner(store: store, key: key, policy: policy) }
        // A box with a key has a checkpoint before the first request can ask for one.
        if let signer { try await signer.signIfDue() }
        let host = configuration.host, path = store.path
        let application = server.makeApplication { port in
            console.print("larder: serving \(path) on http://\(host):\(port) (Ctrl-C stops)")
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await application.runService() }
            if let signer { group.addTask { try await signer.run() } }
            // The server returns on SIGINT or SIGTERM; the signer then stops with it.
            try await group.next()
            group.cancelAll()
        }
    }
}

/// `larder token create`: a new bearer token; the secret is printed once, only its hash is kept.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "token", abstract: "Manage admin tokens.",
                                                    subcommands: [Create.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create",
            abstract: "Create a token; prints its secret once and stores only the secret's SHA-256.")

        @Option(name: .long, help: "Comma-separated scopes: audit:read, checkpoint:read, ops:read.")
        var scopes: String

        @Option(name: .long, help: "Lifetime, e.g. 30m, 4h, 7d.")
        var expires: String

        @Option(name: .long, help: "The token file (created when missing).")
        var tokens: String

        @Option(name: .long, help: "The token id (default: a fresh one).")
        var id: String?

        func run() throws {
            let console = Console.current
            let requested = scopes.split(separator: ",").map { TokenScope(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
            for scope in requested where !TokenScope.all.contains(scope) {
                throw LarderError(.validationFailed, "Unknown scope \(JSONWriter.quoted(scope.rawValue)); use \(TokenScope.all.map(\.rawValue).joined(separator: ", ")).")
            }
            guard !requested.isEmpty else { throw LarderError(.validationFailed, "--scopes needs at least one scope.") }
            let lifetime = try Parse.duration(expires, option: "--expires")
            var file = FileManager.default.fileExists(atPath: tokens) ? try TokenFile.load(from: tokens) : try TokenFile()
            let tokenID = id ?? "tok-\(UInt32.random(in: 0...UInt32.max))"
            let expiresAt = Date().unixMicros + lifetime * 1_000_000
            let created = try file.createToken(id: tokenID, scopes: Set(requested), expiresAt: expiresAt)
            try file.save(to: tokens)
            console.print("token \(created.token.id): scopes \(requested.map(\.rawValue).sorted().joined(separator: ",")), expires \(RFC3339.format(expiresAt))")
            console.print("stored its SHA-256 in \(tokens); the secret is shown only now:")
            console.print(created.secret)
        }
    }
}

/// `larder backup`: a hot, compacting copy, verified, recorded as BACKUP_TAKEN.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Take a hot, compacting copy of a store while writers run, verify it, and record BACKUP_TAKEN.")

    @OptionGroup var location: StoreLocation

    @Option(name: .long, help: "An empty or missing directory for the copy.")
    var to: String

    func run() throws {
        let console = Console.current
        let store = try location.open(readOnly: false)
        defer { store.close() }
        try store.copy(to: to, compact: true)
        let copy = try Store.open(at: to, options: .init(readOnly: true))
        let report = try copy.verify()
        let records = report.recordsChecked
        copy.close()
        guard report.isIntact else {
            console.error(VerifyCommand.text(report, path: to))
            throw LarderError(.persistenceError, "The copy at \(to) does not verify; keep the original and investigate.",
                              failureClass: .dataInconsistency, failurePoint: .persist)
        }
        let destination = URL(fileURLWithPath: to).standardizedFileURL.path
        var payload = JSONWriter()
        payload.object { o in
            o.field("destination", destination)
            o.field("head_seq", report.head.seq)
            o.field("head_hash", report.head.chainHash.hexString)
            o.field("records", records)
            o.field("compacted", true)
        }
        let context = WriteContext(actor: ActorIdentity(id: "larder-backup", role: .system),
                                   requestID: "backup.\(Date().unixMicros)")
        try store.write(context) { txn in
            try txn.appendAudit(AuditDraft(event: .backupTaken, payload: payload.text))
        }
        console.print("backup: \(destination) verified, \(records) audit records")
        console.print("  chain head: seq \(report.head.seq) \(report.head.chainHash.hexString)")
    }
}

/// `larder migrate`: brings a store made by an earlier Larder to this build's schema, in the
/// one audited write a writable open makes (docs/FORMAT.md section 17).
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Migrate a store made by an earlier Larder to this build's schema (one audited write, SCHEMA_MIGRATED).",
        discussion: """
            Any writable open migrates a store; this command does only that, and says what it did.
            Audit records are not changed: their bytes and hashes stay as they are. A store at this
            build's schema already is left as it is; like the other commands, this one records no
            policy or limits of its own. Stop the applications that write the store first, take a
            copy of the directory, then run `larder verify`.
            """)

    @OptionGroup var location: StoreLocation

    func run() throws {
        let console = Console.current
        // The open migrates, in one write that reads every audit record once: seconds for a
        // million records, so say what is happening first.
        console.error("migrate: opening \(location.db) (a store of an earlier schema is migrated now)…")
        let started = ContinuousClock.now
        let store = try location.open(readOnly: false)
        defer { store.close() }
        let elapsed = ContinuousClock.now - started
        guard let found = store.schemaVersionAtOpen, found < Store.schemaVersion else {
            console.print("migrate: \(location.db) is at schema \(Store.schemaVersion) already; nothing to migrate")
            return
        }
        // The migration's record is the open's last (the tool records no policy or limits).
        let head = try store.read { try $0.audit.head() }.seq
        let recent = try store.read { try $0.audit.records(fromSeq: head > 8 ? head - 8 : 1, limit: 9) }.records
        guard let migration = recent.last(where: { $0.record.event == .schemaMigrated }) else {
            throw LarderError(.auditFailed, "The store was opened at schema \(Store.schemaVersion) but no SCHEMA_MIGRATED record was found near the head (seq \(head)); run larder verify.",
                              failurePoint: .open)
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        console.print("migrate: \(location.db) migrated from schema \(found) to \(Store.schemaVersion) in one audited write (\(String(format: "%.2f", seconds)) s)")
        console.print("  SCHEMA_MIGRATED at seq \(migration.seq): \(migration.record.payload)")
        console.print("  next: larder verify --db \(location.db)")
    }
}
