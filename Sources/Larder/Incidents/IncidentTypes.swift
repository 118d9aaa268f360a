/// A failure to record. A decisionID on the write, or a caller-chosen `id`, makes a detector's
/// retried report create one incident, not two (without either, every call records a new one).
///
/// ```swift
/// let report = IncidentReport(category: .delivery, severity: .p2, summary: "Route 4 van broke down",
///                             source: "dispatch-monitor", refs: [.route("R4"), .order("4411")])
/// ```
public struct IncidentReport: Sendable, Hashable, Codable, FingerprintedRequest {
    public static let operationName = "incident.record"

    /// Optional caller-chosen id; by default the store names it `inc-<seq>` after the audit
    /// record that reports it. Reporting again under an existing id answers with that incident
    /// when the report is identical (and writes nothing), and is CONFLICT when it differs.
    public var id: String?
    public var category: IncidentCategory
    public var severity: Severity
    public var summary: String
    /// Which detector or person reported it.
    public var source: String
    /// Orders, packs, subscriptions, route, vendor, requestIDs… the failure concerns.
    public var refs: [CorrelationRef]

    public init(id: String? = nil, category: IncidentCategory, severity: Severity, summary: String, source: String,
                refs: [CorrelationRef] = []) {
        self.id = id
        self.category = category
        self.severity = severity
        self.summary = summary
        self.source = source
        self.refs = refs
    }

    public static let summaryBytesMax = 2_000
    /// Refs a report may carry: every record about the incident carries them all, and a response's
    /// records add up to three of their own (the incident, the transfer or billing transaction or
    /// subject, the customer account).
    public static let refsCountMax = AuditDraft.refsCountMax - 3
}

/// Recorded customer consent to a substitution.
public enum Consent: Sendable, Hashable, Codable {
    /// The customer agreed, e.g. on the phone or in the app; `reference` points to the record.
    case explicit(reference: String)
    /// The customer's standing pre-authorisation allows it.
    case preAuthorised(reference: String)

    var reference: String {
        switch self {
        case .explicit(let reference), .preAuthorised(let reference): reference
        }
    }
}

/// On what grounds a credit is granted.
public enum CreditBasis: Sendable, Hashable, Codable {
    /// A code from the policy's pre-approved list (account managers, within its cap).
    case preApproved(code: String)
    /// A deterministic system rule (exact amount, its category only).
    case rule(id: String)
    /// An admin's own judgement (reason code required).
    case discretionary
}

/// A response to an incident: typed values, validated against the policy and the actor's role.
public enum IncidentResponse: Sendable, Hashable, Codable {
    /// A revised time for what is late. Consumes no credit.
    case delay(revisedTimeMicros: UnixMicros, subject: CorrelationRef)
    /// Another item in place of one that failed; needs recorded consent.
    case substitution(item: String, substitute: String, consent: Consent?)
    /// A ledger transfer from the policy's issuing account to the customer's credit account.
    case credit(amountCents: UInt64, customerAccount: String, basis: CreditBasis)
    /// A refund request for Billing, referencing the original billing transaction. The store
    /// never pays anything out.
    case refund(billingTransaction: String?, amountCents: UInt64)
    /// The cycle's deliveries are cancelled and its packs are not consumed.
    case cancellation(cycle: String)

    public var type: ResponseType {
        switch self {
        case .delay: .delay
        case .substitution: .substitution
        case .credit: .credit
        case .refund: .refund
        case .cancellation: .cancellation
        }
    }
}

extension ResponseType {
    /// Whether the response moves money or entitlements (a credit, a refund request, a cancelled
    /// cycle): applying one twice would do it twice, so it needs a decisionID or a responseID.
    public var movesMoney: Bool {
        switch self {
        case .credit, .refund, .cancellation: true
        case .delay, .substitution: false
        }
    }
}

/// A response as applied: who, when, why, and what it produced.
public struct AppliedResponse: Sendable, Hashable, Codable {
    /// `<incident>.<responseID>` when the caller chose a responseID, otherwise `<incident>.r<n>`
    /// (n counts the incident's responses from 1).
    public let id: String
    public let response: IncidentResponse
    public let actor: ActorIdentity
    public let reasonCode: String?
    public let timeMicros: UnixMicros
    /// The OP_RESPONSE_APPLIED record.
    public let auditSeq: UInt64
    /// The response this one overrides, when an admin overrode an account manager.
    public let overrides: String?
    /// For credits: the ledger transfer.
    public let transferID: String?
    /// For refunds: the refund request.
    public let refundID: String?
    /// The compensation proposal whose approval applied it; nil for a response applied directly.
    public internal(set) var proposalID: String? = nil
}

/// The state of a refund request, as Billing reports it.
public enum RefundStatus: String, Sendable, Hashable, Codable {
    case requested, succeeded, failed
}

/// A refund request recorded for Billing.
public struct RefundRequest: Sendable, Hashable, Codable {
    public let id: String
    public let incidentID: String
    public let billingTransaction: String
    public let amountCents: UInt64
    public var status: RefundStatus
    public let requestedSeq: UInt64
    public var outcomeSeq: UInt64?
    public var outcomeDetail: String?
}

/// An incident as stored.
public struct Incident: Sendable, Hashable, Codable {
    public let id: String
    public let category: IncidentCategory
    public let severity: Severity
    public let summary: String
    public let source: String
    public let refs: [CorrelationRef]
    public let reportedBy: ActorIdentity
    public var state: IncidentState
    /// Bumped by every change; pass the version you saw to detect concurrent changes.
    public var version: UInt32
    public let createdAtMicros: UnixMicros
    public var updatedAtMicros: UnixMicros
    public var acknowledgedAtMicros: UnixMicros?
    public var postmortemRef: String?
    public var responses: [AppliedResponse]

    /// When it must be acknowledged by.
    public var acknowledgeByMicros: UnixMicros { createdAtMicros + severity.acknowledgeWithinSeconds * 1_000_000 }

    /// Whether it is still unacknowledged past its deadline at `nowMicros`.
    public func isOverdue(atMicros nowMicros: UnixMicros) -> Bool {
        state == .open && nowMicros > acknowledgeByMicros
    }

    static let formatVersion: UInt8 = 1

    /// A version byte and the incident's canonical JSON.
    func encoded() throws(LarderError) -> [UInt8] { [Self.formatVersion] + (try CanonicalJSON.encode(self)) }

    static func decode(_ bytes: [UInt8]) throws(LarderError) -> Incident {
        guard bytes.first == formatVersion else { throw ByteReader.malformed("incident format version") }
        return try CanonicalJSON.decode(Incident.self, from: Array(bytes.dropFirst()))
    }
}

extension RefundRequest {
    func encoded() throws(LarderError) -> [UInt8] { [Incident.formatVersion] + (try CanonicalJSON.encode(self)) }

    static func decode(_ bytes: [UInt8]) throws(LarderError) -> RefundRequest {
        guard bytes.first == Incident.formatVersion else { throw ByteReader.malformed("refund format version") }
        return try CanonicalJSON.decode(RefundRequest.self, from: Array(bytes.dropFirst()))
    }
}
