public import Larder
import Foundation
import Logging
import PostgresNIO

/// How the fleet's incident cost report groups incidents: as a box's report does, or by box.
public enum FleetCostGrouping: Sendable, Hashable, CustomStringConvertible {
    /// By category, severity, day or ref, as `larder report incident-costs` on a box.
    case incidents(IncidentCostGrouping)
    /// By the box the incidents were recorded on.
    case box

    /// Parses `box`, or what ``IncidentCostGrouping/init(_:)`` parses.
    public init?(_ text: String) {
        if text == "box" {
            self = .box
        } else if let grouping = IncidentCostGrouping(text) {
            self = .incidents(grouping)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .incidents(let grouping): grouping.description
        case .box: "box"
        }
    }
}

/// What the incidents recorded on the fleet's boxes cost: the same figures as a box's own
/// ``IncidentCostReport``, computed from the audit records the boxes shipped.
public struct FleetIncidentCostReport: Sendable, Hashable {
    /// One box's figures (for ``FleetCostGrouping/box``).
    public struct BoxRow: Sendable, Hashable {
        public let boxID: String
        public let figures: IncidentCostFigures
    }

    public let groupBy: FleetCostGrouping
    /// The report as a box renders it; for ``FleetCostGrouping/box`` its rows are empty (see
    /// ``boxRows``) and only its range and total count.
    public let report: IncidentCostReport
    /// For ``FleetCostGrouping/box``: one row per box with incidents in the range, by box id.
    public let boxRows: [BoxRow]
    /// Boxes with incidents in the range.
    public let boxes: Int
    /// Records of the events the report reads whose payload the fleet database could not keep as
    /// `jsonb` (their `payload` column is NULL): they are not counted. Normally 0.
    public let recordsSkipped: Int

    /// `{"group_by":…,"since":…,"until":…,"by_<group>":[…],"total":{…},"boxes":…,"records_skipped":…}`:
    /// for a box's groupings, the fields of `GET /v1/reports/incident-costs` first, in its order;
    /// by box, `by_box` rows carry `box_id`.
    public var jsonText: String {
        var json = JSONWriter()
        json.object { o in
            switch groupBy {
            case .incidents:
                report.writeJSON(to: &o)
            case .box:
                o.field("group_by", "box")
                o.field("since", report.sinceMicros.map(RFC3339.format))
                o.field("until", report.untilMicros.map(RFC3339.format))
                o.array("by_box") { list in
                    for row in boxRows {
                        list.object { r in
                            r.field("box_id", row.boxID)
                            row.figures.writeJSONFields(to: &r)
                        }
                    }
                }
                o.object("total") { t in report.total.writeJSONFields(to: &t) }
            }
            o.field("boxes", boxes)
            o.field("records_skipped", recordsSkipped)
        }
        return json.text
    }
}

/// Reports over the fleet database.
///
/// ```swift
/// let report = try await FleetReports.incidentCosts(destination, groupBy: .incidents(.category))
/// print(report.jsonText)
/// ```
public enum FleetReports {
    /// Incidents one report covers at most (a box's own report stops at 5,000; the fleet
    /// database is where the wide questions go, but not unbounded ones).
    public static let incidentsPerReportMax = 1_000_000

    /// The events whose records the incident cost report reads.
    static let costEvents = [
        "OP_FAILURE_RECORDED", "OP_CREDIT_GRANTED", "OP_REFUND_ISSUED", "OP_REFUND_OUTCOME_RECORDED", "OP_RESPONSE_APPLIED",
        "COMPENSATION_PROPOSED", "COMPENSATION_APPROVED", "COMPENSATION_REJECTED",
        "LEDGER_TRANSFER_POSTED", "LEDGER_TRANSFER_PENDING", "LEDGER_PENDING_POSTED", "LEDGER_PENDING_VOIDED", "LEDGER_TRANSFER_REVERSED",
    ]

