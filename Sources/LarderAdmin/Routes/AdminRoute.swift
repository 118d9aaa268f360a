import Hummingbird
import Larder

/// One route of the admin server: its path (OpenAPI syntax, `{name}` for a parameter), the
/// scope it needs (nil for the open probes), and its handler. Authentication, the request budget
/// and the scope check run before the handler, in ``AdminServices/serve(_:request:context:)``, so a
/// handler cannot forget them.
struct AdminRoute: Sendable {
    let path: String
    let scope: TokenScope?
    let handler: @Sendable (AdminCall) async throws -> Response
}

/// What a handler gets: the request, its id, the authenticated token (for scoped routes) and the
/// server's shared state.
struct AdminCall: Sendable {
    let request: Request
    let context: AdminRequestContext
    let requestID: String
    /// Nil only on open routes.
    let token: AdminToken?
    let services: AdminServices
    let route: AdminRoute

    var store: Store { services.store }
    var configuration: AdminConfiguration { services.configuration }

    /// Records this read as FORENSIC_ACCESS, or throws so the data is never sent (fail closed).
    func recordForensicAccess(filters: [(String, String)], resultCount: Int) async throws(LarderError) {
        guard let token else { preconditionFailure("a forensic read on an open route: \(route.path)") }
        try await services.forensicLog.record(.init(token: token, requestID: requestID, route: route.path,
                                                    filters: filters, resultCount: resultCount))
    }

    /// The path parameter `name` (present whenever the route matched).
    func parameter(_ name: String) -> String {
        guard let value = context.parameters.get(name) else { preconditionFailure("route \(route.path) has no {\(name)}") }
        return value
    }
}
