import LarderStorage

extension Verifier {
    /// Every incident against the records that made it: its `OP_FAILURE_RECORDED` record (category,
    /// severity, summary, source, refs, reporter, time), one `INCIDENT_STATE_CHANGED` record per
    /// step of its path to its state (and the acknowledgement's time), every response against its
    /// `OP_RESPONSE_APPLIED` record and the `OP_CREDIT_GRANTED`, `OP_REFUND_ISSUED` and
    /// `OP_OVERRIDE_USED` records it implies; its version counts its steps and responses; its four
    /// index entries. Every refund request against the refund response that made it and its
    /// `OP_REFUND_OUTCOME_RECORDED` record; every cancelled cycle against the cancellation
    /// response that made it. Each table is walked once; incidents are decoded one at a time.
    func verifyIncidents() throws(LarderError) {
        guard !cancelled else { return }
        try walkIncidents()
        try walkIncidentIndex()
        try walkRefunds()
        try walkCancelledCycles()
    }

    private func walkIncidents() throws(LarderError) {
        let table = StoreTables.incidentsName
        let total = try txn.statistics(tables.incidents).entries
        var done = 0
        var id: [UInt8] = []
        try txn.forEachBytes(tables.incidents) { key, value throws(LarderError) -> Bool in
            done += 1
            if !muted { report.otherRecordsChecked += 1 }
            KeyText.read(key, into: &id)
            let name = InPlace.text(id.withUnsafeBytes { $0 })
            guard let incident = try? Incident.decode(Array(value)), incident.id == name else {
                problem(.incidentMismatch, seq: nil, table: table, "incident \(name) cannot be decoded")
                return tick("incidents", done, total)
            }
            try check(incident)
            return tick("incidents", done, total)
        }
        tick("incidents", done, total, force: true)
    }

    private func check(_ incident: Incident) throws(LarderError) {
        let table = StoreTables.incidentsName
        let id = incident.id
        let category = incident.category.rawValue
        let refs = Array(Set([CorrelationRef.incident(id)] + incident.refs)).sorted()

        // Its OP_FAILURE_RECORDED record.
        var fact = facts.fact(.incidentCreated)
        fact.add(UInt64(0))
        fact.add(incident.createdAtMicros)
        fact.add(incident.reportedBy.id)
        fact.add(incident.reportedBy.role.rawValue)
        fact.add(optional: category)
        fact.add(optional: String?.none)
        fact.add(optional: String?.none)
        fact.add(refs: refs)
        fact.add(IncidentRecords.failureRecordedPayload(id: id, severity: incident.severity, summary: incident.summary,
                                                        source: incident.source))
        facts.add(.incidentCreated, .right, fact.finish()) {
            FactOrigin(seq: nil, what: "incident \(id) (recorded at \(RFC3339.format(incident.createdAtMicros)))")
        }

        // One INCIDENT_STATE_CHANGED record per step of its path.
        let steps = IncidentState.allCases.firstIndex(of: incident.state)!
        for index in 0..<steps {
            let from = IncidentState.allCases[index], to = IncidentState.allCases[index + 1]
            var fact = facts.fact(.incidentTransitions)
            fact.add(optional: id)
            fact.add(optional: from.rawValue)
            fact.add(optional: to.rawValue)
            fact.add(optional: category)
            fact.add(refs: refs)
            if to == .acknowledged {
                let at = incident.acknowledgedAtMicros ?? .min
                fact.add(at)
                fact.add(optional: String(at > incident.acknowledgeByMicros))
            }
            facts.add(.incidentTransitions, .right, fact.finish()) {
                FactOrigin(seq: nil, what: "incident \(id)'s step from \(from.rawValue) to \(to.rawValue)")
            }
        }
        if (incident.acknowledgedAtMicros == nil) != (incident.state == .open) {
            problem(.incidentMismatch, seq: nil, table: table,
                    "incident \(id) is \(incident.state.rawValue) but \(incident.acknowledgedAtMicros == nil ? "has no" : "has an") acknowledgement time")
        }
        if incident.version != UInt32(1 + steps + incident.responses.count) {
            problem(.incidentMismatch, seq: nil, table: table,
                    "incident \(id) is at version \(incident.version), but its \(steps) steps and \(incident.responses.count) responses make \(1 + steps + incident.responses.count)")
        }
        if incident.state == .closed, incident.severity.requiresPostmortem, incident.postmortemRef == nil {
            problem(.incidentMismatch, seq: nil, table: table, "incident \(id) is a closed \(incident.severity.rawValue) without a postmortem reference")
        }

        // Its responses and the records each implies.
        for response in incident.responses {
            try check(response, of: incident, refs: incident.refs)
        }

        // Its four index entries.
        for dimension in ["state:" + incident.state.rawValue, "category:" + category, "severity:" + incident.severity.rawValue, "all"] {
            scratch.reset()
            scratch.keyString(dimension)
            scratch.keyInt64(incident.createdAtMicros)
            scratch.keyString(id)
            var fact = facts.fact(.incidentIndex)
            fact.add(bytes: scratch.buffer)
            facts.add(.incidentIndex, .left, fact.finish()) { FactOrigin(seq: nil, what: "incident \(id)'s \(dimension) entry") }
        }
    }

