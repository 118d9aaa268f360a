import HTTPTypes
import Hummingbird
import Larder

/// `audit:read`: queries, one record, the NDJSON export and chain verification. Every answer
/// with data is recorded as FORENSIC_ACCESS before it is sent.
enum AuditRoutes {
    static let all: [AdminRoute] = [
        AdminRoute(path: "/v1/audit", scope: .auditRead, handler: query),
        AdminRoute(path: "/v1/audit/{seq}", scope: .auditRead, handler: record),
        AdminRoute(path: "/v1/audit/export", scope: .auditRead, cost: .export, handler: export),
        AdminRoute(path: "/v1/audit/verify", scope: .auditRead, cost: .verify, handler: verify),
    ]

    /// One query of the audit log, as chosen by the request's selector.
    enum Query: Sendable {
        case sequence(from: UInt64, direction: ScanDirection)
        case time(since: UnixMicros, until: UnixMicros)
        case request(String)
        case ref(CorrelationRef)

        func run(_ audit: AuditLog, limit: Int, cursor: String?) throws(LarderError) -> (records: [AuditEntry], nextCursor: String?) {
            let page: AuditPage
            switch self {
            case .sequence(let from, let direction):
                page = try audit.records(fromSeq: from, limit: limit, direction: direction, cursor: cursor)
            case .time(let since, let until) where until <= since:
                // An empty interval, not a malformed one: no schema can tell the two apart.
                return ([], nil)
            case .time(let since, let until):
                page = try audit.records(since: since, until: until, limit: limit, cursor: cursor)
            case .request(let requestID):
                page = try audit.records(requestID: requestID, limit: limit, cursor: cursor)
            case .ref(let ref):
                page = try audit.records(ref: ref, limit: limit, cursor: cursor)
            }
            return (page.records, page.nextCursor)
        }
    }

    static let queryParameters: Set<String> = ["from_seq", "direction", "since", "until", "request_id", "ref", "limit", "cursor"]

    /// Parses the one selector a query must have: `from_seq` (+ `direction`), `since` + `until`,
    /// `request_id` or `ref`.
    static func parseQuery(_ parameters: QueryParameters) throws(LarderError) -> Query {
        let selectors = [parameters.contains("from_seq"), parameters.contains("since") || parameters.contains("until"),
                         parameters.contains("request_id"), parameters.contains("ref")]
        guard selectors.filter({ $0 }).count == 1 else {
            throw LarderError(.validationFailed, "Give exactly one of from_seq, since+until, request_id or ref.")
        }
        if parameters.contains("direction"), !parameters.contains("from_seq") {
            throw LarderError(.validationFailed, "direction applies to from_seq only.")
        }
        if let from = try parameters.seq("from_seq") {
            let text = parameters["direction"] ?? "forward"
            guard let direction = ScanDirection(rawValue: text) else {
                throw LarderError(.validationFailed, "direction \(JSONWriter.quoted(text)) is neither forward nor backward.")
            }
            return .sequence(from: from, direction: direction)
        }
        if parameters.contains("since") || parameters.contains("until") {
            guard let since = try parameters.time("since"), let until = try parameters.time("until") else {
                throw LarderError(.validationFailed, "A time range needs both since and until.")
            }
            return .time(since: since, until: until)
        }
        if let requestID = parameters["request_id"] {
            try WriteContext.validateIdentifier(requestID, field: "request_id")
            return .request(requestID)
        }
        let text = parameters["ref"] ?? ""
        guard let ref = CorrelationRef(parsing: text) else {
            throw LarderError(.validationFailed, "ref \(JSONWriter.quoted(text)) is not KIND:ID.")
        }
        try ref.validate()
        return .ref(ref)
    }

    @Sendable static func query(_ call: AdminCall) async throws -> Response {
        let parameters = try QueryParameters(call.request.uri.query, allowed: queryParameters)
        let query = try parseQuery(parameters)
        let limit = try parameters.limit(default: call.configuration.pageSizeDefault, max: call.configuration.pageSizeMax)
        let cursorShape: QueryParameters.CursorShape
        if case .time = query { cursorShape = .time } else { cursorShape = .seq }
        let cursor = try parameters.cursor(cursorShape), store = call.store
        let page = try await offload { try store.read { view in try query.run(view.audit, limit: limit, cursor: cursor) } }
        try await call.recordForensicAccess(filters: filters(parameters), resultCount: page.records.count)
        return Responses.json { o in
            o.array("records") { list in for entry in page.records { entry.writeJSON(to: &list) } }
            o.field("next_cursor", page.nextCursor)
        }
    }

