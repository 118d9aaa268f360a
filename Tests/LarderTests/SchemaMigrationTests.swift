import Foundation
import Larder
import LarderStorage
import LarderTesting
import Testing

/// A schema-1 store made by the schema-1 code (Tests/Fixtures/schema-v1) is migrated to schema 2
/// at its first writable open, in one audited write, and answers afterwards exactly what it
/// answered before: every record, byte for byte, every audit query, balance, history page,
/// incident, proposal and decision; its decisions still replay.
@Suite("Schema migration")
struct SchemaMigrationTests {
    static let fixture = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/schema-v1")

    /// The fixture's store copied into a fresh directory (the fixture itself is never opened).
    static func copy() throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory(prefix: "larder-migration")
        let path = directory.path("store")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixture.appendingPathComponent("store/data.mdb").path, toPath: path + "/data.mdb")
        return (directory, path)
    }

    static func answers() throws -> [String: Any] {
        let data = try Data(contentsOf: fixture.appendingPathComponent("answers.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Time-range pages are flattened into the records each window returns: the migration's own
    /// record sorts after every fixture record (its time is the last record's or later), so it
    /// may end a page differently, but never changes which fixture records a window holds.
    static func normalized(_ answers: [String: Any]) -> [String: Any] {
        var answers = answers
        answers["by_time"] = (answers["by_time"] as? [[String: Any]] ?? []).map { window -> [String: Any] in
            let pages = window["pages"] as? [[String: Any]] ?? []
            return ["since": window["since"] ?? "", "until": window["until"] ?? "",
                    "records": pages.flatMap { $0["items"] as? [Any] ?? [] }]
        }
        return answers
    }

    @Test func aSchemaOneStoreIsMigratedAndAnswersAsBefore() throws {
        let (directory, path) = try Self.copy()
        defer { _ = directory }
        let before = try Self.answers()
        let fixtureHead = try #require(before["head_seq"] as? UInt64)

        // A read-only open cannot migrate: refused, the file untouched.
        let original = try Data(contentsOf: URL(fileURLWithPath: path + "/data.mdb"))
        let refusal = try #require(throws: LarderError.self) { try Store.open(at: path, options: .init(readOnly: true)) }
        #expect(refusal.message.contains("schema version 1"), "\(refusal.message)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/data.mdb")) == original)

        // A clock earlier than the fixture's last record: the migration's record takes that
        // record's time, so record times go on never decreasing.
        let clock = ManualClock(start: Date(timeIntervalSince1970: 1_000_000_000))
        let store = try Store.open(at: path, options: .init(clock: clock))
        defer { store.close() }
        let head = try store.read { try $0.audit.head() }
        #expect(head.seq == fixtureHead + 1)
        let migration = try #require(try store.read { try $0.audit.record(seq: head.seq) })
        #expect(migration.record.event == .schemaMigrated)
        #expect(migration.record.payload
            == #"{"from_schema":1,"to_schema":2,"audit_format":1,"records":\#(fixtureHead),"time_ordered_from":\#(fixtureHead + 1)}"#)
        let lastBefore = try #require(try store.read { try $0.audit.record(seq: fixtureHead) })
        #expect(migration.record.timeMicros == lastBefore.record.timeMicros)

        // The layout: one index table, schema 1's own tables and chain head gone.
        let environment = store.environmentForTesting
        for legacy in ["audit_by_request", "audit_by_ref", "audit_by_time", "decisions_by_time", "incidents_index", "compensation_index"] {
            #expect(!environment.hasTable(legacy), "\(legacy) is still there")
        }
        #expect(environment.hasTable("index"))
        #expect(try environment.rawGet(table: "meta", key: "chain_head".encodedKey) == nil)
        #expect(try environment.rawGet(table: "meta", key: "schema_version".encodedKey) == [0, 0, 0, 2])
        // The fixture's clock went back: its records keep time entries, the ordered part starts
        // at the migration's record.
        #expect(try environment.rawGet(table: "meta", key: "time_ordered_from".encodedKey) == Array(withUnsafeBytes(of: (fixtureHead + 1).bigEndian) { $0 }))

        // Everything the store answered before, it answers now.
        let after = try #require(try JSONSerialization.jsonObject(with: Data(try StoreAnswers.collect(store, throughSeq: fixtureHead).utf8))
            as? [String: Any])
        let expected = Self.normalized(before), found = Self.normalized(after)
        #expect(Set(expected.keys) == Set(found.keys))
        for key in expected.keys.sorted() {
            let same = NSDictionary(dictionary: [key: expected[key]!]).isEqual(to: [key: found[key] ?? NSNull()])
            #expect(same, "\(key) differs after the migration")
        }
        let report = try store.verify()
        #expect(report.isIntact, "\(report.problems)")
        #expect(report.recordsChecked == Int(fixtureHead) + 1)
    }

    /// Each decision of the fixture replays after the migration: the same result, nothing written.
    @Test func decisionsMadeBeforeTheMigrationReplay() throws {
        struct Replay: Decodable {
            var kind: String
            var actorID: String
            var role: String
            var requestID: String
            var decisionID: String
            var transfer: TransferRequest?
            var transfers: [TransferRequest]?
            var account: NewAccount?
            var report: IncidentReport?
            var storedResult: String
            var auditSeq: UInt64?
        }
        let (directory, path) = try Self.copy()
        defer { _ = directory }
        // The decisions the fixture still keeps (a purge removed the oldest, and one decisionID
        // was used again after it): the ones whose write is the one the fixture's answers name.
        let kept = try #require(try Self.answers()["decisions"] as? [String: Any])
        let replays = try JSONDecoder().decode([Replay].self, from: Data(contentsOf: Self.fixture.appendingPathComponent("replays.json")))
            .filter { replay in ((kept[replay.decisionID] as? [String: Any])?["audit_seq"] as? UInt64) == replay.auditSeq }
        #expect(replays.count >= 2)
        let store = try Store.open(at: path)
        defer { store.close() }
        let head = try store.read { try $0.audit.head() }
        for replay in replays {
            let context = WriteContext(actor: ActorIdentity(id: replay.actorID, role: try #require(Role(rawValue: replay.role))),
                                       requestID: replay.requestID + ".retry", decisionID: replay.decisionID)
            let stored: [UInt8]?
            let replayed: Bool
            switch replay.kind {
            case "transfer":
                let outcome = try store.post(try #require(replay.transfer), context: context)
                (stored, replayed) = (outcome.storedResult, outcome.kind == .replayed)
            case "linked":
                let outcome = try store.postLinked(try #require(replay.transfers), context: context)
                (stored, replayed) = (outcome.storedResult, outcome.kind == .replayed)
            case "account":
                let outcome = try store.createAccount(try #require(replay.account), context: context)
                (stored, replayed) = (outcome.storedResult, outcome.kind == .replayed)
            case "incident":
                let outcome = try store.recordIncident(try #require(replay.report), context: context)
                (stored, replayed) = (outcome.storedResult, outcome.kind == .replayed)
            default:
                Issue.record("unknown replay kind \(replay.kind)")
                continue
            }
            #expect(replayed, "decision \(replay.decisionID) did not replay")
            #expect(String(decoding: stored ?? [], as: UTF8.self) == replay.storedResult, "decision \(replay.decisionID)")
        }
        #expect(try store.read { try $0.audit.head() } == head)
    }

    /// After the migration the store is a schema-2 store: it opens read-only (`larder verify`
    /// does), is not migrated again, finds time ranges across the old and the new part, and
    /// Tools/verify_audit_chain.py verifies it.
    @Test func aMigratedStoreIsASchemaTwoStore() throws {
        let (directory, path) = try Self.copy()
        defer { _ = directory }
        let clock = ManualClock(start: Date(timeIntervalSince1970: 1_000_000_000))
        let fixtureHead: UInt64
        do {
            let store = try Store.open(at: path, options: .init(clock: clock))
            fixtureHead = try store.read { try $0.audit.head().seq } - 1
            // The clock is years behind the log: new records take the last record's time.
            for index in 0..<3 {
                try store.write(.test("after-\(index)")) { txn in try txn.appendAudit(AuditDraft(event: "AFTER_MIGRATION")) }
            }
            store.close()
        }
        let store = try Store.open(at: path, options: .init(readOnly: true))
        defer { store.close() }
        let head = try store.read { try $0.audit.head() }
        #expect(head.seq == fixtureHead + 4)
        #expect(try store.read { try $0.audit.record(seq: fixtureHead + 1) }?.record.event == .schemaMigrated)
        let last = try #require(try store.read { try $0.audit.record(seq: head.seq) })
        // Every record, old and new, in one time range: in (time, seq) order, each once.
        var seqs: [UInt64] = []
        var cursor: String?
        repeat {
            let page = try store.read { try $0.audit.records(since: .min, until: last.record.timeMicros + 1, limit: 7, cursor: cursor) }
            seqs += page.records.map(\.seq)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(seqs.count == Int(head.seq))
        #expect(Set(seqs).count == seqs.count)
        let times = try seqs.map { seq in try #require(try store.read { try $0.audit.record(seq: seq) }).record.timeMicros }
        let order = zip(times, seqs).map { (time: $0, seq: $1) }
        #expect(zip(order, order.dropFirst()).allSatisfy { ($0.time, $0.seq) < ($1.time, $1.seq) })
        #expect(Array(seqs.suffix(4)) == Array((fixtureHead + 1)...head.seq))
        #expect(try store.verify().isIntact)

        guard let python = IndependentVerifierTests.python else {
            Issue.record("python3 is needed for the independent verifier test")
            return
        }
        let independent = try runProcess(python, [IndependentVerifierTests.script, path])
        #expect(independent.status == 0, "\(independent.output) \(independent.error)")
        #expect(independent.output.contains("OK \(head.seq) records, head \(head.seq) \(head.chainHash.hexString)"))
    }
}
