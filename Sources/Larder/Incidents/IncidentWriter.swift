/// Incident changes inside a write: record, move through the lifecycle, apply responses under
/// the failure policy, record refund outcomes. Reached as `txn.incidents`.
///
/// Every refusal (PERMISSION_DENIED, VALIDATION_FAILED, CONFLICT, …) is decided before anything
/// is written.
public struct IncidentWriter {
    let transaction: StoreTransaction
    private var tables: StoreTables { transaction.tables }
    private var txn: WriteTransaction { transaction.txn }
    private var policy: FailurePolicy { transaction.policy }
    private var actor: ActorIdentity { transaction.context.actor }

    // MARK: Record

    /// Records a failure as a new `open` incident and emits `OP_FAILURE_RECORDED`.
    ///
    /// - throws: VALIDATION_FAILED for a malformed report; CONFLICT when a caller-chosen id exists.
    @discardableResult
    public func record(_ report: IncidentReport) throws(LarderError) -> Incident {
        let summaryBytes = report.summary.utf8.count
        guard (1...IncidentReport.summaryBytesMax).contains(summaryBytes) else {
            throw LarderError(.validationFailed, "An incident summary is 1 to \(IncidentReport.summaryBytesMax) bytes, not \(summaryBytes).")
        }
        try WriteContext.validateIdentifier(report.source, field: "incident source")
        guard report.refs.count <= AuditDraft.refsCountMax - 1 else {
            throw LarderError(.validationFailed, "An incident has at most \(AuditDraft.refsCountMax - 1) refs.")
        }
        for ref in report.refs { try ref.validate() }
        let id: String
        if let chosen = report.id { id = chosen } else { id = "inc-\(try transaction.nextAuditSeq())" }
        try WriteContext.validateIdentifier(id, field: "incident id")
        guard try txn.get(tables.incidents, id) == nil else {
            throw LarderError(.conflict, "Incident \(id) exists already; nothing was written.", failureClass: .validation, retryable: false)
        }
        let refs = Array(Set(report.refs)).sorted()
        var payload = JSONWriter()
        payload.object { o in
            o.field("incident_id", id)
            o.field("severity", report.severity.rawValue)
            o.field("summary", report.summary)
            o.field("source", report.source)
        }
        try transaction.appendAudit(AuditDraft(event: .opFailureRecorded, refs: [.incident(id)] + refs,
                                               failureCategory: report.category.rawValue, payload: payload.text))
        let incident = Incident(id: id, category: report.category, severity: report.severity, summary: report.summary,
                                source: report.source, refs: refs, reportedBy: actor, state: .open, version: 1,
                                createdAtMicros: transaction.timeMicros, updatedAtMicros: transaction.timeMicros,
                                acknowledgedAtMicros: nil, postmortemRef: nil, responses: [])
        try txn.put(tables.incidents, id, try incident.encoded(), mode: .insertNew)
        try index(incident, add: true)
        return incident
    }

    // MARK: Lifecycle

    /// Moves an incident to the next state of `open → acknowledged → contained → resolved →
    /// closed` and emits `INCIDENT_STATE_CHANGED`.
    ///
    /// - parameter expectedVersion: the version you saw; a stale one is CONFLICT.
    /// - parameter postmortemRef: required to close a P0 or P1 incident.
    /// - throws: NOT_FOUND; CONFLICT for a stale version or any transition but the next one;
    ///   VALIDATION_FAILED for closing a P0/P1 without a postmortem reference.
    @discardableResult
    public func transition(_ id: String, to state: IncidentState, expectedVersion: UInt32? = nil,
                           postmortemRef: String? = nil, reasonCode: String? = nil) throws(LarderError) -> Incident {
        var incident = try load(id, expectedVersion: expectedVersion)
        guard incident.state.next == state else {
            throw LarderError(.conflict,
                              "Incident \(id) cannot go from \(incident.state.rawValue) to \(state.rawValue); the next state is \(incident.state.next?.rawValue ?? "none (closed)").",
                              failureClass: .validation)
        }
        if let postmortemRef { try WriteContext.validateIdentifier(postmortemRef, field: "postmortemRef") }
        if let reasonCode { try WriteContext.validateIdentifier(reasonCode, field: "reasonCode") }
        if state == .closed, incident.severity.requiresPostmortem, postmortemRef == nil {
            throw LarderError(.validationFailed, "Incident \(id) is \(incident.severity.rawValue): it needs a postmortem reference to close.")
        }
        try index(incident, add: false)
        let from = incident.state
        incident.state = state
        incident.version += 1
        incident.updatedAtMicros = transaction.timeMicros
        if state == .acknowledged { incident.acknowledgedAtMicros = transaction.timeMicros }
        if let postmortemRef { incident.postmortemRef = postmortemRef }
        var payload = JSONWriter()
        payload.object { o in
            o.field("incident_id", id)
            o.field("from", from.rawValue)
            o.field("to", state.rawValue)
            o.field("version", incident.version)
            o.field("postmortem_ref", postmortemRef)
            if state == .acknowledged {
                o.field("overdue", transaction.timeMicros > incident.acknowledgeByMicros)
            }
        }
        try transaction.appendAudit(AuditDraft(event: .incidentStateChanged, refs: [.incident(id)] + incident.refs,
                                               failureCategory: incident.category.rawValue, reasonCode: reasonCode,
                                               payload: payload.text))
        try txn.put(tables.incidents, id, try incident.encoded())
        try index(incident, add: true)
        return incident
    }

