/// Every route of the admin server, in one list: the router registers exactly these, and the
/// OpenAPI test compares them with docs/admin-openapi.yaml.
///
/// The `ops:read` routes for incidents (`/v1/incidents`, `/v1/incidents/{id}`) and ledger
/// accounts (`/v1/ledger/accounts/{id}`) belong here too, as `IncidentRoutes.all` and
/// `LedgerRoutes.all`, once Larder has incident and ledger read APIs.
enum AdminRoutes {
    static var all: [AdminRoute] {
        HealthRoutes.all + AuditRoutes.all + DecisionRoutes.all
    }
}
