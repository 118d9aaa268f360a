import Hummingbird
import Larder

/// `ops:read` incidents: a filtered, paged listing and one incident with its audit trail, ledger
/// effects and compensation proposals. Every answer with data is recorded as FORENSIC_ACCESS
/// before it is sent.
enum IncidentRoutes {
    static let all: [AdminRoute] = [
        AdminRoute(path: "/v1/incidents", scope: .opsRead, handler: list),
        AdminRoute(path: "/v1/incidents/{id}", scope: .opsRead, handler: incident),
    ]

    static let queryParameters: Set<String> = ["state", "category", "severity", "since", "until", "overdue", "limit", "cursor"]

    /// Incidents scanned at most per `overdue=true` request: most open incidents within their
    /// deadline are skipped, so without a cap one request could walk every open incident. A page
    /// that hits it is short but carries a cursor.
    static let overdueScanIncidentsMax = 4 * IncidentReader.incidentsPerPageMax

    /// The filters of a listing, parsed.
    struct Filter: Sendable {
        var state: IncidentState?
        var category: IncidentCategory?
        var severity: Severity?
        var since: UnixMicros?
        var until: UnixMicros?
        /// Only open incidents past their acknowledgement deadline.
        var overdue = false
    }

    static func parseFilter(_ parameters: QueryParameters) throws(LarderError) -> Filter {
        var filter = Filter()
        filter.state = try parameters.enumeration("state", IncidentState.self)
        filter.category = try parameters.enumeration("category", IncidentCategory.self)
        filter.severity = try parameters.enumeration("severity", Severity.self)
        filter.since = try parameters.time("since")
        filter.until = try parameters.time("until")
        if let text = parameters["overdue"] {
            // Only `true`: `overdue=false` would read as "not overdue", which this route does not offer.
            guard text == "true" else {
                throw LarderError(.validationFailed, "overdue \(JSONWriter.quoted(text)) is not true (the only value it takes).")
            }
            filter.overdue = true
        }
        return filter
    }

    /// One page, newest first. With `overdue`, only open incidents past their deadline at
    /// `nowMicros`, read page by page from the open ones created early enough to be overdue.
    static func readPage(_ view: StoreView, filter: Filter, nowMicros: UnixMicros, limit: Int,
                     cursor: String?) throws(LarderError) -> (incidents: [Incident], nextCursor: String?) {
        // Filters combine: an empty interval, or overdue (open by definition) with another state,
        // matches nothing. Not malformed, so an empty page rather than a 400.
        if let since = filter.since, let until = filter.until, until <= since { return ([], nil) }
        if filter.overdue, let state = filter.state, state != .open { return ([], nil) }
        guard filter.overdue else {
            let page = try view.incidents.incidents(state: filter.state, category: filter.category, severity: filter.severity,
                                                    since: filter.since, until: filter.until, limit: limit, cursor: cursor)
            return (page.incidents, page.nextCursor)
        }
        // Overdue means created before now minus the deadline; the shortest deadline in play
        // bounds the creation times worth reading.
        let severities = filter.severity.map { [$0] } ?? Severity.allCases
        let deadlineSeconds = severities.map(\.acknowledgeWithinSeconds).min() ?? 0
        let until = min(filter.until ?? .max, nowMicros - deadlineSeconds * 1_000_000)
        if let since = filter.since, since >= until { return ([], nil) }
        var found: [Incident] = []
        var next = cursor
        var scanned = 0
        repeat {
            let page = try view.incidents.incidents(state: .open, category: filter.category, severity: filter.severity,
                                                    since: filter.since, until: until, limit: limit - found.count, cursor: next)
            scanned += page.incidents.count
            found += page.incidents.filter { $0.isOverdue(atMicros: nowMicros) }
            next = page.nextCursor
        } while next != nil && found.count < limit && scanned < overdueScanIncidentsMax
        return (found, next)
    }

    @Sendable static func list(_ call: AdminCall) async throws -> Response {
        let parameters = try QueryParameters(call.request.uri.query, allowed: queryParameters)
        let filter = try parseFilter(parameters)
        let pageSizeMax = min(call.configuration.pageSizeMax, IncidentReader.incidentsPerPageMax)
        let limit = try parameters.limit(default: min(call.configuration.pageSizeDefault, pageSizeMax), max: pageSizeMax)
        let cursor = try parameters.cursor(.incident), store = call.store
        // One instant for the whole answer: the overdue filter and every `overdue` field agree.
        let now = store.options.clock.now().unixMicros
        let page = try await offload {
            try store.read { view in try readPage(view, filter: filter, nowMicros: now, limit: limit, cursor: cursor) }
        }
        var recorded = AuditRoutes.filters(parameters)
        if filter.overdue { recorded.append(("overdue_at", RFC3339.format(now))) }
        try await call.recordForensicAccess(filters: recorded, resultCount: page.incidents.count)
        return Responses.json { o in
            o.array("incidents") { list in
                for incident in page.incidents { list.object { i in IncidentJSON.incident(incident, nowMicros: now, to: &i) } }
            }
            o.field("next_cursor", page.nextCursor)
        }
    }

    @Sendable static func incident(_ call: AdminCall) async throws -> Response {
        _ = try QueryParameters(call.request.uri.query, allowed: [])
        let id = try call.identifier("id"), store = call.store
        let now = store.options.clock.now().unixMicros
        // One snapshot: the proposals agree with the responses and transfers they produced.
        let found = try await offload {
            try store.read { view -> (IncidentDetail, [CompensationProposal])? in
                guard let detail = try view.incidents.detail(id: id) else { return nil }
                return (detail, try view.compensation.proposals(incident: id))
            }
        }
        guard let (detail, proposals) = found else {
            throw LarderError(.notFound, "There is no incident \(JSONWriter.quoted(id)).")
        }
        try await call.recordForensicAccess(filters: [("id", id)], resultCount: 1)
        return Responses.json { o in
            o.object("incident") { i in IncidentJSON.incident(detail.incident, nowMicros: now, to: &i) }
            // Rendered exactly as the audit routes render records, so a trail read here verifies
            // like one read from /v1/audit.
            o.array("trail") { list in for entry in detail.trail { entry.writeJSON(to: &list) } }
            o.array("transfers") { list in
                for transfer in detail.transfers { list.object { t in LedgerJSON.transfer(transfer, to: &t) } }
            }
            o.array("refunds") { list in
                for refund in detail.refunds { list.object { r in IncidentJSON.refund(refund, to: &r) } }
            }
            o.array("proposals") { list in
                for proposal in proposals { list.object { p in CompensationJSON.proposal(proposal, nowMicros: now, to: &p) } }
            }
        }
    }
}