    // MARK: Responses

    /// Applies a response under the failure policy and emits `OP_RESPONSE_APPLIED` (plus
    /// `OP_CREDIT_GRANTED`, `OP_REFUND_ISSUED` or `OP_OVERRIDE_USED` as they apply).
    ///
    /// - parameter reasonCode: required for an admin.
    /// - parameter overriding: the id of an account manager's response an admin overrides; a
    ///   credit it overrides is reversed in the same transaction.
    /// - throws: PERMISSION_DENIED when the role may not apply it (nothing written);
    ///   VALIDATION_FAILED for a malformed response, a missing consent, revised time, billing
    ///   transaction or admin reason code; CONFLICT for a stale version or a closed incident;
    ///   NOT_FOUND for a missing incident or customer account.
    @discardableResult
    public func apply(_ response: IncidentResponse, to id: String, expectedVersion: UInt32? = nil,
                      reasonCode: String? = nil, overriding: String? = nil) throws(LarderError) -> AppliedResponse {
        var incident = try load(id, expectedVersion: expectedVersion)
        guard incident.state != .closed else {
            throw LarderError(.conflict, "Incident \(id) is closed; no response can be applied.", failureClass: .validation, retryable: false)
        }
        let type = response.type
        try authorize(type, on: incident)
        if let reasonCode { try WriteContext.validateIdentifier(reasonCode, field: "reasonCode") }
        if actor.role == .admin, reasonCode == nil {
            throw LarderError(.validationFailed, "An admin must give a reason code to apply a \(type.rawValue) response.")
        }
        var overridden: AppliedResponse?
        if let overriding {
            guard actor.role == .admin else {
                throw LarderError(.permissionDenied, "Only an admin may override a response; \(actor) may not.", failurePoint: .authorization)
            }
            guard let target = incident.responses.first(where: { $0.id == overriding }) else {
                throw LarderError(.notFound, "Incident \(id) has no response \(overriding) to override.")
            }
            guard target.actor.role == .accountManager else {
                throw LarderError(.validationFailed, "Response \(overriding) was applied by \(target.actor.role.rawValue); only an account manager's response can be overridden.")
            }
            guard !incident.responses.contains(where: { $0.overrides == overriding }) else {
                throw LarderError(.conflict, "Response \(overriding) was overridden already.", failureClass: .validation, retryable: false)
            }
            overridden = target
        }
        try validate(response, on: incident)

        let responseID = "\(id).r\(incident.responses.count + 1)"
        var refs: [CorrelationRef] = [.incident(id)] + incident.refs
        var transferID: String?
        var refundID: String?
        switch response {
        case .credit:
            transferID = "\(responseID).credit"
            refs.append(.transfer(transferID!))
        case .refund(let billing, _):
            refundID = "\(responseID).refund"
            refs.append(.billing(billing!))
        case .cancellation(let cycle):
            refs.append(.cycle(cycle))
        case .delay(_, let subject):
            refs.append(subject)
        case .substitution:
            break
        }
        let applied = try transaction.appendAudit(AuditDraft(
            event: .opResponseApplied, refs: refs, failureCategory: incident.category.rawValue, responseType: type.rawValue,
            reasonCode: reasonCode, payload: try responsePayload(id, responseID, response, overriding: overriding)))

        switch response {
        case .credit(let amount, let customer, let basis):
            try ensureIssuingAccount()
            try LedgerWriter(transaction: transaction).post(.transfer(
                id: transferID!, debit: policy.creditIssuingAccount, credit: customer, amount: amount,
                refs: [.incident(id), .request(transaction.context.requestID)]))
            var payload = JSONWriter()
            payload.object { o in
                o.field("incident_id", id)
                o.field("response_id", responseID)
                o.field("transfer_id", transferID)
                o.field("amount_cents", amount)
                o.field("customer_account", customer)
                o.field("basis", Self.describe(basis))
            }
            try transaction.appendAudit(AuditDraft(event: .opCreditGranted, refs: refs + [.account(customer)],
                                                   failureCategory: incident.category.rawValue, responseType: type.rawValue,
                                                   reasonCode: reasonCode, payload: payload.text))
        case .refund(let billing, let amount):
            let refund = RefundRequest(id: refundID!, incidentID: id, billingTransaction: billing!, amountCents: amount,
                                       status: .requested, requestedSeq: applied.seq, outcomeSeq: nil, outcomeDetail: nil)
            var payload = JSONWriter()
            payload.object { o in
                o.field("incident_id", id)
                o.field("refund_id", refund.id)
                o.field("billing_transaction", billing)
                o.field("amount_cents", amount)
                o.field("status", RefundStatus.requested.rawValue)
            }
            try transaction.appendAudit(AuditDraft(event: .opRefundIssued, refs: refs, failureCategory: incident.category.rawValue,
                                                   responseType: type.rawValue, reasonCode: reasonCode, payload: payload.text))
            try txn.put(tables.incidentRefunds, refund.id, try refund.encoded(), mode: .insertNew)
        case .cancellation(let cycle):
            try txn.put(tables.cancelledCycles, cycle, Array(id.utf8), mode: .insertNew)
        case .delay, .substitution:
            break
        }
        if let overridden {
            // An override supersedes: a credit it replaces is reversed in the same transaction,
            // so the customer ends with the admin's amount, not both.
            var reversedTransfer: String?
            if let overriddenTransfer = overridden.transferID,
               try LedgerReader(txn: txn, tables: tables).resolution(of: overriddenTransfer) == nil {
                reversedTransfer = "\(overriddenTransfer).overridden"
                try LedgerWriter(transaction: transaction).post(.reversal(
                    id: reversedTransfer!, of: overriddenTransfer, refs: [.incident(id), .request(transaction.context.requestID)]))
            }
            var payload = JSONWriter()
            payload.object { o in
                o.field("incident_id", id)
                o.field("response_id", responseID)
                o.field("overrides", overridden.id)
                o.field("overridden_actor", overridden.actor.id)
                o.field("overridden_type", overridden.response.type.rawValue)
                o.field("reversed_transfer", reversedTransfer)
            }
            try transaction.appendAudit(AuditDraft(event: .opOverrideUsed, refs: refs, failureCategory: incident.category.rawValue,
                                                   responseType: type.rawValue, reasonCode: reasonCode, payload: payload.text))
        }
        let record = AppliedResponse(id: responseID, response: response, actor: actor, reasonCode: reasonCode,
                                     timeMicros: transaction.timeMicros, auditSeq: applied.seq, overrides: overriding,
                                     transferID: transferID, refundID: refundID)
        incident.responses.append(record)
        incident.version += 1
        incident.updatedAtMicros = transaction.timeMicros
        try txn.put(tables.incidents, id, try incident.encoded())
        return record
    }