    /// The cost of the incidents recorded in `since ..< until` on every box (or `boxID`), as a
    /// box computes it from its tables, here from the shipped records alone (docs/FORMAT.md
    /// section 7 has the payloads it reads): standing credits (a credit whose transfer was
    /// reversed costs nothing), refunds requested and succeeded, compensation still pending,
    /// and cancelled cycles with the packs of their transfers that were given back.
    ///
    /// - throws: VALIDATION_FAILED when `since` is after `until` or the range holds more than
    ///   ``incidentsPerReportMax`` incidents; COMPUTE_ERROR when a sum overflows; NOT_FOUND when
    ///   the database has no fleet tables; STORAGE_UNAVAILABLE or PERSISTENCE_ERROR (external
    ///   dependency) when it cannot be read.
    public static func incidentCosts(_ destination: FleetDestination, boxID: String? = nil, since: UnixMicros? = nil,
                                     until: UnixMicros? = nil,
                                     groupBy: FleetCostGrouping = .incidents(.category)) async throws(LarderError) -> FleetIncidentCostReport {
        if let since, let until, since > until {
            throw LarderError(.validationFailed, "--since \(RFC3339.format(since)) is after --until \(RFC3339.format(until)).")
        }
        let configuration = try destination.configuration()
        let logger = FleetLogging.silent
        let rows: [IncidentRow]
        let skipped: Int
        do {
            (rows, skipped) = try await withFleetConnection(configuration) { connection in
                guard try await FleetSchema.currentVersion(connection, logger: logger) != nil else {
                    throw LarderError(.notFound, "\(destination.redacted) holds no Larder fleet tables (nothing was shipped there).")
                }
                return try await incidentRows(on: connection, boxID: boxID, since: since, until: until)
            }
        } catch {
            throw FleetFailure.larderError(error, doing: "Computing incident costs in \(destination.redacted)")
        }
        return try assemble(rows, groupBy: groupBy, since: since, until: until, recordsSkipped: skipped)
    }

    /// One incident and what it cost, as the query returns it.
    struct IncidentRow {
        let boxID: String
        let category: String
        let severity: String
        let timeMicros: UnixMicros
        /// `refs::text` of its `OP_FAILURE_RECORDED` record.
        let refsJSON: String
        let incidentID: String
        let figures: IncidentCostFigures
    }

