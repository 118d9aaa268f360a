public import Larder

/// A deliberately simple, in-memory model of incidents under the failure policy, to check the
/// store against: plain dictionaries, the ledger as a ``LedgerModel``, the audit log as a counter
/// of records. It predicts, for every call, whether it commits (with the exact value and audit
/// seq), replays (which earlier write, and its value) or fails (with which code), checking in the
/// order the store documents:
///
/// - every call: a known decisionID replays its stored result (same actor and request) or is
///   CONFLICT;
/// - record: an existing caller-chosen id (replay when identical), then summary, source, refs;
/// - transition: the incident, the state it is in already (replay for the request that made it),
///   the version, the next state, identifiers, the postmortem rule;
/// - apply: the incident, an existing responseID (replay when identical), the version, closed,
///   the role, the reason code, the override, the response's own rules, the idempotency key,
///   then the ledger's balance rules;
/// - refund outcome: the role, the status, identifiers, the refund, an outcome already recorded
///   (replay when identical).
///
/// ```swift
/// var model = IncidentModel(auditHead: 2, ledger: ledgerModel)
/// let expected = model.record(report, context: context, nowMicros: clock.now().unixMicros)
/// ```
public struct IncidentModel: Sendable {
    /// What a call is expected to do.
    public enum Outcome<Value: Hashable & Sendable>: Hashable, Sendable, CustomStringConvertible {
        /// It writes; `auditSeq` is the last record it appends.
        case committed(Value, auditSeq: UInt64)
        /// An earlier write did the work; `auditSeq` names it (see the store's documentation).
        case replayed(Value, auditSeq: UInt64)
        case failed(LarderError.Code)

        public var description: String {
            switch self {
            case .committed(let value, let seq): "committed at seq \(seq): \(value)"
            case .replayed(let value, let seq): "replayed from seq \(seq): \(value)"
            case .failed(let code): "failed with \(code.rawValue)"
            }
        }
    }

    /// An incident as the store should hold it.
    public struct ModelIncident: Hashable, Sendable {
        public var id: String
        public var category: IncidentCategory
        public var severity: Severity
        public var summary: String
        public var source: String
        public var refs: [CorrelationRef]
        public var reportedBy: ActorIdentity
        public var state: IncidentState
        public var version: UInt32
        public var createdAtMicros: UnixMicros
        public var updatedAtMicros: UnixMicros
        public var acknowledgedAtMicros: UnixMicros?
        public var postmortemRef: String?
        public var responses: [ModelResponse]

        public init(_ incident: Incident) {
            id = incident.id
            category = incident.category
            severity = incident.severity
            summary = incident.summary
            source = incident.source
            refs = incident.refs
            reportedBy = incident.reportedBy
            state = incident.state
            version = incident.version
            createdAtMicros = incident.createdAtMicros
            updatedAtMicros = incident.updatedAtMicros
            acknowledgedAtMicros = incident.acknowledgedAtMicros
            postmortemRef = incident.postmortemRef
            responses = incident.responses.map(ModelResponse.init)
        }

        init(id: String, report: IncidentReport, actor: ActorIdentity, nowMicros: UnixMicros) {
            self.id = id
            category = report.category
            severity = report.severity
            summary = report.summary
            source = report.source
            refs = Array(Set(report.refs)).sorted()
            reportedBy = actor
            state = .open
            version = 1
            createdAtMicros = nowMicros
            updatedAtMicros = nowMicros
            responses = []
        }
    }

    /// An applied response as the store should hold it.
    public struct ModelResponse: Hashable, Sendable {
        public var id: String
        public var response: IncidentResponse
        public var actor: ActorIdentity
        public var reasonCode: String?
        public var timeMicros: UnixMicros
        public var auditSeq: UInt64
        public var overrides: String?
        public var transferID: String?
        public var refundID: String?

        public init(_ applied: AppliedResponse) {
            id = applied.id
            response = applied.response
            actor = applied.actor
            reasonCode = applied.reasonCode
            timeMicros = applied.timeMicros
            auditSeq = applied.auditSeq
            overrides = applied.overrides
            transferID = applied.transferID
            refundID = applied.refundID
        }

        init(id: String, response: IncidentResponse, actor: ActorIdentity, reasonCode: String?, timeMicros: UnixMicros,
             auditSeq: UInt64, overrides: String?, transferID: String?, refundID: String?) {
            self.id = id
            self.response = response
            self.actor = actor
            self.reasonCode = reasonCode
            self.timeMicros = timeMicros
            self.auditSeq = auditSeq
            self.overrides = overrides
            self.transferID = transferID
            self.refundID = refundID
        }
    }

