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

    /// The request `Store.apply(_:to:expectedVersion:reasonCode:overriding:responseID:context:)`
    /// fingerprints (`expectedVersion` is not part of it: a retry may carry a newer one).
    public init(incidentID: String, response: IncidentResponse, reasonCode: String? = nil, overriding: String? = nil,
                responseID: String? = nil) {
        self.incidentID = incidentID
        self.response = response
        self.reasonCode = reasonCode
        self.overriding = overriding
        self.responseID = responseID
    }
}

/// A lifecycle change as a request, for its decision fingerprint.
public struct TransitionRequest: FingerprintedRequest, Hashable {
    public static let operationName = "incident.transition"
    public let incidentID: String
    public let state: IncidentState
    public let postmortemRef: String?
    public let reasonCode: String?

    /// The request `Store.transition(_:to:expectedVersion:postmortemRef:reasonCode:context:)`
    /// fingerprints (`expectedVersion` is not part of it).
    public init(incidentID: String, state: IncidentState, postmortemRef: String? = nil, reasonCode: String? = nil) {
        self.incidentID = incidentID
        self.state = state
        self.postmortemRef = postmortemRef
        self.reasonCode = reasonCode
    }
}

/// Billing's answer to a refund request, for its decision fingerprint.
public struct RefundOutcomeRequest: FingerprintedRequest, Hashable {
    public static let operationName = "incident.refund_outcome"
    public let refundID: String
    public let status: RefundStatus
    public let detail: String?

    /// The request `Store.recordRefundOutcome(_:status:detail:context:)` fingerprints.
    public init(refundID: String, status: RefundStatus, detail: String? = nil) {
        self.refundID = refundID
        self.status = status
        self.detail = detail
    }
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
        try run(.recordIncident(report, actor: context.actor), context: context)
    }

    /// The async form of `recordIncident(_:context:)`: suspends instead of blocking; a
    /// task cancelled before the write is queued gets `CancellationError` and nothing is written.
    ///
    /// ```swift
    /// let incident = try await store.recordIncident(report, context: detector).result
    /// ```
    @discardableResult
    public func recordIncident(_ report: IncidentReport, context: WriteContext) async throws -> WriteOutcome<Incident> {
        try await run(.recordIncident(report, actor: context.actor), context: context)
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
        try run(.transition(TransitionRequest(incidentID: incidentID, state: state, postmortemRef: postmortemRef, reasonCode: reasonCode),
                            expectedVersion: expectedVersion, context: context), context: context)
    }

    /// The async form of `transition(_:to:expectedVersion:postmortemRef:reasonCode:context:)`:
    /// suspends instead of blocking; a task cancelled before the write is queued gets
    /// `CancellationError` and nothing is written.
    @discardableResult
    public func transition(_ incidentID: String, to state: IncidentState, expectedVersion: UInt32? = nil,
                           postmortemRef: String? = nil, reasonCode: String? = nil,
                           context: WriteContext) async throws -> WriteOutcome<Incident> {
        try await run(.transition(TransitionRequest(incidentID: incidentID, state: state, postmortemRef: postmortemRef, reasonCode: reasonCode),
                                  expectedVersion: expectedVersion, context: context), context: context)
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
        try run(.apply(ApplyResponseRequest(incidentID: incidentID, response: response, reasonCode: reasonCode,
                                            overriding: overriding, responseID: responseID),
                       expectedVersion: expectedVersion, actor: context.actor), context: context)
    }

    /// The async form of `apply(_:to:expectedVersion:reasonCode:overriding:responseID:context:)`:
    /// suspends instead of blocking; a task cancelled before the write is queued gets
    /// `CancellationError` and nothing is written (nothing is credited or refunded).
    ///
    /// ```swift
    /// let credit = try await store.apply(.credit(amountCents: 500, customerAccount: "cust-17.credits",
    ///                                            basis: .preApproved(code: "late-delivery")),
    ///                                    to: incident.id, responseID: "credit-order-4411", context: am)
    /// ```
    @discardableResult
    public func apply(_ response: IncidentResponse, to incidentID: String, expectedVersion: UInt32? = nil,
                      reasonCode: String? = nil, overriding: String? = nil, responseID: String? = nil,
                      context: WriteContext) async throws -> WriteOutcome<AppliedResponse> {
        try await run(.apply(ApplyResponseRequest(incidentID: incidentID, response: response, reasonCode: reasonCode,
                                                  overriding: overriding, responseID: responseID),
                             expectedVersion: expectedVersion, actor: context.actor), context: context)
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
        try run(.recordRefundOutcome(RefundOutcomeRequest(refundID: refundID, status: status, detail: detail), actor: context.actor),
                context: context)
    }

    /// The async form of `recordRefundOutcome(_:status:detail:context:)`: suspends
    /// instead of blocking; a task cancelled before the write is queued gets `CancellationError`
    /// and nothing is written.
    @discardableResult
    public func recordRefundOutcome(_ refundID: String, status: RefundStatus, detail: String? = nil,
                                    context: WriteContext) async throws -> WriteOutcome<RefundRequest> {
        try await run(.recordRefundOutcome(RefundOutcomeRequest(refundID: refundID, status: status, detail: detail), actor: context.actor),
                      context: context)
    }

    /// Open incidents past their acknowledgement deadline, by the store's clock.
    ///
    /// - throws: STORAGE_UNAVAILABLE when the store is closed or no reader slot is free.
    public func overdueIncidents() throws -> [Incident] {
        let now = options.clock.now().unixMicros
        return try read { view in try view.incidents.overdue(atMicros: now) }
    }
}

