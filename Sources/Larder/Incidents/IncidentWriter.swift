import LarderStorage

/// Incident changes inside a write: record, move through the lifecycle, apply responses under
/// the failure policy, record refund outcomes. Reached as `txn.incidents`.
///
/// Each change decides everything before it writes anything: it validates the request, checks
/// the policy and the actor's permissions, computes every id, plans its ledger transfers against
/// the balance rules and builds every audit record. Only then does it write, and from there on
/// only storage can fail, which breaks the whole write. So a refusal (PERMISSION_DENIED,
/// VALIDATION_FAILED, CONFLICT, COMPUTE_ERROR, …) leaves the transaction as it was, even if the
/// caller catches it and goes on.
///
/// Retries are recognised: see ``record(_:)``, ``transition(_:to:expectedVersion:postmortemRef:reasonCode:)``,
/// ``apply(_:to:expectedVersion:reasonCode:overriding:responseID:)`` and
/// ``recordRefundOutcome(_:status:detail:)``.
public struct IncidentWriter {
    let transaction: StoreTransaction
    private var tables: StoreTables { transaction.tables }
    private var txn: TableWriter { transaction.txn }
    private var policy: FailurePolicy { transaction.policy }
    private var actor: ActorIdentity { transaction.context.actor }
    private var replays: IncidentReplays { IncidentReplays(txn: txn, tables: tables) }

    // MARK: Record

    /// Records a failure as a new `open` incident and emits `OP_FAILURE_RECORDED`.
    ///
    /// With a caller-chosen `report.id` that exists already, an identical report by the same
    /// reporter returns the stored incident and writes nothing (a retry); any difference is
    /// CONFLICT naming it.
    ///
    /// ```swift
    /// let incident = try txn.incidents.record(IncidentReport(id: "dispatch-R4-0923", category: .delivery, severity: .p2,
    ///                                                        summary: "Van R4 late", source: "dispatch-monitor"))
    /// ```
    ///
    /// - throws: VALIDATION_FAILED for a malformed report; CONFLICT when a caller-chosen id
    ///   exists with another report.
    @discardableResult
    public func record(_ report: IncidentReport) throws(LarderError) -> Incident {
        try recordOrReplay(report).value
    }

    func recordOrReplay(_ report: IncidentReport) throws(LarderError) -> IncidentAnswer<Incident> {
        // Decide.
        if let chosen = report.id {
            try WriteContext.validateIdentifier(chosen, field: "incident id")
            // An existing id answers first: a retry is recognised even if the rules have changed since.
            if let bytes = try txn.get(tables.incidents, chosen) {
                return try replays.report(report, by: actor, existing: try Incident.decode(bytes))
            }
        }
        let summaryBytes = report.summary.utf8.count
        guard (1...IncidentReport.summaryBytesMax).contains(summaryBytes) else {
            throw LarderError(.validationFailed, "An incident summary is 1 to \(IncidentReport.summaryBytesMax) bytes, not \(summaryBytes).")
        }
        try WriteContext.validateIdentifier(report.source, field: "incident source")
        guard report.refs.count <= IncidentReport.refsCountMax else {
            throw LarderError(.validationFailed, "An incident has at most \(IncidentReport.refsCountMax) refs, not \(report.refs.count).")
        }
        for ref in report.refs { try ref.validate() }
        let id: String
        if let chosen = report.id { id = chosen } else { id = "inc-\(try transaction.nextAuditSeq())" }
        try WriteContext.validateIdentifier(id, field: "incident id")
        guard try txn.get(tables.incidents, id) == nil else {
            throw LarderError(.conflict, "Incident \(id) exists already; nothing was written.", failureClass: .validation, retryable: false)
        }
        let refs = Array(Set(report.refs)).sorted()
        let payload = IncidentRecords.failureRecordedPayload(id: id, severity: report.severity, summary: report.summary,
                                                             source: report.source)
        let draft = try Self.checked(AuditDraft(event: .opFailureRecorded, refs: [.incident(id)] + refs,
                                                failureCategory: report.category.rawValue, payload: payload))
        let incident = Incident(id: id, category: report.category, severity: report.severity, summary: report.summary,
                                source: report.source, refs: refs, reportedBy: actor, state: .open, version: 1,
                                createdAtMicros: transaction.timeMicros, updatedAtMicros: transaction.timeMicros,
                                acknowledgedAtMicros: nil, postmortemRef: nil, responses: [])
        let bytes = try incident.encoded()

        // Write.
        do throws(LarderError) {
            try transaction.appendAudit(draft)
            guard try txn.put(tables.incidents, id, bytes, mode: .insertNew) else {
                preconditionFailure("incident \(id) appeared between the check and the write")
            }
            try index(incident, add: true)
        } catch {
            throw transaction.broken(by: error)
        }
        return .applied(incident)
    }