    /// A refund request as the store should hold it.
    public struct ModelRefund: Hashable, Sendable {
        public var id: String
        public var incidentID: String
        public var billingTransaction: String
        public var amountCents: UInt64
        public var status: RefundStatus
        public var requestedSeq: UInt64
        public var outcomeSeq: UInt64?
        public var outcomeDetail: String?

        public init(_ refund: RefundRequest) {
            id = refund.id
            incidentID = refund.incidentID
            billingTransaction = refund.billingTransaction
            amountCents = refund.amountCents
            status = refund.status
            requestedSeq = refund.requestedSeq
            outcomeSeq = refund.outcomeSeq
            outcomeDetail = refund.outcomeDetail
        }

        init(id: String, incidentID: String, billingTransaction: String, amountCents: UInt64, requestedSeq: UInt64) {
            self.id = id
            self.incidentID = incidentID
            self.billingTransaction = billingTransaction
            self.amountCents = amountCents
            status = .requested
            self.requestedSeq = requestedSeq
        }
    }

    /// What a decision was about: two calls are the same decision only when these are equal.
    enum Request: Hashable, Sendable {
        case record(IncidentReport)
        case transition(String, IncidentState, postmortemRef: String?, reasonCode: String?)
        case apply(String, IncidentResponse, reasonCode: String?, overriding: String?, responseID: String?)
        case refundOutcome(String, RefundStatus, detail: String?)
    }

    enum Result: Hashable, Sendable {
        case incident(ModelIncident)
        case response(ModelResponse)
        case refund(ModelRefund)
    }

    struct Decision: Hashable, Sendable {
        let actor: ActorIdentity
        let request: Request
        let result: Result
        let auditSeq: UInt64
    }

    /// The request that moved an incident into its current state.
    struct Transition: Hashable, Sendable {
        let requestID: String
        let decisionID: String?
        let actor: ActorIdentity
        let postmortemRef: String?
        let reasonCode: String?
        let seq: UInt64
    }

    public let policy: FailurePolicy
    /// The seq of the last audit record.
    public private(set) var auditHead: UInt64
    public private(set) var ledger: LedgerModel
    public private(set) var incidents: [String: ModelIncident] = [:]
    public private(set) var refunds: [String: ModelRefund] = [:]
    /// Cancelled cycle → the incident that cancelled it.
    public private(set) var cancelledCycles: [String: String] = [:]
    private var decisions: [String: Decision] = [:]
    private var recordedSeq: [String: UInt64] = [:]
    private var transitions: [String: Transition] = [:]

    /// A model of a store whose audit log ends at `auditHead` and whose ledger is `ledger`.
    public init(policy: FailurePolicy = .default, auditHead: UInt64, ledger: LedgerModel) {
        self.policy = policy
        self.auditHead = auditHead
        self.ledger = ledger
    }

    // MARK: Decisions

    /// Runs `body` as the decision `context.decisionID` about `request`.
    private mutating func decided<Value>(
        _ context: WriteContext, _ request: Request, wrap: (Value) -> Result, unwrap: (Result) -> Value?,
        _ body: (inout IncidentModel) -> Outcome<Value>
    ) -> Outcome<Value> {
        guard let decisionID = context.decisionID else { return body(&self) }
        if let stored = decisions[decisionID] {
            guard stored.actor == context.actor, stored.request == request, let value = unwrap(stored.result) else {
                return .failed(.conflict)
            }
            return .replayed(value, auditSeq: stored.auditSeq)
        }
        let outcome = body(&self)
        // Only a write that changed something keeps its decision.
        if case .committed(let value, let seq) = outcome {
            decisions[decisionID] = Decision(actor: context.actor, request: request, result: wrap(value), auditSeq: seq)
        }
        return outcome
    }

    // MARK: Record

    public mutating func record(_ report: IncidentReport, context: WriteContext, nowMicros: UnixMicros) -> Outcome<ModelIncident> {
        decided(context, .record(report), wrap: Result.incident, unwrap: { if case .incident(let i) = $0 { i } else { nil } }) { model in
            model.recordNow(report, actor: context.actor, nowMicros: nowMicros)
        }
    }

