import LarderStorage

extension Verifier {
    /// Recomputes every balance from the transfers alone and compares it with the kept balance;
    /// checks that debits equal credits per ledger, that every transfer's accounts exist on its
    /// ledger, that every post, void and reversal points to a real transfer of the right kind and
    /// is recorded as its resolution, and that each account's last history entry matches its
    /// balance.
    mutating func verifyLedger() throws(LarderError) {
        let table = StoreTables.ledgerTransfersName
        var accounts: [String: Account] = [:]
        try txn.forEach(tables.ledgerAccounts) { (entry: Entry<String, [UInt8]>) throws(LarderError) -> Bool in
            if let account = try? Account.decode(id: entry.key, entry.value) {
                accounts[entry.key] = account
            } else {
                report.add(.ledgerMismatch, seq: nil, table: StoreTables.ledgerAccountsName, "account \(entry.key) cannot be decoded")
            }
            return true
        }
        var transfers: [String: Transfer] = [:]
        let total = try txn.statistics(tables.ledgerTransfers).entries
        var done = 0
        try txn.forEach(tables.ledgerTransfers) { (entry: Entry<String, [UInt8]>) throws(LarderError) -> Bool in
            done += 1
            report.otherRecordsChecked += 1
            if let transfer = try? Transfer.decode(id: entry.key, entry.value) {
                transfers[entry.key] = transfer
            } else {
                report.add(.ledgerMismatch, seq: nil, table: table, "transfer \(entry.key) cannot be decoded")
            }
            tick("ledger transfers", done, total)
            return true
        }

        // Every account and transfer must be backed by the audit record it names: a row slipped
        // into a ledger table without its record is found here, even with balances to match.
        for account in accounts.values.sorted(by: { $0.id < $1.id }) {
            try checkBacking(seq: account.auditSeq, events: [.ledgerAccountCreated], ref: .account(account.id),
                             table: StoreTables.ledgerAccountsName, what: "account \(account.id)")
        }
        for transfer in transfers.values.sorted(by: { $0.auditSeq < $1.auditSeq }) {
            try checkBacking(seq: transfer.auditSeq, events: [Self.event(for: transfer.kind)], ref: .transfer(transfer.id),
                             table: table, what: "transfer \(transfer.id)")
        }

        var expected: [String: Balance] = [:]
        func add(_ account: String, _ path: WritableKeyPath<Balance, UInt64>, _ amount: UInt64) -> Bool {
            let (sum, overflow) = expected[account, default: Balance()][keyPath: path].addingReportingOverflow(amount)
            expected[account, default: Balance()][keyPath: path] = sum
            return !overflow
        }
        for transfer in transfers.values.sorted(by: { $0.auditSeq < $1.auditSeq }) {
            let seq = transfer.auditSeq
            guard let debit = accounts[transfer.debitAccount], let credit = accounts[transfer.creditAccount] else {
                report.add(.ledgerMismatch, seq: seq, table: table, "transfer \(transfer.id) names an account that does not exist")
                continue
            }
            if debit.ledger != transfer.ledger || credit.ledger != transfer.ledger {
                report.add(.ledgerMismatch, seq: seq, table: table, "transfer \(transfer.id) crosses ledgers")
            }
            let resolution = try txn.get(tables.ledgerResolutions, transfer.id).flatMap { try? TransferResolution.decode($0) }
            var ok = true
            switch transfer.kind {
            case .single, .reversal:
                ok = add(transfer.debitAccount, \.debitsPosted, transfer.amount) && add(transfer.creditAccount, \.creditsPosted, transfer.amount)
            case .pending:
                // A pending transfer counts as pending until posted or voided.
                if resolution == nil {
                    ok = add(transfer.debitAccount, \.debitsPending, transfer.amount) && add(transfer.creditAccount, \.creditsPending, transfer.amount)
                }
            case .postPending:
                ok = add(transfer.debitAccount, \.debitsPosted, transfer.amount) && add(transfer.creditAccount, \.creditsPosted, transfer.amount)
            case .voidPending:
                break
            }
            if !ok { report.add(.ledgerMismatch, seq: seq, table: table, "balances of transfer \(transfer.id) overflow") }
            if let targetID = transfer.target {
                guard let target = transfers[targetID] else {
                    report.add(.ledgerMismatch, seq: seq, table: table, "transfer \(transfer.id) points to \(targetID), which does not exist")
                    continue
                }
                let allowed: Set<TransferKind> = transfer.kind == .reversal ? [.single, .postPending] : [.pending]
                if !allowed.contains(target.kind) {
                    report.add(.ledgerMismatch, seq: seq, table: table, "transfer \(transfer.id) (\(transfer.kind.rawValue)) points to \(targetID) of kind \(target.kind.rawValue)")
                }
                let recorded = try txn.get(tables.ledgerResolutions, targetID).flatMap { try? TransferResolution.decode($0) }
                if recorded?.byTransfer != transfer.id {
                    report.add(.ledgerMismatch, seq: seq, table: StoreTables.ledgerResolutionsName,
                               "transfer \(targetID) is not recorded as resolved by \(transfer.id)")
                }
            }
        }
        // Resolutions that name a transfer which does not resolve that target.
        try txn.forEach(tables.ledgerResolutions) { (entry: Entry<String, [UInt8]>) throws(LarderError) -> Bool in
            let resolution = try? TransferResolution.decode(entry.value)
            if resolution.flatMap({ transfers[$0.byTransfer] })?.target != entry.key {
                report.add(.ledgerMismatch, seq: nil, table: StoreTables.ledgerResolutionsName,
                           "the resolution of \(entry.key) names no transfer acting on it")
            }
            return true
        }

        var sums: [String: (debits: UInt128, credits: UInt128, debitsPending: UInt128, creditsPending: UInt128)] = [:]
        for (id, account) in accounts.sorted(by: { $0.key < $1.key }) {
            let stored = try txn.get(tables.ledgerBalances, id).flatMap { try? Balance.decode($0) }
            let recomputed = expected[id] ?? Balance()
            if stored != recomputed {
                report.add(.ledgerMismatch, seq: nil, table: StoreTables.ledgerBalancesName,
                           "account \(id): kept balance \(describe(stored)) differs from the transfers' \(describe(recomputed))")
            }
            let range = KeyRange<KeyPair<String, UInt64>>.prefix(id)
            if let last = try txn.last(tables.ledgerHistory, in: range),
               let entry = try? AccountHistoryEntry.decode(seq: last.key.second, last.value), entry.balanceAfter != recomputed {
                report.add(.ledgerMismatch, seq: last.key.second, table: StoreTables.ledgerHistoryName,
                           "account \(id): the last history entry's balance differs from the transfers'")
            }
            // Recomputed balances balance by construction; the kept ones are what could drift.
            let kept = stored ?? Balance()
            var sum = sums[account.ledger] ?? (0, 0, 0, 0)
            sum.debits += UInt128(kept.debitsPosted)
            sum.credits += UInt128(kept.creditsPosted)
            sum.debitsPending += UInt128(kept.debitsPending)
            sum.creditsPending += UInt128(kept.creditsPending)
            sums[account.ledger] = sum
        }
        for (ledger, sum) in sums where sum.debits != sum.credits || sum.debitsPending != sum.creditsPending {
            report.add(.ledgerMismatch, seq: nil, table: StoreTables.ledgerBalancesName,
                       "ledger \(ledger): debits \(sum.debits) / credits \(sum.credits), pending \(sum.debitsPending) / \(sum.creditsPending) do not balance")
        }
        tick("ledger transfers", done, total, force: true)
    }

