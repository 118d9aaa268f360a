import Foundation
import Hummingbird
import Larder

/// `ops:read` decision lookup.
enum DecisionRoutes {
    static let all: [AdminRoute] = [
        AdminRoute(path: "/v1/decisions/{id}", scope: .opsRead, handler: decision),
    ]

    @Sendable static func decision(_ call: AdminCall) async throws -> Response {
        _ = try QueryParameters(call.request.uri.query, allowed: [])
        let id = try call.identifier("id")
        let store = call.store
        guard let decision = try await offload({ try store.read { view in try view.decisions.decision(id: id) } }) else {
            throw LarderError(.notFound, "There is no decision \(JSONWriter.quoted(id)).")
        }
        try await call.recordForensicAccess(filters: [("id", id)], resultCount: 1)
        return Responses.json { o in
            o.field("decision_id", decision.decisionID)
            o.field("operation", decision.operation)
            o.field("fingerprint", decision.fingerprint.hexString)
            o.field("time", RFC3339.format(decision.timeMicros))
            o.field("audit_seq", decision.auditSeq == 0 ? nil : decision.auditSeq)
            let text = String(decoding: decision.result, as: UTF8.self)
            // The stored result is canonical JSON; embed it as such, but never risk invalid output.
            if (try? JSONSerialization.jsonObject(with: Data(decision.result), options: [.fragmentsAllowed])) != nil {
                o.rawField("result", json: text)
            } else {
                o.field("result", text)
            }
        }
    }
}
