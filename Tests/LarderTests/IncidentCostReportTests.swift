import Foundation
import Larder
import LarderTesting
import Testing

/// The cost of incidents, computed from the ledger, the incidents and the proposals: every
/// grouping partitions the incidents, so the total is the sum of the rows.
@Suite("Incident cost report")
struct IncidentCostReportTests {
    let fixture: IncidentFixture
    var store: Store { fixture.store }
    /// inc A: delivery P1 on R4, day 1 — a 300 rule credit, an AM credit of 400 overridden by an
    /// admin's 800, a 1299 refund that succeeded and a 500 one that failed, a 2500 proposal waiting.
    /// inc B: kitchenProduction P0 on R4 and R7, day 1 — a cancelled cycle with two reservations
    /// voided and one consumption reversed (3 packs given back), one consumption kept.
    /// inc C: supply P2, no route, day 2 — a 300 credit applied at once by a proposal.
    var ids: [String] = []
    let day1: UnixMicros
    let day2: UnixMicros

    init() throws {
        fixture = try IncidentFixture()
        let store = fixture.store
        day1 = fixture.clock.now().unixMicros
        let a = try fixture.record(.delivery, .p1, refs: [.route("R4")])
        _ = try store.apply(.credit(amountCents: 300, customerAccount: "cust-17.credits", basis: .rule(id: "delivery-late-30min")),
                            to: a.id, responseID: "rule", context: context(system))
        let am = try store.apply(.credit(amountCents: 400, customerAccount: "cust-17.credits", basis: .preApproved(code: "late-delivery")),
                                 to: a.id, responseID: "am", context: context(accountManager)).result
        _ = try store.apply(.credit(amountCents: 800, customerAccount: "cust-17.credits", basis: .discretionary), to: a.id,
                            reasonCode: "vip", overriding: am.id, responseID: "override", context: context(admin))
        let billing = ActorIdentity(id: "billing", role: .system)
        let paid = try store.apply(.refund(billingTransaction: "bill-1", amountCents: 1_299), to: a.id, reasonCode: "cold",
                                   responseID: "refund-1", context: context(admin)).result
        _ = try store.recordRefundOutcome(paid.refundID!, status: .succeeded, context: context(billing))
        let failed = try store.apply(.refund(billingTransaction: "bill-2", amountCents: 500), to: a.id, reasonCode: "cold",
                                     responseID: "refund-2", context: context(admin)).result
        _ = try store.recordRefundOutcome(failed.refundID!, status: .failed, context: context(billing))
        _ = try store.proposeCompensation(.credit(CompensationCredit(customerAccount: "cust-17.credits", value: .amount(cents: 2_500),
                                                                     basis: .discretionary)),
                                          for: a.id, reasonCode: "vip", proposalID: "waiting", context: context(accountManager))

        let b = try fixture.record(.kitchenProduction, .p0, refs: [.route("R7"), .route("R4")])
        try store.write(context(admin)) { txn in
            try txn.ledger.post(.transfer(id: "buy", debit: "kitchen.packs", credit: "cust-17.packs", amount: 10))
            for n in 0..<2 {
                try txn.ledger.post(.pending(id: "hold-\(n)", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 1,
                                             refs: [.cycle("dinner")]))
            }
            try txn.ledger.post(.transfer(id: "eat-0", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 1, refs: [.cycle("dinner")]))
            try txn.ledger.post(.transfer(id: "eat-1", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 1, refs: [.cycle("dinner")]))
            try txn.ledger.post(.transfer(id: "eat-lunch", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 1, refs: [.cycle("lunch")]))
        }
        _ = try store.apply(.cancellation(cycle: "dinner"), to: b.id, reasonCode: "oven", responseID: "cancel", context: context(admin))
        try store.write(context(admin)) { txn in
            for n in 0..<2 { try txn.ledger.post(.void(id: "hold-\(n).void", pending: "hold-\(n)")) }
            try txn.ledger.post(.reversal(id: "eat-0.rev", of: "eat-0"))
            try txn.ledger.post(.reversal(id: "eat-lunch.rev", of: "eat-lunch"))
        }

        fixture.clock.advance(seconds: 86_400)
        day2 = fixture.clock.now().unixMicros
        let c = try fixture.record(.supply, .p2, refs: [])
        _ = try store.proposeCompensation(.credit(CompensationCredit(customerAccount: "cust-17.credits", value: .amount(cents: 300),
                                                                     basis: .preApproved(code: "missing-item"))),
                                          for: c.id, reasonCode: "short", proposalID: "at-once", context: context(accountManager))
        ids = [a.id, b.id, c.id]
    }

    func report(_ groupBy: IncidentCostGrouping, since: UnixMicros? = nil, until: UnixMicros? = nil) throws -> IncidentCostReport {
        try store.read { view in try view.reports.incidentCosts(since: since, until: until, groupBy: groupBy) }
    }

