import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

/// `/v1/incidents/{id}` shows the incident's compensation proposals, with `overdue` by the
/// store's clock, and their holds among its transfers.
@Suite("Proposals in the incident route")
struct ProposalRouteTests {
    typealias Object = [String: Any]

    @Test func anIncidentShowsItsProposalsAndWhichAreOverdue() async throws {
        let fixture = try IncidentAdminFixture()
        let incident = try fixture.record(.delivery, .p1)
        let manager = WriteContext(actor: IncidentAdminFixture.manager, requestID: "p")
        let waiting = try await fixture.store.proposeCompensation(
            .credit(CompensationCredit(customerAccount: "cust-17.credits", value: .percentage(percent: 50, ofCents: 2_400, capCents: 1_000),
                                       basis: .discretionary)),
            for: incident.id, reasonCode: "cold", proposalID: "cold", context: manager).result
        let rejected = try await fixture.store.proposeCompensation(
            .refund(CompensationRefund(billingTransaction: "bill-1", value: .amount(cents: 1_299))),
            for: incident.id, reasonCode: "cold", proposalID: "refund", context: manager).result
        _ = try await fixture.store.rejectCompensation(rejected.id, reasonCode: "no",
                                                 context: WriteContext(actor: IncidentAdminFixture.supervisor, requestID: "r"))
        fixture.clock.advance(seconds: 4 * 3_600 + 1)

        let response = try await fixture.request("/v1/incidents/\(incident.id)")
        #expect(response.status == .ok, "\(response.text)")
        let body = try response.json()
        let proposals = try #require(body["proposals"] as? [Object])
        #expect(proposals.map { $0["id"] as? String } == [waiting.id, rejected.id])
        #expect(proposals.map { $0["overdue"] as? Bool } == [true, false])
        #expect(proposals.map { $0["state"] as? String } == ["pending", "rejected"])
        let credit = try #require(proposals[0]["credit"] as? Object)
        #expect(credit["amount_cents"] as? Int == 1_000)
        #expect((credit["value"] as? Object)?["type"] as? String == "percentage")
        #expect(proposals[0]["hold_transfer"] as? String == "\(waiting.id).hold")
        #expect((proposals[1]["decision"] as? Object)?["verdict"] as? String == "rejected")
        let transfers = try #require(body["transfers"] as? [Object])
        #expect(transfers.contains { $0["id"] as? String == "\(waiting.id).hold" && $0["kind"] as? String == "pending" })
        let trail = try #require(body["trail"] as? [Object]).compactMap { $0["event"] as? String }
        #expect(trail.filter { $0.hasPrefix("COMPENSATION_") } == ["COMPENSATION_PROPOSED", "COMPENSATION_PROPOSED", "COMPENSATION_REJECTED"])
    }
}
