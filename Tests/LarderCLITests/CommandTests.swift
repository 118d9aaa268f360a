import Foundation
import Larder
import LarderStorage
import LarderCLI
import LarderTesting
import Testing

/// Runs `larder` in-process with captured output.
func larder(_ arguments: String...) async -> (status: Int32, out: String, err: String) {
    let console = Console.capturing()
    let status = await Console.$current.withValue(console) {
        await LarderCommand.run(arguments: arguments)
    }
    return (status, console.output, console.errorOutput)
}

/// The commands, driven in-process: parsing, output and exit codes.
@Suite("larder commands")
struct CommandTests {
    let directory: TemporaryDirectory
    var db: String { directory.path("db") }

    init() throws {
        directory = try TemporaryDirectory(prefix: "larder-cli")
    }

    func playDemo() async throws {
        let demo = await larder("demo", "--no-serve", "--db", db, "--seed", "7")
        #expect(demo.status == 0, "\(demo.err)")
        #expect(demo.out.contains("chain verified: yes"))
    }

    @Test func theDemoPlaysADayAndVerifies() async throws {
        let demo = await larder("demo", "--no-serve", "--db", db, "--seed", "7")
        #expect(demo.status == 0, "\(demo.err)")
        for words in ["kitchen day 1", "retry was replayed", "refused with PERMISSION_DENIED", "refused with CONFLICT",
                      "postmortem", "chain verified: yes", "audit head: seq"] {
            #expect(demo.out.contains(words), "missing \(words) in:\n\(demo.out)")
        }
        // The next run plays day 2 on the same store.
        let again = await larder("demo", "--no-serve", "--db", db, "--seed", "7")
        #expect(again.status == 0, "\(again.err)")
        #expect(again.out.contains("kitchen day 2"))
        #expect(await larder("verify", "--db", db).status == 0)
    }

    @Test func theDemoAuditHoldsEveryPolicyEvent() async throws {
        try await playDemo()
        let audit = await larder("audit", "--db", db, "--format", "ndjson", "--limit", "100000")
        #expect(audit.status == 0)
        let lines = audit.out.split(separator: "\n")
        #expect(lines.count > 50)
        for event in ["OP_FAILURE_RECORDED", "OP_RESPONSE_APPLIED", "OP_CREDIT_GRANTED", "OP_REFUND_ISSUED", "OP_OVERRIDE_USED",
                      "INCIDENT_STATE_CHANGED", "LEDGER_TRANSFER_POSTED", "LEDGER_TRANSFER_REVERSED", "OP_REFUND_OUTCOME_RECORDED"] {
            #expect(audit.out.contains("\"event\":\"\(event)\""), "no \(event)")
        }
        // Every line is one JSON object; seqs run 1, 2, 3, …
        let seqs = try lines.map { line -> Int in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return try #require(object["seq"] as? Int)
        }
        #expect(seqs == Array(1...seqs.count))
    }

    @Test func auditQueriesAndFormats() async throws {
        try await playDemo()
        let table = await larder("audit", "--db", db, "--ref", "route:R4", "--limit", "5")
        #expect(table.status == 0)
        #expect(table.out.hasPrefix("SEQ"))
        #expect(table.out.split(separator: "\n").count == 6)
        let json = await larder("audit", "--db", db, "--request-id", "d1-r4-refund", "--format", "json")
        #expect(json.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        let records = try #require(object["records"] as? [[String: Any]])
        #expect(records.map { $0["event"] as? String } == ["OP_RESPONSE_APPLIED", "OP_REFUND_ISSUED"])
        let window = await larder("audit", "--db", db, "--since", "2000-01-01T00:00:00Z", "--until", "2100-01-01T00:00:00Z",
                                  "--format", "ndjson", "--limit", "3")
        #expect(window.out.split(separator: "\n").count == 3)
    }

    @Test func badArgumentsAreUsageErrors() async {
        for arguments in [["audit", "--db", db, "--from-seq", "notanumber"],
                          ["audit", "--db", db, "--from-seq", "1", "--request-id", "r"],
                          ["audit", "--db", db, "--ref", "nocolon"],
                          ["audit", "--db", db, "--limit", "0"],
                          ["audit", "--db", db, "--format", "xml"],
                          ["incidents", "--db", db, "--state", "sleeping"],
                          ["frobnicate"]] {
            let run = await withArguments(arguments)
            #expect(run.status == 64, "\(arguments) → \(run.status) \(run.err)")
            #expect(!run.err.isEmpty)
        }
    }

    @Test func aMissingStoreIsNotFoundAndNotCreated() async {
        for arguments in [["verify"], ["stats"], ["incidents"], ["audit"], ["backup", "--to", directory.path("copy")],
                          ["serve", "--tokens", directory.path("tokens.json"), "--port", "0"]] {
            let command = arguments.joined(separator: " ")
            let result = await withArguments(arguments + ["--db", db])
            #expect(result.status == 4, "\(command): \(result.err)")
            #expect(result.err.contains("\"error_code\":\"NOT_FOUND\""))
        }
        #expect(!FileManager.default.fileExists(atPath: db))
    }

    @Test func verifyNamesTheFirstBadRecord() async throws {
        try await playDemo()
        do {
            let store = try Store.open(at: db)
            defer { store.close() }
            var value = try #require(try store.environmentForTesting.rawGet(table: "audit", key: UInt64(9).encodedKey))
            value[15] ^= 0x01
            try store.environmentForTesting.rawPut(table: "audit", key: UInt64(9).encodedKey, value: value)
        }
        let result = await larder("verify", "--db", db)
        #expect(result.status == 1)
        #expect(result.out.contains("BROKEN"))
        #expect(result.out.contains("first bad record at seq 9"))
        let json = await larder("verify", "--db", db, "--json")
        #expect(json.out.contains("\"first_broken_seq\":9"))
        // Not a terminal: progress comes as plain lines.
        #expect(result.err.contains("verify: audit chain"))
    }

