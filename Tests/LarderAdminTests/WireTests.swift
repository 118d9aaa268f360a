import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

/// What only a real socket shows: requests the HTTP parser refuses or frames oddly never reach the
/// router, so `.router` tests cannot see them. Each test sends raw bytes to a live loopback server.
@Suite("HTTP on the wire")
struct WireTests {
    /// A raw client of a live server. Its socket calls block, so they run on a Dispatch thread
    /// rather than on a cooperative one the server needs; the expectations stay in the test.
    struct Live: Sendable {
        let raw: RawHTTP

        func exchange(_ request: String, isHead: Bool = false, checkClosed: Bool = false) async throws -> RawHTTP.Response {
            try await exchange(Array(request.utf8), isHead: isHead, checkClosed: checkClosed)
        }

        func exchange(_ request: [UInt8], isHead: Bool = false, checkClosed: Bool = false) async throws -> RawHTTP.Response {
            let raw = self.raw
            return try await blocking { try raw.exchange(request, isHead: isHead, checkClosed: checkClosed) }
        }

        func pipeline(_ request: String, heads: [Bool]) async throws -> [RawHTTP.Response] {
            let raw = self.raw
            return try await blocking { try raw.pipeline(request, heads: heads) }
        }

        private func blocking<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
            try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
            }
        }
    }

    /// Runs `body` with a raw client of a live server over `fixture`.
    func withLiveServer(_ fixture: AdminFixture, _ body: @escaping @Sendable (Live) async throws -> Void) async throws {
        try await fixture.server.makeApplication().test(.live) { client in
            try await body(Live(raw: RawHTTP(port: try #require(client.port))))
        }
    }

    /// The answer is the contract's error body, carries an X-Request-ID equal to the body's
    /// request_id, and the server closes the connection after it.
    static func expectContractRefusal(_ response: RawHTTP.Response, status: Int, code: String, closes: Bool = true,
                                      sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.status == status, "\(response)", sourceLocation: sourceLocation)
        let body = response.json
        #expect(body?["error_code"] as? String == code, "\(response)", sourceLocation: sourceLocation)
        #expect(body?["success"] as? Bool == false, sourceLocation: sourceLocation)
        let requestID = response.header("X-Request-ID")
        #expect(requestID?.isEmpty == false, "\(response)", sourceLocation: sourceLocation)
        #expect(body?["request_id"] as? String == requestID, sourceLocation: sourceLocation)
        #expect(response.header("Content-Length") == String(response.body.utf8.count), "\(response)",
                sourceLocation: sourceLocation)
        if closes {
            #expect(response.closed, "the server closes the connection after a refusal", sourceLocation: sourceLocation)
        }
    }

    /// Finding 5: a body framing the server cannot trust is refused before any handler runs, so
    /// nothing is read, nothing is recorded, and no 200 goes out first.
    @Test(arguments: ["Transfer-Encoding: xchunked\r\n\r\n",
                      "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                      "Content-Length: 3\r\n\r\nabc"])
    func aBodyFramingIsRefusedBeforeAnyHandlerRuns(framing: String) async throws {
        let fixture = try AdminFixture()
        let secret = fixture.auditSecret
        try await withLiveServer(fixture) { raw in
            let request = "GET /v1/audit/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(secret)\r\n\(framing)"
            let response = try await raw.exchange(request, checkClosed: true)
            Self.expectContractRefusal(response, status: 400, code: "VALIDATION_FAILED")
            #expect(!response.raw.contains("intact"), "no verify report was sent")
        }
        #expect(try fixture.auditCount() == initialRecords, "no handler ran: no FORENSIC_ACCESS record")
    }

    /// Finding 6: past the header-field cap, 431 with the contract body: from the router past
    /// ours (the connection stays usable), from the gate past the parser's (it closes).
    @Test(arguments: [(150, false), (2_000, true)])
    func tooManyHeaderFieldsAre431WithTheContractBody(fields: Int, closes: Bool) async throws {
        let fixture = try AdminFixture()
        try await withLiveServer(fixture) { raw in
            var request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            for index in 0..<fields { request += "X-F\(index): v\r\n" }
            request += "\r\n"
            Self.expectContractRefusal(try await raw.exchange(request, checkClosed: closes), status: 431, code: "VALIDATION_FAILED",
                                       closes: closes)
        }
    }

    /// Finding 7: CONNECT is refused like every other method, with a body the client can read to
    /// its end, and the connection closes instead of idling.
    @Test(arguments: ["CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n",
                      "CONNECT /v1/audit HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"])
    func connectIs405WithABody(request: String) async throws {
        let fixture = try AdminFixture()
        try await withLiveServer(fixture) { raw in
            let response = try await raw.exchange(request, checkClosed: true)
            Self.expectContractRefusal(response, status: 405, code: "METHOD_NOT_ALLOWED")
            #expect(response.header("Allow") == "GET, HEAD")
        }
        #expect(try fixture.auditCount() == initialRecords)
    }

    /// Finding 9: what the parser refuses is answered with the contract body and an X-Request-ID.
    @Test(arguments: [
        (Array("GET /v1/audit/".utf8) + [0xC3, 0xA9] + Array(" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8), 400, "VALIDATION_FAILED"),
        (Array("FOO / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8), 405, "METHOD_NOT_ALLOWED"),
        (Array("GET /healthz\r\n\r\n".utf8), 505, "VALIDATION_FAILED"),
        (Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8), 505, "VALIDATION_FAILED"),
        (Array("GET /healthz HTTP/3.0\r\nHost: 127.0.0.1\r\n\r\n".utf8), 505, "VALIDATION_FAILED"),
        (Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".utf8),
         400, "VALIDATION_FAILED"),
        (Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\r\n  folded\r\n\r\n".utf8), 400, "VALIDATION_FAILED"),
        (Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a".utf8) + [0] + Array("b\r\n\r\n".utf8), 400, "VALIDATION_FAILED"),
        (Array("GET /healthz HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n".utf8), 400, "VALIDATION_FAILED"),
        (Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX(A): b\r\n\r\n".utf8), 400, "VALIDATION_FAILED"),
        (Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".utf8), 400, "VALIDATION_FAILED"),
        (Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n".utf8), 400, "VALIDATION_FAILED"),
        // A TLS ClientHello: to the parser, a method it does not know.
        ([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03], 405, "METHOD_NOT_ALLOWED"),
    ] as [([UInt8], Int, String)])
    func parserRefusalsUseTheErrorContract(request: [UInt8], status: Int, code: String) async throws {
        let fixture = try AdminFixture()
        try await withLiveServer(fixture) { raw in
            Self.expectContractRefusal(try await raw.exchange(request, checkClosed: true), status: status, code: code)
        }
        #expect(try fixture.auditCount() == initialRecords)
    }

    /// Finding 8: RFC 9112 §3.2 — a request with two Host fields, or an HTTP/1.1 request with none, is 400.
    @Test(arguments: ["GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n",
                      "GET /healthz HTTP/1.1\r\n\r\n"])
    func hostMustBeGivenExactlyOnce(request: String) async throws {
        let fixture = try AdminFixture()
        try await withLiveServer(fixture) { raw in
            Self.expectContractRefusal(try await raw.exchange(request, checkClosed: true), status: 400, code: "VALIDATION_FAILED")
        }
    }

    /// Finding 8: HEAD on the export advertises what GET does (chunked, no length) and sends no
    /// body, so the next response on the connection is framed correctly.
    @Test func headOnTheExportIsFramedLikeGet() async throws {
        let fixture = try AdminFixture()
        try fixture.seed(3)
        let secret = fixture.auditSecret
        try await withLiveServer(fixture) { raw in
            let auth = "Authorization: Bearer \(secret)\r\n"
            let responses = try await raw.pipeline(
                "GET /v1/audit/export HTTP/1.1\r\nHost: 127.0.0.1\r\n\(auth)\r\n"
                    + "HEAD /v1/audit/export HTTP/1.1\r\nHost: 127.0.0.1\r\n\(auth)\r\n"
                    + "HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                    + "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                heads: [false, true, true, false])
            let (get, head, headHealth, health) = (responses[0], responses[1], responses[2], responses[3])
            #expect(get.status == 200)
            #expect(get.header("Transfer-Encoding") == "chunked")
            #expect(get.header("Content-Length") == nil)
            #expect(get.body.split(separator: "\n").count == initialRecords + 3)
            #expect(head.status == 200, "\(head)")
            #expect(head.header("Content-Length") == nil, "HEAD does not claim an empty export: \(head)")
            #expect(head.header("Transfer-Encoding") == "chunked", "\(head)")
            #expect(head.header("Content-Type") == get.header("Content-Type"))
            #expect(headHealth.status == 200)
            #expect(headHealth.header("Content-Length") == "15", "HEAD of a sized answer keeps its length: \(headHealth)")
            #expect(health.status == 200, "the connection is still in step after the HEADs: \(health)")
            #expect(health.json?["status"] as? String == "ok")
        }
    }

    /// An HTTP/1.0 request without keep-alive gets its answer and then the connection closes, so
    /// a streamed (unframed) export ends where the connection ends.
    @Test func http10WithoutKeepAliveIsClosedAfterTheAnswer() async throws {
        let fixture = try AdminFixture()
        try await withLiveServer(fixture) { raw in
            let response = try await raw.exchange("GET /healthz HTTP/1.0\r\n\r\n", checkClosed: true)
            #expect(response.status == 200)
            #expect(response.closed)
        }
    }

    /// A request asking to switch protocols is answered in HTTP/1.1 and the connection closes:
    /// the parser reads nothing after such a request, so a request behind it would wait unread.
    @Test func anUpgradeRequestIsAnsweredAndTheConnectionCloses() async throws {
        let fixture = try AdminFixture()
        try await withLiveServer(fixture) { raw in
            let response = try await raw.exchange("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                                                      + "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", checkClosed: true)
            #expect(response.status == 200)
            #expect(response.header("Connection") == "close")
            #expect(response.closed)
        }
    }

    /// Write methods are still refused at the wire with the contract body (and their bodies unread).
    @Test func aPostWithABodyIs405() async throws {
        let fixture = try AdminFixture()
        let secret = fixture.auditSecret
        try await withLiveServer(fixture) { raw in
            let response = try await raw.exchange("POST /v1/audit HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(secret)\r\n"
                                                + "Content-Length: 9\r\n\r\n{\"seq\":1}", checkClosed: true)
            Self.expectContractRefusal(response, status: 405, code: "METHOD_NOT_ALLOWED")
        }
        #expect(try fixture.auditCount() == initialRecords)
    }
}