    private mutating func recordNow(_ report: IncidentReport, actor: ActorIdentity, nowMicros: UnixMicros) -> Outcome<ModelIncident> {
        if let chosen = report.id {
            guard Self.isIdentifier(chosen) else { return .failed(.validationFailed) }
            if let existing = incidents[chosen] {
                let same = existing.category == report.category && existing.severity == report.severity
                    && existing.summary == report.summary && existing.source == report.source
                    && existing.refs == Array(Set(report.refs)).sorted() && existing.reportedBy == actor
                return same ? .replayed(existing, auditSeq: recordedSeq[chosen]!) : .failed(.conflict)
            }
        }
        guard (1...IncidentReport.summaryBytesMax).contains(report.summary.utf8.count), Self.isIdentifier(report.source),
              report.refs.count <= IncidentReport.refsCountMax, report.refs.allSatisfy(Self.isValid) else {
            return .failed(.validationFailed)
        }
        let seq = auditHead + 1
        let id = report.id ?? "inc-\(seq)"
        guard incidents[id] == nil else { return .failed(.conflict) }
        let incident = ModelIncident(id: id, report: report, actor: actor, nowMicros: nowMicros)
        incidents[id] = incident
        recordedSeq[id] = seq
        auditHead = seq
        return .committed(incident, auditSeq: seq)
    }

    // MARK: Transition

    public mutating func transition(_ id: String, to state: IncidentState, expectedVersion: UInt32?, postmortemRef: String?,
                                    reasonCode: String?, context: WriteContext, nowMicros: UnixMicros) -> Outcome<ModelIncident> {
        let request = Request.transition(id, state, postmortemRef: postmortemRef, reasonCode: reasonCode)
        return decided(context, request, wrap: Result.incident, unwrap: { if case .incident(let i) = $0 { i } else { nil } }) { model in
            model.transitionNow(id, to: state, expectedVersion: expectedVersion, postmortemRef: postmortemRef, reasonCode: reasonCode,
                                context: context, nowMicros: nowMicros)
        }
    }

    private mutating func transitionNow(_ id: String, to state: IncidentState, expectedVersion: UInt32?, postmortemRef: String?,
                                        reasonCode: String?, context: WriteContext, nowMicros: UnixMicros) -> Outcome<ModelIncident> {
        guard Self.isIdentifier(id) else { return .failed(.validationFailed) }
        guard var incident = incidents[id] else { return .failed(.notFound) }
        if incident.state == state {
            guard let last = transitions[id] else { return .failed(.conflict) }
            let sameRequest = last.requestID == context.requestID || (context.decisionID != nil && last.decisionID == context.decisionID)
            guard sameRequest, last.actor == context.actor, last.postmortemRef == postmortemRef, last.reasonCode == reasonCode else {
                return .failed(.conflict)
            }
            return .replayed(incident, auditSeq: last.seq)
        }
        if let expectedVersion, expectedVersion != incident.version { return .failed(.conflict) }
        guard incident.state.next == state else { return .failed(.conflict) }
        if let postmortemRef, !Self.isIdentifier(postmortemRef) { return .failed(.validationFailed) }
        if let reasonCode, !Self.isIdentifier(reasonCode) { return .failed(.validationFailed) }
        if state == .closed, incident.severity.requiresPostmortem, postmortemRef == nil { return .failed(.validationFailed) }
        let seq = auditHead + 1
        incident.state = state
        incident.version += 1
        incident.updatedAtMicros = nowMicros
        if state == .acknowledged { incident.acknowledgedAtMicros = nowMicros }
        if let postmortemRef { incident.postmortemRef = postmortemRef }
        incidents[id] = incident
        transitions[id] = Transition(requestID: context.requestID, decisionID: context.decisionID, actor: context.actor,
                                     postmortemRef: postmortemRef, reasonCode: reasonCode, seq: seq)
        auditHead = seq
        return .committed(incident, auditSeq: seq)
    }

    // MARK: Apply

    public mutating func apply(_ response: IncidentResponse, to id: String, expectedVersion: UInt32?, reasonCode: String?,
                               overriding: String?, responseID: String?, context: WriteContext,
                               nowMicros: UnixMicros) -> Outcome<ModelResponse> {
        let request = Request.apply(id, response, reasonCode: reasonCode, overriding: overriding, responseID: responseID)
        return decided(context, request, wrap: Result.response, unwrap: { if case .response(let r) = $0 { r } else { nil } }) { model in
            model.applyNow(response, to: id, expectedVersion: expectedVersion, reasonCode: reasonCode, overriding: overriding,
                           responseID: responseID, context: context, nowMicros: nowMicros)
        }
    }

