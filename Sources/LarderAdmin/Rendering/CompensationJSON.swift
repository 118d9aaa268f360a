import Larder

/// The JSON of compensation proposals, as `/v1/incidents/{id}` serves them.
enum CompensationJSON {
    /// The proposal's fields; `overdue` is judged at `nowMicros` (the store's clock).
    static func proposal(_ proposal: CompensationProposal, nowMicros: UnixMicros, to o: inout JSONWriter) {
        o.field("id", proposal.id)
        o.field("channel", proposal.offer.channel.rawValue)
        o.field("state", proposal.state.rawValue)
        o.field("standard", proposal.standard)
        if let credit = proposal.offer.credit {
            o.object("credit") { c in
                c.field("customer_account", credit.customerAccount)
                c.object("basis") { b in
                    switch credit.basis {
                    case .preApproved(let code):
                        b.field("type", "preApproved")
                        b.field("code", code)
                    case .rule(let id):
                        b.field("type", "rule")
                        b.field("rule_id", id)
                    case .discretionary:
                        b.field("type", "discretionary")
                    }
                }
                c.object("value") { v in value(credit.value, to: &v) }
                c.field("amount_cents", credit.value.cents)
            }
        } else {
            o.rawField("credit", json: "null")
        }
        if let refund = proposal.offer.refund {
            o.object("refund") { r in
                r.field("billing_transaction", refund.billingTransaction)
                r.object("value") { v in value(refund.value, to: &v) }
                r.field("amount_cents", refund.value.cents)
            }
        } else {
            o.rawField("refund", json: "null")
        }
        o.field("total_cents", proposal.offer.totalCents)
        o.field("reason_code", proposal.reasonCode)
        IncidentJSON.actor("proposed_by", proposal.proposedBy, to: &o)
        o.field("proposed_at", RFC3339.format(proposal.proposedAtMicros))
        o.field("proposed_seq", proposal.proposedSeq)
        o.field("decide_by", RFC3339.format(proposal.decideByMicros))
        o.field("overdue", proposal.isOverdue(atMicros: nowMicros))
        o.field("hold_transfer", proposal.holdTransferID)
        if let decision = proposal.decision {
            o.object("decision") { d in
                d.field("verdict", decision.verdict.rawValue)
                IncidentJSON.actor("actor", decision.actor, to: &d)
                d.field("reason_code", decision.reasonCode)
                d.field("auto_rule", decision.autoRule)
                d.field("time", RFC3339.format(decision.timeMicros))
                d.field("audit_seq", decision.auditSeq)
            }
        } else {
            o.rawField("decision", json: "null")
        }
        o.field("credit_transfer", proposal.creditTransferID)
        o.field("refund_id", proposal.refundID)
        o.array("response_ids") { a in for id in proposal.responseIDs { a.value(id) } }
    }

    static func value(_ value: CompensationValue, to o: inout JSONWriter) {
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
}
