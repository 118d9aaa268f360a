import LarderStorage

extension Verifier {
    /// Checks that every incident decodes and has exactly its index entries (its current state,
    /// category, severity, all), and that refunds and cancelled cycles point to incidents that
    /// hold the matching response.
    mutating func verifyIncidents() throws(LarderError) {
        let table = StoreTables.incidentsName
        var incidents: [String: Incident] = [:]
        try txn.forEach(tables.incidents) { (entry: Entry<String, [UInt8]>) throws(LarderError) -> Bool in
            report.otherRecordsChecked += 1
            guard let incident = try? Incident.decode(entry.value), incident.id == entry.key else {
                report.add(.incidentMismatch, seq: nil, table: table, "incident \(entry.key) cannot be decoded")
                return true
            }
            incidents[entry.key] = incident
            // Each response must be backed by its OP_RESPONSE_APPLIED record about this incident.
            for response in incident.responses {
                try checkBacking(seq: response.auditSeq, events: [.opResponseApplied], ref: .incident(incident.id),
                                 table: table, what: "response \(response.id)")
            }
            let at = KeyPair(incident.createdAtMicros, incident.id)
            for dimension in ["state:" + incident.state.rawValue, "category:" + incident.category.rawValue,
                              "severity:" + incident.severity.rawValue, "all"] {
                if try !txn.contains(tables.incidentsIndex, KeyPair(dimension, at)) {
                    report.add(.missingIndexEntry, seq: nil, table: StoreTables.incidentsIndexName,
                               "incident \(incident.id) has no \(dimension) entry")
                }
            }
            return true
        }
        let indexCount = try txn.statistics(tables.incidentsIndex).entries
        if indexCount != incidents.count * 4 {
            report.add(.danglingIndexEntry, seq: nil, table: StoreTables.incidentsIndexName,
                       "\(indexCount) entries for \(incidents.count) incidents (expected \(incidents.count * 4))")
        }
        try txn.forEach(tables.incidentRefunds) { (entry: Entry<String, [UInt8]>) throws(LarderError) -> Bool in
            let refund = try? RefundRequest.decode(entry.value)
            if let refund {
                try checkBacking(seq: refund.requestedSeq, events: [.opResponseApplied], ref: .incident(refund.incidentID),
                                 table: StoreTables.incidentRefundsName, what: "refund \(refund.id)")
                if let outcomeSeq = refund.outcomeSeq {
                    try checkBacking(seq: outcomeSeq, events: [.opRefundOutcome], ref: .incident(refund.incidentID),
                                     table: StoreTables.incidentRefundsName, what: "the outcome of refund \(refund.id)")
                }
            }
            let owner = refund.flatMap { incidents[$0.incidentID] }
            if owner?.responses.contains(where: { $0.refundID == entry.key }) != true {
                report.add(.incidentMismatch, seq: refund?.requestedSeq, table: StoreTables.incidentRefundsName,
                           "refund \(entry.key) belongs to no incident response")
            }
            return true
        }
        try txn.forEach(tables.cancelledCycles) { (entry: Entry<String, [UInt8]>) throws(LarderError) -> Bool in
            let incident = incidents[String(decoding: entry.value, as: UTF8.self)]
            let cancels = incident?.responses.contains { $0.response == .cancellation(cycle: entry.key) } ?? false
            if !cancels {
                report.add(.incidentMismatch, seq: nil, table: StoreTables.cancelledCyclesName,
                           "cycle \(entry.key) is marked cancelled by an incident without that cancellation")
            }
            return true
        }
    }
}
