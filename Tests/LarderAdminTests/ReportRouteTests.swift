import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

/// `GET /v1/reports/incident-costs`: the report the store computes, strict input, scope ops:read,
/// recorded as FORENSIC_ACCESS.
@Suite("Report routes")
struct ReportRouteTests {
    typealias Object = [String: Any]
    static let figures = ["incidents", "credits_cents", "refunds_cents", "refunds_requested_cents", "pending_compensation_cents",
                          "cancelled_cycles", "cancelled_packs", "cost_cents"]

    /// Two delivery incidents (a 300 rule credit; a 1299 refund that succeeded) and a supply one
    /// with a 400 proposal waiting, the next day.
    func seeded() throws -> IncidentAdminFixture {
        let fixture = try IncidentAdminFixture()
        let first = try fixture.record(.delivery, .p1)
        _ = try fixture.store.apply(.credit(amountCents: 300, customerAccount: "cust-17.credits", basis: .rule(id: "delivery-late-30min")),
                                    to: first.id, responseID: "rule", context: WriteContext(actor: IncidentAdminFixture.detector, requestID: "c"))
        let second = try fixture.record(.delivery, .p2)
        let refund = try fixture.store.apply(.refund(billingTransaction: "bill-1", amountCents: 1_299), to: second.id, reasonCode: "cold",
                                             responseID: "refund", context: WriteContext(actor: IncidentAdminFixture.supervisor, requestID: "r")).result
        _ = try fixture.store.recordRefundOutcome(refund.refundID!, status: .succeeded,
                                                  context: WriteContext(actor: IncidentAdminFixture.detector, requestID: "o"))
        // Past midnight UTC (the clock starts at 11:06:40), within the tokens' day.
        fixture.clock.advance(seconds: 13 * 3_600)
        let third = try fixture.record(.supply, .p1)
        _ = try fixture.store.proposeCompensation(
            .credit(CompensationCredit(customerAccount: "cust-17.credits", value: .amount(cents: 400), basis: .discretionary)),
            for: third.id, reasonCode: "short", proposalID: "goodwill", context: WriteContext(actor: IncidentAdminFixture.manager, requestID: "p"))
        return fixture
    }

    @Test func theReportAddsUp() async throws {
        let fixture = try seeded()
        let response = try await fixture.request("/v1/reports/incident-costs?group_by=category")
        #expect(response.status == .ok, "\(response.text)")
        let body = try response.json()
        #expect(body["group_by"] as? String == "category")
        let rows = try #require(body["by_category"] as? [Object])
        #expect(rows.map { $0["category"] as? String } == ["supply", "delivery"])
        let total = try #require(body["total"] as? Object)
        for field in Self.figures {
            let sum = rows.compactMap { $0[field] as? Int }.reduce(0, +)
            #expect(total[field] as? Int == sum, "\(field)")
        }
        #expect(total["incidents"] as? Int == 3 && total["credits_cents"] as? Int == 300 && total["refunds_cents"] as? Int == 1_299)
        #expect(total["pending_compensation_cents"] as? Int == 400 && total["cost_cents"] as? Int == 1_599)
        // The read is recorded, with the filters as given and the number of rows.
        let access = try #require(try fixture.admin.lastRecord())
        #expect(access.event == .forensicAccess)
        #expect(access.payload.contains(#""route":"/v1/reports/incident-costs","filters":{"group_by":"category"},"result_count":2"#),
                "\(access.payload)")
    }

    @Test func theRowsFollowGroupByAndTheRange() async throws {
        let fixture = try seeded()
        let byRoute = try await fixture.request("/v1/reports/incident-costs?group_by=ref:order")
        let rows = try #require(try byRoute.json()["by_ref"] as? [Object])
        #expect(rows.count == 1 && rows.first?["ref_kind"] as? String == "order" && rows.first?["ref_ids"] as? [String] == ["4411"])
        let bySeverity = try await fixture.request("/v1/reports/incident-costs?group_by=severity")
        #expect((try bySeverity.json()["by_severity"] as? [Object])?.map { $0["severity"] as? String } == ["P1", "P2"])
        let byDay = try await fixture.request("/v1/reports/incident-costs?group_by=day")
        #expect((try byDay.json()["by_day"] as? [Object])?.count == 2)
        // Default grouping is by category; the range selects by creation time (until exclusive).
        let since = RFC3339.format(fixture.clock.now().unixMicros)
        let recent = try await fixture.request("/v1/reports/incident-costs?since=\(since)")
        let recentBody = try recent.json()
        #expect(recentBody["since"] as? String == since)
        #expect((recentBody["total"] as? Object)?["incidents"] as? Int == 1)
        let empty = try await fixture.request("/v1/reports/incident-costs?since=\(since)&until=\(since)")
        #expect(empty.status == .ok)
        #expect((try empty.json()["by_category"] as? [Object])?.isEmpty == true)
    }

    /// Strict like every route: unknown or repeated parameters, dates that do not exist,
    /// groupings it does not know.
    @Test(arguments: [
        "/v1/reports/incident-costs?group=category",
        "/v1/reports/incident-costs?group_by=category&group_by=day",
        "/v1/reports/incident-costs?since=2026-02-30T00:00:00Z",
        "/v1/reports/incident-costs?until=2026-01-01T00:00:00",
        "/v1/reports/incident-costs?since=yesterday",
        "/v1/reports/incident-costs?group_by=Category",
        "/v1/reports/incident-costs?group_by=route",
        "/v1/reports/incident-costs?group_by=ref:",
        "/v1/reports/incident-costs?group_by=ref:Route",
        "/v1/reports/incident-costs?group_by=",
        "/v1/reports/incident-costs?limit=5",
    ])
    func lenientInputIs400(uri: String) async throws {
        let fixture = try IncidentAdminFixture()
        let before = try fixture.admin.auditCount()
        let response = try await fixture.request(uri)
        #expect(response.status == .badRequest, "\(uri): \(response.text)")
        #expect(try response.errorCode() == "VALIDATION_FAILED")
        #expect(try fixture.admin.auditCount() == before, "a refused query records nothing")
    }

    @Test func theScopeIsOpsRead() async throws {
        let fixture = try IncidentAdminFixture()
        #expect(try await fixture.request("/v1/reports/incident-costs", secret: fixture.admin.auditSecret).status == .forbidden)
        #expect(try await fixture.admin.request("/v1/reports/incident-costs").status == .unauthorized)
        #expect(try await fixture.request("/v1/reports/incident-costs").status == .ok)
    }
}
