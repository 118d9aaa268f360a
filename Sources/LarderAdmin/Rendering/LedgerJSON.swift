import Larder

/// The JSON of ledger values, shared by the incident and ledger routes so that a transfer or a
/// balance reads the same wherever it is served. Amounts are integers in the account's unit.
enum LedgerJSON {
    static func account(_ account: Account, to o: inout JSONWriter) {
        o.field("id", account.id)
        o.field("ledger", account.ledger)
        o.field("code", account.code)
        o.array("flags") { list in
            // Spelt out here rather than from the flags' raw bits: a reader should not need
            // Larder's bit layout to understand an account.
            if account.flags.contains(.debitsMustNotExceedCredits) { list.value("debits_must_not_exceed_credits") }
            if account.flags.contains(.creditsMustNotExceedDebits) { list.value("credits_must_not_exceed_debits") }
        }
        refs(account.refs, to: &o)
        o.field("created_at", RFC3339.format(account.createdAtMicros))
        o.field("audit_seq", account.auditSeq)
    }

    static func balance(_ balance: Balance, to o: inout JSONWriter) {
        o.field("debits_posted", balance.debitsPosted)
        o.field("credits_posted", balance.creditsPosted)
        o.field("debits_pending", balance.debitsPending)
        o.field("credits_pending", balance.creditsPending)
        o.field("net", balance.net)
        o.field("available", balance.available)
    }

    static func transfer(_ transfer: Transfer, to o: inout JSONWriter) {
        o.field("id", transfer.id)
        o.field("kind", transfer.kind.rawValue)
        o.field("debit_account", transfer.debitAccount)
        o.field("credit_account", transfer.creditAccount)
        o.field("amount", transfer.amount)
        o.field("ledger", transfer.ledger)
        o.field("code", transfer.code)
        refs(transfer.refs, to: &o)
        o.field("target", transfer.target)
        o.field("time", RFC3339.format(transfer.timeMicros))
        o.field("audit_seq", transfer.auditSeq)
    }

    static func historyEntry(_ entry: AccountHistoryEntry, to o: inout JSONWriter) {
        o.field("seq", entry.seq)
        o.field("transfer_id", entry.transferID)
        o.field("kind", entry.kind.rawValue)
        o.field("side", entry.isDebit ? "debit" : "credit")
        o.field("amount", entry.amount)
        o.object("balance_after") { b in balance(entry.balanceAfter, to: &b) }
    }

    /// `refs` as `[{"kind":…,"id":…}]`, as audit records render them.
    static func refs(_ refs: [CorrelationRef], to o: inout JSONWriter) {
        o.array("refs") { list in
            for ref in refs {
                list.object { r in
                    r.field("kind", ref.kind)
                    r.field("id", ref.id)
                }
            }
        }
    }
}
