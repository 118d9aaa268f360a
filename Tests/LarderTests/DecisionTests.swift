import Foundation
import Larder
import LarderStorage
import LarderTesting
import Testing

/// Idempotency tokens: a repeated decision returns the stored first result and writes nothing;
/// the same id with another request is a conflict.
@Suite("Decisions")
struct DecisionTests {
    @Test func aReplayReturnsTheStoredResultAndWritesNothing() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        let request = NoteRequest(order: "4411", amount: 500)
        let first = try store.write(.test("req-1", decisionID: "credit-order-4411"), request: request) { txn in
            try txn.note(request)
        }
        #expect(first.kind == .committed)
        #expect(first.auditSeq == 3)
        let countAfterFirst = try store.auditCount()
        let lastTransaction = store.info().lastTransactionID

        // A retry under a new requestID, as a client would send after a timeout.
        let replay = try store.write(.test("req-1-retry", decisionID: "credit-order-4411"), request: request) { txn in
            try txn.note(NoteRequest(order: "4411", amount: 999_999))
        }
        #expect(replay.kind == .replayed)
        #expect(replay.result == first.result)
        #expect(replay.storedResult == first.storedResult)
        #expect(replay.storedResult != nil)
        #expect(replay.auditSeq == 3)
        #expect(try store.auditCount() == countAfterFirst)
        #expect(try store.noteValue("4411") == "500")
        #expect(store.info().lastTransactionID == lastTransaction)
        #expect(store.metrics.replays == 1)
    }

    @Test func aDifferentRequestUnderTheSameIDIsAConflict() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        let request = NoteRequest(order: "4411", amount: 500)
        try store.write(.test("req-1", decisionID: "d-1"), request: request) { txn in try txn.note(request) }
        let count = try store.auditCount()
        let error = try #require(throws: LarderError.self) {
            try store.write(.test("req-2", decisionID: "d-1"), request: NoteRequest(order: "4411", amount: 501)) { txn in
                try txn.note(NoteRequest(order: "4411", amount: 501))
            }
        }
        #expect(error.code == .conflict)
        #expect(error.message.contains("d-1"))
        #expect(error.requestID == "req-2")
        #expect(try store.auditCount() == count)
        #expect(try store.noteValue("4411") == "500")
        // Another actor reusing the id is a different request too.
        #expect(throws: LarderError.self) {
            try store.write(.test("req-3", decisionID: "d-1", actor: "am-18"), request: request) { txn in try txn.note(request) }
        }
    }

    @Test func aFailedFirstAttemptWroteNothingAndCanBeRetried() throws {
        struct Transient: Error {}
        let temporary = try TemporaryStore()
        let store = temporary.store
        let request = NoteRequest(order: "7", amount: 3)
        #expect(throws: Transient.self) {
            try store.write(.test("req-1", decisionID: "d-7"), request: request) { txn -> NoteResult in
                try txn.note(request)
                throw Transient()
            }
        }
        #expect(try store.read { try $0.decisions.decision(id: "d-7") } == nil)
        let retry = try store.write(.test("req-2", decisionID: "d-7"), request: request) { txn in try txn.note(request) }
        #expect(retry.kind == .committed)
        let decision = try #require(try store.read { try $0.decisions.decision(id: "d-7") })
        #expect(decision.auditSeq == retry.auditSeq)
        #expect(decision.operation == NoteRequest.operationName)
        let record = try #require(try store.read { try $0.audit.record(seq: decision.auditSeq) })
        #expect(record.record.decisionID == "d-7")
    }

    /// Many tasks write at once with distinct and shared decisionIDs: exactly one effect per
    /// decisionID, and every caller of a shared decision gets the same result.
    @Test func concurrentWritersGetExactlyOneEffectPerDecision() async throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        let all = try await withThrowingTaskGroup(of: (String, NoteResult).self) { group in
            for index in 0..<120 {
                // 40 decisions shared by three writers each.
                let decision = "d-\(index % 40)"
                let request = NoteRequest(order: "o\(index % 40)", amount: index % 40)
                group.addTask {
                    let outcome = try await store.write(.test("req-\(index)", decisionID: decision), request: request) { txn in
                        try txn.note(request)
                    }
                    return (decision, outcome.result)
                }
            }
            var all: [String: [NoteResult]] = [:]
            for try await (decision, result) in group { all[decision, default: []].append(result) }
            return all
        }
        #expect(all.count == 40)
        for (_, outcomes) in all {
            #expect(outcomes.count == 3)
            #expect(Set(outcomes.map(\.seq)).count == 1)
        }
        // One audit record per decision, plus the store's own.
        #expect(try store.auditCount() == 40 + initialRecords)
        #expect(try store.read { try $0.decisions.count() } == 40)
        #expect(store.metrics.replays == 80)
        #expect(try store.verify().isIntact)
    }

    @Test func oldDecisionsArePurgedInAnAuditedWrite() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        let clock = temporary.clock
        for index in 0..<5 {
            let request = NoteRequest(order: "o\(index)", amount: index)
            try store.write(.test("req-\(index)", decisionID: "old-\(index)"), request: request) { txn in try txn.note(request) }
        }
        clock.advance(seconds: 40 * 86_400)
        let request = NoteRequest(order: "new", amount: 1)
        try store.write(.test("req-new", decisionID: "new-1"), request: request) { txn in try txn.note(request) }
        let outcome = try store.purgeDecisions(olderThanDays: 30, context: .test("purge-1", actor: "ops", role: .admin))
        #expect(outcome.result == 5)
        let seq = try #require(outcome.auditSeq)
        let record = try #require(try store.read { try $0.audit.record(seq: seq) })
        #expect(record.record.event == .decisionsPurged)
        #expect(record.record.payload.contains("\"purged\":5"))
        #expect(try store.read { try $0.decisions.count() } == 1)
        #expect(try store.read { try $0.decisions.decision(id: "new-1") } != nil)
        #expect(try store.verify().isIntact)
        // Purging again finds nothing, writes nothing.
        let again = try store.purgeDecisions(olderThanDays: 30, context: .test("purge-2", actor: "ops", role: .admin))
        #expect(again.result == 0)
        #expect(again.auditSeq == nil)
        #expect(throws: LarderError.self) {
            try store.purgeDecisions(olderThanDays: 0, context: .test("purge-3", actor: "ops", role: .admin))
        }
    }
    /// A purge walks the log from where the last one left off (meta.decision_purge_from), not from
    /// seq 1: a decision kept under an earlier record is not found again (verify names it instead).
    @Test func aPurgeStartsWhereTheLastOneLeftOff() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        let clock = temporary.clock
        let admin = WriteContext.test("purge-1", actor: "ops", role: .admin)
        for index in 0..<3 {
            let request = NoteRequest(order: "o\(index)", amount: index)
            try store.write(.test("req-\(index)", decisionID: "old-\(index)"), request: request) { txn in try txn.note(request) }
        }
        let old = try #require(try store.environmentForTesting.rawGet(table: "decisions", key: "old-0".encodedKey))
        clock.advance(seconds: 40 * 86_400)
        let request = NoteRequest(order: "new", amount: 1)
        let made = try store.write(.test("req-new", decisionID: "new-1"), request: request) { txn in try txn.note(request) }
        #expect(try store.purgeDecisions(olderThanDays: 30, context: admin).result == 3)
        // The walk stopped at the first record not older than the cutoff: the next purge starts there.
        let from = try #require(try store.environmentForTesting.rawGet(table: "meta", key: "decision_purge_from".encodedKey))
        #expect(from == withUnsafeBytes(of: try #require(made.auditSeq).bigEndian) { Array($0) })
        #expect(try store.verify().isIntact)

        // A decision put back under a record the purge walked past: verify names it, and the next
        // purge (which does not walk there again) leaves it.
        try store.environmentForTesting.rawPut(table: "decisions", key: "old-0".encodedKey, value: old)
        let report = try store.verify()
        #expect(report.problems.contains { $0.kind == .decisionMismatch && $0.detail.contains("before meta.decision_purge_from") },
                "\(report.problems)")
        clock.advance(seconds: 40 * 86_400)
        let second = try store.purgeDecisions(olderThanDays: 30, context: .test("purge-2", actor: "ops", role: .admin))
        #expect(second.result == 1)
        #expect(try store.read { try $0.decisions.decision(id: "old-0") } != nil)
        #expect(try store.read { try $0.decisions.decision(id: "new-1") } == nil)
    }
}
