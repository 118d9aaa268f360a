import LarderStorage

/// Compensation proposals inside a write: propose, approve, reject. Reached as `txn.compensation`.
///
/// A proposal either applies at once — when it is standard (``CompensationPolicy``), a policy
/// auto rule covers the incident's category, severity and amount, and the proposer's role could
/// grant that credit itself — or waits for a decision. While it waits, its credit is reserved as
/// a pending ledger transfer (the customer cannot spend it); approval posts that transfer,
/// rejection voids it. A refund part becomes a refund request for Billing when approved.
///
/// Like every incident change, each call decides everything (policy, roles, ids, ledger plans,
/// audit records) before it writes anything, so a refusal leaves the transaction as it was.
public struct CompensationWriter {
    let transaction: StoreTransaction
    private var tables: StoreTables { transaction.tables }
    private var txn: TableWriter { transaction.txn }
    private var policy: FailurePolicy { transaction.policy }
    private var actor: ActorIdentity { transaction.context.actor }
    private var replays: CompensationReplays { CompensationReplays(txn: txn, tables: tables) }

    /// Proposals one incident may hold.
    public static let proposalsPerIncidentMax = 1_000

    // MARK: Propose

    /// Proposes compensation for an incident and emits `COMPENSATION_PROPOSED`; when the policy
    /// lets it apply at once, also `COMPENSATION_APPROVED` and the credit's response records.
    ///
    /// A proposal reserves or moves money, so it needs a way to recognise its retry: a decisionID
    /// on the write, or a `proposalID` you choose (the proposal's id is then
    /// `<incident>.<proposalID>`; the same proposal again returns the stored one and writes
    /// nothing; a different one under that id is CONFLICT naming what differs).
    ///
    /// ```swift
    /// let proposal = try txn.compensation.propose(
    ///     .credit(CompensationCredit(customerAccount: "cust-17.credits", value: .amount(cents: 1_200), basis: .discretionary)),
    ///     for: incident.id, reasonCode: "meal-inedible", proposalID: "goodwill-4411")
    /// // proposal.state == .pending: 1200 cents reserved for cust-17, not spendable until approved
    /// ```
    ///
    /// - parameter offer: what is offered: a credit, a refund, or both.
    /// - parameter incidentID: the incident it compensates; it must not be closed.
    /// - parameter reasonCode: why it is proposed (required).
    /// - parameter proposalID: your id for it, unique within the incident: an identifier;
    ///   `p` followed by digits (alone or after the last dot) is the store's own.
    /// - throws: NOT_FOUND for a missing incident or customer account; CONFLICT for a closed
    ///   incident, a proposalID reused with another proposal, or a derived id that is taken;
    ///   PERMISSION_DENIED when the actor's role may not propose; VALIDATION_FAILED for a
    ///   malformed offer, an unknown pre-approved code or credit rule, a missing reason code, or
    ///   neither decisionID nor proposalID. Nothing is written in every case.
    @discardableResult
    public func propose(_ offer: CompensationOffer, for incidentID: String, reasonCode: String,
                        proposalID: String? = nil) throws(LarderError) -> CompensationProposal {
        try proposeOrReplay(offer, for: incidentID, reasonCode: reasonCode, proposalID: proposalID).value
    }

