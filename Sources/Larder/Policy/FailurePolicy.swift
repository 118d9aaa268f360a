/// The category of an operational failure: every incident has exactly one.
public enum IncidentCategory: String, Sendable, Hashable, Codable, CaseIterable {
    case supply
    case kitchenProduction
    case orderingSystem
    case delivery
    case humanProcess
    case forceMajeure
}

/// How bad an incident is, and how soon it must be acknowledged.
public enum Severity: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// Critical: outage, data loss or corruption risk. Acknowledge within 15 minutes.
    case p0 = "P0"
    /// High. Acknowledge within 1 hour.
    case p1 = "P1"
    /// Medium. Acknowledge within 4 hours.
    case p2 = "P2"
    /// Low. Acknowledge within 24 hours.
    case p3 = "P3"

    /// Time from recording to the acknowledgement deadline.
    public var acknowledgeWithinSeconds: Int64 {
        switch self {
        case .p0: 15 * 60
        case .p1: 60 * 60
        case .p2: 4 * 60 * 60
        case .p3: 24 * 60 * 60
        }
    }

    /// P0 and P1 incidents need a postmortem reference before they close.
    public var requiresPostmortem: Bool { self == .p0 || self == .p1 }

    public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Where an incident is in its lifecycle. Only the next state is reachable: any other
/// transition is a CONFLICT.
public enum IncidentState: String, Sendable, Hashable, Codable, CaseIterable {
    case open, acknowledged, contained, resolved, closed

    /// The one state this one may move to.
    public var next: IncidentState? {
        switch self {
        case .open: .acknowledged
        case .acknowledged: .contained
        case .contained: .resolved
        case .resolved: .closed
        case .closed: nil
        }
    }
}

/// The kinds of response the policy knows. No other kind exists.
public enum ResponseType: String, Sendable, Hashable, Codable, CaseIterable {
    case delay, substitution, credit, refund, cancellation
}

/// A credit an account manager may grant without an admin: a code and its cap.
public struct PreApprovedCredit: Sendable, Hashable, Codable {
    public var code: String
    public var amountCentsMax: UInt64
    public init(code: String, amountCentsMax: UInt64) {
        self.code = code
        self.amountCentsMax = amountCentsMax
    }
}

/// A credit the system grants deterministically: a rule id, the category it applies to, and the
/// exact amount.
public struct CreditRule: Sendable, Hashable, Codable {
    public var id: String
    public var category: IncidentCategory
    public var amountCents: UInt64
    public init(id: String, category: IncidentCategory, amountCents: UInt64) {
        self.id = id
        self.category = category
        self.amountCents = amountCents
    }
}

/// The failure policy the store enforces: which role may apply which response, the credits an
/// account manager may grant and their caps, the system's deterministic credit rules, and the
/// ledger accounts credits come from. Passed when the store opens; recorded in the audit log
/// (`POLICY_CHANGED`) whenever the policy in force changes. See `POLICY.md` beside this file.
public struct FailurePolicy: Sendable, Hashable, Codable {
    /// Response types each role may apply.
    public var allowedResponses: [Role: Set<ResponseType>]
    /// Categories whose incidents only an admin may respond to.
    public var adminOnlyCategories: Set<IncidentCategory>
    /// The account managers' pre-approved credits.
    public var preApprovedCredits: [PreApprovedCredit]
    /// The system's deterministic credit rules.
    public var creditRules: [CreditRule]
    /// The ledger of customer credits (in cents).
    public var creditLedger: String
    /// The account every credit is debited from; created on first use.
    public var creditIssuingAccount: String
    /// The ledger of packs: transfers on it tagged with a cancelled cycle are refused.
    public var packsLedger: String
    /// Who may propose and decide compensation, and which proposals apply at once.
    public var compensation: CompensationPolicy

    public init(allowedResponses: [Role: Set<ResponseType>], adminOnlyCategories: Set<IncidentCategory>,
                preApprovedCredits: [PreApprovedCredit], creditRules: [CreditRule], creditLedger: String,
                creditIssuingAccount: String, packsLedger: String, compensation: CompensationPolicy = .default) {
        self.compensation = compensation
        self.allowedResponses = allowedResponses
        self.adminOnlyCategories = adminOnlyCategories
        self.preApprovedCredits = preApprovedCredits
        self.creditRules = creditRules
        self.creditLedger = creditLedger
        self.creditIssuingAccount = creditIssuingAccount
        self.packsLedger = packsLedger
    }

    /// The policy POLICY.md describes (its defaults are listed there).
    public static let `default` = FailurePolicy(
        allowedResponses: [
            .accountManager: [.delay, .substitution, .credit],
            .admin: Set(ResponseType.allCases),
            .system: [.delay, .credit, .cancellation],
        ],
        adminOnlyCategories: [.forceMajeure],
        preApprovedCredits: [
            PreApprovedCredit(code: "late-delivery", amountCentsMax: 500),
            PreApprovedCredit(code: "missing-item", amountCentsMax: 1_500),
            PreApprovedCredit(code: "quality-issue", amountCentsMax: 1_000),
        ],
        creditRules: [
            CreditRule(id: "delivery-late-30min", category: .delivery, amountCents: 300),
            CreditRule(id: "ordering-outage", category: .orderingSystem, amountCents: 500),
        ],
        creditLedger: "credits.cents",
        creditIssuingAccount: "larder.credits.issued",
        packsLedger: "packs"
    )