    /// Records Billing's answer to a refund request (`requested → succeeded | failed`), once.
    /// Only an admin or the system (Billing's callback) may record it.
    @discardableResult
    public func recordRefundOutcome(_ refundID: String, status: RefundStatus, detail: String? = nil) throws(LarderError) -> RefundRequest {
        guard actor.role != .accountManager else {
            throw LarderError(.permissionDenied, "An account manager may not record refund outcomes.", failurePoint: .authorization)
        }
        guard status != .requested else {
            throw LarderError(.validationFailed, "A refund outcome is succeeded or failed.")
        }
        if let detail { try WriteContext.validateIdentifier(detail, field: "refund outcome detail") }
        try WriteContext.validateIdentifier(refundID, field: "refund id")
        guard let bytes = try txn.get(tables.incidentRefunds, refundID) else {
            throw LarderError(.notFound, "No refund request \(refundID).")
        }
        var refund = try RefundRequest.decode(bytes)
        guard refund.status == .requested else {
            throw LarderError(.conflict, "Refund \(refundID) is already \(refund.status.rawValue).", failureClass: .validation, retryable: false)
        }
        let incident = try load(refund.incidentID, expectedVersion: nil)
        var payload = JSONWriter()
        payload.object { o in
            o.field("incident_id", incident.id)
            o.field("refund_id", refundID)
            o.field("billing_transaction", refund.billingTransaction)
            o.field("status", status.rawValue)
            o.field("detail", detail)
        }
        let entry = try transaction.appendAudit(AuditDraft(
            event: .opRefundOutcome, refs: [.incident(incident.id), .billing(refund.billingTransaction)],
            failureCategory: incident.category.rawValue, responseType: ResponseType.refund.rawValue, payload: payload.text))
        refund.status = status
        refund.outcomeSeq = entry.seq
        refund.outcomeDetail = detail
        try txn.put(tables.incidentRefunds, refundID, try refund.encoded())
        return refund
    }