    func proposeOrReplay(_ offer: CompensationOffer, for incidentID: String, reasonCode: String,
                         proposalID chosen: String?) throws(LarderError) -> IncidentAnswer<CompensationProposal> {
        // Decide: the retry, then the incident, the role and the offer.
        var incident = try loadIncident(incidentID)
        var chosenFull: String?
        if let chosen {
            let full = try Self.proposalID(chosen: chosen, incident: incidentID)
            if let existing = try replays.proposal(id: full) {
                return try replays.propose(offer, for: incidentID, reasonCode: reasonCode, by: actor, existing: existing)
            }
            chosenFull = full
        }
        guard incident.state != .closed else {
            throw LarderError(.conflict, "Incident \(incidentID) is closed; no compensation can be proposed.",
                              failureClass: .validation, retryable: false)
        }
        guard policy.compensation.proposers.contains(actor.role) else {
            throw LarderError(.permissionDenied, "The \(actor.role.rawValue) role may not propose compensation (actor \(actor.id)); nothing was written.",
                              failurePoint: .authorization)
        }
        try WriteContext.validateIdentifier(reasonCode, field: "reasonCode")
        try validate(offer)
        let standard = CompensationRules(policy: policy).isStandard(offer, category: incident.category)
        guard transaction.context.decisionID != nil || chosen != nil else {
            throw LarderError(.validationFailed,
                              "A compensation proposal reserves or moves money: give the write a decisionID (WriteContext.decisionID) or pass a proposalID of your choosing, so that a retry is recognised instead of proposed twice. Nothing was written.")
        }
        let existingCount = try CompensationReader(txn: txn, tables: tables).count(incident: incidentID)
        guard existingCount < Self.proposalsPerIncidentMax else {
            throw LarderError(.validationFailed, "Incident \(incidentID) holds \(existingCount) proposals, the most it may hold.")
        }
        let id = chosenFull ?? "\(incidentID).p\(existingCount + 1)"
        try WriteContext.validateIdentifier(id, field: "proposal id \(JSONWriter.quoted(id))")
        guard try txn.get(tables.compensationProposals, id) == nil else {
            throw LarderError(.conflict, "Proposal \(id) exists already; nothing was written.", failureClass: .validation, retryable: false)
        }
        let derived = try DerivedIDs(proposal: id)
        try checkFree(derived, on: incident)

        let autoRule = standard ? autoRule(for: offer.credit!, on: incident) : nil

        // Decide: the plan, every record and row in the order they will be written.
        var plan = WritePlan(firstSeq: try transaction.nextAuditSeq())
        var planner = LedgerPlanner(txn: txn, tables: tables, timeMicros: transaction.timeMicros, packsLedger: policy.packsLedger)
        let issuing = try issuingAccountToCreate(offer, planner: &planner)
        let now = transaction.timeMicros
        var proposal = CompensationProposal(
            id: id, incidentID: incidentID, category: incident.category, severity: incident.severity, offer: offer,
            creditCents: offer.credit?.value.cents, refundCents: offer.refund?.value.cents, reasonCode: reasonCode,
            proposedBy: actor, proposedAtMicros: now, proposedSeq: plan.nextSeq, standard: standard,
            decideByMicros: now + policy.compensation.decideWithinSeconds * 1_000_000,
            holdTransferID: autoRule == nil && offer.credit != nil ? derived.hold : nil,
            state: autoRule == nil ? .pending : .approved, decision: nil, creditTransferID: nil, refundID: nil, responseIDs: [])
        try plan.audit(Self.proposedDraft(proposal, incident: incident))
        if let autoRule {
            try planApproval(&proposal, incident: &incident, autoRule: autoRule, reasonCode: nil, derived: derived,
                             issuing: issuing, planner: &planner, plan: &plan)
        } else if let credit = offer.credit {
            if let issuing { plan.createAccount(issuing) }
            plan.transfer(try planner.plan(.pending(id: derived.hold, debit: policy.creditIssuingAccount, credit: credit.customerAccount,
                                                    amount: credit.value.cents, refs: transferRefs(proposal))))
        }
        plan.put(.compensationProposals, id, try proposal.encoded(), insertOnly: true)
        for key in Self.indexKeys(proposal) { plan.index(.compensation, key, add: true) }

        // Write: everything above was decided; only storage can fail from here on.
        try plan.write(transaction)
        return .applied(proposal)
    }

    // MARK: Decide

    /// Approves a waiting proposal: posts its reserved credit, requests its refund from Billing,
    /// applies the matching responses on the incident, and emits `COMPENSATION_APPROVED` with the
    /// responses' records.
    ///
    /// A proposal is decided once. Deciding it again is CONFLICT, unless it is a retry of the
    /// decision: the same decisionID (the store answers it from the decision), or the same
    /// requestID with the same actor, verdict and reason code; a retry writes nothing.
    ///
    /// ```swift
    /// try txn.compensation.approve(proposal.id, reasonCode: "vip-customer")
    /// ```
    ///
    /// - parameter id: the proposal's full id (``CompensationProposal/id``).
    /// - parameter reasonCode: required for an admin.
    /// - throws: NOT_FOUND; CONFLICT when it was decided already or its incident is closed;
    ///   PERMISSION_DENIED when the role may not decide it (only the policy's non-standard
    ///   approvers — admins by default — may decide a non-standard proposal, and only admins a
    ///   proposal about an admin-only category); VALIDATION_FAILED for a missing admin reason
    ///   code. Nothing is written in every case.
    @discardableResult
    public func approve(_ id: String, reasonCode: String? = nil) throws(LarderError) -> CompensationProposal {
        try decideOrReplay(id, verdict: .approved, reasonCode: reasonCode).value
    }

