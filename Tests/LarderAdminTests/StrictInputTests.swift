import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

/// The server accepts exactly what docs/admin-openapi.yaml describes, and nothing looser.
@Suite("Strict input")
struct StrictInputTests {
    /// Dates that are well-formed but do not exist, offsets out of range, signs, numbers past
    /// int64, a zero export start, and query parameters that a route does not take.
    @Test(arguments: [
        "/v1/audit?since=2026-02-30T00:00:00Z&until=2026-03-01T00:00:00Z",
        "/v1/audit?since=2025-02-29T00:00:00Z&until=2026-03-01T00:00:00Z",
        "/v1/audit?since=2026-04-31T00:00:00Z&until=2026-05-01T00:00:00Z",
        "/v1/audit?since=2026-01-01T00:00:00%2B99:99&until=2026-03-01T00:00:00Z",
        "/v1/audit?since=2026-01-01T00:00:00%2B24:00&until=2026-03-01T00:00:00Z",
        "/v1/audit?since=2026-01-01T00:00:00-01:60&until=2026-03-01T00:00:00Z",
        "/v1/audit?since=2026-01-01T24:00:00Z&until=2026-03-01T00:00:00Z",
        "/v1/audit?since=2026-01-01T00:00:61Z&until=2026-03-01T00:00:00Z",
        "/v1/audit?since=2026-01-01T00:00:00&until=2026-03-01T00:00:00Z",
        "/v1/audit?from_seq=%2B1",
        "/v1/audit?from_seq=-1",
        "/v1/audit?from_seq=1&limit=%2B5",
        "/v1/audit?from_seq=1&limit=05x",
        "/v1/audit?from_seq=9223372036854775808",
        "/v1/audit?from_seq=18446744073709551615",
        "/v1/audit/9223372036854775808",
        "/v1/audit/%2B1",
        "/v1/audit/0",
        "/v1/audit/export?from_seq=0",
        "/v1/audit/export?until_seq=0",
        "/v1/audit/export?from_seq=%2B1",
        "/v1/audit/export?until_seq=9223372036854775808",
        "/v1/audit/verify?deep=true",
        "/v1/incidents?since=2026-02-30T00:00:00Z",
        "/v1/incidents?limit=%2B5",
        "/v1/ledger/accounts/cust-17.packs?as_of_seq=%2B3",
        "/v1/ledger/accounts/cust-17.packs?as_of_seq=9223372036854775808",
    ])
    func lenientInputIs400(uri: String) async throws {
        let fixture = try AdminFixture()
        let secret = uri.hasPrefix("/v1/audit") ? fixture.auditSecret : fixture.opsSecret
        let response = try await fixture.request(uri, secret: secret)
        #expect(response.status == .badRequest, "\(uri): \(response.text)")
        #expect(try response.errorCode() == "VALIDATION_FAILED")
        #expect(try fixture.auditCount() == initialRecords, "a refused query records nothing")
    }

