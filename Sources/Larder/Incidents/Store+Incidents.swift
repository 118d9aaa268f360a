import Foundation

/// A response application as a request, for its decision fingerprint.
public struct ApplyResponseRequest: FingerprintedRequest, Hashable {
    public static let operationName = "incident.apply_response"
    public let incidentID: String
    public let response: IncidentResponse
    public let reasonCode: String?
    public let overriding: String?
    /// Left out of the fingerprint when nil, so decisions made before responseIDs existed still
    /// match their retries.
    public let responseID: String?
}

/// A lifecycle change as a request, for its decision fingerprint.
public struct TransitionRequest: FingerprintedRequest, Hashable {
    public static let operationName = "incident.transition"
    public let incidentID: String
    public let state: IncidentState
    public let postmortemRef: String?
    public let reasonCode: String?
}

/// Billing's answer to a refund request, for its decision fingerprint.
public struct RefundOutcomeRequest: FingerprintedRequest, Hashable {
    public static let operationName = "incident.refund_outcome"
    public let refundID: String
    public let status: RefundStatus
    public let detail: String?
}

extension Store {
    /// Records an incident in its own write.
    ///
    /// A retry is recognised by the write's decisionID (the stored incident of the first call is
    /// returned as ``WriteOutcome/Kind/replayed``), or by a caller-chosen `report.id` when the
    /// report is identical (the incident as it is now, also `.replayed`). Without either, every
    /// call records a new incident.
    ///
    /// ```swift
    /// let outcome = try store.recordIncident(report, context: WriteContext(actor: detector, requestID: "req-9",
    ///                                                                      decisionID: "dispatch:R4:late"))
    /// ```
    ///
    /// - throws: see ``IncidentWriter/record(_:)``; CONFLICT for a decisionID or incident id
    ///   reused with another report.
    @discardableResult
    public func recordIncident(_ report: IncidentReport, context: WriteContext) throws -> WriteOutcome<Incident> {
        try incidentWrite(context, request: report, replayInSnapshot: { replays throws(LarderError) in
            guard let id = report.id, let existing = try replays.incident(id) else { return nil }
            return try? replays.report(report, by: context.actor, existing: existing)
        }, { writer throws(LarderError) in try writer.recordOrReplay(report) })
    }

    /// Moves an incident to its next state in its own write.
    ///
    /// A retry of the request that made the transition (same requestID or decisionID, same
    /// actor, postmortem reference and reason code) answers ``WriteOutcome/Kind/replayed`` with
    /// the incident as it is now, whatever `expectedVersion` says; any other request to move it
    /// to the state it is in is CONFLICT.
    ///
    /// ```swift
    /// try store.transition(incident.id, to: .acknowledged, expectedVersion: incident.version, context: am)
    /// ```
    ///
    /// - throws: see ``IncidentWriter/transition(_:to:expectedVersion:postmortemRef:reasonCode:)``.
    @discardableResult
    public func transition(_ incidentID: String, to state: IncidentState, expectedVersion: UInt32? = nil,
                           postmortemRef: String? = nil, reasonCode: String? = nil,
                           context: WriteContext) throws -> WriteOutcome<Incident> {
        let request = TransitionRequest(incidentID: incidentID, state: state, postmortemRef: postmortemRef, reasonCode: reasonCode)
        return try incidentWrite(context, request: request, replayInSnapshot: { replays throws(LarderError) in
            guard let incident = try replays.incident(incidentID), incident.state == state else { return nil }
            return try? replays.transition(incident, to: state, postmortemRef: postmortemRef, reasonCode: reasonCode, context: context)
        }, { writer throws(LarderError) in
            try writer.transitionOrReplay(incidentID, to: state, expectedVersion: expectedVersion, postmortemRef: postmortemRef,
                                          reasonCode: reasonCode)
        })
    }