    /// Rejects a waiting proposal: voids its reserved credit (the customer never had it) and
    /// emits `COMPENSATION_REJECTED`. A proposal about a closed incident may still be rejected.
    /// Retries and authority as for ``approve(_:reasonCode:)``.
    ///
    /// ```swift
    /// try txn.compensation.reject(proposal.id, reasonCode: "covered-by-cancellation")
    /// ```
    ///
    /// - throws: as ``approve(_:reasonCode:)``, except that a closed incident is no refusal.
    @discardableResult
    public func reject(_ id: String, reasonCode: String? = nil) throws(LarderError) -> CompensationProposal {
        try decideOrReplay(id, verdict: .rejected, reasonCode: reasonCode).value
    }

    func decideOrReplay(_ id: String, verdict: ProposalVerdict, reasonCode: String?) throws(LarderError) -> IncidentAnswer<CompensationProposal> {
        // Decide: the proposal and its retry, then the incident, the authority and the reason.
        try WriteContext.validateIdentifier(id, field: "proposal id")
        guard var proposal = try replays.proposal(id: id) else {
            throw LarderError(.notFound, "No compensation proposal \(id).")
        }
        if let replay = try replays.decision(proposal, verdict: verdict, reasonCode: reasonCode, context: transaction.context) {
            return replay
        }
        var incident = try loadIncident(proposal.incidentID)
        if verdict == .approved, incident.state == .closed {
            throw LarderError(.conflict, "Incident \(incident.id) is closed; proposal \(id) can only be rejected now.",
                              failureClass: .validation, retryable: false)
        }
        let rules = CompensationRules(policy: policy)
        // Judged by the policy in force now as well: a proposal that is no longer standard needs
        // the authority of a non-standard one.
        let standard = proposal.standard && rules.isStandard(proposal.offer, category: incident.category)
        let deciders = policy.compensation.approvers(standard: standard)
        guard deciders.contains(actor.role) else {
            let kind = standard ? "a standard" : "a non-standard"
            throw LarderError(.permissionDenied,
                              "The \(actor.role.rawValue) role may not decide \(kind) compensation proposal (actor \(actor.id)); \(deciders.map(\.rawValue).sorted().joined(separator: " or ")) may. Nothing was written.",
                              failurePoint: .authorization)
        }
        if policy.adminOnlyCategories.contains(incident.category), actor.role != .admin {
            throw LarderError(.permissionDenied, "Only an admin may decide compensation for a \(incident.category.rawValue) incident; nothing was written.",
                              failurePoint: .authorization)
        }
        if verdict == .approved {
            for (type, present) in [(ResponseType.credit, proposal.offer.credit != nil), (.refund, proposal.offer.refund != nil)]
            where present && !policy.allows(actor.role, type) {
                throw LarderError(.permissionDenied, "The \(actor.role.rawValue) role may not apply a \(type.rawValue); nothing was written.",
                                  failurePoint: .authorization)
            }
        }
        if let reasonCode { try WriteContext.validateIdentifier(reasonCode, field: "reasonCode") }
        if actor.role == .admin, reasonCode == nil {
            throw LarderError(.validationFailed, "An admin must give a reason code to \(verdict == .approved ? "approve" : "reject") a proposal.")
        }
        let derived = try DerivedIDs(proposal: id)

        // Decide: the plan.
        var plan = WritePlan(firstSeq: try transaction.nextAuditSeq())
        var planner = LedgerPlanner(txn: txn, tables: tables, timeMicros: transaction.timeMicros, packsLedger: policy.packsLedger)
        switch verdict {
        case .approved:
            try checkFree(derived, on: incident, holdExists: proposal.holdTransferID != nil)
            try planApproval(&proposal, incident: &incident, autoRule: nil, reasonCode: reasonCode, derived: derived,
                             issuing: nil, planner: &planner, plan: &plan)
        case .rejected:
            var release: LedgerPlanner.Plan?
            if let hold = proposal.holdTransferID {
                if try LedgerReader(txn: txn, tables: tables).transfer(id: derived.release) != nil {
                    throw LarderError(.conflict, "Transfer \(derived.release), the release of this proposal's hold, exists already; nothing was written.",
                                      failureClass: .validation, retryable: false)
                }
                release = try planner.plan(.void(id: derived.release, pending: hold, refs: transferRefs(proposal)))
            }
            let decisionSeq = try plan.audit(Self.rejectedDraft(proposal, incident: incident, reasonCode: reasonCode,
                                                                released: release == nil ? nil : derived.release))
            if let release { plan.transfer(release) }
            proposal.state = .rejected
            proposal.decision = ProposalDecision(verdict: .rejected, actor: actor, reasonCode: reasonCode, autoRule: nil,
                                                 requestID: transaction.context.requestID, timeMicros: transaction.timeMicros,
                                                 auditSeq: decisionSeq)
        }
        plan.index(.compensation, Self.stateKey(proposal, .pending), add: false)
        plan.index(.compensation, Self.stateKey(proposal, proposal.state), add: true)
        plan.put(.compensationProposals, id, try proposal.encoded(), insertOnly: false)

        // Write.
        try plan.write(transaction)
        return .applied(proposal)
    }

