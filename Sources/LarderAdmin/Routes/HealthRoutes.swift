import Hummingbird
import Larder

/// The open probes: no token, no budget, no audit record, so that orchestration and monitoring
/// keep working while the store cannot write (which is exactly when they matter).
enum HealthRoutes {
    static let all: [AdminRoute] = [
        AdminRoute(path: "/healthz", scope: nil, handler: healthz),
        AdminRoute(path: "/readyz", scope: nil, handler: readyz),
        AdminRoute(path: "/metrics", scope: nil, handler: metrics),
    ]

    /// Liveness: the process answers HTTP. Deliberately touches nothing else. Like every route,
    /// the probes take only the query parameters the document lists (none): 400 otherwise.
    @Sendable static func healthz(_ call: AdminCall) async throws -> Response {
        _ = try QueryParameters(call.request.uri.query, allowed: [])
        return Responses.json { o in o.field("status", "ok") }
    }

    @Sendable static func readyz(_ call: AdminCall) async throws -> Response {
        _ = try QueryParameters(call.request.uri.query, allowed: [])
        let store = call.store, configuration = call.configuration
        let reasons = try await offload { Readiness.evaluate(store: store, configuration: configuration) }
        return Responses.json(status: reasons.isEmpty ? .ok : .serviceUnavailable) { o in
            o.field("ready", reasons.isEmpty)
            o.array("reasons") { list in
                for reason in reasons {
                    list.object { r in
                        r.field("check", reason.check)
                        r.field("message", reason.message)
                    }
                }
            }
        }
    }

    @Sendable static func metrics(_ call: AdminCall) async throws -> Response {
        _ = try QueryParameters(call.request.uri.query, allowed: [])
        let store = call.store
        let (head, shipping) = try await offload {
            (try store.read { view in try view.audit.head().seq }, AdminMetrics.ShippingReading(store: store))
        }
        let text = call.services.metrics.render(info: store.info(), auditHeadSeq: head, shipping: shipping)
        return Responses.text(text, contentType: Responses.prometheusContentType)
    }
}