    // MARK: Policy

    /// Who may apply what: the role's allowed responses, and admin-only categories.
    private func authorize(_ type: ResponseType, on incident: Incident) throws(LarderError) {
        guard policy.allows(actor.role, type) else {
            throw LarderError(.permissionDenied,
                              "The \(actor.role.rawValue) role may not apply a \(type.rawValue) response (actor \(actor.id)); nothing was written.",
                              failurePoint: .authorization)
        }
        if policy.adminOnlyCategories.contains(incident.category), actor.role != .admin {
            throw LarderError(.permissionDenied,
                              "Only an admin may respond to a \(incident.category.rawValue) incident; nothing was written.",
                              failurePoint: .authorization)
        }
    }

    /// The response's own rules, including the credit rules that depend on the role.
    private func validate(_ response: IncidentResponse, on incident: Incident) throws(LarderError) {
        switch response {
        case .delay(let revised, let subject):
            try subject.validate()
            guard revised > transaction.timeMicros else {
                throw LarderError(.validationFailed, "A delay needs a revised time in the future, not \(RFC3339.format(revised)).")
            }
        case .substitution(let item, let substitute, let consent):
            try WriteContext.validateIdentifier(item, field: "substituted item")
            try WriteContext.validateIdentifier(substitute, field: "substitute")
            guard let consent else {
                throw LarderError(.validationFailed, "A substitution needs recorded customer consent (explicit or pre-authorised).")
            }
            try WriteContext.validateIdentifier(consent.reference, field: "consent reference")
        case .credit(let amount, let customer, let basis):
            guard amount > 0 else { throw LarderError(.validationFailed, "A credit needs an amount greater than zero.") }
            let reader = LedgerReader(txn: txn, tables: tables)
            guard let account = try reader.account(id: customer) else {
                throw LarderError(.notFound, "The customer credit account \(customer) does not exist.")
            }
            guard account.ledger == policy.creditLedger else {
                throw LarderError(.validationFailed, "Account \(customer) is on ledger \(account.ledger), not the credit ledger \(policy.creditLedger).")
            }
            try authorizeCredit(amount: amount, basis: basis, category: incident.category)
        case .refund(let billing, let amount):
            guard let billing, !billing.isEmpty else {
                throw LarderError(.validationFailed, "A refund must reference the original billing transaction.")
            }
            try WriteContext.validateIdentifier(billing, field: "billing transaction")
            guard amount > 0 else { throw LarderError(.validationFailed, "A refund needs an amount greater than zero.") }
        case .cancellation(let cycle):
            try WriteContext.validateIdentifier(cycle, field: "cycle")
            if let by = try txn.get(tables.cancelledCycles, cycle) {
                throw LarderError(.conflict, "Cycle \(cycle) was already cancelled by incident \(String(decoding: by, as: UTF8.self)).",
                                  failureClass: .validation, retryable: false)
            }
        }
    }

