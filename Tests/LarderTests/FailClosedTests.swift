import Foundation
import Larder
import LarderStorage
import LarderTesting
import Testing

/// A mutation and its audit record commit together or not at all.
@Suite("Fail closed")
struct FailClosedTests {
    struct Boom: Error {}

    @Test func anErrorBeforeTheAuditAppendLeavesNothing() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        #expect(throws: Boom.self) {
            try store.write(.test("req-1")) { txn in
                try txn.rawPutForTesting(table: "meta", key: Array("note.a".utf8), value: [1])
                throw Boom()
            }
        }
        #expect(try store.noteValue("a") == nil)
        #expect(try store.auditCount() == initialRecords)
    }

    @Test func anErrorAfterTheAuditAppendLeavesNothing() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        #expect(throws: Boom.self) {
            try store.write(.test("req-1")) { txn in
                try txn.note(NoteRequest(order: "a", amount: 1))
                throw Boom()
            }
        }
        #expect(try store.noteValue("a") == nil)
        #expect(try store.auditCount() == initialRecords)
        #expect(try store.verify().isIntact)
    }

    @Test func aChangeWithoutAnAuditRecordCannotCommit() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        let error = try #require(throws: LarderError.self) {
            try store.write(.test("req-1")) { txn in
                try txn.rawPutForTesting(table: "meta", key: Array("note.a".utf8), value: [1])
            }
        }
        #expect(error.code == .auditFailed)
        #expect(error.transactionRolledBack)
        #expect(error.requestID == "req-1")
        #expect(try store.noteValue("a") == nil)
        #expect(store.metrics.errorsByCode["AUDIT_FAILED"] == 1)
    }

    @Test func aWriteThatChangesNothingNeedsNoAuditRecord() throws {
        let temporary = try TemporaryStore()
        let outcome = try temporary.store.write(.test("req-1")) { txn in try txn.view.audit.head().seq }
        #expect(outcome.result == UInt64(initialRecords))
        #expect(outcome.auditSeq == nil)
    }

    /// A fault injected into the audit append rolls back the domain change with it.
    @Test func aFailedAuditAppendRollsEverythingBack() throws {
        var options = Store.Options()
        options.auditFaultInjection = AuditFaultInjection { seq throws(LarderError) in
            if seq == 4 { throw LarderError(.persistenceError, "injected fault") }
        }
        let temporary = try TemporaryStore(options: options)
        let store = temporary.store
        try store.write(.test("req-1")) { txn in try txn.note(NoteRequest(order: "a", amount: 1)) }
        let error = try #require(throws: LarderError.self) {
            try store.write(.test("req-2")) { txn in try txn.note(NoteRequest(order: "b", amount: 2)) }
        }
        #expect(error.code == .auditFailed)
        #expect(error.failurePoint == .auditWrite)
        #expect(error.failureClass == .audit)
        #expect(error.transactionRolledBack)
        #expect(error.message.contains("injected fault"))
        #expect(try store.noteValue("a") == "1")
        #expect(try store.noteValue("b") == nil)
        #expect(try store.auditCount() == initialRecords + 1)
        #expect(try store.verify().isIntact)
    }

    /// A domain store that swallows the audit error cannot commit its change either.
    @Test func swallowingTheAuditErrorDoesNotHelp() throws {
        var options = Store.Options()
        options.auditFaultInjection = AuditFaultInjection { seq throws(LarderError) in
            // Seq 1 and 2 are the store's own records.
            if seq > 2 { throw LarderError(.persistenceError, "always") }
        }
        let temporary = try TemporaryStore(options: options)
        let error = try #require(throws: LarderError.self) {
            try temporary.store.write(.test("req-1")) { txn in
                try txn.rawPutForTesting(table: "meta", key: Array("note.a".utf8), value: [1])
                _ = try? txn.appendAudit(AuditDraft(event: "ORDER_NOTED"))
            }
        }
        #expect(error.code == .auditFailed)
        #expect(try temporary.store.noteValue("a") == nil)
    }

    /// With the map at its maximum, the write (change + audit) fails whole with
    /// STORAGE_UNAVAILABLE; reads and verify keep working.
    @Test func theMapAtItsMaximumFailsTheWholeWrite() throws {
        var limits = Limits()
        limits.mapSizeBytesMax = 512 << 10
        let temporary = try TemporaryStore(options: .init(limits: limits))
        let store = temporary.store
        var failure: LarderError?
        var index = 0
        while failure == nil && index < 10_000 {
            do {
                try store.write(.test("req-\(index)")) { txn in
                    try txn.rawPutForTesting(table: "meta", key: Array("note.\(index)".utf8), value: [UInt8](repeating: 1, count: 2_000))
                    try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", refs: [.order("\(index)")],
                                                   payload: "{\"pad\":\"" + String(repeating: "p", count: 1_500) + "\"}"))
                }
                index += 1
            } catch let error as LarderError {
                failure = error
            }
        }
        let error = try #require(failure)
        #expect(error.code == .storageUnavailable)
        #expect(error.requestID == "req-\(index)")
        #expect(try store.noteValue("\(index)") == nil)
        // Limits other than the defaults are recorded at open: one LIMITS_RECORDED record more.
        #expect(try store.auditCount() == index + initialRecords + 1)
        #expect(try store.verify().isIntact)
        #expect(try store.read { try $0.audit.head().seq } == UInt64(index + initialRecords + 1))
    }

    /// The async write gives the same guarantees.
    @Test func asyncWritesFailClosedToo() async throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        await #expect(throws: LarderError.self) {
            try await store.write(.test("req-1")) { txn in
                try txn.rawPutForTesting(table: "meta", key: Array("note.a".utf8), value: [1])
            }
        }
        let outcome = try await store.write(.test("req-2")) { txn in try txn.note(NoteRequest(order: "b", amount: 2)) }
        #expect(outcome.auditSeq == 3)
        #expect(try store.noteValue("a") == nil)
    }
}
