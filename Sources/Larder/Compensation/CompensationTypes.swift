/// How much compensation is worth: a fixed amount, or a share of an original amount with a cap.
///
/// ```swift
/// let half = CompensationValue.percentage(percent: 50, ofCents: 2_400, capCents: 1_000)   // 1000 cents
/// ```
public enum CompensationValue: Sendable, Hashable, Codable {
    /// Exactly this many cents.
    case amount(cents: UInt64)
    /// `percent` (1 to 100) of `ofCents`, rounded down, at most `capCents`.
    case percentage(percent: UInt8, ofCents: UInt64, capCents: UInt64)

    /// The amount in cents this value comes to.
    public var cents: UInt64 {
        switch self {
        case .amount(let cents):
            return cents
        case .percentage(let percent, let original, let cap):
            // Rounded down: compensation never exceeds what the percentage says.
            let share = UInt128(original) * UInt128(percent) / 100
            return UInt64(min(share, UInt128(cap)))
        }
    }

    func validate(_ field: String) throws(LarderError) {
        switch self {
        case .amount(let cents):
            guard cents > 0 else { throw LarderError(.validationFailed, "The \(field) amount must be greater than zero.") }
        case .percentage(let percent, let original, let cap):
            guard (1...100).contains(percent) else {
                throw LarderError(.validationFailed, "The \(field) percentage is \(percent); it must be in 1...100.")
            }
            guard original > 0, cap > 0 else {
                throw LarderError(.validationFailed, "The \(field) percentage needs an original amount and a cap greater than zero.")
            }
            guard cents > 0 else {
                throw LarderError(.validationFailed, "\(percent) % of \(original) cents rounds down to 0; propose an amount instead.")
            }
        }
    }
}

/// The credit part of a proposal: into which customer credit account, how much, on what grounds.
public struct CompensationCredit: Sendable, Hashable, Codable {
    public var customerAccount: String
    public var value: CompensationValue
    public var basis: CreditBasis

    public init(customerAccount: String, value: CompensationValue, basis: CreditBasis) {
        self.customerAccount = customerAccount
        self.value = value
        self.basis = basis
    }
}

/// The refund part of a proposal: of which billing transaction, how much. Applied as a refund
/// request for Billing, like a refund response.
public struct CompensationRefund: Sendable, Hashable, Codable {
    public var billingTransaction: String
    public var value: CompensationValue

    public init(billingTransaction: String, value: CompensationValue) {
        self.billingTransaction = billingTransaction
        self.value = value
    }
}

/// Through which channel compensation goes.
public enum CompensationChannel: String, Sendable, Hashable, Codable, CaseIterable {
    case credit, refund, mixed
}

/// What a proposal offers: a credit, a refund, or both (mixed).
///
/// ```swift
/// let offer = CompensationOffer.mixed(
///     credit: CompensationCredit(customerAccount: "cust-17.credits", value: .amount(cents: 500), basis: .discretionary),
///     refund: CompensationRefund(billingTransaction: "bill-9001", value: .percentage(percent: 50, ofCents: 2_598, capCents: 1_500)))
/// ```
public struct CompensationOffer: Sendable, Hashable, Codable {
    public var credit: CompensationCredit?
    public var refund: CompensationRefund?

    public init(credit: CompensationCredit?, refund: CompensationRefund?) {
        self.credit = credit
        self.refund = refund
    }

    public static func credit(_ credit: CompensationCredit) -> CompensationOffer { CompensationOffer(credit: credit, refund: nil) }
    public static func refund(_ refund: CompensationRefund) -> CompensationOffer { CompensationOffer(credit: nil, refund: refund) }
    public static func mixed(credit: CompensationCredit, refund: CompensationRefund) -> CompensationOffer {
        CompensationOffer(credit: credit, refund: refund)
    }

    /// Credit, refund or mixed. An offer with neither part is refused when proposed.
    public var channel: CompensationChannel {
        switch (credit, refund) {
        case (_?, _?): .mixed
        case (nil, _?): .refund
        default: .credit
        }
    }