    // MARK: Applying an approved proposal

    /// Plans what an approval writes: `COMPENSATION_APPROVED`, then per part the response
    /// records and effects a response of that type writes (credit: `OP_RESPONSE_APPLIED`, the
    /// ledger transfer, `OP_CREDIT_GRANTED`; refund: `OP_RESPONSE_APPLIED`, `OP_REFUND_ISSUED` and
    /// the refund request), then the incident with its new responses.
    private func planApproval(_ proposal: inout CompensationProposal, incident: inout Incident, autoRule: CompensationAutoRule?,
                              reasonCode: String?, derived: DerivedIDs, issuing: NewAccount?, planner: inout LedgerPlanner,
                              plan: inout WritePlan) throws(LarderError) {
        let offer = proposal.offer
        // The responses' reason: the approver's, or for a proposal applied at once its own.
        let responseReason = autoRule == nil ? reasonCode : proposal.reasonCode
        var responseIDs: [String] = []
        if offer.credit != nil { responseIDs.append(derived.creditResponse) }
        if offer.refund != nil { responseIDs.append(derived.refundResponse) }
        let decisionSeq = try plan.audit(Self.approvedDraft(
            proposal, incident: incident, reasonCode: reasonCode, autoRule: autoRule?.id,
            creditTransfer: offer.credit == nil ? nil : derived.credit, refundID: offer.refund == nil ? nil : derived.refund,
            responseIDs: responseIDs))
        let category = incident.category.rawValue
        let baseRefs: [CorrelationRef] = [.incident(incident.id)] + incident.refs
        var applied: [AppliedResponse] = []
        if let credit = offer.credit {
            let amount = credit.value.cents
            let response = IncidentResponse.credit(amountCents: amount, customerAccount: credit.customerAccount, basis: credit.basis)
            let refs = Self.sortedUnique(baseRefs + [.transfer(derived.credit)])
            let effectRefs = Self.sortedUnique(refs + [.account(credit.customerAccount)])
            try Self.checkRefCount(effectRefs, incident: incident)
            let seq = try plan.audit(AuditDraft(event: .opResponseApplied, refs: refs, failureCategory: category,
                                                responseType: ResponseType.credit.rawValue, reasonCode: responseReason,
                                                payload: Self.responsePayload(incident.id, derived.creditResponse, response)))
            if let issuing { plan.createAccount(issuing) }
            let request: TransferRequest = if let hold = proposal.holdTransferID {
                .post(id: derived.credit, pending: hold, refs: transferRefs(proposal))
            } else {
                .transfer(id: derived.credit, debit: policy.creditIssuingAccount, credit: credit.customerAccount, amount: amount,
                          refs: transferRefs(proposal))
            }
            plan.transfer(try planner.plan(request))
            var granted = JSONWriter()
            granted.object { o in
                o.field("incident_id", incident.id)
                o.field("response_id", derived.creditResponse)
                o.field("transfer_id", derived.credit)
                o.field("amount_cents", amount)
                o.field("customer_account", credit.customerAccount)
                o.field("basis", IncidentWriter.describe(credit.basis))
            }
            try plan.audit(AuditDraft(event: .opCreditGranted, refs: effectRefs, failureCategory: category,
                                      responseType: ResponseType.credit.rawValue, reasonCode: responseReason, payload: granted.text))
            applied.append(AppliedResponse(id: derived.creditResponse, response: response, actor: actor, reasonCode: responseReason,
                                           timeMicros: transaction.timeMicros, auditSeq: seq, overrides: nil,
                                           transferID: derived.credit, refundID: nil, proposalID: proposal.id))
            proposal.creditTransferID = derived.credit
        }
        if let refund = offer.refund {
            let amount = refund.value.cents
            let response = IncidentResponse.refund(billingTransaction: refund.billingTransaction, amountCents: amount)
            let refs = Self.sortedUnique(baseRefs + [.billing(refund.billingTransaction)])
            try Self.checkRefCount(refs, incident: incident)
            let seq = try plan.audit(AuditDraft(event: .opResponseApplied, refs: refs, failureCategory: category,
                                                responseType: ResponseType.refund.rawValue, reasonCode: responseReason,
                                                payload: Self.responsePayload(incident.id, derived.refundResponse, response)))
            let request = RefundRequest(id: derived.refund, incidentID: incident.id, billingTransaction: refund.billingTransaction,
                                        amountCents: amount, status: .requested, requestedSeq: seq, outcomeSeq: nil, outcomeDetail: nil)
            var issued = JSONWriter()
            issued.object { o in
                o.field("incident_id", incident.id)
                o.field("refund_id", request.id)
                o.field("billing_transaction", refund.billingTransaction)
                o.field("amount_cents", amount)
                o.field("status", RefundStatus.requested.rawValue)
            }
            try plan.audit(AuditDraft(event: .opRefundIssued, refs: refs, failureCategory: category,
                                      responseType: ResponseType.refund.rawValue, reasonCode: responseReason, payload: issued.text))
            plan.put(.incidentRefunds, request.id, try request.encoded(), insertOnly: true)
            applied.append(AppliedResponse(id: derived.refundResponse, response: response, actor: actor, reasonCode: responseReason,
                                           timeMicros: transaction.timeMicros, auditSeq: seq, overrides: nil,
                                           transferID: nil, refundID: request.id, proposalID: proposal.id))
            proposal.refundID = request.id
        }
        incident.responses += applied
        incident.version += UInt32(applied.count)
        incident.updatedAtMicros = transaction.timeMicros
        plan.put(.incidents, incident.id, try incident.encoded(), insertOnly: false)
        proposal.state = .approved
        proposal.responseIDs = responseIDs
        proposal.decision = ProposalDecision(verdict: .approved, actor: actor, reasonCode: reasonCode, autoRule: autoRule?.id,
                                             requestID: transaction.context.requestID, timeMicros: transaction.timeMicros,
                                             auditSeq: decisionSeq)
    }

