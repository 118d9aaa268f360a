import LarderStorage

/// What an incident change produced, and whether an earlier request had already produced it.
///
/// A retry is recognised without a decisionID in three ways: a report under a caller-chosen
/// incident id that exists with identical fields, a transition to the state the same request
/// moved the incident to, and a response under a caller-chosen response id that exists with
/// identical content. Then nothing is written and the answer names the earlier write.
struct IncidentAnswer<Value> {
    let value: Value
    /// The audit seq of the earlier write this answer replays; nil when this call did the work.
    let replayedSeq: UInt64?

    static func applied(_ value: Value) -> IncidentAnswer { IncidentAnswer(value: value, replayedSeq: nil) }
    static func replayed(_ value: Value, seq: UInt64) -> IncidentAnswer { IncidentAnswer(value: value, replayedSeq: seq) }
}

/// Recognises retried incident requests from what the store holds (the incident and its audit
/// records), in a read snapshot or inside the write. Each check either answers a replay, throws
/// CONFLICT naming what differs, or returns nil when the request is new.
struct IncidentReplays {
    let txn: TableReader
    let tables: StoreTables

    // MARK: Reports

    /// A report under the id of an existing incident: a replay when the stored incident holds the
    /// same report by the same reporter, CONFLICT otherwise.
    func report(_ report: IncidentReport, by actor: ActorIdentity, existing: Incident) throws(LarderError) -> IncidentAnswer<Incident> {
        let refs = Array(Set(report.refs)).sorted()
        let differing: String? = existing.category != report.category
            ? "category (\(existing.category.rawValue) before, \(report.category.rawValue) now)"
            : existing.severity != report.severity ? "severity (\(existing.severity.rawValue) before, \(report.severity.rawValue) now)"
            : existing.summary != report.summary ? "summary"
            : existing.source != report.source ? "source (\(existing.source) before, \(report.source) now)"
            : existing.refs != refs ? "refs"
            : existing.reportedBy != actor ? "reporter (\(existing.reportedBy) before, \(actor) now)" : nil
        if let differing {
            throw LarderError(.conflict, "Incident \(existing.id) exists already with a different \(differing); nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        guard let seq = try firstRecord(of: .opFailureRecorded, about: existing.id)?.seq else {
            throw Self.missingRecord("OP_FAILURE_RECORDED", existing.id)
        }
        return .replayed(existing, seq: seq)
    }

    // MARK: Transitions

    /// A transition to the state the incident is in: a replay when the request that moved it
    /// there is this one (same requestID, or same decisionID) with the same actor, postmortem
    /// reference and reason code; CONFLICT otherwise.
    func transition(_ incident: Incident, to state: IncidentState, postmortemRef: String?, reasonCode: String?,
                    context: WriteContext) throws(LarderError) -> IncidentAnswer<Incident> {
        precondition(incident.state == state, "a transition replay is only checked for the state the incident is in")
        // States only move forward, one step each, so the latest state change is the one into
        // the current state.
        guard state != .open, let entry = try lastRecord(of: .incidentStateChanged, about: incident.id) else {
            throw LarderError(.conflict, "Incident \(incident.id) is \(state.rawValue) already; nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        let record = entry.record
        let payload = try CanonicalJSON.decode(StateChangePayload.self, from: Array(record.payload.utf8))
        guard payload.to == state.rawValue else {
            throw LarderError(.persistenceError,
                              "Incident \(incident.id) is \(state.rawValue), but its last state change (seq \(entry.seq)) went to \(payload.to); run verify.",
                              failureClass: .dataInconsistency, failurePoint: .read)
        }
        let sameRequest = record.requestID == context.requestID
            || (context.decisionID != nil && record.decisionID == context.decisionID)
        guard sameRequest else {
            throw LarderError(.conflict,
                              "Incident \(incident.id) is \(state.rawValue) already: request \(record.requestID) moved it there (audit seq \(entry.seq)). Refresh and decide again; nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        let differing: String? = record.actor != context.actor ? "actor (\(record.actor) before, \(context.actor) now)"
            : payload.postmortem_ref != postmortemRef
            ? "postmortemRef (\(payload.postmortem_ref ?? "none") before, \(postmortemRef ?? "none") now)"
            : record.reasonCode != reasonCode ? "reasonCode (\(record.reasonCode ?? "none") before, \(reasonCode ?? "none") now)"
            : nil
        if let differing {
            throw LarderError(.conflict,
                              "This request moved incident \(incident.id) to \(state.rawValue) already (audit seq \(entry.seq)) with a different \(differing); nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        return .replayed(incident, seq: entry.seq)
    }

    /// The fields of an `INCIDENT_STATE_CHANGED` payload a replay compares.
    private struct StateChangePayload: Decodable {
        let incident_id: String
        let to: String
        let postmortem_ref: String?
    }

    // MARK: Responses

    /// A response under an id the incident holds: a replay when it was the same response by the
    /// same actor with the same reason code and override; CONFLICT otherwise.
    func response(_ response: IncidentResponse, id: String, on incident: Incident, actor: ActorIdentity,
                  reasonCode: String?, overriding: String?) throws(LarderError) -> IncidentAnswer<AppliedResponse>? {
        guard let existing = incident.responses.first(where: { $0.id == id }) else { return nil }
        let differing: String? = existing.actor != actor ? "actor (\(existing.actor) before, \(actor) now)"
            : Self.difference(existing.response, response)
            ?? (existing.reasonCode != reasonCode ? "reasonCode (\(existing.reasonCode ?? "none") before, \(reasonCode ?? "none") now)"
            : existing.overrides != overriding ? "overriding (\(existing.overrides ?? "none") before, \(overriding ?? "none") now)"
            : nil)
        if let differing {
            throw LarderError(.conflict,
                              "Response \(id) of incident \(incident.id) was applied already with a different \(differing); nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        return .replayed(existing, seq: existing.auditSeq)
    }

    /// The first field in which two responses differ, with both values; nil when they are equal.
    static func difference(_ before: IncidentResponse, _ now: IncidentResponse) -> String? {
        guard before.type == now.type else { return "type (\(before.type.rawValue) before, \(now.type.rawValue) now)" }
        for ((name, old), (_, new)) in zip(fields(of: before), fields(of: now)) where old != new {
            return "\(name) (\(old) before, \(new) now)"
        }
        return nil
    }

    /// A response's fields by name, as text, in a fixed order per type.
    private static func fields(of response: IncidentResponse) -> [(String, String)] {
        switch response {
        case .delay(let revised, let subject):
            [("revisedTimeMicros", "\(revised)"), ("subject", subject.description)]
        case .substitution(let item, let substitute, let consent):
            [("item", item), ("substitute", substitute), ("consent", consent.map { "\($0)" } ?? "none")]
        case .credit(let amount, let customer, let basis):
            [("amountCents", "\(amount)"), ("customerAccount", customer), ("basis", IncidentWriter.describe(basis))]
        case .refund(let billing, let amount):
            [("billingTransaction", billing ?? "none"), ("amountCents", "\(amount)")]
        case .cancellation(let cycle):
            [("cycle", cycle)]
        }
    }

    // MARK: Refund outcomes

    /// An outcome for a refund that has one: a replay when it is the same status and detail;
    /// CONFLICT otherwise.
    func refundOutcome(_ refund: RefundRequest, status: RefundStatus, detail: String?) throws(LarderError) -> IncidentAnswer<RefundRequest>? {
        guard refund.status != .requested, let seq = refund.outcomeSeq else { return nil }
        guard refund.status == status, refund.outcomeDetail == detail else {
            let what = refund.status != status ? "\(refund.status.rawValue), not \(status.rawValue)"
                : "\(refund.status.rawValue) with detail \(refund.outcomeDetail ?? "none"), not \(detail ?? "none")"
            throw LarderError(.conflict, "Refund \(refund.id) is already \(what); nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        return .replayed(refund, seq: seq)
    }

    // MARK: Audit lookups

    /// The newest record of `event` whose payload names incident `id`.
    func lastRecord(of event: AuditEvent, about id: String) throws(LarderError) -> AuditEntry? {
        try findRecord(of: event, about: id, direction: .backward)
    }

    /// The oldest record of `event` whose payload names incident `id`.
    func firstRecord(of event: AuditEvent, about id: String) throws(LarderError) -> AuditEntry? {
        try findRecord(of: event, about: id, direction: .forward)
    }

    /// Walks the records that carry the ref `incident:<id>`. Records of other incidents may carry
    /// that ref too (a report may name another incident), hence the payload check.
    private func findRecord(of event: AuditEvent, about id: String, direction: ScanDirection) throws(LarderError) -> AuditEntry? {
        let log = AuditLog(txn: txn, tables: tables)
        var found: AuditEntry?
        let range = KeyRange<KeyPair<KeyPair<String, String>, UInt64>>.prefix(KeyPair("incident", id))
        try txn.forEach(tables.auditByRef, in: range, direction: direction) {
            (entry: Entry<KeyPair<KeyPair<String, String>, UInt64>, Empty>) throws(LarderError) -> Bool in
            guard let record = try log.record(seq: entry.key.second) else {
                throw LarderError(.persistenceError, "An audit index points to seq \(entry.key.second), which does not exist; run verify.",
                                  failureClass: .dataInconsistency, failurePoint: .read)
            }
            guard record.record.event == event else { return true }
            let payload = try CanonicalJSON.decode(IncidentPayload.self, from: Array(record.record.payload.utf8))
            guard payload.incident_id == id else { return true }
            found = record
            return false
        }
        return found
    }

    private struct IncidentPayload: Decodable {
        let incident_id: String
    }

    private static func missingRecord(_ event: String, _ id: String) -> LarderError {
        LarderError(.persistenceError, "Incident \(id) has no \(event) record; run verify.",
                    failureClass: .dataInconsistency, failurePoint: .read)
    }
}