    func figures(incidents: Int, credits: UInt64 = 0, refunds: UInt64 = 0, requested: UInt64 = 0, pending: UInt64 = 0,
                 cycles: Int = 0, packs: UInt64 = 0) -> IncidentCostFigures {
        var f = IncidentCostFigures()
        f.incidents = incidents
        f.creditsCents = credits
        f.refundsCents = refunds
        f.refundsRequestedCents = requested
        f.pendingCompensationCents = pending
        f.cancelledCycles = cycles
        f.cancelledPacks = packs
        return f
    }

    var a: IncidentCostFigures { figures(incidents: 1, credits: 1_100, refunds: 1_299, requested: 1_799, pending: 2_500) }
    var b: IncidentCostFigures { figures(incidents: 1, cycles: 1, packs: 3) }
    var c: IncidentCostFigures { figures(incidents: 1, credits: 300) }

    @Test func byCategoryEachIncidentCostsWhatItsResponsesDid() throws {
        let report = try report(.category)
        #expect(report.rows.map(\.key) == ["supply", "kitchenProduction", "delivery"], "the policy's order")
        #expect(report.rows.map(\.figures) == [c, b, a])
        #expect(a.costCents == 2_399, "standing credits plus refunds that succeeded")
        #expect(report.total == figures(incidents: 3, credits: 1_400, refunds: 1_299, requested: 1_799, pending: 2_500, cycles: 1, packs: 3))
    }

    @Test(arguments: [IncidentCostGrouping.category, .severity, .day, .ref(kind: "route"), .ref(kind: "vendor")])
    func totalsAreTheSumsOfTheRows(groupBy: IncidentCostGrouping) throws {
        let report = try report(groupBy)
        var sum = IncidentCostFigures()
        for row in report.rows {
            sum.incidents += row.figures.incidents
            sum.creditsCents += row.figures.creditsCents
            sum.refundsCents += row.figures.refundsCents
            sum.refundsRequestedCents += row.figures.refundsRequestedCents
            sum.pendingCompensationCents += row.figures.pendingCompensationCents
            sum.cancelledCycles += row.figures.cancelledCycles
            sum.cancelledPacks += row.figures.cancelledPacks
        }
        #expect(sum == report.total)
        #expect(report.total.incidents == 3)
    }

    @Test func otherGroupings() throws {
        #expect(try report(.severity).rows.map(\.key) == ["P0", "P1", "P2"])
        let days = try report(.day)
        #expect(days.rows.map(\.key) == [String(RFC3339.format(day1).prefix(10)), String(RFC3339.format(day2).prefix(10))])
        #expect(days.rows.map(\.figures.incidents) == [2, 1])
        // An incident on two routes is one row under both; one on none is a row of its own, last.
        let routes = try report(.ref(kind: "route"))
        #expect(routes.rows.map(\.key) == ["R4", "R4+R7", ""])
        #expect(routes.rows.map(\.refIDs) == [["R4"], ["R4", "R7"], []])
        #expect(routes.rows.map(\.figures) == [a, b, c])
    }

    @Test func theRangeSelectsIncidentsByCreation() throws {
        #expect(try report(.category, since: day2).total == c)
        #expect(try report(.category, until: day2).total.incidents == 2)
        #expect(try report(.category, since: day2, until: day2).rows.isEmpty, "an empty interval holds nothing")
        #expect(try report(.category, since: day2 + 1, until: day1).total == IncidentCostFigures())
    }

    @Test func theJSONFollowsTheGrouping() throws {
        var json = JSONWriter()
        json.object { o in (try? report(.category))?.writeJSON(to: &o) }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.text.utf8)) as? [String: Any])
        #expect(object["group_by"] as? String == "category")
        let rows = try #require(object["by_category"] as? [[String: Any]])
        #expect(rows.last?["category"] as? String == "delivery")
        #expect(rows.last?["credits_cents"] as? Int == 1_100 && rows.last?["refunds_cents"] as? Int == 1_299)
        #expect((object["total"] as? [String: Any])?["cost_cents"] as? Int == 2_699)
        var byRef = JSONWriter()
        byRef.object { o in (try? report(.ref(kind: "route")))?.writeJSON(to: &o) }
        #expect(byRef.text.contains(#""by_ref":[{"ref_kind":"route","ref_ids":["R4"],"incidents":1"#), "\(byRef.text)")
    }

    @Test func groupingsParse() {
        #expect(IncidentCostGrouping("category") == .category)
        #expect(IncidentCostGrouping("ref:route") == .ref(kind: "route"))
        for bad in ["", "Category", "ref:", "ref:Route", "ref:a-b", "route", "ref:\(String(repeating: "a", count: 33))"] {
            #expect(IncidentCostGrouping(bad) == nil, "\(bad)")
        }
    }

    @Test func aRangeTooWideIsRefused() throws {
        let temporary = try TemporaryStore(options: .init(durability: .fastUnsafe))
        try temporary.store.write(context(system)) { txn in
            for n in 0...ReportReader.incidentsPerReportMax {
                try txn.incidents.record(IncidentReport(category: .delivery, severity: .p3, summary: "late \(n)", source: "dispatch"))
            }
        }
        let error = try #require(throws: LarderError.self) {
            try temporary.store.read { view in try view.reports.incidentCosts() }
        }
        #expect(error.code == .validationFailed && error.message.contains("narrow"))
    }
}
