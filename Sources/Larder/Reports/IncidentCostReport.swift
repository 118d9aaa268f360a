import LarderStorage
import Foundation

/// How an incident cost report groups incidents: by category, severity, the UTC day they were
/// recorded, or the ids of one kind of ref they carry (`ref:route`, `ref:vendor`, …).
public enum IncidentCostGrouping: Sendable, Hashable, CustomStringConvertible {
    case category
    case severity
    case day
    /// By the incident's refs of this kind: an incident carrying several is one row under all of
    /// them together (`R4+R7`), one carrying none a row of its own, so rows never overlap.
    case ref(kind: String)

    /// Parses `category`, `severity`, `day` or `ref:<kind>` (kind: 1 to 32 of a-z, 0-9 and _).
    public init?(_ text: String) {
        switch text {
        case "category": self = .category
        case "severity": self = .severity
        case "day": self = .day
        default:
            guard text.hasPrefix("ref:") else { return nil }
            let kind = String(text.dropFirst(4))
            guard (try? CorrelationRef(kind, "x").validate()) != nil else { return nil }
            self = .ref(kind: kind)
        }
    }

    public var description: String {
        switch self {
        case .category: "category"
        case .severity: "severity"
        case .day: "day"
        case .ref(let kind): "ref:\(kind)"
        }
    }

    /// The name of the rows in the JSON: `by_category`, `by_severity`, `by_day`, `by_ref`.
    public var rowsName: String {
        switch self {
        case .category: "by_category"
        case .severity: "by_severity"
        case .day: "by_day"
        case .ref: "by_ref"
        }
    }
}

/// What a set of incidents cost. Money is in cents of the credit ledger and of refunds; packs in
/// the unit of the ledgers the cancelled cycles were consumed on.
public struct IncidentCostFigures: Sendable, Hashable {
    public var incidents = 0
    /// Credits granted by the incidents' credit responses and still standing (a reversed credit,
    /// such as one an admin overrode, counts nothing).
    public var creditsCents: UInt64 = 0
    /// Refunds Billing reported succeeded.
    public var refundsCents: UInt64 = 0
    /// Refunds requested, whatever Billing answered.
    public var refundsRequestedCents: UInt64 = 0
    /// Compensation proposed and still waiting for a decision (credit and refund parts).
    public var pendingCompensationCents: UInt64 = 0
    /// Cycles the incidents' cancellation responses cancelled.
    public var cancelledCycles = 0
    /// Packs of those cycles given back: transfers tagged with the cycle that were reversed, or
    /// reserved (pending) and voided.
    public var cancelledPacks: UInt64 = 0

    public init() {}

    /// What went out: standing credits and succeeded refunds.
    public var costCents: UInt64 { creditsCents.addingReportingOverflow(refundsCents).overflow ? .max : creditsCents + refundsCents }

    mutating func add(_ other: IncidentCostFigures) throws(LarderError) {
        func sum(_ a: UInt64, _ b: UInt64) throws(LarderError) -> UInt64 {
            let (value, overflow) = a.addingReportingOverflow(b)
            guard !overflow else { throw LarderError(.computeError, "An incident cost sum exceeds \(UInt64.max).") }
            return value
        }
        incidents += other.incidents
        creditsCents = try sum(creditsCents, other.creditsCents)
        refundsCents = try sum(refundsCents, other.refundsCents)
        refundsRequestedCents = try sum(refundsRequestedCents, other.refundsRequestedCents)
        pendingCompensationCents = try sum(pendingCompensationCents, other.pendingCompensationCents)
        cancelledCycles += other.cancelledCycles
        cancelledPacks = try sum(cancelledPacks, other.cancelledPacks)
    }

    /// The figures as JSON fields, in the order of docs/admin-openapi.yaml.
    public func writeJSONFields(to o: inout JSONWriter) {
        o.field("incidents", incidents)
        o.field("credits_cents", creditsCents)
        o.field("refunds_cents", refundsCents)
        o.field("refunds_requested_cents", refundsRequestedCents)
        o.field("pending_compensation_cents", pendingCompensationCents)
        o.field("cancelled_cycles", cancelledCycles)
        o.field("cancelled_packs", cancelledPacks)
        o.field("cost_cents", costCents)
    }
}

/// The cost of incidents recorded in a time range, grouped one way. The total is the sum of the
/// rows: every incident is in exactly one row.
///
/// ```swift
/// let report = try store.read { view in try view.reports.incidentCosts(groupBy: .category) }
/// for row in report.rows { print(row.key, row.figures.costCents) }
/// ```
public struct IncidentCostReport: Sendable, Hashable {
    /// One group of incidents and what they cost.
    public struct Row: Sendable, Hashable {
        /// The category, the severity (`P1`), the day (`2026-11-23`), or the ref ids joined by
        /// `+` (empty for incidents without a ref of that kind).
        public let key: String
        /// For ``IncidentCostGrouping/ref(kind:)``: the ids, sorted.
        public let refIDs: [String]?
        public let figures: IncidentCostFigures

