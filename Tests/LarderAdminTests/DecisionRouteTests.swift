import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

struct CreditRequest: FingerprintedRequest {
    static let operationName = "test.credit"
    let order: String
    let amount: Int
}

@Suite("Decision routes")
struct DecisionRouteTests {
    @Test func aDecisionIsServedWithItsResultAndAuditSeq() async throws {
        let fixture = try AdminFixture()
        let context = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: "req-9",
                                   decisionID: "credit-4411")
        let outcome = try await fixture.store.write(context, request: CreditRequest(order: "4411", amount: 5)) { txn in
            try txn.appendAudit(AuditDraft(event: .opCreditGranted, refs: [.order("4411")]))
            return "granted"
        }
        let response = try await fixture.request("/v1/decisions/credit-4411", secret: fixture.opsSecret)
        #expect(response.status == .ok)
        let body = try response.json()
        #expect(body["decision_id"] as? String == "credit-4411")
        #expect(body["operation"] as? String == "test.credit")
        #expect(body["audit_seq"] as? Int == outcome.auditSeq.map(Int.init))
        #expect(body["result"] as? String == "granted")
        #expect((body["fingerprint"] as? String)?.count == 64)
        let access = try #require(try fixture.lastRecord())
        #expect(access.event == .forensicAccess)
        #expect(access.actor.id == "token:operator")
        #expect(access.payload.contains("\"route\":\"/v1/decisions/{id}\""))
    }

    @Test func aMissingDecisionIs404() async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request("/v1/decisions/nope", secret: fixture.opsSecret)
        #expect(response.status == .notFound)
        #expect(try response.errorCode() == "NOT_FOUND")
        #expect(try fixture.auditCount() == initialRecords)
    }
}
