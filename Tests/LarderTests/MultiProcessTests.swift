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
        async let other = Task.detached { try runProcess(fixture, ["write", path, "150", "fixture"]) }.value
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

    @Test func aSecondProcessReadsWhileTheFirstWrites() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        for index in 0..<10 {
            try store.write(.test("req-\(index)")) { txn in try txn.appendAudit(AuditDraft(event: "NOTE")) }
        }
        let result = try runProcess(fixture, ["head", temporary.path])
        #expect(result.status == 0, "fixture failed: \(result.error)")
        #expect(result.output.contains("HEAD 12 12"))
    }

    /// Another process grows the map far beyond this process's map size: this process adopts the
    /// new size (LMDB's MDB_MAP_RESIZED) and goes on reading and writing.
    @Test func aMapGrownByAnotherProcessIsAdopted() throws {
        var limits = Limits()
        limits.mapSizeBytesInitial = Limits.mapSizeBytesFloor
        let temporary = try TemporaryStore(options: .init(limits: limits))
        let store = temporary.store
        let before = store.info().mapSizeBytes
        let result = try runProcess(fixture, ["write", temporary.path, "300", "grower", "2000"])
        #expect(result.status == 0, "fixture failed: \(result.error)")
        #expect(try store.auditCount() == initialRecords + 300)
        try store.write(.test("after-growth")) { txn in try txn.appendAudit(AuditDraft(event: "NOTE")) }
        #expect(store.info().mapSizeBytes > before)
        #expect(try store.verify().isIntact)
    }

    /// `mdb_stat -a` lists the named tables of a Larder store: it is a plain LMDB environment.
    @Test func mdbStatSeesTheNamedTables() throws {
        let temporary = try TemporaryStore()
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/mdb_stat") else {
            Issue.record("mdb_stat is not installed; run Tools/setup.sh")
            return
        }
        let result = try runProcess("/usr/bin/mdb_stat", ["-a", temporary.path])
        #expect(result.status == 0)
        for table in ["audit", "audit_by_request", "audit_by_ref", "audit_by_time", "decisions", "meta"] {
            #expect(result.output.contains("Status of \(table)"))
        }
    }
}