extension RecognisedOperation where Request == IncidentReport, Output == Incident {
    static func recordIncident(_ report: IncidentReport, actor: ActorIdentity) -> Self {
        Self(request: report, replayInSnapshot: { view throws(LarderError) in
            let replays = IncidentReplays(view)
            guard let id = report.id, let existing = try replays.incident(id) else { return nil }
            return try? replays.report(report, by: actor, existing: existing)
        }, change: { txn throws(LarderError) in try txn.incidents.recordOrReplay(report) })
    }
}

extension RecognisedOperation where Request == TransitionRequest, Output == Incident {
    static func transition(_ request: TransitionRequest, expectedVersion: UInt32?, context: WriteContext) -> Self {
        Self(request: request, replayInSnapshot: { view throws(LarderError) in
            let replays = IncidentReplays(view)
            guard let incident = try replays.incident(request.incidentID), incident.state == request.state else { return nil }
            return try? replays.transition(incident, to: request.state, postmortemRef: request.postmortemRef,
                                           reasonCode: request.reasonCode, context: context)
        }, change: { txn throws(LarderError) in
            try txn.incidents.transitionOrReplay(request.incidentID, to: request.state, expectedVersion: expectedVersion,
                                                 postmortemRef: request.postmortemRef, reasonCode: request.reasonCode)
        })
    }
}

extension RecognisedOperation where Request == ApplyResponseRequest, Output == AppliedResponse {
    static func apply(_ request: ApplyResponseRequest, expectedVersion: UInt32?, actor: ActorIdentity) -> Self {
        Self(request: request, replayInSnapshot: { view throws(LarderError) in
            let replays = IncidentReplays(view)
            guard let responseID = request.responseID, let incident = try replays.incident(request.incidentID),
                  let full = try? IncidentWriter.responseID(chosen: responseID, incident: request.incidentID) else { return nil }
            return try? replays.response(request.response, id: full, on: incident, actor: actor, reasonCode: request.reasonCode,
                                         overriding: request.overriding)
        }, change: { txn throws(LarderError) in
            try txn.incidents.applyOrReplay(request.response, to: request.incidentID, expectedVersion: expectedVersion,
                                            reasonCode: request.reasonCode, overriding: request.overriding, responseID: request.responseID)
        })
    }
}

extension RecognisedOperation where Request == RefundOutcomeRequest, Output == RefundRequest {
    static func recordRefundOutcome(_ request: RefundOutcomeRequest, actor: ActorIdentity) -> Self {
        Self(request: request, replayInSnapshot: { view throws(LarderError) in
            let replays = IncidentReplays(view)
            guard actor.role != .accountManager, let refund = try replays.refund(request.refundID) else { return nil }
            return try? replays.refundOutcome(refund, status: request.status, detail: request.detail)
        }, change: { txn throws(LarderError) in
            try txn.incidents.recordRefundOutcomeOrReplay(request.refundID, status: request.status, detail: request.detail)
        })
    }
}

extension IncidentReplays {
    /// The checks, in a read snapshot.
    init(_ view: StoreView) {
        self.init(txn: view.txn, tables: view.tables)
    }

    func incident(_ id: String) throws(LarderError) -> Incident? {
        try IncidentReader(txn: txn, tables: tables).incident(id: id)
    }

    func refund(_ id: String) throws(LarderError) -> RefundRequest? {
        try IncidentReader(txn: txn, tables: tables).refund(id: id)
    }
}