    // MARK: Lifecycle

    /// Moves an incident to the next state of `open → acknowledged → contained → resolved →
    /// closed` and emits `INCIDENT_STATE_CHANGED`.
    ///
    /// A transition to the state the incident is in already answers with the incident and writes
    /// nothing when the same request made it (the same requestID, or the same decisionID, with
    /// the same actor, postmortem reference and reason code): a retry after a lost answer. Any
    /// other request gets CONFLICT.
    ///
    /// ```swift
    /// try txn.incidents.transition(incident.id, to: .acknowledged, expectedVersion: incident.version)
    /// ```
    ///
    /// - parameter id: the incident.
    /// - parameter state: the next state.
    /// - parameter expectedVersion: the version you saw; a stale one is CONFLICT (a retry of the
    ///   request that made the transition is recognised before this check).
    /// - parameter postmortemRef: required to close a P0 or P1 incident.
    /// - parameter reasonCode: why, recorded on the transition's audit record.
    /// - throws: NOT_FOUND; CONFLICT for a stale version or any transition but the next one;
    ///   VALIDATION_FAILED for closing a P0/P1 without a postmortem reference.
    @discardableResult
    public func transition(_ id: String, to state: IncidentState, expectedVersion: UInt32? = nil,
                           postmortemRef: String? = nil, reasonCode: String? = nil) throws(LarderError) -> Incident {
        try transitionOrReplay(id, to: state, expectedVersion: expectedVersion, postmortemRef: postmortemRef,
                               reasonCode: reasonCode).value
    }

    func transitionOrReplay(_ id: String, to state: IncidentState, expectedVersion: UInt32?, postmortemRef: String?,
                            reasonCode: String?) throws(LarderError) -> IncidentAnswer<Incident> {
        // Decide.
        var incident = try load(id)
        if incident.state == state {
            return try replays.transition(incident, to: state, postmortemRef: postmortemRef, reasonCode: reasonCode,
                                          context: transaction.context)
        }
        try Self.check(incident, expectedVersion: expectedVersion)
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
        let before = incident
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
        let draft = try Self.checked(AuditDraft(event: .incidentStateChanged, refs: [.incident(id)] + incident.refs,
                                                failureCategory: incident.category.rawValue, reasonCode: reasonCode,
                                                payload: payload.text))
        let bytes = try incident.encoded()

        // Write.
        do throws(LarderError) {
            try transaction.appendAudit(draft)
            try index(before, add: false)
            try txn.put(tables.incidents, id, bytes)
            try index(incident, add: true)
        } catch {
            throw transaction.broken(by: error)
        }
        return .applied(incident)
    }

    // MARK: Responses