    /// What the credit and the refund come to together.
    public var totalCents: UInt64 {
        let (sum, overflow) = (credit?.value.cents ?? 0).addingReportingOverflow(refund?.value.cents ?? 0)
        return overflow ? .max : sum
    }
}

/// Where a proposal is: waiting for a decision, approved (by a person or a policy rule) or rejected.
public enum ProposalState: String, Sendable, Hashable, Codable, CaseIterable {
    case pending, approved, rejected
}

/// The decision taken on a proposal.
public enum ProposalVerdict: String, Sendable, Hashable, Codable {
    case approved, rejected
}

/// Who decided a proposal, how, when and why.
public struct ProposalDecision: Sendable, Hashable, Codable {
    public let verdict: ProposalVerdict
    public let actor: ActorIdentity
    public let reasonCode: String?
    /// The policy's auto rule that applied the proposal at once; nil for a person's decision.
    public let autoRule: String?
    public let requestID: String
    public let timeMicros: UnixMicros
    /// The `COMPENSATION_APPROVED` or `COMPENSATION_REJECTED` record.
    public let auditSeq: UInt64
}

/// A compensation proposal as stored.
///
/// Its derived ids: the pending credit `<id>.hold`, the credit itself `<id>.credit` (posting the
/// hold, or a plain transfer when applied at once), the release of a rejected hold
/// `<id>.release`, the refund request `<id>.refund`; the responses it applies on its incident are
/// `<id>.credit` and `<id>.refund`.
public struct CompensationProposal: Sendable, Hashable, Codable {
    /// `<incident>.<proposalID>` when the caller chose one, otherwise `<incident>.p<n>`.
    public let id: String
    public let incidentID: String
    /// The incident's category and severity when it was proposed.
    public let category: IncidentCategory
    public let severity: Severity
    public let offer: CompensationOffer
    /// What the credit part came to (``CompensationValue/cents``); nil without one.
    public let creditCents: UInt64?
    /// What the refund part came to; nil without one.
    public let refundCents: UInt64?
    /// Why it is proposed.
    public let reasonCode: String
    public let proposedBy: ActorIdentity
    public let proposedAtMicros: UnixMicros
    /// The `COMPENSATION_PROPOSED` record.
    public let proposedSeq: UInt64
    /// Within the policy's pre-approved credits and rules (``CompensationPolicy``).
    public let standard: Bool
    /// When it becomes overdue while still pending (the policy's `decideWithinSeconds` at the time).
    public let decideByMicros: UnixMicros
    /// The pending transfer that reserves the credit while the proposal waits; nil when it has
    /// no credit or applied at once.
    public let holdTransferID: String?
    public var state: ProposalState
    public var decision: ProposalDecision?
    /// Once approved: the transfer that granted the credit.
    public var creditTransferID: String?
    /// Once approved: the refund request for Billing.
    public var refundID: String?
    /// Once approved: the responses applied on the incident.
    public var responseIDs: [String]

    /// Whether it still waits past its deadline at `nowMicros`.
    public func isOverdue(atMicros nowMicros: UnixMicros) -> Bool {
        state == .pending && nowMicros > decideByMicros
    }

    static let formatVersion: UInt8 = 1

    /// A version byte and the proposal's canonical JSON (docs/FORMAT.md).
    func encoded() throws(LarderError) -> [UInt8] { [Self.formatVersion] + (try CanonicalJSON.encode(self)) }

    static func decode(_ bytes: [UInt8]) throws(LarderError) -> CompensationProposal {
        guard bytes.first == formatVersion else { throw ByteReader.malformed("compensation proposal format version") }
        return try CanonicalJSON.decode(CompensationProposal.self, from: Array(bytes.dropFirst()))
    }
}

extension AuditEvent {
    public static let compensationProposed: AuditEvent = "COMPENSATION_PROPOSED"
    public static let compensationApproved: AuditEvent = "COMPENSATION_APPROVED"
    public static let compensationRejected: AuditEvent = "COMPENSATION_REJECTED"
}

extension CorrelationRef {
    /// A compensation proposal.
    public static func proposal(_ id: String) -> CorrelationRef { .init("proposal", id) }
}