    // MARK: Checks

    /// The offer's own rules: at least one part; the credit into an existing account of the
    /// credit ledger, on grounds the policy knows; the refund of a billing transaction.
    private func validate(_ offer: CompensationOffer) throws(LarderError) {
        guard offer.credit != nil || offer.refund != nil else {
            throw LarderError(.validationFailed, "A compensation proposal offers a credit, a refund or both; this one offers neither.")
        }
        if let credit = offer.credit {
            try credit.value.validate("credit")
            try WriteContext.validateIdentifier(credit.customerAccount, field: "customer account")
            guard let account = try LedgerReader(txn: txn, tables: tables).account(id: credit.customerAccount) else {
                throw LarderError(.notFound, "The customer credit account \(credit.customerAccount) does not exist.")
            }
            guard account.ledger == policy.creditLedger else {
                throw LarderError(.validationFailed,
                                  "Account \(credit.customerAccount) is on ledger \(account.ledger), not the credit ledger \(policy.creditLedger).")
            }
            switch credit.basis {
            case .preApproved(let code):
                guard policy.preApprovedCredits.contains(where: { $0.code == code }) else {
                    throw LarderError(.validationFailed, "Credit code \(code) is not on the policy's pre-approved list; propose it as discretionary.")
                }
            case .rule(let ruleID):
                guard policy.creditRules.contains(where: { $0.id == ruleID }) else {
                    throw LarderError(.validationFailed, "The policy has no credit rule \(ruleID).")
                }
            case .discretionary:
                break
            }
        }
        if let refund = offer.refund {
            try refund.value.validate("refund")
            try WriteContext.validateIdentifier(refund.billingTransaction, field: "billing transaction")
        }
    }