    private func authorizeCredit(amount: UInt64, basis: CreditBasis, category: IncidentCategory) throws(LarderError) {
        func deny(_ text: String) -> LarderError {
            LarderError(.permissionDenied, "\(text); nothing was written.", failurePoint: .authorization)
        }
        switch actor.role {
        case .admin:
            return
        case .accountManager:
            guard case .preApproved(let code) = basis else {
                throw deny("An account manager may only grant credits from the pre-approved list")
            }
            guard let approved = policy.preApprovedCredits.first(where: { $0.code == code }) else {
                throw deny("Credit code \(code) is not on the pre-approved list")
            }
            guard amount <= approved.amountCentsMax else {
                throw deny("Credit \(code) is capped at \(approved.amountCentsMax) cents for an account manager, not \(amount)")
            }
        case .system:
            guard case .rule(let ruleID) = basis, let rule = policy.creditRules.first(where: { $0.id == ruleID }) else {
                throw deny("The system may only grant credits by a deterministic rule of the policy")
            }
            guard rule.category == category, rule.amountCents == amount else {
                throw deny("Rule \(ruleID) grants exactly \(rule.amountCents) cents for \(rule.category.rawValue) incidents")
            }
        }
    }

    private func ensureIssuingAccount() throws(LarderError) {
        let reader = LedgerReader(txn: txn, tables: tables)
        if try reader.account(id: policy.creditIssuingAccount) == nil {
            try LedgerWriter(transaction: transaction).createAccount(NewAccount(
                id: policy.creditIssuingAccount, ledger: policy.creditLedger, code: 0, refs: []))
        }
    }

    // MARK: Helpers

    private func load(_ id: String, expectedVersion: UInt32?) throws(LarderError) -> Incident {
        try WriteContext.validateIdentifier(id, field: "incident id")
        guard let bytes = try txn.get(tables.incidents, id) else {
            throw LarderError(.notFound, "No incident \(id).")
        }
        let incident = try Incident.decode(bytes)
        if let expectedVersion, expectedVersion != incident.version {
            throw LarderError(.conflict,
                              "State changed during operation: incident \(id) is at version \(incident.version), you saw \(expectedVersion). Refresh and retry.")
        }
        return incident
    }

    /// Adds or removes the incident's index entries (state, category, severity, time).
    private func index(_ incident: Incident, add: Bool) throws(LarderError) {
        let at = KeyPair(incident.createdAtMicros, incident.id)
        let keys = [
            KeyPair("state:" + incident.state.rawValue, at),
            KeyPair("category:" + incident.category.rawValue, at),
            KeyPair("severity:" + incident.severity.rawValue, at),
            KeyPair("all", at),
        ]
        for key in keys {
            if add { try txn.put(tables.incidentsIndex, key, Empty()) } else { try txn.delete(tables.incidentsIndex, key) }
        }
    }

    private func responsePayload(_ incidentID: String, _ responseID: String, _ response: IncidentResponse,
                                 overriding: String?) throws(LarderError) -> String {
        var payload = JSONWriter()
        payload.object { o in
            o.field("incident_id", incidentID)
            o.field("response_id", responseID)
            o.field("type", response.type.rawValue)
            switch response {
            case .delay(let revised, let subject):
                o.field("revised_time", RFC3339.format(revised))
                o.field("subject", subject.description)
            case .substitution(let item, let substitute, let consent):
                o.field("item", item)
                o.field("substitute", substitute)
                if let consent {
                    o.field("consent", {
                        if case .explicit = consent { return "explicit" }
                        return "pre_authorised"
                    }())
                    o.field("consent_reference", consent.reference)
                }
            case .credit(let amount, let customer, let basis):
                o.field("amount_cents", amount)
                o.field("customer_account", customer)
                o.field("basis", Self.describe(basis))
            case .refund(let billing, let amount):
                o.field("billing_transaction", billing)
                o.field("amount_cents", amount)
            case .cancellation(let cycle):
                o.field("cycle", cycle)
            }
            o.field("overrides", overriding)
        }
        return payload.text
    }

    static func describe(_ basis: CreditBasis) -> String {
        switch basis {
        case .preApproved(let code): "pre_approved:\(code)"
        case .rule(let id): "rule:\(id)"
        case .discretionary: "discretionary"
        }
    }
}
