import Foundation
import Larder
import LarderTesting
import Testing

/// The store stays a plain LMDB environment that several processes share: LMDB serializes their
/// writers, and the chain stays one chain because each write reads the head inside its own
/// transaction.
@Suite("Multiple processes")
struct MultiProcessTests {
    let fixture = builtProductPath("larder-fixture")

    @Test func twoProcessesWritingKeepOneChain() async throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        let path = temporary.path
        let fixture = self.fixture
        // The other process writes while this one writes.
        async let other = runProcess(fixture, ["write", path, "150", "fixture"])
        for index in 0..<150 {
            try await store.write(.test("local-\(index)")) { txn in
                try txn.appendAudit(AuditDraft(event: "LOCAL_NOTE", refs: [CorrelationRef("writer", "local")]))
            }
        }
        let result = try await other
        #expect(result.status == 0, "fixture failed: \(result.error)")
        #expect(result.output.contains("WROTE 150"))
        let report = try store.verify()
        #expect(report.isIntact, "\(report.problems)")
        #expect(report.head.seq == 302)
        try store.read { (view: StoreView) throws in
            #expect(try view.audit.records(ref: CorrelationRef("writer", "fixture"), limit: 1_000).records.count == 150)
            #expect(try view.audit.records(ref: CorrelationRef("writer", "local"), limit: 1_000).records.count == 150)
        }
    }

    /// Two processes open one schema-1 store writable at once: LMDB serializes their writers, the
    /// one that comes second finds schema 2 inside its write transaction and migrates nothing, so
    /// the log holds one SCHEMA_MIGRATED record from 1 to 2 and both processes' writes after it.
    @Test func twoProcessesOpeningASchema1StoreMigrateItOnce() async throws {
        let directory = try TemporaryDirectory(prefix: "larder-migrate-race")
        let path = directory.path("store")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let fixtureStore = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/schema-v1/store/data.mdb")
        try FileManager.default.copyItem(atPath: fixtureStore.path, toPath: path + "/data.mdb")
        async let first = runProcess(fixture, ["write", path, "20", "racer-a"])
        async let second = runProcess(fixture, ["write", path, "20", "racer-b"])
        let (a, b) = try await (first, second)
        #expect(a.status == 0 && b.status == 0, "fixture failed: \(a.error) \(b.error)")
        let store = try Store.open(at: path, options: .init(readOnly: true))
        defer { store.close() }
        let report = try store.verify()
        #expect(report.isIntact, "\(report.problems)")
        try store.read { (view: StoreView) throws in
            let records = try view.audit.records(fromSeq: 1, limit: 1_000).records
            let migrations = records.filter { $0.record.event == .schemaMigrated && $0.record.payload.contains("\"from_schema\":1") }
            #expect(migrations.count == 1, "\(migrations.map(\.seq))")
            #expect(migrations.first?.seq == 203)
            #expect(try view.audit.records(ref: CorrelationRef("writer", "racer-a"), limit: 100).records.count == 20)
            #expect(try view.audit.records(ref: CorrelationRef("writer", "racer-b"), limit: 100).records.count == 20)
        }
    }

    @Test func aSecondProcessReadsWhileTheFirstWrites() async throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        for index in 0..<10 {
            try await store.write(.test("req-\(index)")) { txn in try txn.appendAudit(AuditDraft(event: "NOTE")) }
        }
        let result = try await runProcess(fixture, ["head", temporary.path])
        #expect(result.status == 0, "fixture failed: \(result.error)")
        #expect(result.output.contains("HEAD 12 12"))
    }

    /// Another process, opened with a larger maximum, writes far beyond this process's map: this
    /// process adopts the new size (LMDB's MDB_MAP_RESIZED) on its next transaction or copy, and
    /// goes on reading, copying and writing. Neither process crashes.
    @Test func aMapGrownByAnotherProcessIsAdopted() async throws {
        var limits = Limits()
        limits.mapSizeBytesMax = 256 << 10
        let temporary = try TemporaryStore(options: .init(limits: limits))
        let store = temporary.store
        #expect(store.info().mapSizeBytes == 256 << 10)
        let result = try await runProcess(fixture, ["write", temporary.path, "300", "grower", "2000"])
        #expect(result.status == 0, "fixture failed: \(result.error)")
        // A copy first: its own read transaction meets the larger map.
        let copies = try TemporaryDirectory()
        try store.copy(to: copies.path("copy"))
        // The fixture opened with the default limits and recorded them (LIMITS_RECORDED), after
        // this store recorded its own: two records besides the fixture's 300.
        #expect(try store.auditCount() == initialRecords + 2 + 300)
        #expect(store.info().mapSizeBytes == 8 << 30)
        #expect(store.info().mapSizeBytesMax == 8 << 30)
        try await store.write(.test("after-growth")) { txn in try txn.appendAudit(AuditDraft(event: "NOTE")) }
        #expect(try store.verify().isIntact)
        #expect(try store.tableStatistics().contains { $0.name == "audit" && $0.entries == initialRecords + 303 })
    }

    /// `mdb_stat -a` lists the named tables of a Larder store: it is a plain LMDB environment.
    @Test func mdbStatSeesTheNamedTables() async throws {
        let temporary = try TemporaryStore()
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/mdb_stat") else {
            Issue.record("mdb_stat is not installed; run Tools/setup.sh")
            return
        }
        let result = try await runProcess("/usr/bin/mdb_stat", ["-a", temporary.path])
        #expect(result.status == 0)
        for table in ["audit", "index", "decisions", "meta", "ledger_history", "merkle_nodes"] {
            #expect(result.output.contains("Status of \(table)"))
        }
    }
}
