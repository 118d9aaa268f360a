import Foundation
import Larder
import LarderStorage
import LarderTesting
import Testing

/// verify holds every state table against the audit records that made it: each test builds a
/// store with every kind of row (accounts, single, pending, posted, voided and reversed
/// transfers, incidents through their lifecycle with credit, refund, cancellation, delay and
/// override responses, a refund outcome, decisions and a purge), changes one row through the
/// test-only raw path, the way a bug or a hand-edit would, and expects verify to name it.
@Suite("Verify against the log")
struct VerifyStateTests {
    /// The store, its incidents and the seqs the tests aim at.
    struct Built {
        let fixture: IncidentFixture
        var store: Store { fixture.store }
        let open: Incident
        let handled: Incident
        let refundID: String
        /// The decision of the credit response: a write of several records.
        let creditDecision = "credit-a"
    }

    static func build() throws -> Built {
        let fixture = try IncidentFixture()
        let store = fixture.store
        // Decisions made early, and purged three days later.
        try store.post(.transfer(id: "buy-0", debit: "kitchen.packs", credit: "cust-17.packs", amount: 2),
                       context: context(admin, "buy-0", decisionID: "old-decision"))
        fixture.clock.advance(seconds: 3 * 86_400)
        try store.purgeDecisions(olderThanDays: 1, context: context(admin, "purge-1"))
        // Transfers of every kind.
        try store.post(.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 10, code: 7),
                       context: context(admin, "buy-1", decisionID: "buy-1"))
        try store.post(.pending(id: "hold-1", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 3), context: context(system))
        try store.post(.post(id: "post-1", pending: "hold-1", amount: 2), context: context(system))
        try store.post(.pending(id: "hold-2", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 1), context: context(system))
        try store.post(.void(id: "void-1", pending: "hold-2"), context: context(system))
        try store.post(.transfer(id: "eat-1", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 1), context: context(system))
        try store.post(.reversal(id: "rev-1", of: "eat-1"), context: context(admin))
        // An incident handled through its lifecycle, and one left open.
        let handled = try fixture.record(.delivery, .p2, refs: [.order("4411"), .cycle("w48")])
        try store.transition(handled.id, to: .acknowledged, context: context(accountManager))
        try store.apply(.credit(amountCents: 300, customerAccount: "cust-17.credits", basis: .rule(id: "delivery-late-30min")),
                        to: handled.id, context: context(system, "credit-a", decisionID: "credit-a"))
        let refund = try store.apply(.refund(billingTransaction: "bill-77", amountCents: 950), to: handled.id, reasonCode: "double-charge",
                                     responseID: "refund-1", context: context(admin)).result
        try store.recordRefundOutcome(refund.refundID!, status: .succeeded, detail: "psp-1", context: context(system))
        try store.apply(.cancellation(cycle: "w48"), to: handled.id, context: context(system, decisionID: "cancel-w48"))
        let amCredit = try store.apply(.credit(amountCents: 400, customerAccount: "cust-17.credits", basis: .preApproved(code: "late-delivery")),
                                       to: handled.id, responseID: "am-credit", context: context(accountManager)).result
        try store.apply(.credit(amountCents: 900, customerAccount: "cust-17.credits", basis: .discretionary), to: handled.id,
                        reasonCode: "vip", overriding: amCredit.id, responseID: "override-1", context: context(admin))
        try store.apply(.delay(revisedTimeMicros: fixture.clock.now().unixMicros + 3_600_000_000, subject: .order("4411")),
                        to: handled.id, context: context(accountManager))
        try store.transition(handled.id, to: .contained, context: context(accountManager))
        let open = try fixture.record(.supply, .p3, refs: [.vendor("green-farm")])
        let report = try store.verify()
        #expect(report.isIntact, "\(report.problems)")
        return Built(fixture: fixture, open: open, handled: try fixture.incident(handled.id), refundID: refund.refundID!)
    }

    /// An incident or refund row as a JSON object (after its version byte), for editing.
    static func json(_ store: Store, table: String, _ id: String) throws -> [String: Any] {
        let value = try #require(try store.environmentForTesting.rawGet(table: table, key: id.encodedKey))
        return try #require(try JSONSerialization.jsonObject(with: Data(value.dropFirst())) as? [String: Any])
    }

    static func incidentJSON(_ store: Store, _ id: String) throws -> [String: Any] { try json(store, table: "incidents", id) }

    static func putJSON(_ store: Store, table: String, _ id: String, _ object: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        try store.environmentForTesting.rawPut(table: table, key: id.encodedKey, value: [1] + Array(data))
    }

    static func expectNamed(_ report: VerifyReport, _ kind: VerifyReport.Problem.Kind, table: String, mentioning text: String,
                            seq: UInt64? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!report.isIntact, sourceLocation: sourceLocation)
        let found = report.problems.contains { problem in
            problem.kind == kind && problem.table == table && problem.detail.contains(text) && (seq == nil || problem.seq == seq)
        }
        #expect(found, "no \(kind) in \(table) mentioning \(text) in \(report.problems)", sourceLocation: sourceLocation)
    }

    @Test func aRichStoreVerifiesAndEveryTableIsCounted() throws {
        let built = try Self.build()
        let report = try built.store.verify()
        #expect(report.isIntact)
        #expect(report.recordsChecked == (try built.store.read { try $0.audit.count() }))
        #expect(report.otherRecordsChecked > 30)
        #expect(try built.store.verifyChain().isIntact)
    }

    // MARK: Incidents, refunds, cycles

    @Test func anIncidentChangedInPlaceIsNamed() throws {
        let built = try Self.build()
        var json = try Self.incidentJSON(built.store, built.open.id)
        json["summary"] = "Nothing happened"
        try Self.putJSON(built.store, table: "incidents", built.open.id, json)
        Self.expectNamed(try built.store.verify(), .incidentMismatch, table: "incidents", mentioning: "incident \(built.open.id)")
    }

    @Test func aDeletedIncidentIsNamed() throws {
        let built = try Self.build()
        let incident = built.open
        try built.store.environmentForTesting.rawDelete(table: "incidents", key: incident.id.encodedKey)
        for dimension in ["state:open", "category:supply", "severity:P3", "all"] {
            try built.store.environmentForTesting.rawDelete(
                table: "index", key: IndexKey.of(IndexKey.incident, KeyPair(dimension, KeyPair(incident.createdAtMicros, incident.id))))
        }
        let seq = try #require(UInt64(incident.id.dropFirst(4)))
        Self.expectNamed(try built.store.verify(), .incidentMismatch, table: "incidents", mentioning: "OP_FAILURE_RECORDED record \(seq)",
                         seq: seq)
    }

    /// A state the log never recorded: the incident and its index agree with each other, not
    /// with the log.
    @Test func aStateWithoutItsRecordIsNamed() throws {
        let built = try Self.build()
        let incident = built.open
        var json = try Self.incidentJSON(built.store, incident.id)
        json["state"] = "acknowledged"
        json["version"] = 2
        json["acknowledgedAtMicros"] = incident.createdAtMicros + 1
        try Self.putJSON(built.store, table: "incidents", incident.id, json)
        let at = KeyPair(incident.createdAtMicros, incident.id)
        try built.store.environmentForTesting.rawDelete(table: "index", key: IndexKey.of(IndexKey.incident, KeyPair("state:open", at)))
        try built.store.environmentForTesting.rawPut(table: "index", key: IndexKey.of(IndexKey.incident, KeyPair("state:acknowledged", at)),
                                                     value: [])
        Self.expectNamed(try built.store.verify(), .incidentMismatch, table: "incidents",
                         mentioning: "incident \(incident.id)'s step from open to acknowledged")
    }

    @Test func aResponseChangedInPlaceIsNamed() throws {
        let built = try Self.build()
        let id = built.handled.id
        var json = try Self.incidentJSON(built.store, id)
        var responses = try #require(json["responses"] as? [[String: Any]])
        let index = try #require(responses.firstIndex { ($0["id"] as? String) == "\(id).r6" })
        var response = try #require(responses[index]["response"] as? [String: Any])
        var delay = try #require(response["delay"] as? [String: Any])
        delay["revisedTimeMicros"] = (delay["revisedTimeMicros"] as! Int64) + 60_000_000
        response["delay"] = delay
        responses[index]["response"] = response
        json["responses"] = responses
        try Self.putJSON(built.store, table: "incidents", id, json)
        Self.expectNamed(try built.store.verify(), .incidentMismatch, table: "incidents", mentioning: "response \(id).r6")
    }

    @Test func aRefundRequestChangedInPlaceIsNamed() throws {
        let built = try Self.build()
        let store = built.store
        var json = try Self.json(store, table: "incident_refunds", built.refundID)
        json["amountCents"] = 9_500
        try Self.putJSON(store, table: "incident_refunds", built.refundID, json)
        Self.expectNamed(try store.verify(), .incidentMismatch, table: "incident_refunds", mentioning: "refund \(built.refundID)")
    }

    @Test func aRefundOutcomeChangedInPlaceIsNamed() throws {
        let built = try Self.build()
        let store = built.store
        var json = try Self.json(store, table: "incident_refunds", built.refundID)
        json["status"] = "failed"
        try Self.putJSON(store, table: "incident_refunds", built.refundID, json)
        Self.expectNamed(try store.verify(), .incidentMismatch, table: "incident_refunds", mentioning: "the outcome (failed) of refund \(built.refundID)")
    }

    @Test func aDeletedRefundRequestIsNamed() throws {
        let built = try Self.build()
        try built.store.environmentForTesting.rawDelete(table: "incident_refunds", key: built.refundID.encodedKey)
        Self.expectNamed(try built.store.verify(), .incidentMismatch, table: "incident_refunds", mentioning: "refund \(built.refundID)")
    }

    @Test func aCycleCancelledWithoutAResponseIsNamed() throws {
        let built = try Self.build()
        try built.store.environmentForTesting.rawPut(table: "cancelled_cycles", key: "w99".encodedKey, value: Array(built.handled.id.utf8))
        Self.expectNamed(try built.store.verify(), .incidentMismatch, table: "cancelled_cycles", mentioning: "cycle w99")
    }

    @Test func anUncancelledCycleIsNamed() throws {
        let built = try Self.build()
        try built.store.environmentForTesting.rawDelete(table: "cancelled_cycles", key: "w48".encodedKey)
        Self.expectNamed(try built.store.verify(), .incidentMismatch, table: "cancelled_cycles", mentioning: "cancellation of cycle w48")
    }

    // MARK: Ledger

    /// Not only the last entry: a balance changed in the middle of an account's history is found
    /// at that entry.
    @Test func everyHistoryEntryIsChecked() throws {
        let built = try Self.build()
        let store = built.store
        let entries = try store.read { try $0.ledger.history(of: "cust-17.packs", limit: 100) }.entries
        #expect(entries.count >= 6)
        let middle = entries[2]
        let key = KeyPair("cust-17.packs", middle.seq).encodedKey
        var value = try #require(try store.environmentForTesting.rawGet(table: "ledger_history", key: key))
        value[value.count - 1 - 16] &+= 1   // creditsPosted's last byte, in the entry's balanceAfter
        try store.environmentForTesting.rawPut(table: "ledger_history", key: key, value: value)
        Self.expectNamed(try store.verify(), .ledgerMismatch, table: "ledger_history", mentioning: "account cust-17.packs", seq: middle.seq)
    }

    @Test func aTransferThatDisagreesWithItsRecordIsNamed() throws {
        let built = try Self.build()
        let store = built.store
        var value = try #require(try store.environmentForTesting.rawGet(table: "ledger_transfers", key: "buy-1".encodedKey))
        // The code (u16) sits after version, kind, accounts, amount and ledger.
        let transfer = try #require(try store.read { try $0.ledger.transfer(id: "buy-1") })
        let codeOffset = 1 + 4 + 6 + 4 + transfer.debitAccount.utf8.count + 4 + transfer.creditAccount.utf8.count + 8 + 4 + transfer.ledger.utf8.count
        #expect(value[codeOffset + 1] == 7)
        value[codeOffset + 1] = 8
        try store.environmentForTesting.rawPut(table: "ledger_transfers", key: "buy-1".encodedKey, value: value)
        Self.expectNamed(try store.verify(), .ledgerMismatch, table: "ledger_transfers", mentioning: "transfer buy-1", seq: transfer.auditSeq)
    }

    @Test func anAccountThatDisagreesWithItsRecordIsNamed() throws {
        let built = try Self.build()
        let store = built.store
        var value = try #require(try store.environmentForTesting.rawGet(table: "ledger_accounts", key: "cust-17.credits".encodedKey))
        // flags (u16) after version, ledger and code: drop debits_must_not_exceed_credits.
        let flagsOffset = 1 + 4 + "credits.cents".utf8.count + 2
        #expect(value[flagsOffset + 1] == 1)
        value[flagsOffset + 1] = 0
        try store.environmentForTesting.rawPut(table: "ledger_accounts", key: "cust-17.credits".encodedKey, value: value)
        Self.expectNamed(try store.verify(), .ledgerMismatch, table: "ledger_accounts", mentioning: "account cust-17.credits")
    }

    // MARK: Decisions and meta

    @Test func aDecisionDeletedWithoutAPurgeIsNamed() throws {
        let built = try Self.build()
        let store = built.store
        let decision = try #require(try store.read { try $0.decisions.decision(id: "buy-1") })
        try store.environmentForTesting.rawDelete(table: "decisions", key: "buy-1".encodedKey)
        let report = try store.verify()
        Self.expectNamed(report, .decisionMismatch, table: "decisions", mentioning: "made decision buy-1", seq: decision.auditSeq)
        // The purged one is not missing.
        #expect(!report.problems.contains { $0.detail.contains("old-decision") })
    }

    @Test func aDecisionNamingAnEarlierRecordOfItsWriteIsNamed() throws {
        let built = try Self.build()
        let store = built.store
        let decision = try #require(try store.read { try $0.decisions.decision(id: built.creditDecision) })
        let first = try #require(try store.read { try $0.audit.records(requestID: "credit-a", limit: 10) }.records.first)
        #expect(first.seq < decision.auditSeq)
        var value = try #require(try store.environmentForTesting.rawGet(table: "decisions", key: built.creditDecision.encodedKey))
        withUnsafeBytes(of: first.seq.bigEndian) { value.replaceSubrange(41..<49, with: $0) }
        try store.environmentForTesting.rawPut(table: "decisions", key: built.creditDecision.encodedKey, value: value)
        Self.expectNamed(try store.verify(), .decisionMismatch, table: "decisions", mentioning: "its write's last record is later",
                         seq: first.seq)
    }

    @Test func thePolicyDigestInMetaIsCheckedAgainstTheLastPolicyRecord() throws {
        let built = try Self.build()
        try built.store.environmentForTesting.rawPut(table: "meta", key: "policy_sha256".encodedKey, value: [UInt8](repeating: 7, count: 32))
        Self.expectNamed(try built.store.verify(), .metaMismatch, table: "meta", mentioning: "the last POLICY_CHANGED record (2)", seq: 2)
    }

    /// Application code may append records under Larder's event names; only records whose
    /// payload Larder wrote are held against the state tables.
    @Test func anApplicationRecordUnderALarderNameIsNotAState() throws {
        let built = try Self.build()
        try built.store.write(context(admin, "app-note")) { txn in
            try txn.appendAudit(AuditDraft(event: .opCreditGranted, refs: [.order("4411")]))
            try txn.appendAudit(AuditDraft(event: .ledgerTransferPosted, payload: #"{"note":"imported"}"#))
        }
        let report = try built.store.verify()
        #expect(report.isIntact, "\(report.problems)")
    }

    // MARK: The walk itself

    @Test func aChangedStateTableLeavesTheChainIntact() throws {
        let built = try Self.build()
        try built.store.environmentForTesting.rawDelete(table: "cancelled_cycles", key: "w48".encodedKey)
        #expect(try built.store.verifyChain().isIntact)
        #expect(try !built.store.verify().isIntact)
        var value = try VerifyTests.auditValue(built.store, 9)
        value[20] ^= 0x01
        try built.store.environmentForTesting.rawPut(table: "audit", key: UInt64(9).encodedKey, value: value)
        let chain = try built.store.verifyChain()
        #expect(chain.problems.map(\.kind) == [.leafHashMismatch])
        #expect(chain.firstBrokenSeq == 9)
    }

    @Test func verifyStopsWhenCancelled() throws {
        let built = try Self.build()
        var asked = 0
        #expect(throws: CancellationError.self) {
            _ = try built.store.verify(isCancelled: {
                asked += 1
                return true
            })
        }
        #expect(asked == 1)
    }
}