    /// Applies a response under the failure policy and emits `OP_RESPONSE_APPLIED` (plus
    /// `OP_CREDIT_GRANTED`, `OP_REFUND_ISSUED` or `OP_OVERRIDE_USED` as they apply).
    ///
    /// A response that moves money (a credit, a refund, a cancellation) or overrides another needs
    /// a way to recognise its retry: a decisionID on the write, or a `responseID` you choose. With
    /// a responseID the response's id is `<incident>.<responseID>`, and applying it again with the
    /// same content (response, actor, reason code, override) returns the stored response and
    /// writes nothing, even if the incident moved on or closed since; different content is
    /// CONFLICT naming what differs.
    ///
    /// ```swift
    /// try txn.incidents.apply(.credit(amountCents: 500, customerAccount: "cust-17.credits", basis: .preApproved(code: "late-delivery")),
    ///                         to: incident.id, responseID: "credit-order-4411")
    /// ```
    ///
    /// - parameter response: what is done (checked against the failure policy and the actor's role).
    /// - parameter id: the incident.
    /// - parameter expectedVersion: the version you saw; a stale one is CONFLICT.
    /// - parameter reasonCode: required for an admin.
    /// - parameter overriding: the id of an account manager's response an admin overrides; a
    ///   credit it overrides is reversed in the same transaction.
    /// - parameter responseID: your id for this response, unique within the incident: letters,
    ///   digits and `. _ : - / @ #`; `r` followed by digits (alone or after the last dot) is the
    ///   store's own.
    /// - throws: PERMISSION_DENIED when the role may not apply it; VALIDATION_FAILED for a
    ///   malformed response, a missing consent, revised time, billing transaction or admin reason
    ///   code, or a money-moving response with neither decisionID nor responseID; CONFLICT for a
    ///   stale version, a closed incident, a responseID reused with other content or an id that is
    ///   taken; NOT_FOUND for a missing incident or customer account; COMPUTE_ERROR when a transfer
    ///   would break a balance rule. Nothing is written in every case.
    @discardableResult
    public func apply(_ response: IncidentResponse, to id: String, expectedVersion: UInt32? = nil,
                      reasonCode: String? = nil, overriding: String? = nil, responseID: String? = nil) throws(LarderError) -> AppliedResponse {
        try applyOrReplay(response, to: id, expectedVersion: expectedVersion, reasonCode: reasonCode, overriding: overriding,
                          responseID: responseID).value
    }

