import LarderStorage

/// A page of incidents, newest first.
public struct IncidentPage: Sendable, Hashable {
    public let incidents: [Incident]
    public let nextCursor: String?
}

/// One incident with everything about it: its audit trail and its ledger effects.
public struct IncidentDetail: Sendable, Hashable {
    public let incident: Incident
    /// Every audit record that names the incident, oldest first (at most ``trailRecordsMax``).
    public let trail: [AuditEntry]
    /// Ledger transfers made for it (credits) and their reversals.
    public let transfers: [Transfer]
    public let refunds: [RefundRequest]

    public static let trailRecordsMax = 1_000
}

/// Reads incidents in one snapshot. Reached as `view.incidents`.
public struct IncidentReader {
    let txn: TableReader
    let tables: StoreTables

    public static let incidentsPerPageMax = 500

    public func incident(id: String) throws(LarderError) -> Incident? {
        try WriteContext.validateIdentifier(id, field: "incident id")
        return try txn.get(tables.incidents, id).map { bytes throws(LarderError) in try Incident.decode(bytes) }
    }

    /// Incidents filtered by state, category and severity (each optional), created in
    /// `since ..< until`, newest first.
    public func incidents(state: IncidentState? = nil, category: IncidentCategory? = nil, severity: Severity? = nil,
                          since: UnixMicros? = nil, until: UnixMicros? = nil, limit: Int,
                          cursor: String? = nil) throws(LarderError) -> IncidentPage {
        guard (1...Self.incidentsPerPageMax).contains(limit) else {
            throw LarderError(.validationFailed, "limit \(limit) is not in 1...\(Self.incidentsPerPageMax).")
        }
        // Walk the most selective index given; filter by the others.
        let dimension = state.map { "state:" + $0.rawValue } ?? category.map { "category:" + $0.rawValue }
            ?? severity.map { "severity:" + $0.rawValue } ?? "all"
        typealias Key = KeyPair<String, KeyPair<Int64, String>>
        var range = KeyRange<Key>.prefix(dimension)
        if let since { range = range.intersected(with: .from(KeyPair(dimension, KeyPair(since, "")))) }
        if let until { range = range.intersected(with: .before(KeyPair(dimension, KeyPair(until, "")))) }
        if let cursor {
            let parts = cursor.split(separator: "/", maxSplits: 1)
            guard parts.count == 2, let time = Int64(parts[0]) else {
                throw LarderError(.validationFailed, "The cursor \(JSONWriter.quoted(cursor)) is not an incident cursor.")
            }
            range = range.intersected(with: .before(KeyPair(dimension, KeyPair(time, String(parts[1])))))
        }
        var found: [Incident] = []
        var last: Key?
        var more = false
        try txn.forEach(tables.incidentsIndex, in: range, direction: .backward) { (entry: Entry<Key, Empty>) throws(LarderError) -> Bool in
            guard let incident = try incident(id: entry.key.second.second) else {
                throw LarderError(.persistenceError, "The incident index names \(entry.key.second.second), which does not exist; run verify.",
                                  failureClass: .dataInconsistency, failurePoint: .read)
            }
            if (state == nil || incident.state == state) && (category == nil || incident.category == category)
                && (severity == nil || incident.severity == severity) {
                if found.count == limit {
                    more = true
                    return false
                }
                found.append(incident)
                last = entry.key
            }
            return true
        }
        let next = more ? last.map { "\($0.second.first)/\($0.second.second)" } : nil
        return IncidentPage(incidents: found, nextCursor: next)
    }

    /// Open incidents past their acknowledgement deadline at `nowMicros`, most overdue first.
    public func overdue(atMicros nowMicros: UnixMicros) throws(LarderError) -> [Incident] {
        var overdue: [Incident] = []
        try txn.forEach(tables.incidentsIndex, in: .prefix("state:" + IncidentState.open.rawValue)) {
            (entry: Entry<KeyPair<String, KeyPair<Int64, String>>, Empty>) throws(LarderError) -> Bool in
            if let incident = try incident(id: entry.key.second.second), incident.isOverdue(atMicros: nowMicros) {
                overdue.append(incident)
            }
            return true
        }
        return overdue.sorted { $0.acknowledgeByMicros < $1.acknowledgeByMicros }
    }

    public func refund(id: String) throws(LarderError) -> RefundRequest? {
        try WriteContext.validateIdentifier(id, field: "refund id")
        return try txn.get(tables.incidentRefunds, id).map { bytes throws(LarderError) in try RefundRequest.decode(bytes) }
    }

    /// The incident that cancelled `cycle`, or nil.
    public func cancellation(ofCycle cycle: String) throws(LarderError) -> String? {
        try WriteContext.validateIdentifier(cycle, field: "cycle")
        return try txn.get(tables.cancelledCycles, cycle).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The incident, its audit trail, its ledger transfers and refunds.
    public func detail(id: String) throws(LarderError) -> IncidentDetail? {
        guard let incident = try incident(id: id) else { return nil }
        let audit = AuditLog(txn: txn, tables: tables)
        var trail: [AuditEntry] = []
        var cursor: String?
        repeat {
            let page = try audit.records(ref: .incident(id), limit: AuditLog.recordsPerPageMax, cursor: cursor)
            trail += page.records
            cursor = trail.count < IncidentDetail.trailRecordsMax ? page.nextCursor : nil
        } while cursor != nil
        let ledger = LedgerReader(txn: txn, tables: tables)
        var transfers: [Transfer] = []
        var seen = Set<String>()
        // Every ledger event that names a transfer: posted, reversed, pending, posted or voided.
        for entry in trail where entry.record.event.rawValue.hasPrefix("LEDGER_") {
            for ref in entry.record.refs where ref.kind == "transfer" && seen.insert(ref.id).inserted {
                if let transfer = try ledger.transfer(id: ref.id) { transfers.append(transfer) }
                if let resolution = try ledger.resolution(of: ref.id), seen.insert(resolution.byTransfer).inserted,
                   let undo = try ledger.transfer(id: resolution.byTransfer) {
                    transfers.append(undo)
                }
            }
        }
        var refunds: [RefundRequest] = []
        for response in incident.responses {
            if let refundID = response.refundID, let refund = try refund(id: refundID) { refunds.append(refund) }
        }
        return IncidentDetail(incident: incident, trail: Array(trail.prefix(IncidentDetail.trailRecordsMax)),
                              transfers: transfers.sorted { $0.auditSeq < $1.auditSeq }, refunds: refunds)
    }
}
