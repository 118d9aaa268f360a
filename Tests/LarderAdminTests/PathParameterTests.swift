import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

/// Finding 4: path parameters are percent-decoded once, then validated, so every legal
/// identifier (`#` and `/` included) can be addressed and nothing else gets through.
@Suite("Path parameters")
struct PathParameterTests {
    static let supervisor = WriteContext(actor: ActorIdentity(id: "admin-1", role: .admin), requestID: "setup")

    @Test func encodedIdentifierCharactersAddressTheRecord() async throws {
        let fixture = try AdminFixture()
        try await fixture.store.write(Self.supervisor) { txn in
            try txn.ledger.createAccount(NewAccount(id: "cust/17#packs", ledger: "packs"))
            try txn.ledger.createAccount(NewAccount(id: "inc-58", ledger: "packs"))
        }
        let slashAndHash = try await fixture.request("/v1/ledger/accounts/cust%2F17%23packs", secret: fixture.opsSecret)
        #expect(slashAndHash.status == .ok, "\(slashAndHash.text)")
        #expect((try slashAndHash.json()["account"] as? [String: Any])?["id"] as? String == "cust/17#packs")
        let access = try #require(try fixture.lastRecord())
        #expect(access.payload.contains("\"id\":\"cust/17#packs\""), "the decoded id is recorded")

        let hyphen = try await fixture.request("/v1/ledger/accounts/inc%2D58", secret: fixture.opsSecret)
        #expect(hyphen.status == .ok, "\(hyphen.text)")
        let lowerHex = try await fixture.request("/v1/ledger/accounts/cust%2f17%23packs", secret: fixture.opsSecret)
        #expect(lowerHex.status == .ok)
        let seq = try await fixture.request("/v1/audit/%31", secret: fixture.auditSecret)
        #expect(seq.status == .ok)
        #expect(try seq.json()["seq"] as? Int == 1)
    }

    @Test func anEncodedDecisionIDIsFound() async throws {
        let fixture = try AdminFixture()
        let context = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: "req-9",
                                   decisionID: "credit/4411#2")
        _ = try await fixture.store.write(context, request: CreditRequest(order: "4411", amount: 5)) { txn in
            try txn.appendAudit(AuditDraft(event: .opCreditGranted, refs: [.order("4411")]))
            return "granted"
        }
        let response = try await fixture.request("/v1/decisions/credit%2F4411%232", secret: fixture.opsSecret)
        #expect(response.status == .ok, "\(response.text)")
        #expect(try response.json()["decision_id"] as? String == "credit/4411#2")
    }

    /// Malformed escapes, characters no identifier has (after one decoding), and a double
    /// encoding (decoded once, `%2F` is not an identifier) are 400 and record nothing.
    @Test(arguments: ["/v1/incidents/inc%ZZ", "/v1/incidents/inc%2", "/v1/incidents/a%20b", "/v1/incidents/a%252Fb",
                      "/v1/decisions/%22quoted%22", "/v1/ledger/accounts/%C3%A9", "/v1/decisions/a%00b",
                      "/v1/audit/%2B1", "/v1/audit/1%20"])
    func badParametersAre400(uri: String) async throws {
        let fixture = try AdminFixture()
        let secret = uri.hasPrefix("/v1/audit") ? fixture.auditSecret : fixture.opsSecret
        let response = try await fixture.request(uri, secret: secret)
        #expect(response.status == .badRequest, "\(uri): \(response.text)")
        #expect(try response.errorCode() == "VALIDATION_FAILED")
        #expect(try fixture.auditCount() == initialRecords)
    }
}