    func applyOrReplay(_ response: IncidentResponse, to id: String, expectedVersion: UInt32?, reasonCode: String?,
                       overriding: String?, responseID chosenID: String?) throws(LarderError) -> IncidentAnswer<AppliedResponse> {
        // Decide: the retry, then the state, the policy and the response's own rules.
        var incident = try load(id)
        var chosenResponseID: String?
        if let chosenID {
            let full = try Self.responseID(chosen: chosenID, incident: id)
            if let replay = try replays.response(response, id: full, on: incident, actor: actor, reasonCode: reasonCode,
                                                 overriding: overriding) {
                return replay
            }
            chosenResponseID = full
        }
        try Self.check(incident, expectedVersion: expectedVersion)
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
        if type.movesMoney || overriding != nil, transaction.context.decisionID == nil, chosenID == nil {
            let what = overriding != nil ? "An override" : "A \(type.rawValue) response"
            throw LarderError(.validationFailed,
                              "\(what) moves money: give the write a decisionID (WriteContext.decisionID) or pass a responseID of your choosing, so that a retry is recognised instead of applied twice. Nothing was written.")
        }

        // Decide: ids, ledger plans, records and stored values.
        let responseID = chosenResponseID ?? "\(id).r\(incident.responses.count + 1)"
        let seq = try transaction.nextAuditSeq()
        let requestRef = CorrelationRef.request(transaction.context.requestID)
        var transferID: String?
        var refundID: String?
        var planner = LedgerPlanner(txn: txn, tables: tables, timeMicros: transaction.timeMicros, packsLedger: policy.packsLedger)
        var issuingAccount: NewAccount?
        var creditPlan: LedgerPlanner.Plan?
        var refund: RefundRequest?
        var refundBytes: [UInt8]?
        switch response {
        case .credit(let amount, let customer, _):
            let transfer = "\(responseID).credit"
            try Self.checkDerived(transfer, field: "transfer id", responseID: responseID)
            if try LedgerReader(txn: txn, tables: tables).transfer(id: transfer) != nil {
                throw LarderError(.conflict, "Transfer \(transfer), the id of this credit, exists already; choose another responseID. Nothing was written.",
                                  failureClass: .validation, retryable: false)
            }
            if try LedgerReader(txn: txn, tables: tables).account(id: policy.creditIssuingAccount) == nil {
                let spec = NewAccount(id: policy.creditIssuingAccount, ledger: policy.creditLedger, code: 0, refs: [])
                try LedgerWriter.validate(spec)
                planner.expect(spec)
                issuingAccount = spec
            }
            creditPlan = try planner.plan(.transfer(id: transfer, debit: policy.creditIssuingAccount, credit: customer,
                                                    amount: amount, refs: [.incident(id), requestRef]))
            transferID = transfer
        case .refund:
            let derived = "\(responseID).refund"
            try Self.checkDerived(derived, field: "refund id", responseID: responseID)
            if try txn.get(tables.incidentRefunds, derived) != nil {
                throw LarderError(.conflict, "Refund request \(derived), the id of this refund, exists already; choose another responseID. Nothing was written.",
                                  failureClass: .validation, retryable: false)
            }
            refundID = derived
        case .cancellation, .delay, .substitution:
            break
        }
        let refs = IncidentRecords.responseRefs(incident: id, incidentRefs: incident.refs, response: response, transferID: transferID)
        let effectRefs = IncidentRecords.effectRefs(refs, response: response)
        guard effectRefs.count <= AuditDraft.refsCountMax else {
            // Incidents recorded before reports were limited to IncidentReport.refsCountMax.
            throw LarderError(.validationFailed,
                              "Incident \(id) carries \(incident.refs.count) refs; the records of a \(type.rawValue) response would carry \(effectRefs.count), more than \(AuditDraft.refsCountMax). Nothing was written.")
        }
        let category = incident.category.rawValue
        let appliedDraft = try Self.checked(AuditDraft(
            event: .opResponseApplied, refs: refs, failureCategory: category, responseType: type.rawValue,
            reasonCode: reasonCode,
            payload: IncidentRecords.responsePayload(incident: id, responseID: responseID, response: response, overriding: overriding)))
        var effectDraft: AuditDraft?
        switch response {
        case .credit(let amount, let customer, let basis):
            let payload = IncidentRecords.creditGrantedPayload(incident: id, responseID: responseID, transferID: transferID,
                                                               amount: amount, customer: customer, basis: basis)
            effectDraft = try Self.checked(AuditDraft(event: .opCreditGranted, refs: effectRefs, failureCategory: category,
                                                      responseType: type.rawValue, reasonCode: reasonCode, payload: payload))
        case .refund(let billing, let amount):
            let request = RefundRequest(id: refundID!, incidentID: id, billingTransaction: billing!, amountCents: amount,
                                        status: .requested, requestedSeq: seq, outcomeSeq: nil, outcomeDetail: nil)
            let payload = IncidentRecords.refundIssuedPayload(incident: id, refundID: request.id, billing: billing, amount: amount)
            effectDraft = try Self.checked(AuditDraft(event: .opRefundIssued, refs: refs, failureCategory: category,
                                                      responseType: type.rawValue, reasonCode: reasonCode, payload: payload))
            refund = request
            refundBytes = try request.encoded()
        case .cancellation, .delay, .substitution:
            break
        }
        var reversalPlan: LedgerPlanner.Plan?
        var overrideDraft: AuditDraft?
        if let overridden {
            // An override supersedes: a credit it replaces is reversed in the same transaction,
            // so the customer ends with the admin's amount, not both. Planned after the new
            // credit, so the balance rules see both.
            var reversedTransfer: String?
            if let overriddenTransfer = overridden.transferID,
               try LedgerReader(txn: txn, tables: tables).resolution(of: overriddenTransfer) == nil {
                reversedTransfer = "\(overriddenTransfer).overridden"
                reversalPlan = try planner.plan(.reversal(id: reversedTransfer!, of: overriddenTransfer, refs: [.incident(id), requestRef]))
                if reversalPlan?.draft == nil {
                    throw LarderError(.conflict, "Transfer \(reversedTransfer!) exists already; nothing was written.",
                                      failureClass: .validation, retryable: false)
                }
            }
            let payload = IncidentRecords.overridePayload(incident: id, responseID: responseID, overridden: overridden,
                                                          reversedTransfer: reversedTransfer)
            overrideDraft = try Self.checked(AuditDraft(event: .opOverrideUsed, refs: refs, failureCategory: category,
                                                        responseType: type.rawValue, reasonCode: reasonCode, payload: payload))
        }
        let record = AppliedResponse(id: responseID, response: response, actor: actor, reasonCode: reasonCode,
                                     timeMicros: transaction.timeMicros, auditSeq: seq, overrides: overriding,
                                     transferID: transferID, refundID: refundID)
        incident.responses.append(record)
        incident.version += 1
        incident.updatedAtMicros = transaction.timeMicros
        let incidentBytes = try incident.encoded()

        // Write: everything above was decided; only storage can fail from here on.
        do throws(LarderError) {
            let applied = try transaction.appendAudit(appliedDraft)
            precondition(applied.seq == seq, "the response's record got seq \(applied.seq), not the planned \(seq)")
            if let issuingAccount { try LedgerWriter(transaction: transaction).createAccount(issuingAccount) }
            if let creditPlan { _ = try LedgerWriter(transaction: transaction).apply([creditPlan]) }
            if let effectDraft { try transaction.appendAudit(effectDraft) }
            if let refund, let refundBytes {
                guard try txn.put(tables.incidentRefunds, refund.id, refundBytes, mode: .insertNew) else {
                    preconditionFailure("refund \(refund.id) appeared between the check and the write")
                }
            }
            if case .cancellation(let cycle) = response {
                guard try txn.put(tables.cancelledCycles, cycle, Array(id.utf8), mode: .insertNew) else {
                    preconditionFailure("cycle \(cycle) was cancelled between the check and the write")
                }
            }
            if let reversalPlan { _ = try LedgerWriter(transaction: transaction).apply([reversalPlan]) }
            if let overrideDraft { try transaction.appendAudit(overrideDraft) }
            try txn.put(tables.incidents, id, incidentBytes)
        } catch {
            throw transaction.broken(by: error)
        }
        return .applied(record)
    }

