import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

/// One test over a real loopback socket: the wiring that the router tests skip (binding, HTTP/1
/// parsing, chunked streaming, headers on the wire).
@Suite("Live server")
struct LiveServerTests {
    @Test func answersOverLoopback() async throws {
        let fixture = try AdminFixture()
        try fixture.seed(2_500)
        let secret = fixture.auditSecret
        try await fixture.server.makeApplication().test(.live) { client in
            #expect(client.port != nil)
            let health = try await client.execute(uri: "/healthz", method: .get)
            #expect(health.status == .ok)
            #expect(health.headers[.requestID] != nil)
            let export = try await client.execute(uri: "/v1/audit/export", method: .get,
                                                  headers: [.authorization: "Bearer \(secret)"])
            #expect(export.status == .ok)
            #expect(export.text.split(separator: "\n").count == 2_500 + initialRecords)
            let post = try await client.execute(uri: "/v1/audit", method: .post, headers: [.authorization: "Bearer \(secret)"])
            #expect(post.status == .methodNotAllowed)
            #expect(try post.errorCode() == "METHOD_NOT_ALLOWED")
        }
    }
}