        /// A row with its key, ref ids (for ``IncidentCostGrouping/ref(kind:)``) and figures.
        public init(key: String, refIDs: [String]?, figures: IncidentCostFigures) {
            self.key = key
            self.refIDs = refIDs
            self.figures = figures
        }
    }

    public let groupBy: IncidentCostGrouping
    /// Incidents recorded at or after this time (nil: from the first).
    public let sinceMicros: UnixMicros?
    /// Incidents recorded before this time (nil: up to now).
    public let untilMicros: UnixMicros?
    /// In the grouping's order: categories and severities as the policy lists them, days and ref
    /// ids ascending (incidents without the ref last).
    public let rows: [Row]
    public let total: IncidentCostFigures

    /// A report whose figures were computed elsewhere: the fleet database computes the same
    /// report from the audit records the boxes shipped (`LarderFleet`), and renders it as a box
    /// does. `rows` must be in the grouping's order and `total` their sum.
    public init(groupBy: IncidentCostGrouping, sinceMicros: UnixMicros?, untilMicros: UnixMicros?, rows: [Row],
                total: IncidentCostFigures) {
        self.groupBy = groupBy
        self.sinceMicros = sinceMicros
        self.untilMicros = untilMicros
        self.rows = rows
        self.total = total
    }

    /// The report as the admin server serves it:
    /// `{"group_by":…,"since":…,"until":…,"by_<group>":[…],"total":{…}}`.
    public func writeJSON(to o: inout JSONWriter) {
        o.field("group_by", groupBy.description)
        o.field("since", sinceMicros.map(RFC3339.format))
        o.field("until", untilMicros.map(RFC3339.format))
        o.array(groupBy.rowsName) { list in
            for row in rows {
                list.object { r in
                    switch groupBy {
                    case .category: r.field("category", row.key)
                    case .severity: r.field("severity", row.key)
                    case .day: r.field("day", row.key)
                    case .ref(let kind):
                        r.field("ref_kind", kind)
                        r.array("ref_ids") { a in for id in row.refIDs ?? [] { a.value(id) } }
                    }
                    row.figures.writeJSONFields(to: &r)
                }
            }
        }
        o.object("total") { t in total.writeJSONFields(to: &t) }
    }
}

/// Reports computed from the ledger, the incidents and the proposals in one snapshot. Reached as
/// `view.reports`.
public struct ReportReader {
    let txn: TableReader
    let tables: StoreTables

    /// Incidents one report covers at most: a wider range is refused, so that one report cannot
    /// read the whole store.
    public static let incidentsPerReportMax = 5_000
    /// Audit records about one cancelled cycle read at most to count its packs.
    public static let cycleRecordsMax = 100_000

    /// What the incidents recorded in `since ..< until` cost, grouped by `groupBy`.
    ///
    /// - throws: VALIDATION_FAILED when the range holds more than ``incidentsPerReportMax``
    ///   incidents (narrow it); COMPUTE_ERROR when a sum overflows or a cycle has more than
    ///   ``cycleRecordsMax`` records.
    public func incidentCosts(since: UnixMicros? = nil, until: UnixMicros? = nil,
                              groupBy: IncidentCostGrouping = .category) throws(LarderError) -> IncidentCostReport {
        var groups: [String: (refIDs: [String]?, figures: IncidentCostFigures)] = [:]
        var total = IncidentCostFigures()
        // An empty interval holds nothing (not malformed).
        if since == nil || until == nil || until! > since! {
            let reader = IncidentReader(txn: txn, tables: tables)
            var cursor: String?
            var seen = 0
            repeat {
                let page = try reader.incidents(since: since, until: until, limit: IncidentReader.incidentsPerPageMax, cursor: cursor)
                seen += page.incidents.count
                guard seen <= Self.incidentsPerReportMax else {
                    throw LarderError(.validationFailed,
                                      "The range holds more than \(Self.incidentsPerReportMax) incidents, the most one report covers; narrow since and until.")
                }
                for incident in page.incidents {
                    let figures = try costs(of: incident)
                    let (key, refIDs) = Self.key(of: incident, groupBy)
                    var group = groups[key] ?? (refIDs, IncidentCostFigures())
                    try group.figures.add(figures)
                    groups[key] = group
                    try total.add(figures)
                }
                cursor = page.nextCursor
            } while cursor != nil
        }
        let rows = groups.map { IncidentCostReport.Row(key: $0.key, refIDs: $0.value.refIDs, figures: $0.value.figures) }
            .sorted { Self.order($0.key, groupBy).lexicographicallyPrecedes(Self.order($1.key, groupBy)) }
        return IncidentCostReport(groupBy: groupBy, sinceMicros: since, untilMicros: until, rows: rows, total: total)
    }

