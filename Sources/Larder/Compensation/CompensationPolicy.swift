/// When a standard compensation proposal applies at once instead of waiting for approval: the
/// incident's category and severity must be listed, and the credit at most `creditCentsMax`.
///
/// ```swift
/// let rule = CompensationAutoRule(id: "low-severity-credits", categories: [.delivery], severities: [.p2, .p3],
///                                 creditCentsMax: 1_000)
/// ```
public struct CompensationAutoRule: Sendable, Hashable, Codable {
    /// Named in the `COMPENSATION_APPROVED` record of every proposal it applies.
    public var id: String
    public var categories: Set<IncidentCategory>
    public var severities: Set<Severity>
    public var creditCentsMax: UInt64

    public init(id: String, categories: Set<IncidentCategory>, severities: Set<Severity>, creditCentsMax: UInt64) {
        self.id = id
        self.categories = categories
        self.severities = severities
        self.creditCentsMax = creditCentsMax
    }

    /// Whether the rule covers a credit of `cents` on an incident of this category and severity.
    public func covers(category: IncidentCategory, severity: Severity, creditCents cents: UInt64) -> Bool {
        categories.contains(category) && severities.contains(severity) && cents <= creditCentsMax
    }

    // Sets encode in hash order, which differs between processes; the policy is fingerprinted,
    // so the sets are written as sorted arrays.
    private enum CodingKeys: String, CodingKey { case id, categories, severities, creditCentsMax }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(categories.map(\.rawValue).sorted(), forKey: .categories)
        try container.encode(severities.map(\.rawValue).sorted(), forKey: .severities)
        try container.encode(creditCentsMax, forKey: .creditCentsMax)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        categories = Set(try container.decode([IncidentCategory].self, forKey: .categories))
        severities = Set(try container.decode([Severity].self, forKey: .severities))
        creditCentsMax = try container.decode(UInt64.self, forKey: .creditCentsMax)
    }
}

/// The failure policy's rules for compensation proposals: who may propose, who may decide, which
/// proposals apply without waiting, and when a waiting one is overdue. Part of ``FailurePolicy``
/// (and so of every `POLICY_CHANGED` record).
///
/// A proposal is **standard** when it is a credit alone that the policy's lists already allow: a
/// pre-approved credit within its cap, or a system credit rule for the incident's category with
/// its exact amount. Anything else — a discretionary or over-cap credit, a refund, a mixed
/// proposal — is **non-standard**.
///
/// ```swift
/// var policy = FailurePolicy.default
/// policy.compensation.autoApply = []                       // every proposal waits for a decision
/// policy.compensation.decideWithinSeconds = 2 * 60 * 60    // overdue after two hours
/// ```
public struct CompensationPolicy: Sendable, Hashable, Codable {
    /// Roles that may propose compensation.
    public var proposers: Set<Role>
    /// Roles that may approve or reject a standard proposal (besides ``nonStandardApprovers``).
    public var standardApprovers: Set<Role>
    /// Roles that may approve or reject any proposal, non-standard ones included.
    public var nonStandardApprovers: Set<Role>
    /// A standard proposal that one of these rules covers applies at once, when its proposer's
    /// role could apply that credit itself.
    public var autoApply: [CompensationAutoRule]
    /// A proposal still waiting this long after it was made is overdue.
    public var decideWithinSeconds: Int64

    public init(proposers: Set<Role>, standardApprovers: Set<Role>, nonStandardApprovers: Set<Role>,
                autoApply: [CompensationAutoRule], decideWithinSeconds: Int64) {
        self.proposers = proposers
        self.standardApprovers = standardApprovers
        self.nonStandardApprovers = nonStandardApprovers
        self.autoApply = autoApply
        self.decideWithinSeconds = decideWithinSeconds
    }

    /// Account managers, admins and the system propose; account managers and admins decide
    /// standard proposals, admins any; standard credits on P2 and P3 incidents of every category
    /// but force majeure apply at once (up to the largest pre-approved cap, 15.00); a proposal is
    /// overdue after 4 hours.
    public static let `default` = CompensationPolicy(
        proposers: [.accountManager, .admin, .system],
        standardApprovers: [.accountManager, .admin],
        nonStandardApprovers: [.admin],
        autoApply: [
            CompensationAutoRule(id: "standard-credit-low-severity",
                                 categories: [.supply, .kitchenProduction, .orderingSystem, .delivery, .humanProcess],
                                 severities: [.p2, .p3], creditCentsMax: 1_500),
        ],
        decideWithinSeconds: 4 * 60 * 60
    )

    /// The roles that may approve or reject a proposal.
    public func approvers(standard: Bool) -> Set<Role> {
        standard ? standardApprovers.union(nonStandardApprovers) : nonStandardApprovers
    }

    /// The longest `decideWithinSeconds` accepted: a year.
    public static let decideWithinSecondsMax: Int64 = 366 * 24 * 60 * 60

    /// Throws VALIDATION_FAILED for rules that cannot be enforced. Non-standard compensation
    /// (refunds, discretionary and over-cap credits) is an admin's decision whatever the policy
    /// says, as refunds are (``FailurePolicy/validate()``). Whether a decider may apply what a
    /// proposal holds is checked against the response rules when it decides.
    func validate() throws(LarderError) {
        for role in nonStandardApprovers.sorted(by: { $0.rawValue < $1.rawValue }) where role != .admin {
            throw LarderError(.validationFailed,
                              "The \(role.rawValue) role may not decide non-standard compensation (refunds, non-standard credits): only admins may.")
        }
        guard (1...Self.decideWithinSecondsMax).contains(decideWithinSeconds) else {
            throw LarderError(.validationFailed,
                              "compensation.decideWithinSeconds is \(decideWithinSeconds); it must be in 1...\(Self.decideWithinSecondsMax).")
        }
        for rule in autoApply {
            try WriteContext.validateIdentifier(rule.id, field: "policy compensation auto rule id")
            guard !rule.categories.isEmpty, !rule.severities.isEmpty, rule.creditCentsMax > 0 else {
                throw LarderError(.validationFailed, "Compensation auto rule \(rule.id) covers nothing (no category, no severity or a cap of 0).")
            }
        }
        guard Set(autoApply.map(\.id)).count == autoApply.count else {
            throw LarderError(.validationFailed, "The policy lists a compensation auto rule id twice.")
        }
    }

    private enum CodingKeys: String, CodingKey {
        case proposers, standardApprovers, nonStandardApprovers, autoApply, decideWithinSeconds
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(proposers.map(\.rawValue).sorted(), forKey: .proposers)
        try container.encode(standardApprovers.map(\.rawValue).sorted(), forKey: .standardApprovers)
        try container.encode(nonStandardApprovers.map(\.rawValue).sorted(), forKey: .nonStandardApprovers)
        // Any covering rule applies, so their order means nothing: sorted by id, the fingerprint ignores it.
        try container.encode(autoApply.sorted { $0.id < $1.id }, forKey: .autoApply)
        try container.encode(decideWithinSeconds, forKey: .decideWithinSeconds)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        proposers = Set(try container.decode([Role].self, forKey: .proposers))
        standardApprovers = Set(try container.decode([Role].self, forKey: .standardApprovers))
        nonStandardApprovers = Set(try container.decode([Role].self, forKey: .nonStandardApprovers))
        autoApply = try container.decode([CompensationAutoRule].self, forKey: .autoApply)
        decideWithinSeconds = try container.decode(Int64.self, forKey: .decideWithinSeconds)
    }
}