    /// Records Billing's answer to a refund request (`requested → succeeded | failed`), once.
    /// Only an admin or the system (Billing's callback) may record it. The same answer again
    /// (same status and detail: a retried callback) returns the refund and writes nothing; a
    /// different one is CONFLICT.
    ///
    /// ```swift
    /// try txn.incidents.recordRefundOutcome(refundID, status: .succeeded, detail: "psp-ref-77")
    /// ```
    ///
    /// - throws: PERMISSION_DENIED for an account manager; VALIDATION_FAILED for `.requested` or
    ///   a malformed id or detail; NOT_FOUND for an unknown refund; CONFLICT when another outcome
    ///   is recorded.
    @discardableResult
    public func recordRefundOutcome(_ refundID: String, status: RefundStatus, detail: String? = nil) throws(LarderError) -> RefundRequest {
        try recordRefundOutcomeOrReplay(refundID, status: status, detail: detail).value
    }

    func recordRefundOutcomeOrReplay(_ refundID: String, status: RefundStatus, detail: String?) throws(LarderError) -> IncidentAnswer<RefundRequest> {
        // Decide.
        guard actor.role != .accountManager else {
            throw LarderError(.permissionDenied, "An account manager may not record refund outcomes.", failurePoint: .authorization)
        }
        guard status != .requested else {
            throw LarderError(.validationFailed, "A refund outcome is succeeded or failed.")
        }
        if let detail { try WriteContext.validateIdentifier(detail, field: "refund outcome detail") }
        try WriteContext.validateIdentifier(refundID, field: "refund id")
        guard let stored = try txn.get(tables.incidentRefunds, refundID) else {
            throw LarderError(.notFound, "No refund request \(refundID).")
        }
        var refund = try RefundRequest.decode(stored)
        if let replay = try replays.refundOutcome(refund, status: status, detail: detail) { return replay }
        let incident = try load(refund.incidentID)
        let payload = IncidentRecords.refundOutcomePayload(incident: incident.id, refundID: refundID, billing: refund.billingTransaction,
                                                           status: status, detail: detail)
        let draft = try Self.checked(AuditDraft(
            event: .opRefundOutcome, refs: [.incident(incident.id), .billing(refund.billingTransaction)],
            failureCategory: incident.category.rawValue, responseType: ResponseType.refund.rawValue, payload: payload))
        refund.status = status
        refund.outcomeSeq = try transaction.nextAuditSeq()
        refund.outcomeDetail = detail
        let bytes = try refund.encoded()

        // Write.
        do throws(LarderError) {
            let entry = try transaction.appendAudit(draft)
            precondition(entry.seq == refund.outcomeSeq, "the outcome's record got seq \(entry.seq), not the planned one")
            try txn.put(tables.incidentRefunds, refundID, bytes)
        } catch {
            throw transaction.broken(by: error)
        }
        return .applied(refund)
    }