    /// Applies a response in its own write.
    ///
    /// A credit, refund, cancellation or override needs a decisionID on `context` or a
    /// `responseID` (see ``IncidentWriter/apply(_:to:expectedVersion:reasonCode:overriding:responseID:)``);
    /// a retry with either answers ``WriteOutcome/Kind/replayed`` with the response applied the
    /// first time, and writes nothing.
    ///
    /// ```swift
    /// let outcome = try store.apply(.credit(amountCents: 500, customerAccount: "cust-17.credits",
    ///                                       basis: .preApproved(code: "late-delivery")),
    ///                               to: incident.id, responseID: "credit-order-4411", context: am)
    /// // outcome.kind == .committed; the same call again: .replayed, no second credit.
    /// ```
    ///
    /// - throws: see ``IncidentWriter/apply(_:to:expectedVersion:reasonCode:overriding:responseID:)``.
    @discardableResult
    public func apply(_ response: IncidentResponse, to incidentID: String, expectedVersion: UInt32? = nil,
                      reasonCode: String? = nil, overriding: String? = nil, responseID: String? = nil,
                      context: WriteContext) throws -> WriteOutcome<AppliedResponse> {
        let request = ApplyResponseRequest(incidentID: incidentID, response: response, reasonCode: reasonCode, overriding: overriding,
                                           responseID: responseID)
        return try incidentWrite(context, request: request, replayInSnapshot: { replays throws(LarderError) in
            guard let responseID, let incident = try replays.incident(incidentID),
                  let full = try? IncidentWriter.responseID(chosen: responseID, incident: incidentID) else { return nil }
            return try? replays.response(response, id: full, on: incident, actor: context.actor, reasonCode: reasonCode,
                                         overriding: overriding)
        }, { writer throws(LarderError) in
            try writer.applyOrReplay(response, to: incidentID, expectedVersion: expectedVersion, reasonCode: reasonCode,
                                     overriding: overriding, responseID: responseID)
        })
    }

    /// Records Billing's answer to a refund request in its own write. The same answer again (a
    /// retried callback) is ``WriteOutcome/Kind/replayed``; another answer is CONFLICT.
    ///
    /// ```swift
    /// try store.recordRefundOutcome(refundID, status: .succeeded, detail: "psp-ref-77", context: billing)
    /// ```
    ///
    /// - throws: see ``IncidentWriter/recordRefundOutcome(_:status:detail:)``.
    @discardableResult
    public func recordRefundOutcome(_ refundID: String, status: RefundStatus, detail: String? = nil,
                                    context: WriteContext) throws -> WriteOutcome<RefundRequest> {
        let request = RefundOutcomeRequest(refundID: refundID, status: status, detail: detail)
        return try incidentWrite(context, request: request, replayInSnapshot: { replays throws(LarderError) in
            guard context.actor.role != .accountManager, let refund = try replays.refund(refundID) else { return nil }
            return try? replays.refundOutcome(refund, status: status, detail: detail)
        }, { writer throws(LarderError) in try writer.recordRefundOutcomeOrReplay(refundID, status: status, detail: detail) })
    }

    /// Open incidents past their acknowledgement deadline, by the store's clock.
    public func overdueIncidents() throws -> [Incident] {
        let now = options.clock.now().unixMicros
        return try read { view in try view.incidents.overdue(atMicros: now) }
    }

    /// An incident write that may find an earlier request already did the work (see
    /// ``IncidentAnswer``); such an answer is reported as ``WriteOutcome/Kind/replayed``.
    ///
    /// Without a decisionID, a replay is looked for in a read snapshot first, so that a retry is
    /// answered without waiting for the writer (and while writes fail, e.g. on a full disk); the
    /// write checks again, for a retry that races its original. With a decisionID the decision
    /// answers first, as for every write.
    private func incidentWrite<Q: FingerprintedRequest, R: Codable>(
        _ context: WriteContext, request: Q,
        replayInSnapshot: (IncidentReplays) throws(LarderError) -> IncidentAnswer<R>?,
        _ body: (IncidentWriter) throws(LarderError) -> IncidentAnswer<R>
    ) throws -> WriteOutcome<R> {
        // Only a replay is taken from the snapshot; every refusal is left to the write, which
        // checks in the documented order.
        if context.decisionID == nil, (try? context.validate()) != nil,
           let answer = try? read({ view in try replayInSnapshot(IncidentReplays(txn: view.txn, tables: view.tables)) }),
           let seq = answer.replayedSeq {
            counters.replayed()
            return WriteOutcome(kind: .replayed, result: answer.value, auditSeq: seq, storedResult: nil)
        }
        // The body may run more than once (the writer retries after growing the map): the last run counts.
        var replayedSeq: UInt64?
        let outcome = try write(context, request: request) { txn in
            let answer = try body(txn.incidents)
            replayedSeq = answer.replayedSeq
            return answer.value
        }
        guard outcome.kind == .committed, let replayedSeq else { return outcome }
        counters.replayed()
        return WriteOutcome(kind: .replayed, result: outcome.result, auditSeq: replayedSeq, storedResult: outcome.storedResult)
    }
}

extension IncidentReplays {
    func incident(_ id: String) throws(LarderError) -> Incident? {
        try IncidentReader(txn: txn, tables: tables).incident(id: id)
    }

    func refund(_ id: String) throws(LarderError) -> RefundRequest? {
        try IncidentReader(txn: txn, tables: tables).refund(id: id)
    }
}