    private mutating func applyNow(_ response: IncidentResponse, to id: String, expectedVersion: UInt32?, reasonCode: String?,
                                   overriding: String?, responseID chosen: String?, context: WriteContext,
                                   nowMicros: UnixMicros) -> Outcome<ModelResponse> {
        let actor = context.actor
        guard Self.isIdentifier(id) else { return .failed(.validationFailed) }
        guard var incident = incidents[id] else { return .failed(.notFound) }
        var chosenID: String?
        if let chosen {
            guard Self.isIdentifier(chosen), !Self.isReserved(chosen), Self.isIdentifier("\(id).\(chosen)") else {
                return .failed(.validationFailed)
            }
            let full = "\(id).\(chosen)"
            if let existing = incident.responses.first(where: { $0.id == full }) {
                let same = existing.actor == actor && existing.response == response && existing.reasonCode == reasonCode
                    && existing.overrides == overriding
                return same ? .replayed(existing, auditSeq: existing.auditSeq) : .failed(.conflict)
            }
            chosenID = full
        }
        if let expectedVersion, expectedVersion != incident.version { return .failed(.conflict) }
        guard incident.state != .closed else { return .failed(.conflict) }
        let type = response.type
        guard policy.allows(actor.role, type) else { return .failed(.permissionDenied) }
        if policy.adminOnlyCategories.contains(incident.category), actor.role != .admin { return .failed(.permissionDenied) }
        if let reasonCode, !Self.isIdentifier(reasonCode) { return .failed(.validationFailed) }
        if actor.role == .admin, reasonCode == nil { return .failed(.validationFailed) }
        var overridden: ModelResponse?
        if let overriding {
            guard actor.role == .admin else { return .failed(.permissionDenied) }
            guard let target = incident.responses.first(where: { $0.id == overriding }) else { return .failed(.notFound) }
            guard target.actor.role == .accountManager else { return .failed(.validationFailed) }
            guard !incident.responses.contains(where: { $0.overrides == overriding }) else { return .failed(.conflict) }
            overridden = target
        }
        if let code = validate(response, category: incident.category, actor: actor, nowMicros: nowMicros) { return .failed(code) }
        if type.movesMoney || overriding != nil, context.decisionID == nil, chosen == nil { return .failed(.validationFailed) }

        let responseID = chosenID ?? "\(id).r\(incident.responses.count + 1)"
        let seq = auditHead + 1
        var records: UInt64 = 1
        var ledger = self.ledger
        var transferID: String?
        var refundID: String?
        let requestRef = CorrelationRef.request(context.requestID)
        switch response {
        case .credit(let amount, let customer, _):
            let transfer = "\(responseID).credit"
            if ledger.accounts[policy.creditIssuingAccount] == nil {
                ledger.createAccount(NewAccount(id: policy.creditIssuingAccount, ledger: policy.creditLedger))
                records += 1
            }
            if let code = ledger.post(.transfer(id: transfer, debit: policy.creditIssuingAccount, credit: customer, amount: amount,
                                                refs: [.incident(id), requestRef])) {
                return .failed(code)
            }
            records += 2
            transferID = transfer
        case .refund:
            refundID = "\(responseID).refund"
            guard refunds[refundID!] == nil else { return .failed(.conflict) }
            records += 1
        case .cancellation, .delay, .substitution:
            break
        }
        if let overridden {
            if let target = overridden.transferID, !ledger.isResolved(target) {
                if let code = ledger.post(.reversal(id: "\(target).overridden", of: target, refs: [.incident(id), requestRef])) {
                    return .failed(code)
                }
                records += 1
            }
            records += 1
        }
        let applied = ModelResponse(id: responseID, response: response, actor: actor, reasonCode: reasonCode, timeMicros: nowMicros,
                                    auditSeq: seq, overrides: overriding, transferID: transferID, refundID: refundID)
        switch response {
        case .refund(let billing, let amount):
            refunds[refundID!] = ModelRefund(id: refundID!, incidentID: id, billingTransaction: billing!, amountCents: amount,
                                             requestedSeq: seq)
        case .cancellation(let cycle):
            cancelledCycles[cycle] = id
        case .credit, .delay, .substitution:
            break
        }
        self.ledger = ledger
        incident.responses.append(applied)
        incident.version += 1
        incident.updatedAtMicros = nowMicros
        incidents[id] = incident
        auditHead = seq + records - 1
        return .committed(applied, auditSeq: auditHead)
    }

