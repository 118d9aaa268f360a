import Hummingbird
import Larder
import Logging

/// One route of the admin server: its path (OpenAPI syntax, `{name}` for a parameter), the
/// scope it needs (nil for the open probes), what it costs, and its handler. Authentication, the
/// request budget and the scope check run before the handler, in
/// ``AdminServices/serve(_:request:context:)``, so a handler cannot forget them.
struct AdminRoute: Sendable {
    let path: String
    /// The router's pattern when it differs from ``path``: `**` for a parameter that spans
    /// several path segments (a tlog tile path), which OpenAPI cannot express.
    var routerPath: String?
    let scope: TokenScope?
    var cost: Cost = .page
    let handler: @Sendable (AdminCall) async throws -> Response

    init(path: String, routerPath: String? = nil, scope: TokenScope?, cost: Cost = .page,
         handler: @escaping @Sendable (AdminCall) async throws -> Response) {
        self.path = path
        self.routerPath = routerPath
        self.scope = scope
        self.cost = cost
        self.handler = handler
    }

    /// What a request of this route takes from its token's budget (``AdminCosts``), charged when
    /// the request is admitted. Expensive routes also need one of the server's expensive slots.
    enum Cost: Sendable {
        /// A page, one record, one incident, account or decision.
        case page
        /// Reads and hashes the whole store.
        case verify
        /// Streams a range; further pages are charged as they stream.
        case export

        func units(_ costs: AdminCosts) -> Int {
            switch self {
            case .page: costs.pageUnits
            case .verify: costs.verifyUnits
            case .export: costs.exportUnits
            }
        }
    }
}

/// What a handler gets: the request, its ids, the authenticated token (for scoped routes) and
/// the server's shared state.
struct AdminCall: Sendable {
    let request: Request
    let context: AdminRequestContext
    /// Made by the server for this request (``AdminRequestContext/requestID``).
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
        let seq = try await services.forensicLog.record(.init(token: token, requestID: requestID, clientRequestID: context.clientRequestID,
                                                              route: route.path, filters: filters, resultCount: resultCount))
        context.logger.info("Forensic read recorded (FORENSIC_ACCESS)", metadata: [
            "larder.admin.token_id": "\(token.id)",
            "larder.admin.route": "\(route.path)",
            "larder.admin.result_count": "\(resultCount)",
            "larder.audit_seq": "\(seq.map(String.init) ?? "none")",
        ])
    }

    /// The path parameter `name`, percent-decoded once and then checked to be a Larder
    /// identifier (1 to 128 bytes of letters, digits and `. _ : - / @ #`).
    ///
    /// The router matches the raw path, so `%2F` in a segment stays inside the parameter and ids
    /// holding `/` or `#` can be addressed; decoding once means `%252F` is the text `%2F`, which
    /// no identifier contains, rather than a second chance to smuggle a separator.
    /// - throws: VALIDATION_FAILED for a malformed escape or a value that is not an identifier.
    func identifier(_ name: String) throws(LarderError) -> String {
        guard let raw = context.parameters.get(name) else { preconditionFailure("route \(route.path) has no {\(name)}") }
        guard let value = StrictText.percentDecoded(raw) else {
            throw LarderError(.validationFailed, "The path parameter \(name) \(JSONWriter.quoted(raw)) is not percent-encoded correctly.")
        }
        try WriteContext.validateIdentifier(value, field: "The path parameter \(name)")
        return value
    }

    /// The path parameter `name` as a sequence number: decoded once, digits only, 1...int64 max.
    /// - throws: VALIDATION_FAILED otherwise.
    func seq(_ name: String) throws(LarderError) -> UInt64 {
        guard let raw = context.parameters.get(name) else { preconditionFailure("route \(route.path) has no {\(name)}") }
        guard let text = StrictText.percentDecoded(raw), let seq = StrictText.unsigned(text, max: StrictText.seqMax), seq >= 1 else {
            throw LarderError(.validationFailed,
                              "\(JSONWriter.quoted(raw)) is not an audit sequence number in 1...\(StrictText.seqMax) (digits only).")
        }
        return seq
    }
}