    @Test func backupCopiesVerifiesAndRecords() async throws {
        try await playDemo()
        let copy = directory.path("copy")
        let backup = await larder("backup", "--db", db, "--to", copy)
        #expect(backup.status == 0, "\(backup.err)")
        #expect(backup.out.contains("verified"))
        #expect(await larder("verify", "--db", copy).status == 0)
        let recorded = await larder("audit", "--db", db, "--format", "ndjson", "--limit", "100000")
        #expect(recorded.out.contains("\"event\":\"BACKUP_TAKEN\""))
        // A second backup into the same directory is refused: a copy never overwrites a store.
        let again = await larder("backup", "--db", db, "--to", copy)
        #expect(again.status == 2)
    }

    /// `larder migrate` brings the schema-1 fixture store to schema 2 in one audited write; the
    /// read-only commands refuse the old store, untouched, and name the command; a second run
    /// has nothing to do.
    @Test func migrateBringsASchema1StoreForward() async throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/schema-v1/store/data.mdb")
        try FileManager.default.createDirectory(atPath: db, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixture.path, toPath: db + "/data.mdb")
        let refused = await larder("verify", "--db", db)
        #expect(refused.status == 9)
        #expect(refused.err.contains("larder migrate --db \(db)"), "\(refused.err)")
        let migrated = await larder("migrate", "--db", db)
        #expect(migrated.status == 0, "\(migrated.err)")
        #expect(migrated.out.contains("migrated from schema 1 to 2"), "\(migrated.out)")
        #expect(migrated.out.contains("SCHEMA_MIGRATED at seq 203"), "\(migrated.out)")
        #expect(migrated.out.contains("\"from_schema\":1,\"to_schema\":2"), "\(migrated.out)")
        #expect(await larder("verify", "--db", db).status == 0)
        let again = await larder("migrate", "--db", db)
        #expect(again.status == 0)
        #expect(again.out.contains("nothing to migrate"), "\(again.out)")
        let store = try Store.open(at: db, options: .init(readOnly: true))
        defer { store.close() }
        #expect(try store.read { try $0.audit.head() }.seq == 203)
    }

    /// `larder stats` reports map use against the maximum the application recorded in the store,
    /// not against the tool's own default of 8 GiB.
    @Test func statsUsesTheLimitsTheApplicationRecorded() async throws {
        var options = Store.Options()
        options.limits.mapSizeBytesMax = 1 << 20
        try Store.open(at: db, options: options).close()
        let stats = await larder("stats", "--db", db)
        #expect(stats.status == 0, "\(stats.err)")
        #expect(stats.out.contains("max 1048576 (recorded by the store's writer)"), "\(stats.out)")
        // Every table's name stands apart from its count, the longest included.
        for line in stats.out.split(separator: "\n") where line.hasPrefix("compensation_proposals") || line.hasPrefix("audit ") {
            #expect(line.split(separator: " ", omittingEmptySubsequences: true).count == 4, "\(line)")
        }
        #expect(stats.out.contains("compensation_proposals "), "\(stats.out)")
        // The tool's own opens record nothing: the application's maximum stays.
        #expect(await larder("backup", "--db", db, "--to", directory.path("copy")).status == 0)
        #expect(await larder("stats", "--db", db).out.contains("max 1048576 (recorded by the store's writer)"))
    }

    @Test func statsIncidentsAndLedger() async throws {
        try await playDemo()
        let stats = await larder("stats", "--db", db)
        #expect(stats.status == 0)
        for table in ["audit", "ledger_transfers", "incidents", "decisions"] { #expect(stats.out.contains(table)) }
        let closed = await larder("incidents", "--db", db, "--state", "closed")
        #expect(closed.out.contains("kitchenProduction"))
        #expect(closed.out.contains("1 incident(s)"))
        let all = await larder("incidents", "--db", db)
        #expect(all.out.contains("3 incident(s)"))
        let ledger = await larder("ledger", "--db", db, "--account", "kitchen.packs.consumed")
        #expect(ledger.status == 0)
        #expect(ledger.out.contains("account kitchen.packs.consumed on ledger packs"))
        #expect(ledger.out.contains("reversal"))
        #expect(await larder("ledger", "--db", db, "--account", "nobody").status == 4)
    }

    @Test func tokenCreatePrintsTheSecretOnceAndStoresItsHash() async throws {
        let tokens = directory.path("tokens.json")
        let created = await larder("token", "create", "--scopes", "audit:read,ops:read", "--expires", "4h", "--tokens", tokens, "--id", "ops-1")
        #expect(created.status == 0, "\(created.err)")
        let secret = try #require(created.out.split(separator: "\n").last.map(String.init))
        #expect(secret.count >= 40)
        let file = try String(contentsOfFile: tokens, encoding: .utf8)
        #expect(file.contains("ops-1"))
        #expect(!file.contains(secret))
        #expect(await larder("token", "create", "--scopes", "root", "--expires", "4h", "--tokens", tokens).status == 2)
        #expect(await larder("token", "create", "--scopes", "audit:read", "--expires", "forever", "--tokens", tokens).status == 2)
    }

    func withArguments(_ arguments: [String]) async -> (status: Int32, out: String, err: String) {
        let console = Console.capturing()
        let status = await Console.$current.withValue(console) { await LarderCommand.run(arguments: arguments) }
        return (status, console.output, console.errorOutput)
    }
}
