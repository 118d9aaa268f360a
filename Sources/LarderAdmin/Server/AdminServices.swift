import Hummingbird
import Larder

/// What every request of one server shares: the store, the tokens, the budget, the forensic log.
final class AdminServices: Sendable {
    let store: Store
    let configuration: AdminConfiguration
    let authenticator: TokenAuthenticator
    let budget: RequestBudget
    let forensicLog: ForensicAccessLog

    init(store: Store, tokens: TokenFile, configuration: AdminConfiguration) {
        self.store = store
        self.configuration = configuration
        authenticator = TokenAuthenticator(tokens: tokens.tokens)
        budget = RequestBudget(requestsMax: configuration.requestsPerWindowMax, windowSeconds: configuration.budgetWindowSeconds)
        forensicLog = ForensicAccessLog(store: store)
    }

    /// The gate of every route: a scoped route needs a valid, unexpired token (401), budget left
    /// (429) and the scope (403), in that order, before its handler runs.
    func serve(_ route: AdminRoute, request: Request, context: AdminRequestContext) async throws -> Response {
        var token: AdminToken?
        if let scope = route.scope {
            let now = store.options.clock.now().unixMicros
            let authenticated = try authenticator.authenticate(authorization: request.headers[.authorization], nowMicros: now)
            try budget.spend(tokenID: authenticated.id, nowMicros: now)
            try TokenAuthenticator.authorize(authenticated, for: scope)
            token = authenticated
        }
        return try await route.handler(AdminCall(request: request, context: context, requestID: context.requestID,
                                                 token: token, services: self, route: route))
    }
}