    /// Whether `role` may apply `type` at all.
    public func allows(_ role: Role, _ type: ResponseType) -> Bool {
        allowedResponses[role]?.contains(type) ?? false
    }

    /// Throws VALIDATION_FAILED for a policy that cannot be enforced.
    public func validate() throws(LarderError) {
        try WriteContext.validateIdentifier(creditLedger, field: "policy.creditLedger")
        try WriteContext.validateIdentifier(creditIssuingAccount, field: "policy.creditIssuingAccount")
        try WriteContext.validateIdentifier(packsLedger, field: "policy.packsLedger")
        for credit in preApprovedCredits {
            try WriteContext.validateIdentifier(credit.code, field: "policy pre-approved credit code")
            guard credit.amountCentsMax > 0 else {
                throw LarderError(.validationFailed, "Pre-approved credit \(credit.code) has a cap of 0.")
            }
        }
        guard Set(preApprovedCredits.map(\.code)).count == preApprovedCredits.count else {
            throw LarderError(.validationFailed, "The policy lists a pre-approved credit code twice.")
        }
        for rule in creditRules {
            try WriteContext.validateIdentifier(rule.id, field: "policy credit rule id")
            guard rule.amountCents > 0 else { throw LarderError(.validationFailed, "Credit rule \(rule.id) grants 0.") }
        }
        guard Set(creditRules.map(\.id)).count == creditRules.count else {
            throw LarderError(.validationFailed, "The policy lists a credit rule id twice.")
        }
        guard allowedResponses[.system]?.contains(.refund) != true else {
            throw LarderError(.validationFailed, "The system may not issue refunds: refunds are discretionary.")
        }
        guard allowedResponses[.accountManager]?.contains(.refund) != true else {
            throw LarderError(.validationFailed, "Account managers may not issue refunds.")
        }
        try compensation.validate()
    }

    /// The canonical encoding recorded in the audit log and fingerprinted.
    func canonicalJSON() throws(LarderError) -> [UInt8] {
        try CanonicalJSON.encode(self)
    }

    // Sets and enum-keyed dictionaries encode in hash order, which differs between processes;
    // the policy's encoding is fingerprinted, so it uses sorted arrays and string keys instead.
    private enum CodingKeys: String, CodingKey {
        case allowedResponses, adminOnlyCategories, preApprovedCredits, creditRules, creditLedger,
             creditIssuingAccount, packsLedger, compensation
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        var allowed: [String: [String]] = [:]
        // A role with no responses is the same as a role left out: neither is encoded.
        for (role, types) in allowedResponses where !types.isEmpty { allowed[role.rawValue] = types.map(\.rawValue).sorted() }
        try container.encode(allowed, forKey: .allowedResponses)
        try container.encode(adminOnlyCategories.map(\.rawValue).sorted(), forKey: .adminOnlyCategories)
        // Lists are sets in meaning: their order must not change the policy's fingerprint.
        try container.encode(preApprovedCredits.sorted { $0.code < $1.code }, forKey: .preApprovedCredits)
        try container.encode(creditRules.sorted { $0.id < $1.id }, forKey: .creditRules)
        try container.encode(creditLedger, forKey: .creditLedger)
        try container.encode(creditIssuingAccount, forKey: .creditIssuingAccount)
        try container.encode(packsLedger, forKey: .packsLedger)
        try container.encode(compensation, forKey: .compensation)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let allowed = try container.decode([String: [String]].self, forKey: .allowedResponses)
        var responses: [Role: Set<ResponseType>] = [:]
        for (roleText, typeTexts) in allowed {
            guard let role = Role(rawValue: roleText) else {
                throw DecodingError.dataCorruptedError(forKey: .allowedResponses, in: container, debugDescription: "unknown role \(roleText)")
            }
            responses[role] = Set(try typeTexts.map { text in
                guard let type = ResponseType(rawValue: text) else {
                    throw DecodingError.dataCorruptedError(forKey: .allowedResponses, in: container, debugDescription: "unknown response \(text)")
                }
                return type
            })
        }
        allowedResponses = responses
        adminOnlyCategories = Set(try container.decode([IncidentCategory].self, forKey: .adminOnlyCategories))
        preApprovedCredits = try container.decode([PreApprovedCredit].self, forKey: .preApprovedCredits)
        creditRules = try container.decode([CreditRule].self, forKey: .creditRules)
        creditLedger = try container.decode(String.self, forKey: .creditLedger)
        creditIssuingAccount = try container.decode(String.self, forKey: .creditIssuingAccount)
        packsLedger = try container.decode(String.self, forKey: .packsLedger)
        // A policy recorded before compensation rules existed governed no proposal: read it with the defaults.
        compensation = try container.decodeIfPresent(CompensationPolicy.self, forKey: .compensation) ?? .default
    }
}
