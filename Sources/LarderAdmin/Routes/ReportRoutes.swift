import Hummingbird
import Larder

/// `ops:read` reports: the cost of incidents. Every answer is recorded as FORENSIC_ACCESS before
/// it is sent.
enum ReportRoutes {
    static let all: [AdminRoute] = [
        AdminRoute(path: "/v1/reports/incident-costs", scope: .opsRead, handler: incidentCosts),
    ]

    static let queryParameters: Set<String> = ["since", "until", "group_by"]

    @Sendable static func incidentCosts(_ call: AdminCall) async throws -> Response {
        let parameters = try QueryParameters(call.request.uri.query, allowed: queryParameters)
        let since = try parameters.time("since")
        let until = try parameters.time("until")
        var groupBy = IncidentCostGrouping.category
        if let text = parameters["group_by"] {
            guard let parsed = IncidentCostGrouping(text) else {
                throw LarderError(.validationFailed,
                                  "group_by \(JSONWriter.quoted(text)) is not category, severity, day or ref:KIND (KIND: 1 to 32 of a-z, 0-9 and _).")
            }
            groupBy = parsed
        }
        let store = call.store, grouping = groupBy
        let report = try await offload {
            try store.read { view in try view.reports.incidentCosts(since: since, until: until, groupBy: grouping) }
        }
        try await call.recordForensicAccess(filters: AuditRoutes.filters(parameters), resultCount: report.rows.count)
        return Responses.json { o in report.writeJSON(to: &o) }
    }
}
