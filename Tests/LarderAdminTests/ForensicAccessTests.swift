import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Synchronization
import Testing

/// Every forensic read is itself in the audit log, or it does not happen.
@Suite("FORENSIC_ACCESS")
struct ForensicAccessTests {
    @Test func aQueryIsRecordedWithTokenRouteFiltersAndCount() async throws {
        let fixture = try AdminFixture()
        try fixture.seed(4)
        let response = try await fixture.request("/v1/audit?from_seq=2&limit=3", secret: fixture.auditSecret,
                                                 headers: [.requestID: "inc-77.review"])
        #expect(response.status == .ok)
        let requestID = try #require(response.headers[.requestID])
        let record = try #require(try fixture.lastRecord())
        #expect(record.event == .forensicAccess)
        #expect(record.actor == ActorIdentity(id: "token:auditor", role: .system))
        #expect(record.requestID == requestID, "the server's id, not the client's")
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(record.payload.utf8)) as? [String: Any])
        #expect(payload["token_id"] as? String == "auditor")
        #expect(payload["client_request_id"] as? String == "inc-77.review")
        #expect(payload["route"] as? String == "/v1/audit")
        #expect(payload["filters"] as? [String: String] == ["from_seq": "2", "limit": "3"])
        #expect(payload["result_count"] as? Int == 3)
    }

    @Test func everyScopedRouteRecordsItsRead() async throws {
        let fixture = try AdminFixture()
        try fixture.seed(1)
        let reads: [(String, String)] = [("/v1/audit?request_id=seed", fixture.auditSecret), ("/v1/audit/1", fixture.auditSecret),
                                         ("/v1/audit/export", fixture.auditSecret), ("/v1/audit/verify", fixture.auditSecret)]
        for (uri, secret) in reads {
            let before = try fixture.auditCount()
            #expect(try await fixture.request(uri, secret: secret).status == .ok)
            #expect(try fixture.auditCount() == before + 1, "\(uri) wrote one FORENSIC_ACCESS record")
            #expect(try fixture.lastRecord()?.event == .forensicAccess)
        }
    }

    /// With the audit append failing, scoped reads are refused with the store's error and send no
    /// data; the probes keep answering.
    @Test func whenTheRecordCannotBeWrittenTheReadIsRefused() async throws {
        let failing = Mutex(false)
        var options = Store.Options()
        options.auditFaultInjection = AuditFaultInjection { _ throws(LarderError) in
            if failing.withLock({ $0 }) { throw LarderError(.persistenceError, "injected audit fault") }
        }
        let fixture = try AdminFixture(options: options)
        try fixture.seed(3)
        failing.withLock { $0 = true }
        for uri in ["/v1/audit?from_seq=1", "/v1/audit/2", "/v1/audit/export", "/v1/audit/verify"] {
            let response = try await fixture.request(uri, secret: fixture.auditSecret, headers: [.requestID: "req-closed"])
            #expect(response.status == .internalServerError, "\(uri)")
            let body = try response.json()
            #expect(body["error_code"] as? String == "AUDIT_FAILED")
            #expect(body["request_id"] as? String == response.headers[.requestID])
            #expect(body["records"] == nil)
            #expect(!response.text.contains("ORDER_NOTED"), "no record data leaks into the refusal")
        }
        #expect(try fixture.auditCount() == initialRecords + 3)
        #expect(try await fixture.request("/healthz").status == .ok)
        #expect(try await fixture.request("/metrics").status == .ok)
        let ready = try await fixture.request("/readyz")
        #expect(ready.status != .internalServerError)
    }

    @Test func aReadOnlyStoreRefusesForensicReads() async throws {
        let fixture = try AdminFixture()
        fixture.store.close()
        let readOnly = try Store.open(at: fixture.temporary.path, options: Store.Options(readOnly: true))
        defer { readOnly.close() }
        var tokens = try TokenFile()
        let created = try tokens.createToken(id: "auditor", scopes: [.auditRead], expiresAt: .max)
        let server = try AdminServer(store: readOnly, tokens: tokens)
        let response = try await server.makeApplication().test(.router) { client in
            try await client.execute(uri: "/v1/audit/1", method: .get, headers: [.authorization: "Bearer \(created.secret)"])
        }
        #expect(response.status == .forbidden)
        #expect(try response.errorCode() == "PERMISSION_DENIED")
        #expect(!response.text.contains("SCHEMA_MIGRATED"))
    }
}