    private func check(_ response: AppliedResponse, of incident: Incident, refs incidentRefs: [CorrelationRef]) throws(LarderError) {
        let id = incident.id
        let category = incident.category.rawValue
        let type = response.response.type.rawValue
        let refs = IncidentRecords.responseRefs(incident: id, incidentRefs: incidentRefs, response: response.response,
                                                transferID: response.transferID)
        func record(_ tag: UInt64, seq: UInt64, refs: [CorrelationRef], payload: String, _ what: String) {
            var fact = facts.fact(.responseRecords)
            fact.add(tag)
            fact.add(seq)
            fact.add(response.timeMicros)
            fact.add(response.actor.id)
            fact.add(response.actor.role.rawValue)
            fact.add(optional: category)
            fact.add(optional: type)
            fact.add(optional: response.reasonCode)
            fact.add(refs: refs)
            fact.add(payload)
            facts.add(.responseRecords, .right, fact.finish()) { FactOrigin(seq: seq == 0 ? nil : seq, what: what) }
        }
        record(1, seq: response.auditSeq, refs: refs,
               payload: IncidentRecords.responsePayload(incident: id, responseID: response.id, response: response.response,
                                                        overriding: response.overrides),
               "response \(response.id) (\(type), seq \(response.auditSeq))")
        switch response.response {
        case .credit(let amount, let customer, let basis):
            record(2, seq: 0, refs: IncidentRecords.effectRefs(refs, response: response.response),
                   payload: IncidentRecords.creditGrantedPayload(incident: id, responseID: response.id, transferID: response.transferID,
                                                                 amount: amount, customer: customer, basis: basis),
                   "the credit granted by response \(response.id)")
        case .refund(let billing, let amount):
            let refundID = response.refundID ?? ""
            record(3, seq: response.auditSeq + 1, refs: refs,
                   payload: IncidentRecords.refundIssuedPayload(incident: id, refundID: refundID, billing: billing, amount: amount),
                   "the refund issued by response \(response.id)")
            var fact = facts.fact(.refundRequests)
            fact.add(refundID)
            fact.add(id)
            fact.add(response.auditSeq)
            fact.add(optional: billing)
            fact.add(amount)
            facts.add(.refundRequests, .left, fact.finish()) {
                FactOrigin(seq: response.auditSeq, what: "refund \(refundID) of response \(response.id)")
            }
        case .cancellation(let cycle):
            var fact = facts.fact(.cancelledCycles)
            fact.add(cycle)
            fact.add(id)
            facts.add(.cancelledCycles, .left, fact.finish()) {
                FactOrigin(seq: response.auditSeq, what: "the cancellation of cycle \(cycle) by incident \(id)")
            }
        case .delay, .substitution:
            break
        }
        if let overrides = response.overrides {
            guard let overridden = incident.responses.first(where: { $0.id == overrides }) else {
                problem(.incidentMismatch, seq: response.auditSeq, table: StoreTables.incidentsName,
                        "response \(response.id) overrides \(overrides), which incident \(id) does not hold")
                return
            }
            // The reversal an override posts has a derived id: it exists exactly when this
            // override reversed the overridden credit.
            var reversed: String?
            if let transfer = overridden.transferID {
                scratch.reset()
                scratch.keyString(transfer + ".overridden")
                if try txn.withValueBytes(tables.ledgerTransfers, encodedKey: scratch.bytes, { _ in true }) == true {
                    reversed = transfer + ".overridden"
                }
            }
            record(4, seq: 0, refs: refs,
                   payload: IncidentRecords.overridePayload(incident: id, responseID: response.id, overridden: overridden,
                                                            reversedTransfer: reversed),
                   "the override by response \(response.id)")
        }
    }

