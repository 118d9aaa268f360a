/// Every route of the admin server, in one list: the router registers exactly these, and the
/// OpenAPI test compares them with docs/admin-openapi.yaml.
enum AdminRoutes {
    static var all: [AdminRoute] {
        HealthRoutes.all + AuditRoutes.all + CheckpointRoutes.all + DecisionRoutes.all + IncidentRoutes.all + LedgerRoutes.all
            + ReportRoutes.all
    }
}