    /// One incident's costs, from its responses, their transfers and refund requests, its
    /// waiting proposals and the transfers tagged with the cycles it cancelled.
    func costs(of incident: Incident) throws(LarderError) -> IncidentCostFigures {
        var figures = IncidentCostFigures()
        figures.incidents = 1
        let ledger = LedgerReader(txn: txn, tables: tables)
        let incidents = IncidentReader(txn: txn, tables: tables)
        for response in incident.responses {
            var part = IncidentCostFigures()
            switch response.response {
            case .credit:
                // A reversed credit (an overridden one, say) was taken back: it cost nothing.
                guard let id = response.transferID, let transfer = try ledger.transfer(id: id),
                      try ledger.resolution(of: id) == nil else { continue }
                part.creditsCents = transfer.amount
            case .refund:
                guard let id = response.refundID, let refund = try incidents.refund(id: id) else { continue }
                part.refundsRequestedCents = refund.amountCents
                part.refundsCents = refund.status == .succeeded ? refund.amountCents : 0
            case .cancellation(let cycle):
                part.cancelledCycles = 1
                part.cancelledPacks = try packsGivenBack(cycle: cycle)
            case .delay, .substitution:
                continue
            }
            try figures.add(part)
        }
        for proposal in try CompensationReader(txn: txn, tables: tables).proposals(incident: incident.id) where proposal.state == .pending {
            var part = IncidentCostFigures()
            part.pendingCompensationCents = proposal.offer.totalCents
            try figures.add(part)
        }
        return figures
    }

    /// The units of transfers tagged `cycle:<cycle>` that were given back: reversed, or reserved
    /// and voided.
    private func packsGivenBack(cycle: String) throws(LarderError) -> UInt64 {
        let log = AuditLog(txn: txn, tables: tables)
        let ledger = LedgerReader(txn: txn, tables: tables)
        var returned: UInt64 = 0
        var read = 0
        let ref = CorrelationRef.cycle(cycle)
        var failure: LarderError?
        try txn.forEach(tables.auditByRef, in: .prefix(KeyPair("cycle", cycle))) {
            (entry: Entry<KeyPair<KeyPair<String, String>, UInt64>, Empty>) throws(LarderError) -> Bool in
            read += 1
            guard read <= Self.cycleRecordsMax else {
                failure = LarderError(.computeError, "Cycle \(cycle) has more than \(Self.cycleRecordsMax) audit records; its packs cannot be counted in one report.")
                return false
            }
            guard let record = try log.record(seq: entry.key.second)?.record,
                  [.ledgerTransferPosted, .ledgerTransferPending, .ledgerPendingPosted].contains(record.event),
                  let payload = try? JSONDecoder().decode(TransferPayload.self, from: Data(record.payload.utf8)),
                  let transfer = try ledger.transfer(id: payload.transfer_id), transfer.refs.contains(ref),
                  let resolution = try ledger.resolution(of: transfer.id) else { return true }
            let givenBack = transfer.kind == .pending ? resolution.kind == .voidPending : resolution.kind == .reversal
            if givenBack {
                let (sum, overflow) = returned.addingReportingOverflow(transfer.amount)
                guard !overflow else {
                    failure = LarderError(.computeError, "The packs given back for cycle \(cycle) exceed \(UInt64.max).")
                    return false
                }
                returned = sum
            }
            return true
        }
        if let failure { throw failure }
        return returned
    }

    private struct TransferPayload: Decodable {
        let transfer_id: String
    }

    static func key(of incident: Incident, _ groupBy: IncidentCostGrouping) -> (String, [String]?) {
        switch groupBy {
        case .category: (incident.category.rawValue, nil)
        case .severity: (incident.severity.rawValue, nil)
        case .day: (String(RFC3339.format(incident.createdAtMicros).prefix(10)), nil)
        case .ref(let kind):
            {
                let ids = Array(Set(incident.refs.filter { $0.kind == kind }.map(\.id))).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
                return (ids.joined(separator: "+"), ids)
            }()
        }
    }

    /// A sort key: the enumeration's order for categories and severities, the text otherwise,
    /// with the empty ref group last.
    private static func order(_ key: String, _ groupBy: IncidentCostGrouping) -> [UInt8] {
        switch groupBy {
        case .category:
            [UInt8(IncidentCategory.allCases.firstIndex { $0.rawValue == key } ?? 255)]
        case .severity, .day:
            Array(key.utf8)
        case .ref:
            key.isEmpty ? [0xFF] : Array(key.utf8)
        }
    }
}

extension StoreView {
    /// Reports computed from the ledger and the incidents: the cost of incidents.
    public var reports: ReportReader { ReportReader(txn: txn, tables: tables) }
}