    /// The audit event a transfer of this kind is recorded with.
    static func event(for kind: TransferKind) -> AuditEvent {
        switch kind {
        case .single: .ledgerTransferPosted
        case .pending: .ledgerTransferPending
        case .postPending: .ledgerPendingPosted
        case .voidPending: .ledgerPendingVoided
        case .reversal: .ledgerTransferReversed
        }
    }

    /// Reports a problem unless the audit record at `seq` is one of `events` and names `ref`.
    mutating func checkBacking(seq: UInt64, events: Set<AuditEvent>, ref: CorrelationRef, table: String,
                               what: String) throws(LarderError) {
        guard let value = try txn.get(tables.audit, seq), let record = try? AuditEntry.decode(value).record else {
            report.add(.ledgerMismatch, seq: seq, table: table, "\(what) names audit seq \(seq), which does not exist")
            return
        }
        if !events.contains(record.event) || !record.refs.contains(ref) {
            report.add(table.hasPrefix("incident") ? .incidentMismatch : .ledgerMismatch, seq: seq, table: table,
                       "\(what) names audit seq \(seq), a \(record.event.rawValue) record that is not about \(ref)")
        }
    }

    private func describe(_ balance: Balance?) -> String {
        guard let balance else { return "(missing)" }
        return "debits \(balance.debitsPosted)+\(balance.debitsPending) pending, credits \(balance.creditsPosted)+\(balance.creditsPending) pending"
    }
}