    static func incidentRows(on connection: PostgresConnection, boxID: String?, since: UnixMicros?,
                             until: UnixMicros?) async throws -> ([IncidentRow], Int) {
        let logger = FleetLogging.silent
        let anyBox = boxID == nil, box = boxID ?? ""
        let anySince = since == nil, anyUntil = until == nil
        let events = costEvents
        // One pass over the table keeps the records of the events the report reads; every figure
        // is then joined per (box, incident). Ids are only unique within a box.
        let query: PostgresQuery = """
            WITH relevant AS MATERIALIZED (
                SELECT box_id, event, time, failure_category, refs, payload FROM larder_audit
                WHERE event = ANY(\(events)) AND payload IS NOT NULL AND (\(anyBox) OR box_id = \(box))
            ),
            incidents AS (
                SELECT box_id, payload->>'incident_id' AS incident_id, failure_category AS category,
                       payload->>'severity' AS severity, (extract(epoch FROM time) * 1000000)::bigint AS time_micros, refs
                FROM relevant
                WHERE event = 'OP_FAILURE_RECORDED'
                  AND (\(anySince) OR time >= 'epoch'::timestamptz + \(since ?? 0) * interval '1 microsecond')
                  AND (\(anyUntil) OR time < 'epoch'::timestamptz + \(until ?? 0) * interval '1 microsecond')
            ),
            resolutions AS (
                SELECT DISTINCT box_id, payload->>'target' AS target, payload->>'kind' AS kind FROM relevant
                WHERE event IN ('LEDGER_TRANSFER_REVERSED', 'LEDGER_PENDING_VOIDED', 'LEDGER_PENDING_POSTED')
            ),
            credits AS (
                SELECT c.box_id, c.payload->>'incident_id' AS incident_id, sum((c.payload->>'amount_cents')::numeric) AS cents
                FROM relevant c
                WHERE c.event = 'OP_CREDIT_GRANTED'
                  AND NOT EXISTS (SELECT 1 FROM resolutions r WHERE r.box_id = c.box_id AND r.target = c.payload->>'transfer_id')
                GROUP BY 1, 2
            ),
            refunds AS (
                SELECT i.box_id, i.payload->>'incident_id' AS incident_id, sum((i.payload->>'amount_cents')::numeric) AS requested,
                       sum(CASE WHEN EXISTS (
                               SELECT 1 FROM relevant o WHERE o.box_id = i.box_id AND o.event = 'OP_REFUND_OUTCOME_RECORDED'
                               AND o.payload->>'refund_id' = i.payload->>'refund_id' AND o.payload->>'status' = 'succeeded')
                           THEN (i.payload->>'amount_cents')::numeric ELSE 0 END) AS succeeded
                FROM relevant i WHERE i.event = 'OP_REFUND_ISSUED'
                GROUP BY 1, 2
            ),
            pending AS (
                SELECT p.box_id, p.payload->>'incident_id' AS incident_id, sum((p.payload->>'total_cents')::numeric) AS cents
                FROM relevant p
                WHERE p.event = 'COMPENSATION_PROPOSED' AND p.payload->>'state' = 'pending'
                  AND NOT EXISTS (
                      SELECT 1 FROM relevant d WHERE d.box_id = p.box_id
                      AND d.event IN ('COMPENSATION_APPROVED', 'COMPENSATION_REJECTED')
                      AND d.payload->>'proposal_id' = p.payload->>'proposal_id')
                GROUP BY 1, 2
            ),
            given_back AS (
                SELECT t.box_id, t.refs, (t.payload->>'amount')::numeric AS amount FROM relevant t
                WHERE t.event IN ('LEDGER_TRANSFER_POSTED', 'LEDGER_TRANSFER_PENDING', 'LEDGER_PENDING_POSTED')
                  AND t.refs @> '[{"kind": "cycle"}]'
                  AND EXISTS (
                      SELECT 1 FROM resolutions r WHERE r.box_id = t.box_id AND r.target = t.payload->>'transfer_id'
                      AND r.kind = CASE WHEN t.payload->>'kind' = 'pending' THEN 'voidPending' ELSE 'reversal' END)
            ),
            cancellations AS (
                SELECT c.box_id, c.payload->>'incident_id' AS incident_id, count(*) AS cycles,
                       sum((SELECT coalesce(sum(g.amount), 0) FROM given_back g
                            WHERE g.box_id = c.box_id
                              AND g.refs @> jsonb_build_array(jsonb_build_object('kind', 'cycle', 'id', c.payload->>'cycle')))) AS packs
                FROM relevant c WHERE c.event = 'OP_RESPONSE_APPLIED' AND c.payload->>'type' = 'cancellation'
                GROUP BY 1, 2
            )
            SELECT i.box_id, i.incident_id, i.category, i.severity, i.time_micros, i.refs::text,
                   coalesce(cr.cents, 0)::text, coalesce(rf.succeeded, 0)::text, coalesce(rf.requested, 0)::text,
                   coalesce(p.cents, 0)::text, coalesce(ca.cycles, 0), coalesce(ca.packs, 0)::text
            FROM incidents i
            LEFT JOIN credits cr USING (box_id, incident_id)
            LEFT JOIN refunds rf USING (box_id, incident_id)
            LEFT JOIN pending p USING (box_id, incident_id)
            LEFT JOIN cancellations ca USING (box_id, incident_id)
            ORDER BY i.box_id, i.time_micros
            LIMIT \(incidentsPerReportMax + 1)
            """
        var rows: [IncidentRow] = []
        for try await row in try await connection.query(query, logger: logger) {
            let (box, incident, category, severity, time, refs, credits, refunds, requested, pending, cycles, packs) = try row.decode(
                (String, String?, String?, String?, Int64, String, String, String, String, String, Int64, String).self)
            guard rows.count < incidentsPerReportMax else {
                throw LarderError(.validationFailed,
                                  "The range holds more than \(incidentsPerReportMax) incidents, the most one report covers; narrow --since and --until, or give --box-id.")
            }
            var figures = IncidentCostFigures()
            figures.incidents = 1
            figures.creditsCents = try cents(credits)
            figures.refundsCents = try cents(refunds)
            figures.refundsRequestedCents = try cents(requested)
            figures.pendingCompensationCents = try cents(pending)
            figures.cancelledCycles = Int(cycles)
            figures.cancelledPacks = try cents(packs)
            rows.append(IncidentRow(boxID: box, category: category ?? "", severity: severity ?? "", timeMicros: time,
                                    refsJSON: refs, incidentID: incident ?? "", figures: figures))
        }
        var skipped = 0
        for try await count in try await connection.query("""
            SELECT count(*) FROM larder_audit WHERE event = ANY(\(events)) AND payload IS NULL AND (\(anyBox) OR box_id = \(box))
            """, logger: logger).decode(Int64.self) {
            skipped = Int(count)
        }
        return (rows, skipped)
    }

    /// A sum as PostgreSQL's `numeric` prints it; one beyond `UInt64` is a COMPUTE_ERROR, as on a box.
    static func cents(_ text: String) throws(LarderError) -> UInt64 {
        guard let value = UInt64(text) else {
            throw LarderError(.computeError, "An incident cost sum (\(text)) is not a whole number up to \(UInt64.max).")
        }
        return value
    }

