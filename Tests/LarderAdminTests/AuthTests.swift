import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

/// Tokens, scopes, budgets and the read-only method rule.
@Suite("Authentication, limits and methods")
struct AuthTests {
    @Test func aMissingTokenIs401() async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request("/v1/audit?from_seq=1")
        #expect(response.status == .unauthorized)
        #expect(try response.errorCode() == "AUTH_REQUIRED")
        #expect(try fixture.auditCount() == initialRecords, "a refused read records nothing")
    }

    @Test(arguments: ["Basic abc", "Bearer", "Bearer short", "Bearer " + String(repeating: "!", count: 43), "token"])
    func aMalformedTokenIs401(header: String) async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request("/v1/audit?from_seq=1", headers: [.authorization: header])
        #expect(response.status == .unauthorized)
        #expect(try response.errorCode() == "AUTH_REQUIRED")
    }

    @Test func anUnknownSecretIs401() async throws {
        let fixture = try AdminFixture()
        // Well-formed, but not the hash of any configured token.
        let response = try await fixture.request("/v1/audit?from_seq=1", secret: String(repeating: "A", count: 43))
        #expect(response.status == .unauthorized)
        #expect(try response.json()["message"] as? String == "The token is not known.")
    }

    /// Finding 3: the last of 43 base64url characters carries 4 bits of the secret and 2 unused
    /// bits; only the spelling with the unused bits at zero (the canonical one) authenticates.
    @Test func onlyTheCanonicalSpellingOfASecretAuthenticates() async throws {
        let fixture = try AdminFixture()
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let secret = fixture.auditSecret
        let lastCharacter = try #require(secret.last)
        let last = try #require(alphabet.firstIndex(of: lastCharacter))
        #expect(last & 3 == 0, "the created secret is canonical")
        #expect(try await fixture.request("/v1/audit/1", secret: secret).status == .ok)
        for unused in 1...3 {
            let variant = String(secret.dropLast()) + String(alphabet[last | unused])
            let response = try await fixture.request("/v1/audit/1", secret: variant)
            #expect(response.status == .unauthorized, "\(variant)")
            #expect(try response.errorCode() == "AUTH_REQUIRED")
        }
        #expect(try fixture.auditCount() == initialRecords + 1, "only the canonical read was recorded")
    }

    @Test func anExpiredTokenIs401() async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request("/v1/audit?from_seq=1", secret: fixture.expiredSecret)
        #expect(response.status == .unauthorized)
        #expect(try response.errorCode() == "AUTH_REQUIRED")
        #expect(try (response.json()["message"] as? String)?.contains("expired") == true)
    }

    @Test func aTokenExpiresWhenTheClockPassesItsExpiry() async throws {
        let fixture = try AdminFixture()
        #expect(try await fixture.request("/v1/audit/verify", secret: fixture.auditSecret).status == .ok)
        fixture.clock.advance(seconds: 86_400)
        #expect(try await fixture.request("/v1/audit/verify", secret: fixture.auditSecret).status == .unauthorized)
    }

    @Test func theWrongScopeIs403() async throws {
        let fixture = try AdminFixture()
        let audit = try await fixture.request("/v1/audit?from_seq=1", secret: fixture.opsSecret)
        #expect(audit.status == .forbidden)
        #expect(try audit.errorCode() == "PERMISSION_DENIED")
        let decision = try await fixture.request("/v1/decisions/d-1", secret: fixture.auditSecret)
        #expect(decision.status == .forbidden)
        #expect(try fixture.auditCount() == initialRecords)
    }

    @Test(arguments: [HTTPRequest.Method.post, .put, .delete, .patch, .options])
    func everyMethodButGetAndHeadIs405AndChangesNothing(method: HTTPRequest.Method) async throws {
        let fixture = try AdminFixture()
        for uri in ["/v1/audit", "/v1/audit/1", "/healthz", "/no/such/route"] {
            let response = try await fixture.request(uri, method: method, secret: fixture.auditSecret, body: "{\"seq\":1}")
            #expect(response.status == .methodNotAllowed)
            #expect(try response.errorCode() == "METHOD_NOT_ALLOWED")
            #expect(response.headers[.allow] == "GET, HEAD")
        }
        #expect(try fixture.auditCount() == initialRecords)
    }

    @Test func headAnswersWithoutABody() async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request("/healthz", method: .head)
        #expect(response.status == .ok)
        #expect(response.body.readableBytes == 0)
        let missing = try await fixture.request("/no/such/route", method: .head)
        #expect(missing.status == .notFound)
        #expect(missing.body.readableBytes == 0)
        let refused = try await fixture.request("/v1/audit/1", method: .head)
        #expect(refused.status == .unauthorized)
        #expect(refused.body.readableBytes == 0)
    }

    @Test func anUnknownRouteIs404WithTheContractBody() async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request("/v2/nothing", headers: [.requestID: "req-404"])
        #expect(response.status == .notFound)
        let body = try response.json()
        #expect(body["error_code"] as? String == "NOT_FOUND")
        #expect(body["success"] as? Bool == false)
        #expect((body["details"] as? [String: Any])?["can_retry"] as? Bool == false)
        // The body names the server's id for the request, the one in X-Request-ID.
        #expect(body["request_id"] as? String == response.headers[.requestID])
        #expect(response.headers[.requestID]?.hasPrefix("admin-") == true)
        #expect(response.headers[.clientRequestID] == "req-404")
    }

    @Test func anInvalidRequestIDIsNotEchoed() async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request("/healthz", headers: [.requestID: "bad id with spaces"])
        let id = try #require(response.headers[.requestID])
        #expect(id.hasPrefix("admin-"))
        #expect(response.headers[.clientRequestID] == nil)
    }

    @Test func theRequestBudgetIs429WithRetryAfterAndRefillsAfterTheWindow() async throws {
        var configuration = AdminConfiguration()
        configuration.budgetUnitsPerWindowMax = 3
        configuration.costs.verifyUnits = 3
        configuration.costs.exportUnits = 3
        let fixture = try AdminFixture(configuration: configuration)
        for _ in 0..<3 {
            #expect(try await fixture.request("/v1/audit/1", secret: fixture.auditSecret).status == .ok)
        }
        fixture.clock.advance(seconds: 20)
        let refused = try await fixture.request("/v1/audit/1", secret: fixture.auditSecret)
        #expect(refused.status == .tooManyRequests)
        #expect(try refused.errorCode() == "RATE_LIMITED")
        #expect(refused.headers[.retryAfter] == "40")
        // Budgets are per token: another token is unaffected.
        #expect(try await fixture.request("/v1/decisions/none", secret: fixture.opsSecret).status == .notFound)
        // The open probes have no budget.
        #expect(try await fixture.request("/healthz").status == .ok)
        fixture.clock.advance(seconds: 40)
        #expect(try await fixture.request("/v1/audit/1", secret: fixture.auditSecret).status == .ok)
    }

    @Test func aLimitAboveThePageSizeMaxIs400() async throws {
        var configuration = AdminConfiguration()
        configuration.pageSizeMax = 50
        configuration.pageSizeDefault = 20
        let fixture = try AdminFixture(configuration: configuration)
        let refused = try await fixture.request("/v1/audit?from_seq=1&limit=51", secret: fixture.auditSecret)
        #expect(refused.status == .badRequest)
        #expect(try refused.errorCode() == "VALIDATION_FAILED")
        #expect(try await fixture.request("/v1/audit?from_seq=1&limit=50", secret: fixture.auditSecret).status == .ok)
        #expect(try await fixture.request("/v1/audit?from_seq=1&limit=0", secret: fixture.auditSecret).status == .badRequest)
    }

    @Test func aLongURLIs414AndLargeHeadersAre431() async throws {
        let fixture = try AdminFixture()
        let long = try await fixture.request("/v1/audit?request_id=" + String(repeating: "a", count: 5_000), secret: fixture.auditSecret)
        #expect(long.status == .uriTooLong)
        #expect(try long.errorCode() == "VALIDATION_FAILED")
        let name = try #require(HTTPField.Name("X-Padding"))
        let large = try await fixture.request("/healthz", headers: [name: String(repeating: "b", count: 20_000)])
        #expect(large.status == .requestHeaderFieldsTooLarge)
        #expect(try large.errorCode() == "VALIDATION_FAILED")
    }

    @Test func theConfigurationIsValidatedAndBindsLoopbackByDefault() throws {
        #expect(AdminConfiguration().host == "127.0.0.1")
        var configuration = AdminConfiguration()
        configuration.pageSizeMax = AuditLog.recordsPerPageMax + 1
        #expect(throws: LarderError.self) { try configuration.validate() }
        configuration = AdminConfiguration()
        configuration.headerBytesMax = 100_000
        #expect(throws: LarderError.self) { try configuration.validate() }
        try AdminConfiguration().validate()
    }
}