    @Sendable static func record(_ call: AdminCall) async throws -> Response {
        _ = try QueryParameters(call.request.uri.query, allowed: [])
        let seq = try call.seq("seq")
        let store = call.store
        // Rendered from the record's bytes inside the snapshot (a view), never decoded.
        let body = try await offload {
            try store.read { view -> [UInt8]? in
                guard let record = try view.audit.recordView(seq: seq) else { return nil }
                var json = JSONWriter(capacity: 1_024)
                try record.writeJSON(to: &json)
                return json.utf8
            }
        }
        guard let body else { throw LarderError(.notFound, "There is no audit record \(seq).") }
        try await call.recordForensicAccess(filters: [("seq", String(seq))], resultCount: 1)
        return Responses.json(utf8: body)
    }

    /// Streams `from_seq...until_seq` as NDJSON, one snapshot per page of
    /// ``AdminConfiguration/exportPageRecords``: memory stays constant however long the range.
    ///
    /// The range is fixed against the head at the start, so the export is exactly what the
    /// FORENSIC_ACCESS record says (it never includes that record, or writes made meanwhile).
    /// A read failing mid-stream aborts the connection: the client sees a truncated chunked
    /// body, never a silently short export.
    @Sendable static func export(_ call: AdminCall) async throws -> Response {
        let parameters = try QueryParameters(call.request.uri.query, allowed: ["from_seq", "until_seq"])
        let from = try parameters.seq("from_seq", minimum: 1) ?? 1
        // A range that ends before it starts is empty, as one past the head is.
        let untilGiven = try parameters.seq("until_seq", minimum: 1)
        // Taken before any work, held until the last page is written (or the response is dropped).
        let lease = try call.services.acquireExpensiveSlot(for: call)
        let store = call.store, pageRecords = UInt64(call.configuration.exportPageRecords)
        let head = try await offload { try store.read { view in try view.audit.head().seq } }
        let until = min(untilGiven ?? head, head)
        // Sequence numbers run 1, 2, 3, … without gaps (verify checks it), so the range's size
        // is known before reading it.
        let count = until >= from ? Int(until - from + 1) : 0
        var recorded = filters(parameters)
        recorded.append(("until_seq_effective", String(until)))
        try await call.recordForensicAccess(filters: recorded, resultCount: count)
        var headers = HTTPFields()
        headers[.contentType] = Responses.ndjsonContentType
        let services = call.services, tokenID = call.token?.id ?? "", pageUnits = call.configuration.costs.exportPageUnits
        let body = ResponseBody { writer in
            defer { lease.release() }
            var next = from
            var pages = 0
            while next <= until {
                let start = next
                let limit = Int(min(pageRecords, until - start + 1))
                // The admission cost covers the first page; each further one is charged as it
                // streams, even past the budget (the token then waits it out).
                if pages > 0 { services.budget.charge(tokenID: tokenID, units: pageUnits, nowMicros: services.nowMicros) }
                // Each page rendered from record views inside its snapshot: no record decoded.
                let (chunk, last) = try await offload {
                    try store.read { view -> ([UInt8], UInt64?) in
                        var json = JSONWriter(capacity: 1_024 * limit)
                        var last: UInt64?
                        try view.audit.forEachRecord(fromSeq: start, limit: limit) { record in
                            try record.writeJSON(to: &json)
                            json.newline()
                            last = record.seq
                        }
                        return (json.utf8, last)
                    }
                }
                guard let last else { break }
                try await writer.write(ByteBuffer(bytes: chunk))
                pages += 1
                next = last + 1
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// The chain, index and state verification. A pass already running is shared (see
    /// ``SharedVerify``); a new one needs an expensive slot.
    @Sendable static func verify(_ call: AdminCall) async throws -> Response {
        _ = try QueryParameters(call.request.uri.query, allowed: [])
        let services = call.services, store = call.store
        let report: VerifyReport
        do {
            report = try await services.sharedVerify.report(slots: services.expensive, route: call.route.path) {
                try await offload { try services.verifyPass(store) }
            }
        } catch let error as LarderError where error.code == .rateLimited {
            services.refund(call)
            throw error
        }
        try await call.recordForensicAccess(filters: [], resultCount: report.recordsChecked)
        return Responses.json { o in report.writeJSONFields(to: &o) }
    }

    /// The filters of a query as given, for the FORENSIC_ACCESS record.
    static func filters(_ parameters: QueryParameters) -> [(String, String)] {
        parameters.names.map { ($0, parameters[$0] ?? "") }
    }
}