    /// Groups the incidents the way a box's report does (same keys, same order).
    static func assemble(_ incidents: [IncidentRow], groupBy: FleetCostGrouping, since: UnixMicros?, until: UnixMicros?,
                         recordsSkipped: Int) throws(LarderError) -> FleetIncidentCostReport {
        var total = IncidentCostFigures()
        var groups: [String: (refIDs: [String]?, figures: IncidentCostFigures)] = [:]
        for incident in incidents {
            try add(incident.figures, to: &total)
            let key: String
            var refIDs: [String]?
            switch groupBy {
            case .box: key = incident.boxID
            case .incidents(.category): key = incident.category
            case .incidents(.severity): key = incident.severity
            case .incidents(.day): key = String(RFC3339.format(incident.timeMicros).prefix(10))
            case .incidents(.ref(let kind)):
                let ids = refIDsOf(kind, incident)
                key = ids.joined(separator: "+")
                refIDs = ids
            }
            var group = groups[key] ?? (refIDs, IncidentCostFigures())
            try add(incident.figures, to: &group.figures)
            groups[key] = group
        }
        let boxes = Set(incidents.map(\.boxID)).count
        let sorted = groups.sorted { order($0.key, groupBy).lexicographicallyPrecedes(order($1.key, groupBy)) }
        let storeGrouping: IncidentCostGrouping
        var rows: [IncidentCostReport.Row] = []
        var boxRows: [FleetIncidentCostReport.BoxRow] = []
        switch groupBy {
        case .incidents(let grouping):
            storeGrouping = grouping
            rows = sorted.map { IncidentCostReport.Row(key: $0.key, refIDs: $0.value.refIDs, figures: $0.value.figures) }
        case .box:
            storeGrouping = .category
            boxRows = sorted.map { FleetIncidentCostReport.BoxRow(boxID: $0.key, figures: $0.value.figures) }
        }
        let report = IncidentCostReport(groupBy: storeGrouping, sinceMicros: since, untilMicros: until, rows: rows, total: total)
        return FleetIncidentCostReport(groupBy: groupBy, report: report, boxRows: boxRows, boxes: boxes, recordsSkipped: recordsSkipped)
    }

    /// The ids of the incident's refs of `kind` (its own `incident:<id>` ref aside), distinct,
    /// in byte order.
    static func refIDsOf(_ kind: String, _ incident: IncidentRow) -> [String] {
        guard case .array(let items)? = JSONEquality.parse(incident.refsJSON) else { return [] }
        var ids = Set<String>()
        for item in items {
            guard case .object(let fields) = item, case .string(let refKind)? = fields["kind"], case .string(let id)? = fields["id"],
                  refKind == kind, !(kind == "incident" && id == incident.incidentID) else { continue }
            ids.insert(id)
        }
        return ids.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// Categories in the policy's order, the rest by their bytes, incidents without the ref last.
    static func order(_ key: String, _ groupBy: FleetCostGrouping) -> [UInt8] {
        switch groupBy {
        case .incidents(.category):
            [UInt8(IncidentCategory.allCases.firstIndex { $0.rawValue == key } ?? 255)] + Array(key.utf8)
        case .incidents(.ref):
            key.isEmpty ? [0xFF] : Array(key.utf8)
        default:
            Array(key.utf8)
        }
    }

    static func add(_ part: IncidentCostFigures, to sum: inout IncidentCostFigures) throws(LarderError) {
        func plus(_ a: UInt64, _ b: UInt64) throws(LarderError) -> UInt64 {
            let (value, overflow) = a.addingReportingOverflow(b)
            guard !overflow else { throw LarderError(.computeError, "An incident cost sum exceeds \(UInt64.max).") }
            return value
        }
        sum.incidents += part.incidents
        sum.creditsCents = try plus(sum.creditsCents, part.creditsCents)
        sum.refundsCents = try plus(sum.refundsCents, part.refundsCents)
        sum.refundsRequestedCents = try plus(sum.refundsRequestedCents, part.refundsRequestedCents)
        sum.pendingCompensationCents = try plus(sum.pendingCompensationCents, part.pendingCompensationCents)
        sum.cancelledCycles += part.cancelledCycles
        sum.cancelledPacks = try plus(sum.cancelledPacks, part.cancelledPacks)
    }
}
