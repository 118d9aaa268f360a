import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

/// Finding 2: a reader's `X-Request-ID` must not put the FORENSIC_ACCESS record into a business
/// request's trail. The server makes its own request id; the client's goes into its own field.
@Suite("Request ids")
struct RequestIDTests {
    @Test func aClientRequestIDDoesNotJoinABusinessTrail() async throws {
        let fixture = try AdminFixture()
        try fixture.seed(2, requestID: "d1-buy-ana")
        let response = try await fixture.request("/v1/audit?from_seq=1", secret: fixture.auditSecret,
                                                 headers: [.requestID: "d1-buy-ana"])
        #expect(response.status == .ok)
        let serverID = try #require(response.headers[.requestID])
        #expect(serverID != "d1-buy-ana")
        #expect(serverID.hasPrefix("admin-"))
        #expect(response.headers[.clientRequestID] == "d1-buy-ana", "the client's id is echoed in its own header")

        let access = try #require(try fixture.lastRecord())
        #expect(access.event == .forensicAccess)
        #expect(access.requestID == serverID, "the record carries the server's id")
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(access.payload.utf8)) as? [String: Any])
        #expect(payload["client_request_id"] as? String == "d1-buy-ana")

        // The business trail holds only the business records.
        let trail = try fixture.store.read { view in try view.audit.records(requestID: "d1-buy-ana", limit: 100) }
        #expect(trail.records.count == 2)
        #expect(trail.records.allSatisfy { $0.record.event != .forensicAccess })
    }

    @Test func everyRequestGetsItsOwnServerID() async throws {
        let fixture = try AdminFixture()
        let first = try await fixture.request("/healthz", headers: [.requestID: "same"])
        let second = try await fixture.request("/healthz", headers: [.requestID: "same"])
        let ids = [first.headers[.requestID], second.headers[.requestID]]
        #expect(ids[0] != nil && ids[0] != ids[1])
        #expect(!ids.contains("same"))
    }

    /// Errors name the server's id in their body, so a report can be matched to the server's logs.
    @Test func anErrorBodyCarriesTheServerID() async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request("/v1/audit/99", secret: fixture.auditSecret, headers: [.requestID: "support-7"])
        #expect(response.status == .notFound)
        let body = try response.json()
        #expect(body["request_id"] as? String == response.headers[.requestID])
        #expect(body["request_id"] as? String != "support-7")
    }

    /// A client id that is not a valid identifier is neither echoed nor recorded.
    @Test(arguments: ["bad id with spaces", String(repeating: "a", count: 129), "quote\"s", ""])
    func anInvalidClientIDIsDropped(given: String) async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request("/v1/audit/1", secret: fixture.auditSecret, headers: [.requestID: given])
        #expect(response.status == .ok)
        #expect(response.headers[.clientRequestID] == nil)
        let access = try #require(try fixture.lastRecord())
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(access.payload.utf8)) as? [String: Any])
        #expect(payload["client_request_id"] is NSNull)
    }
}
