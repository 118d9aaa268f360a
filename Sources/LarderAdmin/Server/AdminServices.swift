import Hummingbird
import Larder

/// What every request of one server shares: the store, the tokens, the budget, the expensive
/// slots, the running verify, the forensic log.
final class AdminServices: Sendable {
    let store: Store
    let configuration: AdminConfiguration
    let authenticator: TokenAuthenticator
    let budget: RequestBudget
    let expensive: ExpensiveRequests
    let sharedVerify = SharedVerify()
    let forensicLog: ForensicAccessLog
    let metrics: AdminMetrics
    /// One verification pass; `Store.verify()` except in tests that need to hold a pass open.
    let verifyPass: @Sendable (Store) throws -> VerifyReport

    init(store: Store, tokens: TokenFile, configuration: AdminConfiguration, metrics: AdminMetrics,
         verifyPass: @escaping @Sendable (Store) throws -> VerifyReport = { try $0.verify() }) {
        self.store = store
        self.configuration = configuration
        authenticator = TokenAuthenticator(tokens: tokens.tokens)
        budget = RequestBudget(unitsMax: configuration.budgetUnitsPerWindowMax, windowSeconds: configuration.budgetWindowSeconds)
        expensive = ExpensiveRequests(slotsMax: configuration.expensiveRequestsConcurrentMax)
        forensicLog = ForensicAccessLog(store: store)
        self.metrics = metrics
        self.verifyPass = verifyPass
    }

    var nowMicros: UnixMicros { store.options.clock.now().unixMicros }

    /// The gate of every route: a scoped route needs a valid, unexpired token (401), budget left
    /// for the route's cost (429) and the scope (403), in that order, before its handler runs.
    func serve(_ route: AdminRoute, request: Request, context: AdminRequestContext) async throws -> Response {
        var token: AdminToken?
        if let scope = route.scope {
            let now = nowMicros
            let authenticated = try authenticator.authenticate(authorization: request.headers[.authorization], nowMicros: now)
            do {
                try budget.spend(tokenID: authenticated.id, cost: route.cost.units(configuration.costs), nowMicros: now)
                try TokenAuthenticator.authorize(authenticated, for: scope)
            } catch {
                // Logged here, where the token is known; the middleware renders it.
                let response = Responses.error(error, requestID: context.requestID)
                AdminMiddleware.logRefusal(error, response: response, request: request, context: context, tokenID: authenticated.id)
                throw AdminRefusal(error, logged: true)
            }
            token = authenticated
        }
        return try await route.handler(AdminCall(request: request, context: context, requestID: context.requestID,
                                                 token: token, services: self, route: route))
    }

    /// Takes an expensive slot for `call`, giving its token back the route's cost when none is
    /// free: a request that did not run should not count against the reader.
    func acquireExpensiveSlot(for call: AdminCall) throws(LarderError) -> ExpensiveRequests.Lease {
        do {
            return try expensive.acquire(route: call.route.path)
        } catch {
            refund(call)
            throw error
        }
    }

    /// Gives `call`'s token back its route's admission cost.
    func refund(_ call: AdminCall) {
        guard let token = call.token else { return }
        budget.refund(tokenID: token.id, units: call.route.cost.units(configuration.costs), nowMicros: nowMicros)
    }
}
