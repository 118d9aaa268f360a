/// The payloads and refs of the audit records incidents write (docs/FORMAT.md section 7), in
/// one place: the writer builds its records with them, and verify rebuilds the records an
/// incident, its responses and its refunds imply, to hold them against the log.
enum IncidentRecords {
    /// `OP_FAILURE_RECORDED`.
    static func failureRecordedPayload(id: String, severity: Severity, summary: String, source: String) -> String {
        var payload = JSONWriter()
        payload.object { o in
            o.field("incident_id", id)
            o.field("severity", severity.rawValue)
            o.field("summary", summary)
            o.field("source", source)
        }
        return payload.text
    }

    /// The refs of a response's records: the incident, its refs, and per type the transfer,
    /// billing transaction, cycle or subject; sorted and unique.
    static func responseRefs(incident id: String, incidentRefs: [CorrelationRef], response: IncidentResponse,
                             transferID: String?) -> [CorrelationRef] {
        var refs: [CorrelationRef] = [.incident(id)] + incidentRefs
        switch response {
        case .credit: if let transferID { refs.append(.transfer(transferID)) }
        case .refund(let billing, _): if let billing { refs.append(.billing(billing)) }
        case .cancellation(let cycle): refs.append(.cycle(cycle))
        case .delay(_, let subject): refs.append(subject)
        case .substitution: break
        }
        return Array(Set(refs)).sorted()
    }

    /// The refs of `OP_CREDIT_GRANTED`: the response's, plus the customer's account.
    static func effectRefs(_ refs: [CorrelationRef], response: IncidentResponse) -> [CorrelationRef] {
        guard case .credit(_, let customer, _) = response else { return refs }
        return Array(Set(refs + [.account(customer)])).sorted()
    }

    /// `OP_RESPONSE_APPLIED`.
    static func responsePayload(incident incidentID: String, responseID: String, response: IncidentResponse,
                                overriding: String?) -> String {
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
                o.field("basis", describe(basis))
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

    /// `OP_CREDIT_GRANTED`.
    static func creditGrantedPayload(incident id: String, responseID: String, transferID: String?, amount: UInt64,
                                     customer: String, basis: CreditBasis) -> String {
        var payload = JSONWriter()
        payload.object { o in
            o.field("incident_id", id)
            o.field("response_id", responseID)
            o.field("transfer_id", transferID)
            o.field("amount_cents", amount)
            o.field("customer_account", customer)
            o.field("basis", describe(basis))
        }
        return payload.text
    }

    /// `OP_REFUND_ISSUED`.
    static func refundIssuedPayload(incident id: String, refundID: String, billing: String?, amount: UInt64) -> String {
        var payload = JSONWriter()
        payload.object { o in
            o.field("incident_id", id)
            o.field("refund_id", refundID)
            o.field("billing_transaction", billing)
            o.field("amount_cents", amount)
            o.field("status", RefundStatus.requested.rawValue)
        }
        return payload.text
    }

    /// `OP_OVERRIDE_USED`.
    static func overridePayload(incident id: String, responseID: String, overridden: AppliedResponse,
                                reversedTransfer: String?) -> String {
        var payload = JSONWriter()
        payload.object { o in
            o.field("incident_id", id)
            o.field("response_id", responseID)
            o.field("overrides", overridden.id)
            o.field("overridden_actor", overridden.actor.id)
            o.field("overridden_type", overridden.response.type.rawValue)
            o.field("reversed_transfer", reversedTransfer)
        }
        return payload.text
    }

    /// `OP_REFUND_OUTCOME_RECORDED`.
    static func refundOutcomePayload(incident id: String, refundID: String, billing: String, status: RefundStatus,
                                     detail: String?) -> String {
        var payload = JSONWriter()
        payload.object { o in
            o.field("incident_id", id)
            o.field("refund_id", refundID)
            o.field("billing_transaction", billing)
            o.field("status", status.rawValue)
            o.field("detail", detail)
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