    /// The ids a proposal derives must be free: no such transfers, refund request or responses.
    private func checkFree(_ derived: DerivedIDs, on incident: Incident, holdExists: Bool = false) throws(LarderError) {
        let ledger = LedgerReader(txn: txn, tables: tables)
        for transfer in (holdExists ? [] : [derived.hold]) + [derived.credit] where try ledger.transfer(id: transfer) != nil {
            throw LarderError(.conflict, "Transfer \(transfer), derived from proposal \(derived.proposal), exists already; choose another proposalID. Nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        if try txn.get(tables.incidentRefunds, derived.refund) != nil {
            throw LarderError(.conflict, "Refund request \(derived.refund), derived from proposal \(derived.proposal), exists already; nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        for response in [derived.creditResponse, derived.refundResponse] where incident.responses.contains(where: { $0.id == response }) {
            throw LarderError(.conflict, "Incident \(incident.id) holds a response \(response) already; choose another proposalID. Nothing was written.",
                              failureClass: .validation, retryable: false)
        }
    }

    /// The auto rule that applies a standard credit at once: one that covers the incident and the
    /// amount, when the proposer's role could grant the credit itself (so a rule never lends a
    /// role authority it lacks). The first by id, so the choice does not depend on list order.
    private func autoRule(for credit: CompensationCredit, on incident: Incident) -> CompensationAutoRule? {
        guard CompensationRules(policy: policy).mayGrant(credit, as: actor.role, category: incident.category) else { return nil }
        return policy.compensation.autoApply.sorted { $0.id < $1.id }.first {
            $0.covers(category: incident.category, severity: incident.severity, creditCents: credit.value.cents)
        }
    }

    /// The issuing account, when a credit needs it and it does not exist yet (planned as existing).
    private func issuingAccountToCreate(_ offer: CompensationOffer, planner: inout LedgerPlanner) throws(LarderError) -> NewAccount? {
        guard offer.credit != nil,
              try LedgerReader(txn: txn, tables: tables).account(id: policy.creditIssuingAccount) == nil else { return nil }
        let spec = NewAccount(id: policy.creditIssuingAccount, ledger: policy.creditLedger, code: 0, refs: [])
        try LedgerWriter.validate(spec)
        planner.expect(spec)
        return spec
    }

    private func transferRefs(_ proposal: CompensationProposal) -> [CorrelationRef] {
        [.incident(proposal.incidentID), .proposal(proposal.id), .request(transaction.context.requestID)]
    }

    private func loadIncident(_ id: String) throws(LarderError) -> Incident {
        try WriteContext.validateIdentifier(id, field: "incident id")
        guard let bytes = try txn.get(tables.incidents, id) else { throw LarderError(.notFound, "No incident \(id).") }
        return try Incident.decode(bytes)
    }

    private static func checkRefCount(_ refs: [CorrelationRef], incident: Incident) throws(LarderError) {
        guard refs.count <= AuditDraft.refsCountMax else {
            throw LarderError(.validationFailed,
                              "Incident \(incident.id) carries \(incident.refs.count) refs; a response's records would carry \(refs.count), more than \(AuditDraft.refsCountMax). Nothing was written.")
        }
    }

    static func sortedUnique(_ refs: [CorrelationRef]) -> [CorrelationRef] { Array(Set(refs)).sorted() }

    // MARK: Ids

    /// The ids a proposal derives (see ``CompensationProposal``).
    struct DerivedIDs {
        let proposal: String
        let hold: String
        let credit: String
        let release: String
        let refund: String
        var creditResponse: String { credit }
        var refundResponse: String { refund }

        init(proposal: String) throws(LarderError) {
            self.proposal = proposal
            hold = "\(proposal).hold"
            credit = "\(proposal).credit"
            release = "\(proposal).release"
            refund = "\(proposal).refund"
            // ".release" is the longest suffix.
            guard release.utf8.count <= WriteContext.identifierBytesMax else {
                throw LarderError(.validationFailed,
                                  "The ids derived from proposal \(proposal) would be longer than \(WriteContext.identifierBytesMax) bytes; use a shorter incident id or proposalID.")
            }
        }
    }

    /// The full id of a caller-chosen proposal: `<incident>.<chosen>`.
    static func proposalID(chosen: String, incident: String) throws(LarderError) -> String {
        try WriteContext.childID(chosen: chosen, parent: incident, field: "proposalID", storeLetter: "p")
    }

    /// Index entries: its state, its incident, and all.
    static func indexKeys(_ proposal: CompensationProposal) -> [KeyPair<String, KeyPair<Int64, String>>] {
        let at = KeyPair(proposal.proposedAtMicros, proposal.id)
        return [stateKey(proposal, proposal.state), KeyPair("incident:" + proposal.incidentID, at), KeyPair("all", at)]
    }

    static func stateKey(_ proposal: CompensationProposal, _ state: ProposalState) -> KeyPair<String, KeyPair<Int64, String>> {
        KeyPair("state:" + state.rawValue, KeyPair(proposal.proposedAtMicros, proposal.id))
    }

    // MARK: Records

    static func refs(_ proposal: CompensationProposal, incident: Incident) -> [CorrelationRef] {
        sortedUnique([.incident(incident.id), .proposal(proposal.id)] + incident.refs)
    }

    static func proposedDraft(_ proposal: CompensationProposal, incident: Incident) -> AuditDraft {
        var payload = JSONWriter()
        payload.object { o in
            o.field("incident_id", incident.id)
            o.field("proposal_id", proposal.id)
            o.field("channel", proposal.offer.channel.rawValue)
            o.field("severity", incident.severity.rawValue)
            if let credit = proposal.offer.credit {
                o.object("credit") { c in
                    c.field("customer_account", credit.customerAccount)
                    c.field("basis", IncidentWriter.describe(credit.basis))
                    c.object("value") { v in writeValue(credit.value, to: &v) }
                    c.field("amount_cents", credit.value.cents)
                }
            } else {
                o.rawField("credit", json: "null")
            }
            if let refund = proposal.offer.refund {
                o.object("refund") { r in
                    r.field("billing_transaction", refund.billingTransaction)
                    r.object("value") { v in writeValue(refund.value, to: &v) }
                    r.field("amount_cents", refund.value.cents)
                }
            } else {
                o.rawField("refund", json: "null")
            }
            o.field("total_cents", proposal.offer.totalCents)
            o.field("standard", proposal.standard)
            o.field("state", proposal.state.rawValue)
            o.field("hold_transfer", proposal.holdTransferID)
            o.field("decide_by", RFC3339.format(proposal.decideByMicros))
        }
        return AuditDraft(event: .compensationProposed, refs: refs(proposal, incident: incident),
                          failureCategory: incident.category.rawValue, responseType: proposal.offer.channel.rawValue,
                          reasonCode: proposal.reasonCode, payload: payload.text)
    }

    static func approvedDraft(_ proposal: CompensationProposal, incident: Incident, reasonCode: String?, autoRule: String?,
                              creditTransfer: String?, refundID: String?, responseIDs: [String]) -> AuditDraft {
        var payload = JSONWriter()
        payload.object { o in
            o.field("incident_id", incident.id)
            o.field("proposal_id", proposal.id)
            o.field("channel", proposal.offer.channel.rawValue)
            o.field("proposed_by", proposal.proposedBy.id)
            o.field("auto_rule", autoRule)
            o.field("credit_transfer", creditTransfer)
            o.field("refund_id", refundID)
            o.array("response_ids") { a in for id in responseIDs { a.value(id) } }
        }
        return AuditDraft(event: .compensationApproved, refs: refs(proposal, incident: incident),
                          failureCategory: incident.category.rawValue, responseType: proposal.offer.channel.rawValue,
                          reasonCode: reasonCode, payload: payload.text)
    }

    static func rejectedDraft(_ proposal: CompensationProposal, incident: Incident, reasonCode: String?, released: String?) -> AuditDraft {
        var payload = JSONWriter()
        payload.object { o in
            o.field("incident_id", incident.id)
            o.field("proposal_id", proposal.id)
            o.field("channel", proposal.offer.channel.rawValue)
            o.field("proposed_by", proposal.proposedBy.id)
            o.field("released_transfer", released)
        }
        return AuditDraft(event: .compensationRejected, refs: refs(proposal, incident: incident),
                          failureCategory: incident.category.rawValue, responseType: proposal.offer.channel.rawValue,
                          reasonCode: reasonCode, payload: payload.text)
    }

    static func writeValue(_ value: CompensationValue, to o: inout JSONWriter) {
        switch value {
        case .amount(let cents):
            o.field("type", "amount")
            o.field("cents", cents)
        case .percentage(let percent, let original, let cap):
            o.field("type", "percentage")
            o.field("percent", percent)
            o.field("of_cents", original)
            o.field("cap_cents", cap)
        }
    }

    /// The `OP_RESPONSE_APPLIED` payload of a credit or refund response, as ``IncidentWriter``
    /// writes it for a response applied directly (no override).
    static func responsePayload(_ incidentID: String, _ responseID: String, _ response: IncidentResponse) -> String {
        var payload = JSONWriter()
        payload.object { o in
            o.field("incident_id", incidentID)
            o.field("response_id", responseID)
            o.field("type", response.type.rawValue)
            switch response {
            case .credit(let amount, let customer, let basis):
                o.field("amount_cents", amount)
                o.field("customer_account", customer)
                o.field("basis", IncidentWriter.describe(basis))
            case .refund(let billing, let amount):
                o.field("billing_transaction", billing)
                o.field("amount_cents", amount)
            case .delay, .substitution, .cancellation:
                preconditionFailure("a proposal applies credits and refunds only")
            }
            o.field("overrides", nil as String?)
        }
        return payload.text
    }
}

/// The policy's judgement of an offer: whether it is standard, and whether a role could grant
/// its credit itself (the rules ``IncidentWriter`` applies to a credit response).
struct CompensationRules {
    let policy: FailurePolicy

    /// A credit alone, within a pre-approved credit's cap or exactly a system rule for the category.
    func isStandard(_ offer: CompensationOffer, category: IncidentCategory) -> Bool {
        guard let credit = offer.credit, offer.refund == nil else { return false }
        let cents = credit.value.cents
        switch credit.basis {
        case .preApproved(let code):
            return policy.preApprovedCredits.contains { $0.code == code && cents <= $0.amountCentsMax }
        case .rule(let id):
            return policy.creditRules.contains { $0.id == id && $0.category == category && $0.amountCents == cents }
        case .discretionary:
            return false
        }
    }

    /// Whether `role` may apply this credit as a response of its own on an incident of `category`.
    func mayGrant(_ credit: CompensationCredit, as role: Role, category: IncidentCategory) -> Bool {
        guard policy.allows(role, .credit) else { return false }
        if policy.adminOnlyCategories.contains(category), role != .admin { return false }
        let cents = credit.value.cents
        switch (role, credit.basis) {
        case (.admin, _):
            return true
        case (.accountManager, .preApproved(let code)):
            return policy.preApprovedCredits.contains { $0.code == code && cents <= $0.amountCentsMax }
        case (.system, .rule(let id)):
            return policy.creditRules.contains { $0.id == id && $0.category == category && $0.amountCents == cents }
        default:
            return false
        }
    }
}

extension StoreTransaction {
    /// Compensation proposals: propose, approve, reject under the failure policy.
    public var compensation: CompensationWriter { CompensationWriter(transaction: self) }
}