    // MARK: Ids and checks

    /// The full id of a caller-chosen response: `<incident>.<chosen>`.
    static func responseID(chosen: String, incident: String) throws(LarderError) -> String {
        try WriteContext.childID(chosen: chosen, parent: incident, field: "responseID", storeLetter: "r")
    }

    /// An id derived from a response id must be an identifier itself.
    private static func checkDerived(_ id: String, field: String, responseID: String) throws(LarderError) {
        guard id.utf8.count <= WriteContext.identifierBytesMax else {
            throw LarderError(.validationFailed,
                              "The \(field) \(id) derived from response \(responseID) is \(id.utf8.count) bytes, more than \(WriteContext.identifierBytesMax); use a shorter incident id or responseID.")
        }
    }

    /// A stale expectedVersion is CONFLICT.
    private static func check(_ incident: Incident, expectedVersion: UInt32?) throws(LarderError) {
        if let expectedVersion, expectedVersion != incident.version {
            throw LarderError(.conflict,
                              "State changed during operation: incident \(incident.id) is at version \(incident.version), you saw \(expectedVersion). Refresh and retry.")
        }
    }

    /// The draft, once the audit log has checked it would accept it.
    private static func checked(_ draft: AuditDraft) throws(LarderError) -> AuditDraft {
        try AuditAppender.validate(draft)
        return draft
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

    // MARK: Helpers

    /// The incident, before any version check: a retry is recognised whatever version it saw.
    private func load(_ id: String) throws(LarderError) -> Incident {
        try WriteContext.validateIdentifier(id, field: "incident id")
        guard let bytes = try txn.get(tables.incidents, id) else {
            throw LarderError(.notFound, "No incident \(id).")
        }
        return try Incident.decode(bytes)
    }

    /// Adds or removes the incident's index entries (state, category, severity, time).
    private func index(_ incident: Incident, add: Bool) throws(LarderError) {
        for key in Self.indexKeys(incident) {
            if add { try txn.put(tables.incidentsIndex, key, Empty()) } else { try txn.delete(tables.incidentsIndex, key) }
        }
    }

    /// The incident's four index entries: its state, category, severity, and all.
    static func indexKeys(_ incident: Incident) -> [KeyPair<String, KeyPair<Int64, String>>] {
        let at = KeyPair(incident.createdAtMicros, incident.id)
        return [
            KeyPair("state:" + incident.state.rawValue, at),
            KeyPair("category:" + incident.category.rawValue, at),
            KeyPair("severity:" + incident.severity.rawValue, at),
            KeyPair("all", at),
        ]
    }

    static func describe(_ basis: CreditBasis) -> String { IncidentRecords.describe(basis) }
}