    /// The response's own rules, including the credit rules that depend on the role.
    private func validate(_ response: IncidentResponse, category: IncidentCategory, actor: ActorIdentity,
                          nowMicros: UnixMicros) -> LarderError.Code? {
        switch response {
        case .delay(let revised, let subject):
            guard Self.isValid(subject), revised > nowMicros else { return .validationFailed }
        case .substitution(let item, let substitute, let consent):
            guard Self.isIdentifier(item), Self.isIdentifier(substitute), let consent else { return .validationFailed }
            switch consent {
            case .explicit(let reference), .preAuthorised(let reference):
                guard Self.isIdentifier(reference) else { return .validationFailed }
            }
        case .credit(let amount, let customer, let basis):
            guard amount > 0 else { return .validationFailed }
            guard Self.isIdentifier(customer) else { return .validationFailed }
            guard let account = ledger.accounts[customer] else { return .notFound }
            guard account.ledger == policy.creditLedger else { return .validationFailed }
            switch actor.role {
            case .admin:
                break
            case .accountManager:
                guard case .preApproved(let code) = basis,
                      let approved = policy.preApprovedCredits.first(where: { $0.code == code }),
                      amount <= approved.amountCentsMax else { return .permissionDenied }
            case .system:
                guard case .rule(let ruleID) = basis, let rule = policy.creditRules.first(where: { $0.id == ruleID }),
                      rule.category == category, rule.amountCents == amount else { return .permissionDenied }
            }
        case .refund(let billing, let amount):
            guard let billing, Self.isIdentifier(billing), amount > 0 else { return .validationFailed }
        case .cancellation(let cycle):
            guard Self.isIdentifier(cycle) else { return .validationFailed }
            if cancelledCycles[cycle] != nil { return .conflict }
        }
        return nil
    }

    // MARK: Refund outcomes

    public mutating func recordRefundOutcome(_ refundID: String, status: RefundStatus, detail: String?,
                                             context: WriteContext) -> Outcome<ModelRefund> {
        let request = Request.refundOutcome(refundID, status, detail: detail)
        return decided(context, request, wrap: Result.refund, unwrap: { if case .refund(let r) = $0 { r } else { nil } }) { model in
            model.recordRefundOutcomeNow(refundID, status: status, detail: detail, actor: context.actor)
        }
    }

    private mutating func recordRefundOutcomeNow(_ refundID: String, status: RefundStatus, detail: String?,
                                                 actor: ActorIdentity) -> Outcome<ModelRefund> {
        guard actor.role != .accountManager else { return .failed(.permissionDenied) }
        guard status != .requested else { return .failed(.validationFailed) }
        if let detail, !Self.isIdentifier(detail) { return .failed(.validationFailed) }
        guard Self.isIdentifier(refundID) else { return .failed(.validationFailed) }
        guard var refund = refunds[refundID] else { return .failed(.notFound) }
        if refund.status != .requested {
            return refund.status == status && refund.outcomeDetail == detail ? .replayed(refund, auditSeq: refund.outcomeSeq!) : .failed(.conflict)
        }
        let seq = auditHead + 1
        refund.status = status
        refund.outcomeSeq = seq
        refund.outcomeDetail = detail
        refunds[refundID] = refund
        auditHead = seq
        return .committed(refund, auditSeq: seq)
    }

    // MARK: The ledger around incidents

    /// A transfer posted directly (spending credits, consuming packs, reversing a credit):
    /// committed with the seq of its record, committed with seq 0 when an identical transfer
    /// existed (nothing written), or the code it fails with. A new transfer on the packs ledger
    /// tagged with a cancelled cycle is refused; keep such accounts far from their balance rules
    /// (the model checks the cycle first, the store after overflow).
    public mutating func post(_ transfer: TransferRequest) -> Outcome<String> {
        let existed = ledger.hasTransfer(transfer.id)
        if !existed, transfer.kind != .voidPending, transfer.kind != .reversal,
           transfer.refs.contains(where: { $0.kind == "cycle" && cancelledCycles[$0.id] != nil }),
           let debit = transfer.debitAccount, ledger.accounts[debit]?.ledger == policy.packsLedger {
            return .failed(.conflict)
        }
        if let code = ledger.post(transfer) { return .failed(code) }
        if existed { return .committed(transfer.id, auditSeq: 0) }
        auditHead += 1
        return .committed(transfer.id, auditSeq: auditHead)
    }

    // MARK: Rules

    static func isIdentifier(_ value: String) -> Bool {
        (try? WriteContext.validateIdentifier(value, field: "model")) != nil
    }

    static func isValid(_ ref: CorrelationRef) -> Bool { (try? ref.validate()) != nil }

    /// `r<digits>`, alone or after the last dot, is the store's own response id form.
    static func isReserved(_ chosen: String) -> Bool {
        let last = chosen.split(separator: ".", omittingEmptySubsequences: false).last ?? ""
        return last.first == "r" && last.count > 1 && last.dropFirst().allSatisfy { $0.isASCII && $0.isNumber }
    }
}