    /// The probes take no query parameters either (the document says 400).
    @Test(arguments: ["/healthz?x=1", "/healthz?x", "/readyz?verbose=1", "/metrics?name[]=larder_map_used_bytes",
                      "/metrics?x=1&x=1"])
    func probesRefuseQueryParameters(uri: String) async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request(uri)
        #expect(response.status == .badRequest, "\(uri): \(response.text)")
        #expect(try response.errorCode() == "VALIDATION_FAILED")
    }

    /// Valid edges are still accepted: leap days, leap seconds, offsets up to ±23:59, lower-case
    /// separators (RFC 3339 §5.6), the largest int64 seq.
    @Test(arguments: [
        "/v1/audit?since=2024-02-29T00:00:00Z&until=2026-03-01T00:00:00Z",
        "/v1/audit?since=2016-12-31T23:59:60Z&until=2026-03-01T00:00:00Z",
        "/v1/audit?since=2026-01-01T00:00:00%2B23:59&until=2026-03-01T00:00:00-23:59",
        "/v1/audit?since=2026-01-01t00:00:00.5z&until=2026-03-01T00:00:00.123456789Z",
        "/v1/audit?from_seq=9223372036854775807&direction=backward&limit=1",
        "/v1/audit?from_seq=0",
        "/v1/audit/export?from_seq=1&until_seq=9223372036854775807",
    ])
    func validEdgesAreAccepted(uri: String) async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request(uri, secret: fixture.auditSecret)
        #expect(response.status == .ok, "\(uri): \(response.text)")
    }

    /// Ranges that end before they start are empty, not malformed: the document (JSON Schema)
    /// cannot relate two parameters, so a client that follows it must not get a 400 for them.
    /// Overdue incidents are open by definition, so overdue with another state is empty too.
    @Test func emptyRangesAnswerEmptyPages() async throws {
        let fixture = try IncidentAdminFixture()
        _ = try fixture.record(.delivery, .p0)
        fixture.clock.advance(seconds: 3_600)
        let audit = fixture.admin.auditSecret, ops = fixture.admin.opsSecret
        let reversed = "since=2026-11-23T10:00:00Z&until=2026-11-23T09:00:00Z"
        let query = try await fixture.admin.request("/v1/audit?\(reversed)", secret: audit)
        #expect(query.status == .ok)
        #expect((try query.json()["records"] as? [Any])?.isEmpty == true)
        let export = try await fixture.admin.request("/v1/audit/export?from_seq=5&until_seq=2", secret: audit)
        #expect(export.status == .ok)
        #expect(export.body.readableBytes == 0)
        #expect(try fixture.admin.lastRecord()?.payload.contains("\"result_count\":0") == true)
        for uri in ["/v1/incidents?\(reversed)", "/v1/incidents?overdue=true&state=closed"] {
            let response = try await fixture.admin.request(uri, secret: ops)
            #expect(response.status == .ok, "\(uri)")
            #expect((try response.json()["incidents"] as? [Any])?.isEmpty == true, "\(uri)")
        }
        let overdueOpen = try await fixture.admin.request("/v1/incidents?overdue=true&state=open", secret: ops)
        #expect((try overdueOpen.json()["incidents"] as? [Any])?.count == 1, "the P0 is an hour past its 15 minutes")
    }

    /// A cursor is opaque, but only the shapes the routes hand out are accepted, each where it belongs.
    @Test(arguments: ["/v1/audit?from_seq=1&cursor=%2B5", "/v1/audit?from_seq=1&cursor=", "/v1/audit?from_seq=1&cursor=1-2",
                      "/v1/audit?since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z&cursor=5",
                      "/v1/audit?request_id=r&cursor=99999999999999999999", "/v1/incidents?cursor=5",
                      "/v1/incidents?cursor=-5/inc-1", "/v1/ledger/accounts/a?cursor=x"])
    func malformedCursorsAre400(uri: String) async throws {
        let fixture = try AdminFixture()
        let secret = uri.hasPrefix("/v1/audit") ? fixture.auditSecret : fixture.opsSecret
        let response = try await fixture.request(uri, secret: secret)
        #expect(response.status == .badRequest, "\(uri): \(response.text)")
        #expect(try response.errorCode() == "VALIDATION_FAILED")
    }

    /// A second Host field (the first is the request's authority) is refused before routing.
    @Test func aSecondHostFieldIs400() async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request("/healthz", headers: [HTTPField.Name("Host")!: "evil.example"])
        #expect(response.status == .badRequest)
        #expect(try response.errorCode() == "VALIDATION_FAILED")
    }

    /// Router view of finding 5: a request that announces a body is refused before its handler.
    @Test(arguments: [(HTTPField.Name.transferEncoding, "xchunked"), (.transferEncoding, "chunked"), (.contentLength, "3")])
    func aRequestBodyIsRefusedBeforeTheHandler(name: HTTPField.Name, value: String) async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request("/v1/audit/verify", secret: fixture.auditSecret, headers: [name: value])
        #expect(response.status == .badRequest)
        #expect(try response.errorCode() == "VALIDATION_FAILED")
        #expect(try fixture.auditCount() == initialRecords)
    }

    /// Router view of finding 6: more header fields than ``AdminConfiguration/headerFieldsMax`` is 431.
    @Test func tooManyHeaderFieldsAre431() async throws {
        let fixture = try AdminFixture()
        var headers = HTTPFields()
        for index in 0..<150 { headers.append(HTTPField(name: HTTPField.Name("X-F\(index)")!, value: "v")) }
        let response = try await fixture.request("/healthz", headers: headers)
        #expect(response.status == .requestHeaderFieldsTooLarge)
        #expect(try response.errorCode() == "VALIDATION_FAILED")
    }

    /// HEAD answers with GET's headers; a streamed GET has no length, so HEAD claims none.
    @Test func headOnTheExportClaimsNoLength() async throws {
        let fixture = try AdminFixture()
        try fixture.seed(2)
        let get = try await fixture.request("/v1/audit/export", secret: fixture.auditSecret)
        let head = try await fixture.request("/v1/audit/export", method: .head, secret: fixture.auditSecret)
        #expect(get.headers[.contentLength] == nil)
        #expect(head.status == .ok)
        #expect(head.headers[.contentLength] == nil, "not Content-Length: 0")
        #expect(head.body.readableBytes == 0)
        let healthHead = try await fixture.request("/healthz", method: .head)
        #expect(healthHead.headers[.contentLength] == "15")
    }
}
