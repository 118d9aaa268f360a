import Larder

/// The JSON of incidents, their responses and refund requests. Enumerations are rendered as their
/// Swift raw values (`kitchenProduction`, `P1`, `acknowledged`), the same spelling the query
/// filters take, so a value read from a response can be passed back as a filter.
enum IncidentJSON {
    /// The incident's fields; `overdue` is judged at `nowMicros` (the store's clock).
    static func incident(_ incident: Incident, nowMicros: UnixMicros, to o: inout JSONWriter) {
        o.field("id", incident.id)
        o.field("category", incident.category.rawValue)
        o.field("severity", incident.severity.rawValue)
        o.field("state", incident.state.rawValue)
        o.field("version", incident.version)
        o.field("summary", incident.summary)
        o.field("source", incident.source)
        LedgerJSON.refs(incident.refs, to: &o)
        actor("reported_by", incident.reportedBy, to: &o)
        o.field("created_at", RFC3339.format(incident.createdAtMicros))
        o.field("updated_at", RFC3339.format(incident.updatedAtMicros))
        o.field("acknowledged_at", incident.acknowledgedAtMicros.map(RFC3339.format))
        o.field("acknowledge_by", RFC3339.format(incident.acknowledgeByMicros))
        o.field("overdue", incident.isOverdue(atMicros: nowMicros))
        o.field("postmortem_ref", incident.postmortemRef)
        o.array("responses") { list in
            for applied in incident.responses { list.object { r in response(applied, to: &r) } }
        }
    }

    static func response(_ applied: AppliedResponse, to o: inout JSONWriter) {
        o.field("id", applied.id)
        o.field("type", applied.response.type.rawValue)
        actor("actor", applied.actor, to: &o)
        o.field("reason_code", applied.reasonCode)
        o.field("time", RFC3339.format(applied.timeMicros))
        o.field("audit_seq", applied.auditSeq)
        o.field("overrides", applied.overrides)
        o.field("transfer_id", applied.transferID)
        o.field("refund_id", applied.refundID)
        o.object("details") { d in details(applied.response, to: &d) }
    }

    /// The fields only this kind of response has.
    static func details(_ response: IncidentResponse, to o: inout JSONWriter) {
        switch response {
        case .delay(let revisedTimeMicros, let subject):
            o.field("revised_time", RFC3339.format(revisedTimeMicros))
            o.object("subject") { s in
                s.field("kind", subject.kind)
                s.field("id", subject.id)
            }
        case .substitution(let item, let substitute, let consent):
            o.field("item", item)
            o.field("substitute", substitute)
            switch consent {
            case .explicit(let reference):
                o.object("consent") { c in
                    c.field("type", "explicit")
                    c.field("reference", reference)
                }
            case .preAuthorised(let reference):
                o.object("consent") { c in
                    c.field("type", "preAuthorised")
                    c.field("reference", reference)
                }
            case nil:
                o.field("consent", nil as String?)
            }
        case .credit(let amountCents, let customerAccount, let basis):
            o.field("amount_cents", amountCents)
            o.field("customer_account", customerAccount)
            o.object("basis") { b in
                switch basis {
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
        case .refund(let billingTransaction, let amountCents):
            o.field("billing_transaction", billingTransaction)
            o.field("amount_cents", amountCents)
        case .cancellation(let cycle):
            o.field("cycle", cycle)
        }
    }

    static func refund(_ refund: RefundRequest, to o: inout JSONWriter) {
        o.field("id", refund.id)
        o.field("incident_id", refund.incidentID)
        o.field("billing_transaction", refund.billingTransaction)
        o.field("amount_cents", refund.amountCents)
        o.field("status", refund.status.rawValue)
        o.field("requested_seq", refund.requestedSeq)
        o.field("outcome_seq", refund.outcomeSeq)
        o.field("outcome_detail", refund.outcomeDetail)
    }

    static func actor(_ key: String, _ actor: ActorIdentity, to o: inout JSONWriter) {
        o.object(key) { a in
            a.field("id", actor.id)
            a.field("role", actor.role.rawValue)
        }
    }
}
