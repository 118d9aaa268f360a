import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

/// A new store holds two records: its schema (seq 1) and the policy in force (seq 2).
let initialRecords = 2

/// A fresh store with a running (in-process) admin server and three tokens: one per scope and
/// one already expired. Secrets come from a seeded generator, so a failure replays exactly.
final class AdminFixture: Sendable {
    let temporary: TemporaryStore
    let server: AdminServer
    /// `auditor`: audit:read.
    let auditSecret: String
    /// `operator`: ops:read.
    let opsSecret: String
    /// `retired`: both scopes, expired a second before the test starts.
    let expiredSecret: String
    /// The three tokens, for tests that build their own server over the same store.
    let tokens: TokenFile

    var store: Store { temporary.store }
    var clock: ManualClock { temporary.clock }

    init(options: Store.Options = Store.Options(), configuration: AdminConfiguration = AdminConfiguration()) throws {
        var options = options
        // The store records its counters into the registry the server renders on /metrics.
        options.metricsFactory = AdminServer.metricsFactory()
        temporary = try TemporaryStore(options: options)
        let now = temporary.clock.now().unixMicros
        var random = SeededGenerator(seed: SeededGenerator.seedFromEnvironment(default: 6))
        var tokens = try TokenFile()
        auditSecret = try tokens.createToken(id: "auditor", scopes: [.auditRead], expiresAt: now + 86_400_000_000, using: &random).secret
        opsSecret = try tokens.createToken(id: "operator", scopes: [.opsRead], expiresAt: now + 86_400_000_000, using: &random).secret
        expiredSecret = try tokens.createToken(id: "retired", scopes: [.auditRead, .opsRead], expiresAt: now - 1_000_000,
                                               using: &random).secret
        self.tokens = tokens
        server = try AdminServer(store: temporary.store, tokens: tokens, configuration: configuration)
    }

    /// One request through the router (no sockets), with `Authorization: Bearer <secret>` when given.
    func request(_ uri: String, method: HTTPRequest.Method = .get, secret: String? = nil,
                 headers: HTTPFields = [:], body: String? = nil) async throws -> TestResponse {
        var headers = headers
        if let secret { headers[.authorization] = "Bearer \(secret)" }
        let requestHeaders = headers
        return try await server.makeApplication().test(.router) { client in
            try await client.execute(uri: uri, method: method, headers: requestHeaders, body: body.map { ByteBuffer(string: $0) })
        }
    }

    /// Appends `count` ORDER_NOTED records (one write per 500), each about `order:<n>`.
    func seed(_ count: Int, requestID: String = "seed", step: Double = 0) throws {
        var written = 0
        while written < count {
            let batch = min(500, count - written)
            let first = written
            try store.write(WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: requestID)) { txn in
                for index in first..<(first + batch) {
                    try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", refs: [.order("o-\(index)")],
                                                   payload: "{\"n\":\(index)}"))
                }
            }
            written += batch
            if step > 0 { clock.advance(seconds: step) }
        }
    }

    func auditCount() throws -> Int { try store.read { view in try view.audit.count() } }

    func lastRecord() throws -> AuditRecord? {
        try store.read { view in try view.audit.records(fromSeq: UInt64.max, limit: 1, direction: .backward).records.first?.record }
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    /// The body as a JSON object; fails the test when it is not one.
    func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw JSONShapeError(text: text)
        }
        return object
    }

    /// The contract's `error_code` of an error body.
    func errorCode() throws -> String? { try json()["error_code"] as? String }
}

struct JSONShapeError: Error, CustomStringConvertible {
    let text: String
    var description: String { "not a JSON object: \(text)" }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-ID")!
    static let clientRequestID = HTTPField.Name("X-Client-Request-ID")!
}
