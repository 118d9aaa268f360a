import Foundation
import Larder
import LarderTesting
import Synchronization
import Testing

/// Retried incident calls: a retry answers with what the first call did and writes nothing;
/// money never moves twice; a refusal inside a response leaves nothing half-written.
@Suite("Incident retries and all-or-nothing responses")
struct IncidentRetryTests {
    static let lateCredit = IncidentResponse.credit(amountCents: 400, customerAccount: "cust-17.credits",
                                                    basis: .preApproved(code: "late-delivery"))

    func balance(_ store: Store, _ account: String) throws -> Int64 {
        try store.read { try $0.ledger.balance(of: account).net }
    }

    func events(_ store: Store, about incident: String) throws -> [AuditEvent] {
        try store.read { try $0.audit.records(ref: .incident(incident), limit: 500) }.records.map(\.record.event)
    }

    // MARK: Money needs a way to recognise its retry

    /// Before: the same credit sent twice (a client retry after a timeout) posted two credits.
    @Test func aRetriedCreditWithoutAKeyIsRefusedNotPostedTwice() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record()
        let count = try fixture.store.auditCount()
        for _ in 0..<2 {
            _ = try? fixture.store.apply(Self.lateCredit, to: incident.id, context: context(accountManager, "req-credit"))
        }
        #expect(try balance(fixture.store, "cust-17.credits") == 0)
        let error = try #require(throws: LarderError.self) {
            try fixture.store.apply(Self.lateCredit, to: incident.id, context: context(accountManager, "req-credit"))
        }
        #expect(error.code == .validationFailed)
        #expect(error.message.contains("decisionID"), "\(error.message)")
        #expect(error.message.contains("responseID"), "\(error.message)")
        // Every money-moving kind, and an override of a delay.
        let delay = try fixture.store.apply(.delay(revisedTimeMicros: fixture.clock.now().unixMicros + 600_000_000, subject: .order("4411")),
                                            to: incident.id, context: context(accountManager)).result
        for (response, overriding) in [(IncidentResponse.refund(billingTransaction: "bill-9", amountCents: 100), nil),
                                       (.cancellation(cycle: "w48"), nil),
                                       (.delay(revisedTimeMicros: fixture.clock.now().unixMicros + 900_000_000, subject: .order("4411")),
                                        delay.id)] {
            let error = try #require(throws: LarderError.self) {
                try fixture.store.apply(response, to: incident.id, reasonCode: "goodwill", overriding: overriding, context: context(admin))
            }
            #expect(error.code == .validationFailed, "\(response): \(error)")
        }
        #expect(try fixture.store.auditCount() == count + 1)
        #expect(try fixture.incident(incident.id).responses.count == 1)
        #expect(try fixture.store.verify().isIntact)
    }

    @Test func aRetriedCreditWithAResponseIDReplays() throws {
        let fixture = try IncidentFixture()
        let store = fixture.store
        let incident = try fixture.record()
        let first = try store.apply(Self.lateCredit, to: incident.id, responseID: "credit-4411", context: context(accountManager, "req-1"))
        #expect(first.kind == .committed)
        #expect(first.result.id == "\(incident.id).credit-4411")
        #expect(first.result.transferID == "\(incident.id).credit-4411.credit")
        let count = try store.auditCount()
        // The retry comes with a new requestID and a stale version; it is recognised by its responseID.
        let retry = try store.apply(Self.lateCredit, to: incident.id, expectedVersion: 1, responseID: "credit-4411",
                                    context: context(accountManager, "req-1-retry"))
        #expect(retry.kind == .replayed)
        #expect(retry.result == first.result)
        #expect(retry.auditSeq == first.result.auditSeq)
        #expect(try store.auditCount() == count)
        #expect(try balance(store, "cust-17.credits") == 400)
        #expect(store.metrics.replays == 1)

        // The same id with other content is CONFLICT naming what differs, and writes nothing.
        let other = IncidentResponse.credit(amountCents: 300, customerAccount: "cust-17.credits", basis: .preApproved(code: "late-delivery"))
        let amount = try #require(throws: LarderError.self) {
            try store.apply(other, to: incident.id, responseID: "credit-4411", context: context(accountManager))
        }
        #expect(amount.code == .conflict)
        #expect(amount.message.contains("amountCents (400 before, 300 now)"), "\(amount.message)")
        let actor = try #require(throws: LarderError.self) {
            try store.apply(Self.lateCredit, to: incident.id, responseID: "credit-4411",
                            context: context(ActorIdentity(id: "am-99", role: .accountManager)))
        }
        #expect(actor.code == .conflict)
        #expect(actor.message.contains("actor"), "\(actor.message)")
        let type = try #require(throws: LarderError.self) {
            try store.apply(.delay(revisedTimeMicros: fixture.clock.now().unixMicros + 60_000_000, subject: .order("4411")),
                            to: incident.id, responseID: "credit-4411", context: context(accountManager))
        }
        #expect(type.message.contains("type (credit before, delay now)"), "\(type.message)")
        #expect(try store.auditCount() == count)

        // Still a replay once the incident is closed.
        for state in [IncidentState.acknowledged, .contained, .resolved, .closed] {
            try store.transition(incident.id, to: state, context: context(accountManager))
        }
        let late = try store.apply(Self.lateCredit, to: incident.id, responseID: "credit-4411", context: context(accountManager))
        #expect(late.kind == .replayed)
        #expect(late.result == first.result)
        #expect(try balance(store, "cust-17.credits") == 400)
        #expect(try store.verify().isIntact)
    }

    @Test func aRetriedCreditWithADecisionIDReplays() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record()
        let first = try fixture.store.apply(Self.lateCredit, to: incident.id, context: context(accountManager, "req-1", decisionID: "credit-4411"))
        let retry = try fixture.store.apply(Self.lateCredit, to: incident.id, context: context(accountManager, "req-2", decisionID: "credit-4411"))
        #expect(retry.kind == .replayed)
        #expect(retry.result == first.result)
        #expect(retry.storedResult == first.storedResult)
        #expect(try balance(fixture.store, "cust-17.credits") == 400)
        // The decision answers first: the same decisionID with a responseID added is another request.
        let both = try #require(throws: LarderError.self) {
            try fixture.store.apply(Self.lateCredit, to: incident.id, responseID: "x",
                                    context: context(accountManager, "req-3", decisionID: "credit-4411"))
        }
        #expect(both.code == .conflict)
        #expect(try balance(fixture.store, "cust-17.credits") == 400)
    }

    @Test func responseIDsAreCheckedBeforeAnythingIsWritten() throws {
        let fixture = try IncidentFixture()
        let store = fixture.store
        let incident = try fixture.record()
        for reserved in ["r1", "batch.r12"] {
            let error = try #require(throws: LarderError.self) {
                try store.apply(Self.lateCredit, to: incident.id, responseID: reserved, context: context(accountManager))
            }
            #expect(error.code == .validationFailed)
            #expect(error.message.contains("r<n>"), "\(error.message)")
        }
        // An id whose derived transfer exists already is refused, not half-applied.
        try store.post(.transfer(id: "\(incident.id).taken.credit", debit: "cust-17.spent", credit: "cust-17.credits", amount: 1),
                       context: context(admin))
        let count = try store.auditCount()
        let taken = try #require(throws: LarderError.self) {
            try store.apply(Self.lateCredit, to: incident.id, responseID: "taken", context: context(accountManager))
        }
        #expect(taken.code == .conflict)
        #expect(taken.message.contains("\(incident.id).taken.credit"), "\(taken.message)")
        #expect(try store.auditCount() == count)
        #expect(try fixture.incident(incident.id).responses.isEmpty)
        // Automatic ids count on from the chosen ones.
        let chosen = try store.apply(Self.lateCredit, to: incident.id, responseID: "k", context: context(accountManager)).result
        let automatic = try store.apply(Self.lateCredit, to: incident.id, context: context(accountManager, decisionID: "d-2")).result
        #expect(chosen.id == "\(incident.id).k")
        #expect(automatic.id == "\(incident.id).r2")
    }

    /// A retry is answered from a read snapshot: it gets its answer even while writes fail.
    @Test func retriesAreAnsweredWhileWritesFail() throws {
        let failing = Mutex(false)
        var options = Store.Options()
        options.auditFaultInjection = AuditFaultInjection { _ throws(LarderError) in
            if failing.withLock({ $0 }) { throw LarderError(.storageUnavailable, "disk full (injected)") }
        }
        let fixture = try IncidentFixture(options: options)
        let store = fixture.store
        let incident = try store.recordIncident(IncidentReport(id: "dispatch-R4", category: .delivery, severity: .p2, summary: "late",
                                                               source: "dispatch-monitor"), context: context(system, "req-report")).result
        let ack = try store.transition(incident.id, to: .acknowledged, context: context(accountManager, "req-ack"))
        let credit = try store.apply(Self.lateCredit, to: incident.id, responseID: "c1", context: context(accountManager, "req-credit"))
        failing.withLock { $0 = true }
        #expect(throws: LarderError.self) {
            try store.apply(Self.lateCredit, to: incident.id, responseID: "c2", context: context(accountManager))
        }
        let report = try store.recordIncident(IncidentReport(id: "dispatch-R4", category: .delivery, severity: .p2, summary: "late",
                                                             source: "dispatch-monitor"), context: context(system, "req-report-2"))
        #expect(report.kind == .replayed)
        #expect(try store.transition(incident.id, to: .acknowledged, context: context(accountManager, "req-ack")).kind == .replayed)
        let replay = try store.apply(Self.lateCredit, to: incident.id, responseID: "c1", context: context(accountManager, "req-credit-2"))
        #expect(replay.kind == .replayed)
        #expect(replay.result == credit.result)
        #expect(ack.kind == .committed)
    }

    // MARK: All or nothing inside a write

    /// Before: an override whose reversal broke a balance rule had already written
    /// OP_RESPONSE_APPLIED and the new credit; a closure that caught the error committed them,
    /// with the incident unchanged.
    @Test func aSwallowedRefusalInsideApplyLeavesNothingBehind() throws {
        let fixture = try IncidentFixture()
        let store = fixture.store
        try store.createAccount(NewAccount(id: "cust-18.credits", ledger: "credits.cents", flags: .debitsMustNotExceedCredits),
                                context: context(admin))
        let incident = try fixture.record()
        let amCredit = try store.apply(Self.lateCredit, to: incident.id, context: context(accountManager, decisionID: "am-credit")).result
        // The customer spends the credit: reversing it now would break the account's balance rule.
        try store.post(.transfer(id: "spend-1", debit: "cust-17.credits", credit: "cust-17.spent", amount: 400), context: context(admin))
        let override = IncidentResponse.credit(amountCents: 100, customerAccount: "cust-18.credits", basis: .discretionary)
        let refused = try #require(throws: LarderError.self) {
            try store.apply(override, to: incident.id, reasonCode: "vip", overriding: amCredit.id, context: context(admin, decisionID: "override-1"))
        }
        #expect(refused.code == .computeError)
        let before = try store.auditCount()
        let request = NoteRequest(order: "4411", amount: 1)
        let outcome = try store.write(context(admin, "req-swallow", decisionID: "override-swallowed"), request: request) { txn in
            _ = try? txn.incidents.apply(override, to: incident.id, reasonCode: "vip", overriding: amCredit.id)
            return try txn.note(request)
        }
        #expect(outcome.kind == .committed)
        #expect(try store.auditCount() == before + 1, "only the note was written")
        #expect(try balance(store, "cust-18.credits") == 0)
        #expect(try events(store, about: incident.id).filter { $0 == .opResponseApplied }.count == 1)
        #expect(try fixture.incident(incident.id).responses.count == 1)
        #expect(try store.verify().isIntact)
    }

    /// Before: a storage failure half-way through a credit (here the audit append of
    /// OP_CREDIT_GRANTED) that the closure caught left OP_RESPONSE_APPLIED and the transfer to be
    /// committed with the closure's own record. Now the whole write fails.
    @Test func aSwallowedFailureHalfWayFailsTheWholeWrite() throws {
        let failAtSeq = Mutex<UInt64?>(nil)
        var options = Store.Options()
        options.auditFaultInjection = AuditFaultInjection { seq throws(LarderError) in
            // Once: the closure's own record after the failure is let through.
            let fail = failAtSeq.withLock { target in
                guard target == seq else { return false }
                target = nil
                return true
            }
            if fail { throw LarderError(.persistenceError, "EIO (injected)") }
        }
        let fixture = try IncidentFixture(options: options)
        let store = fixture.store
        let incident = try fixture.record()
        let head = try store.read { try $0.audit.head().seq }
        // OP_RESPONSE_APPLIED, LEDGER_ACCOUNT_CREATED (issuing), LEDGER_TRANSFER_POSTED, OP_CREDIT_GRANTED.
        failAtSeq.withLock { $0 = head + 4 }
        let request = NoteRequest(order: "4411", amount: 1)
        let error = try #require(throws: LarderError.self) {
            try store.write(context(accountManager, "req-swallow", decisionID: "credit-swallowed"), request: request) { txn in
                _ = try? txn.incidents.apply(Self.lateCredit, to: incident.id)
                return try txn.note(request)
            }
        }
        #expect(error.code == .auditFailed)
        #expect(try store.read { try $0.audit.head().seq } == head)
        #expect(try store.read { try $0.ledger.account(id: "larder.credits.issued") } == nil)
        #expect(try balance(store, "cust-17.credits") == 0)
        #expect(try store.read { try $0.decisions.decision(id: "credit-swallowed") } == nil)
        #expect(try store.verify().isIntact)
    }

    /// An incident recorded before reports were limited to 61 refs cannot be reached by a test;
    /// a report at the limit takes every response, and one ref more is refused at record time.
    @Test func reportRefsLeaveRoomForTheResponseRecords() throws {
        let fixture = try IncidentFixture()
        let refs = (0..<IncidentReport.refsCountMax).map { CorrelationRef.order("o\($0)") }
        let error = try #require(throws: LarderError.self) {
            _ = try fixture.record(refs: refs + [.order("one-more")])
        }
        #expect(error.code == .validationFailed)
        let incident = try fixture.record(refs: refs)
        let credit = try fixture.store.apply(Self.lateCredit, to: incident.id, responseID: "c", context: context(accountManager))
        let granted = try #require(try fixture.store.read { try $0.audit.record(seq: credit.auditSeq!) })
        #expect(granted.record.event == .opCreditGranted)
        #expect(granted.record.refs.count == AuditDraft.refsCountMax)
    }

    // MARK: Reports

    /// Before: the same report under its caller-chosen id was CONFLICT the second time, with no
    /// way to tell it had been recorded.
    @Test func aRetriedReportWithItsIDReplays() throws {
        let fixture = try IncidentFixture()
        let store = fixture.store
        let report = IncidentReport(id: "dispatch-R4-0923", category: .delivery, severity: .p2, summary: "Van R4 late",
                                    source: "dispatch-monitor", refs: [.route("R4")])
        let first = try store.recordIncident(report, context: context(system, "req-1"))
        let retry = try store.recordIncident(report, context: context(system, "req-1-retry"))
        #expect(first.kind == .committed)
        #expect(retry.kind == .replayed)
        #expect(retry.result == first.result)
        #expect(retry.auditSeq == first.auditSeq)
        #expect(try store.read { try $0.incidents.incidents(limit: 10).incidents.count } == 1)
        var other = report
        other.severity = .p1
        let error = try #require(throws: LarderError.self) { try store.recordIncident(other, context: context(system)) }
        #expect(error.code == .conflict)
        #expect(error.message.contains("severity (P2 before, P1 now)"), "\(error.message)")
        #expect(try #require(throws: LarderError.self) { try store.recordIncident(report, context: context(admin)) }.message.contains("reporter"))
    }

    /// With a decisionID a retried report replays the first result; without an id or a
    /// decisionID every call is a new incident (documented, not a bug).
    @Test func aRetriedReportWithADecisionIDReplaysAndWithoutAKeyDuplicates() throws {
        let fixture = try IncidentFixture()
        let first = try fixture.store.recordIncident(IncidentReport(category: .supply, severity: .p3, summary: "short", source: "vendor"),
                                                     context: context(system, "req-1", decisionID: "vendor:short:1"))
        let retry = try fixture.store.recordIncident(IncidentReport(category: .supply, severity: .p3, summary: "short", source: "vendor"),
                                                     context: context(system, "req-2", decisionID: "vendor:short:1"))
        #expect(retry.kind == .replayed)
        #expect(retry.storedResult == first.storedResult)
        _ = try fixture.record()
        _ = try fixture.record()
        #expect(try fixture.store.read { try $0.incidents.incidents(limit: 10).incidents.count } == 3)
    }

    // MARK: Transitions

    /// Before: a transition retried after a lost answer was CONFLICT, indistinguishable from
    /// another request having moved the incident.
    @Test func aRetriedTransitionReplays() throws {
        let fixture = try IncidentFixture()
        let store = fixture.store
        let incident = try fixture.record(.orderingSystem, .p1)
        let first = try store.transition(incident.id, to: .acknowledged, expectedVersion: 1, reasonCode: "on-call",
                                         context: context(accountManager, "req-ack"))
        let count = try store.auditCount()
        let retry = try store.transition(incident.id, to: .acknowledged, expectedVersion: 1, reasonCode: "on-call",
                                         context: context(accountManager, "req-ack"))
        #expect(first.kind == .committed)
        #expect(retry.kind == .replayed)
        #expect(retry.auditSeq == first.auditSeq)
        #expect(retry.result == first.result)
        #expect(try store.auditCount() == count)
        #expect(try fixture.incident(incident.id).version == 2)

        // Another request: CONFLICT naming the one that made it.
        let other = try #require(throws: LarderError.self) {
            try store.transition(incident.id, to: .acknowledged, context: context(accountManager, "req-other"))
        }
        #expect(other.code == .conflict)
        #expect(other.message.contains("req-ack"), "\(other.message)")
        // The same request with something else: CONFLICT naming it.
        let reason = try #require(throws: LarderError.self) {
            try store.transition(incident.id, to: .acknowledged, reasonCode: "paged", context: context(accountManager, "req-ack"))
        }
        #expect(reason.code == .conflict)
        #expect(reason.message.contains("reasonCode (on-call before, paged now)"), "\(reason.message)")

        // A retry after the incident changed again still replays, with the incident as it is now.
        try store.apply(.delay(revisedTimeMicros: fixture.clock.now().unixMicros + 60_000_000, subject: .order("4411")), to: incident.id,
                        context: context(accountManager))
        let later = try store.transition(incident.id, to: .acknowledged, expectedVersion: 1, reasonCode: "on-call",
                                         context: context(accountManager, "req-ack"))
        #expect(later.kind == .replayed)
        #expect(later.result.version == 3)
        // A decisionID recognises the request too, under a new requestID.
        try store.transition(incident.id, to: .contained, context: context(admin, "req-contain", decisionID: "contain-1"))
        #expect(try store.transition(incident.id, to: .contained, context: context(admin, "req-contain-2", decisionID: "contain-1")).kind == .replayed)
        try store.transition(incident.id, to: .resolved, context: context(admin, "req-resolve"))
        try store.transition(incident.id, to: .closed, postmortemRef: "pm-1", context: context(admin, "req-close"))
        let closeAgain = try store.transition(incident.id, to: .closed, postmortemRef: "pm-1", context: context(admin, "req-close"))
        #expect(closeAgain.kind == .replayed)
        #expect(try #require(throws: LarderError.self) {
            try store.transition(incident.id, to: .closed, postmortemRef: "pm-2", context: context(admin, "req-close"))
        }.message.contains("postmortemRef"))
        #expect(try store.verify().isIntact)
    }

    // MARK: Refund outcomes

    /// Before: Billing's retried callback was CONFLICT.
    @Test func aRetriedRefundOutcomeReplays() throws {
        let fixture = try IncidentFixture()
        let store = fixture.store
        let incident = try fixture.record()
        let refund = try store.apply(.refund(billingTransaction: "bill-77", amountCents: 1_299), to: incident.id, reasonCode: "inedible",
                                     context: context(admin, decisionID: "refund-77")).result
        let refundID = try #require(refund.refundID)
        let first = try store.write(context(system, "callback-1")) { txn in
            try txn.incidents.recordRefundOutcome(refundID, status: .succeeded, detail: "psp-1")
        }
        let count = try store.auditCount()
        let again = try store.write(context(system, "callback-2")) { txn in
            try txn.incidents.recordRefundOutcome(refundID, status: .succeeded, detail: "psp-1")
        }
        #expect(again.result == first.result)
        #expect(try store.auditCount() == count)
        let viaStore = try store.recordRefundOutcome(refundID, status: .succeeded, detail: "psp-1", context: context(system, "callback-3"))
        #expect(viaStore.kind == .replayed)
        #expect(viaStore.auditSeq == first.auditSeq)
        let failed = try #require(throws: LarderError.self) {
            try store.recordRefundOutcome(refundID, status: .failed, context: context(system))
        }
        #expect(failed.code == .conflict)
        #expect(try store.auditCount() == count)
    }
}