    private func walkIncidentIndex() throws(LarderError) {
        guard !cancelled else { return }
        try txn.forEachBytes(tables.incidentsIndex) { key, value throws(LarderError) -> Bool in
            if !muted { report.indexEntriesChecked += 1 }
            var fact = facts.fact(.incidentIndex)
            fact.add(bytes: key)
            facts.add(.incidentIndex, .right, fact.finish()) {
                let decoded = try? KeyPair<String, KeyPair<Int64, String>>.decodeKey(Array(key))
                return FactOrigin(seq: nil, what: decoded.map { "the entry \($0.first) of incident \($0.second.second)" } ?? "the entry \(Array(key).hexString)")
            }
            return !cancelled
        }
    }

    private func walkRefunds() throws(LarderError) {
        guard !cancelled else { return }
        let table = StoreTables.incidentRefundsName
        var id: [UInt8] = []
        try txn.forEachBytes(tables.incidentRefunds) { key, value throws(LarderError) -> Bool in
            if !muted { report.otherRecordsChecked += 1 }
            KeyText.read(key, into: &id)
            let name = InPlace.text(id.withUnsafeBytes { $0 })
            guard let refund = try? RefundRequest.decode(Array(value)), refund.id == name else {
                problem(.incidentMismatch, seq: nil, table: table, "refund \(name) cannot be decoded")
                return !cancelled
            }
            var fact = facts.fact(.refundRequests)
            fact.add(refund.id)
            fact.add(refund.incidentID)
            fact.add(refund.requestedSeq)
            fact.add(optional: refund.billingTransaction)
            fact.add(refund.amountCents)
            facts.add(.refundRequests, .right, fact.finish()) {
                FactOrigin(seq: refund.requestedSeq, what: "refund \(refund.id) of incident \(refund.incidentID)")
            }
            if (refund.outcomeSeq == nil) != (refund.status == .requested) {
                problem(.incidentMismatch, seq: refund.outcomeSeq, table: table,
                        "refund \(refund.id) is \(refund.status.rawValue) \(refund.outcomeSeq == nil ? "without" : "with") an outcome record")
            }
            if let outcomeSeq = refund.outcomeSeq {
                var fact = facts.fact(.refundOutcomes)
                fact.add(outcomeSeq)
                fact.add(optional: ResponseType.refund.rawValue)
                fact.add(refs: [CorrelationRef.billing(refund.billingTransaction), .incident(refund.incidentID)].sorted())
                fact.add(IncidentRecords.refundOutcomePayload(incident: refund.incidentID, refundID: refund.id,
                                                              billing: refund.billingTransaction, status: refund.status,
                                                              detail: refund.outcomeDetail))
                facts.add(.refundOutcomes, .right, fact.finish()) {
                    FactOrigin(seq: outcomeSeq, what: "the outcome (\(refund.status.rawValue)) of refund \(refund.id)")
                }
            }
            return !cancelled
        }
    }

    private func walkCancelledCycles() throws(LarderError) {
        guard !cancelled else { return }
        var cycle: [UInt8] = []
        try txn.forEachBytes(tables.cancelledCycles) { key, value throws(LarderError) -> Bool in
            if !muted { report.otherRecordsChecked += 1 }
            KeyText.read(key, into: &cycle)
            var fact = facts.fact(.cancelledCycles)
            cycle.withUnsafeBytes { fact.add(bytes: $0) }
            fact.add(bytes: value)
            let name = InPlace.text(cycle.withUnsafeBytes { $0 })
            facts.add(.cancelledCycles, .right, fact.finish()) {
                FactOrigin(seq: nil, what: "cycle \(name), cancelled by incident \(InPlace.text(value))")
            }
            return !cancelled
        }
    }
}
