/// A response application as a request, for its decision fingerprint.
public struct ApplyResponseRequest: FingerprintedRequest, Hashable {
    public static let operationName = "incident.apply_response"
    public let incidentID: String
    public let response: IncidentResponse
    public let reasonCode: String?
    public let overriding: String?
}

/// A lifecycle change as a request, for its decision fingerprint.
public struct TransitionRequest: FingerprintedRequest, Hashable {
    public static let operationName = "incident.transition"
    public let incidentID: String
    public let state: IncidentState
    public let postmortemRef: String?
    public let reasonCode: String?
}

extension Store {
    /// Records an incident in its own write. With a decisionID, a retried report returns the
    /// incident created the first time.
    @discardableResult
    public func recordIncident(_ report: IncidentReport, context: WriteContext) throws -> WriteOutcome<Incident> {
        try write(context, request: report) { txn in try txn.incidents.record(report) }
    }

    /// Moves an incident to its next state in its own write.
    @discardableResult
    public func transition(_ incidentID: String, to state: IncidentState, expectedVersion: UInt32? = nil,
                           postmortemRef: String? = nil, reasonCode: String? = nil,
                           context: WriteContext) throws -> WriteOutcome<Incident> {
        let request = TransitionRequest(incidentID: incidentID, state: state, postmortemRef: postmortemRef, reasonCode: reasonCode)
        return try write(context, request: request) { txn in
            try txn.incidents.transition(incidentID, to: state, expectedVersion: expectedVersion, postmortemRef: postmortemRef,
                                         reasonCode: reasonCode)
        }
    }

    /// Applies a response in its own write.
    @discardableResult
    public func apply(_ response: IncidentResponse, to incidentID: String, expectedVersion: UInt32? = nil,
                      reasonCode: String? = nil, overriding: String? = nil, context: WriteContext) throws -> WriteOutcome<AppliedResponse> {
        let request = ApplyResponseRequest(incidentID: incidentID, response: response, reasonCode: reasonCode, overriding: overriding)
        return try write(context, request: request) { txn in
            try txn.incidents.apply(response, to: incidentID, expectedVersion: expectedVersion, reasonCode: reasonCode,
                                    overriding: overriding)
        }
    }

    /// Open incidents past their acknowledgement deadline, by the store's clock.
    public func overdueIncidents() throws -> [Incident] {
        let now = options.clock.now().unixMicros
        return try read { view in try view.incidents.overdue(atMicros: now) }
    }
}
