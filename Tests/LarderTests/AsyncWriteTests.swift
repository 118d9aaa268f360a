import Dispatch
import Foundation
import Larder
import LarderStorage
import LarderTesting
import Testing

/// The async forms of the domain API: the same results as the blocking forms, a task cancelled
/// before its write is queued writes nothing, and a write already queued answers its committed
/// result even when its task is cancelled meanwhile.
@Suite("Async writes")
struct AsyncWriteTests {
    static let am = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: "req-1")
    static let admin = WriteContext(actor: ActorIdentity(id: "admin-1", role: .admin), requestID: "req-admin")

    static func context(_ requestID: String, decisionID: String? = nil, actor: ActorIdentity = ActorIdentity(id: "am-17", role: .accountManager)) -> WriteContext {
        WriteContext(actor: actor, requestID: requestID, decisionID: decisionID)
    }

    @Test func everyAsyncFormWritesLikeItsBlockingForm() async throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        for account in [NewAccount(id: "kitchen.packs", ledger: "packs"),
                        NewAccount(id: "cust-17.packs", ledger: "packs", flags: .debitsMustNotExceedCredits),
                        NewAccount(id: "goodwill", ledger: "credits.cents"),
                        NewAccount(id: "cust-17.credits", ledger: "credits.cents", flags: .debitsMustNotExceedCredits)] {
            #expect(try await store.createAccount(account, context: Self.am).kind == .committed)
        }
        let bought = try await store.post(.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 10),
                                          context: Self.context("buy-1", decisionID: "buy-1"))
        #expect(bought.kind == .committed)
        let again = try await store.post(.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 10),
                                         context: Self.context("buy-1b", decisionID: "buy-1"))
        #expect(again.kind == .replayed)
        let linked = try await store.postLinked([.transfer(id: "eat-1", debit: "cust-17.packs", credit: "kitchen.packs", amount: 1),
                                                 .transfer(id: "eat-2", debit: "cust-17.packs", credit: "kitchen.packs", amount: 1)],
                                                context: Self.context("eat"))
        #expect(linked.result.committed)
        #expect(try store.read { try $0.ledger.balance(of: "cust-17.packs").net } == 8)

        let detector = Self.context("report", actor: ActorIdentity(id: "dispatch", role: .system))
        let incident = try await store.recordIncident(IncidentReport(category: .delivery, severity: .p2, summary: "Van late",
                                                                     source: "dispatch"), context: detector).result
        try await store.transition(incident.id, to: .acknowledged, expectedVersion: incident.version, context: Self.context("ack"))
        let credit = try await store.apply(.credit(amountCents: 300, customerAccount: "cust-17.credits", basis: .preApproved(code: "late-delivery")),
                                           to: incident.id, responseID: "credit-1", context: Self.context("credit"))
        #expect(credit.kind == .committed)
        let retried = try await store.apply(.credit(amountCents: 300, customerAccount: "cust-17.credits", basis: .preApproved(code: "late-delivery")),
                                            to: incident.id, responseID: "credit-1", context: Self.context("credit-retry"))
        #expect(retried.kind == .replayed)
        #expect(try store.read { try $0.ledger.balance(of: "cust-17.credits").net } == 300)
        let refund = try await store.apply(.refund(billingTransaction: "bill-1", amountCents: 999), to: incident.id,
                                           reasonCode: "inedible", responseID: "refund-1",
                                           context: Self.context("refund", actor: ActorIdentity(id: "admin-1", role: .admin))).result
        let billing = Self.context("billing", actor: ActorIdentity(id: "billing", role: .system))
        let outcome = try await store.recordRefundOutcome(try #require(refund.refundID), status: .succeeded, context: billing)
        #expect(outcome.result.status == .succeeded)

        temporary.clock.advance(seconds: 400 * 86_400)
        let purged = try await store.purgeDecisions(olderThanDays: 365, context: Self.admin)
        #expect(purged.result == 1)
        #expect(try store.verify().isIntact)
    }

    /// A task cancelled before it calls: each async write throws CancellationError and the
    /// store is exactly as it was (no audit record, no transfer, no incident, no decision).
    @Test func aTaskCancelledBeforeQueueingWritesNothing() async throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        try await store.createAccount(NewAccount(id: "a", ledger: "packs"), context: Self.am)
        try await store.createAccount(NewAccount(id: "b", ledger: "packs"), context: Self.am)
        let incident = try await store.recordIncident(IncidentReport(category: .supply, severity: .p3, summary: "Short delivery",
                                                               source: "vendor"), context: Self.context("r")).result
        let before = try store.auditCount()
        let decisionsBefore = try store.read { try $0.decisions.count() }

        let calls: [@Sendable () async throws -> Void] = [
            { _ = try await store.write(Self.context("w")) { txn in try txn.appendAudit(AuditDraft(event: "NOTE")) } },
            { _ = try await store.createAccount(NewAccount(id: "c", ledger: "packs"), context: Self.am) },
            { _ = try await store.post(.transfer(id: "t-1", debit: "a", credit: "b", amount: 1), context: Self.context("t", decisionID: "t-1")) },
            { _ = try await store.postLinked([.transfer(id: "t-2", debit: "a", credit: "b", amount: 1)], context: Self.context("l")) },
            { _ = try await store.recordIncident(IncidentReport(category: .delivery, severity: .p1, summary: "Late", source: "d"),
                                                 context: Self.context("i")) },
            { _ = try await store.transition(incident.id, to: .acknowledged, context: Self.context("ack")) },
            { _ = try await store.apply(.delay(revisedTimeMicros: 1, subject: .route("R1")), to: incident.id, context: Self.context("d")) },
            { _ = try await store.purgeDecisions(olderThanDays: 1, context: Self.admin) },
        ]
        for (index, call) in calls.enumerated() {
            let task = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                try await call()
            }
            await #expect(throws: CancellationError.self, "call \(index)") { try await task.value }
        }
        #expect(try store.auditCount() == before)
        #expect(try store.read { try $0.decisions.count() } == decisionsBefore)
        #expect(try store.read { try $0.ledger.account(id: "c") } == nil)
        #expect(try store.read { try $0.ledger.transfer(id: "t-1") } == nil)
        #expect(try store.read { try $0.incidents.incident(id: incident.id)?.state } == .open)
        #expect(store.metrics.errorsByCode.isEmpty, "a cancellation is not a failed write")
    }

    /// A post queued behind a write that holds the writer, then cancelled: it still commits,
    /// and its caller gets the committed outcome.
    @Test func aCancellationAfterQueueingStillAnswersTheCommittedResult() async throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        try await store.createAccount(NewAccount(id: "a", ledger: "packs"), context: Self.am)
        try await store.createAccount(NewAccount(id: "b", ledger: "packs"), context: Self.am)
        let holding = WriterHold()
        let blocker = Task.detached {
            try await store.write(Self.context("hold")) { txn in
                holding.insideAndWait()
                try txn.appendAudit(AuditDraft(event: "HELD"))
            }
        }
        await holding.waitUntilInside()
        let post = Task {
            try await store.post(.transfer(id: "t-1", debit: "a", credit: "b", amount: 3), context: Self.context("t", decisionID: "t-1"))
        }
        // Queued behind the held write (nothing else is queued in this test).
        while store.environmentForTesting.queuedWriteCount == 0 { try await Task.sleep(for: .milliseconds(1)) }
        post.cancel()
        holding.release()
        let outcome = try await post.value
        #expect(outcome.kind == .committed)
        #expect(outcome.result == .created(try #require(try store.read { try $0.ledger.transfer(id: "t-1") })))
        _ = try await blocker.value
        #expect(try store.read { try $0.ledger.balance(of: "b").net } == 3)
    }
}

/// Holds the store's writer inside a write until released.
final class WriterHold: Sendable {
    private let inside = DispatchSemaphore(value: 0)
    private let leave = DispatchSemaphore(value: 0)

    /// Called from the write's closure, on the writer thread.
    func insideAndWait() {
        inside.signal()
        leave.wait()
    }

    func waitUntilInside() async {
        let inside = self.inside
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread {
                inside.wait()
                done.resume()
            }.start()
        }
    }

    func release() { leave.signal() }
}
