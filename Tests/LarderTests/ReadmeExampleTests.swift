import Foundation
import Larder
import LarderTesting
import Testing

/// The README's Swift examples, run as written (store path aside), so the docs match the code.
@Suite("README examples")
struct ReadmeExampleTests {
    struct NoteRequest: FingerprintedRequest {
        static let operationName = "kitchen.note"
        let order: String
    }

    @Test func theExamplesRun() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store

        // "Use it from Swift"
        let context = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager),
                                   requestID: "req-8812", decisionID: "note-order-4411")
        let outcome = try store.write(context, request: NoteRequest(order: "4411")) { txn in
            try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", refs: [.order("4411")]))
            return "noted"
        }
        #expect(outcome.kind == .committed)
        #expect(try store.write(context, request: NoteRequest(order: "4411")) { _ in "again" }.kind == .replayed)
        let trail = try store.read { view in try view.audit.records(requestID: "req-8812", limit: 100) }
        #expect(trail.records.count == 1)
        #expect(try store.verify().isIntact)

        // "Ledgers"
        let am = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: "req-1")
        try store.write(am) { txn in
            try txn.ledger.createAccount(NewAccount(id: "kitchen.packs", ledger: "packs"))
            try txn.ledger.createAccount(NewAccount(id: "cust-17.packs", ledger: "packs", flags: .debitsMustNotExceedCredits))
            try txn.ledger.createAccount(NewAccount(id: "kitchen.consumed", ledger: "packs"))
            try txn.ledger.createAccount(NewAccount(id: "goodwill", ledger: "credits.cents"))
            try txn.ledger.createAccount(NewAccount(id: "cust-17.credits", ledger: "credits.cents", flags: .debitsMustNotExceedCredits))
        }
        try store.post(.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 10), context: am)
        try store.post(.transfer(id: "eat-1", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 1,
                                 refs: [.order("4411")]), context: am)
        try store.post(.transfer(id: "credit-1", debit: "goodwill", credit: "cust-17.credits", amount: 500), context: am)
        try store.post(.reversal(id: "credit-1.rev", of: "credit-1"), context: am)
        let packs = try store.read { view in try view.ledger.balance(of: "cust-17.packs") }
        #expect(packs.net == 9)

        // "Incidents and the failure policy"
        let detector = WriteContext(actor: ActorIdentity(id: "dispatch-monitor", role: .system),
                                    requestID: "req-9", decisionID: "dispatch:R4:late")
        let incident = try store.recordIncident(IncidentReport(category: .delivery, severity: .p1,
                                                               summary: "Van R4 40 minutes late", source: "dispatch-monitor",
                                                               refs: [.route("R4"), .order("4411")]), context: detector).result
        let amIncidents = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: "req-10")
        try store.transition(incident.id, to: .acknowledged, expectedVersion: incident.version, context: amIncidents)
        let credit = try store.apply(.credit(amountCents: 500, customerAccount: "cust-17.credits", basis: .preApproved(code: "late-delivery")),
                                     to: incident.id, responseID: "credit-order-4411", context: amIncidents)
        #expect(credit.kind == .committed)
        let retry = try store.apply(.credit(amountCents: 500, customerAccount: "cust-17.credits", basis: .preApproved(code: "late-delivery")),
                                    to: incident.id, responseID: "credit-order-4411", context: amIncidents)
        #expect(retry.kind == .replayed)
        #expect(retry.result == credit.result)
        #expect(try store.overdueIncidents().isEmpty)
        #expect(try store.read { view in try view.ledger.balance(of: "cust-17.credits") }.net == 500)
        #expect(try store.verify().isIntact)

        // "Compensation that needs approval, stock counts, the cost of incidents"
        let proposal = try store.proposeCompensation(
            .credit(CompensationCredit(customerAccount: "cust-17.credits",
                                       value: .percentage(percent: 50, ofCents: 2_400, capCents: 1_000), basis: .discretionary)),
            for: incident.id, reasonCode: "meal-arrived-cold", proposalID: "cold-meal-4411", context: amIncidents).result
        #expect(proposal.state == .pending)
        #expect(try store.read { view in try view.ledger.balance(of: "cust-17.credits") }.creditsPending == 1_000)
        let admin = WriteContext(actor: ActorIdentity(id: "admin-1", role: .admin), requestID: "req-11", decisionID: "approve-cold-meal-4411")
        try store.approveCompensation(proposal.id, reasonCode: "meal-arrived-cold", context: admin)
        #expect(try store.approveCompensation(proposal.id, reasonCode: "meal-arrived-cold", context: admin).kind == .replayed)
        #expect(try store.overdueProposals().isEmpty)
        let bin = StockLocation(hub: "central", bin: "A3")
        try store.receiveStock(40, of: "tomato", at: bin, transferID: "grn-2211", refs: [.vendor("green-farm")], context: amIncidents)
        let count = try store.recordCount(item: "tomato", location: bin, counted: 37, countID: "cc-A3-1123", context: amIncidents).result
        #expect(count.expected == 40 && count.adjustment == -3)
        let costs = try store.read { view in try view.reports.incidentCosts(groupBy: .category) }
        #expect(costs.total.creditsCents == 1_500 && costs.rows.count == 1)
        #expect(try store.verify().isIntact)
    }
}
