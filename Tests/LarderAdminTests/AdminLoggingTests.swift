import Foundation
import HTTPTypes
import HummingbirdTesting
import InMemoryLogging
import Larder
import LarderAdmin
import LarderTesting
import Logging
import Testing

/// What the admin server logs through its logger: each forensic read at info with its token id
/// and route, each refusal at notice, the store's failure to record a read at warning; never a
/// token's secret.
@Suite("Admin logging")
struct AdminLoggingTests {
    static func server(_ fixture: AdminFixture) -> (AdminServer, InMemoryLogHandler) {
        var handler = InMemoryLogHandler()
        handler.logLevel = .trace
        let captured = handler
        let server = try! AdminServer(store: fixture.store, tokens: fixture.tokens,
                                      logger: Logger(label: "admin-test") { _ in captured })
        return (server, handler)
    }

    static func get(_ server: AdminServer, _ uri: String, secret: String? = nil) async throws -> TestResponse {
        var headers = HTTPFields()
        if let secret { headers[.authorization] = "Bearer \(secret)" }
        let requestHeaders = headers
        return try await server.makeApplication().test(.router) { client in
            try await client.execute(uri: uri, method: .get, headers: requestHeaders)
        }
    }

    @Test func aForensicReadIsLoggedAtInfoWithItsTokenAndRoute() async throws {
        let fixture = try AdminFixture()
        try fixture.seed(2)
        let (server, handler) = Self.server(fixture)
        let response = try await Self.get(server, "/v1/audit?from_seq=1&limit=2", secret: fixture.auditSecret)
        #expect(response.status == .ok)
        let reads = handler.entries.filter { $0.message.description == "Forensic read recorded (FORENSIC_ACCESS)" }
        #expect(reads.count == 1)
        let read = try #require(reads.first)
        #expect(read.level == .info)
        #expect(read.metadata["larder.admin.token_id"]?.description == "auditor")
        #expect(read.metadata["larder.admin.route"]?.description == "/v1/audit")
        #expect(read.metadata["larder.admin.result_count"]?.description == "2")
        #expect(read.metadata["larder.request_id"]?.description == response.headers[.requestID])
        #expect(read.metadata["larder.audit_seq"]?.description == String(try #require(try fixture.lastRecord()).seq))
        #expect(!Self.everything(handler).contains(fixture.auditSecret))
    }

    @Test func refusalsAreLoggedAtNoticeWithoutTheSecret() async throws {
        let fixture = try AdminFixture()
        let (server, handler) = Self.server(fixture)
        // No token; an expired one; the wrong scope (the token is known then).
        #expect(try await Self.get(server, "/v1/audit?from_seq=1").status == .unauthorized)
        #expect(try await Self.get(server, "/v1/audit?from_seq=1", secret: fixture.expiredSecret).status == .unauthorized)
        #expect(try await Self.get(server, "/v1/incidents", secret: fixture.auditSecret).status == .forbidden)
        let refusals = handler.entries.filter { $0.message.description.hasPrefix("Refused:") }
        #expect(refusals.count == 3)
        #expect(refusals.allSatisfy { $0.level == .notice })
        #expect(refusals.map { $0.metadata["larder.admin.status"]?.description } == ["401", "401", "403"])
        #expect(refusals.last?.metadata["larder.admin.token_id"]?.description == "auditor")
        let logged = Self.everything(handler)
        for secret in [fixture.auditSecret, fixture.expiredSecret, fixture.opsSecret] { #expect(!logged.contains(secret)) }
    }

    @Test func aReadTheStoreCannotRecordIsLoggedAtWarning() async throws {
        var options = Store.Options()
        // The store's own first records (schema, policy) go in; the forensic record does not.
        options.auditFaultInjection = AuditFaultInjection { seq throws(LarderError) in
            if seq > UInt64(initialRecords) { throw LarderError(.storageUnavailable, "injected: the disk is full") }
        }
        let fixture = try AdminFixture(options: options)
        let (server, handler) = Self.server(fixture)
        let response = try await Self.get(server, "/v1/audit?from_seq=1", secret: fixture.auditSecret)
        #expect(response.status == .serviceUnavailable)
        let refusal = try #require(handler.entries.first { $0.message.description.hasPrefix("Refused:") })
        #expect(refusal.level == .warning)
        #expect(refusal.metadata["larder.error_code"]?.description == "STORAGE_UNAVAILABLE")
        #expect(!handler.entries.contains { $0.message.description.hasPrefix("Forensic read recorded") })
    }

    /// Everything logged, messages and metadata, as one text.
    static func everything(_ handler: InMemoryLogHandler) -> String {
        handler.entries.map { entry in
            entry.message.description + " " + entry.metadata.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }.joined(separator: "\n")
    }
}
