import LarderStorage

extension Verifier {
    /// The ledger, in two merge walks and the facts that tie them to each other and to the log.
    ///
    /// 1. Accounts, balances and history side by side (all keyed by account id first): every
    ///    account matches its `LEDGER_ACCOUNT_CREATED` record; **every** history entry follows from
    ///    the one before it by its own transfer (kind, side, amount) and keeps the account's balance
    ///    rules; the last one equals the kept balance (no entries: zero); no balance or history
    ///    without an account; per ledger, the kept debits equal the credits.
    /// 2. Transfers and resolutions side by side (both keyed by transfer id): every transfer
    ///    matches its audit record (event, time, refs, payload); a resolved transfer is of a kind
    ///    its resolution may act on.
    ///
    /// The facts: each transfer's two sides are exactly the history entries (``Relation/historyEntries``),
    /// a pending transfer's release is what its post or void took off the pending balances
    /// (``Relation/releases``), every post, void and reversal is the resolution of its target
    /// (``Relation/resolutions``) and has the target's accounts and amount (``Relation/resolutionShapes``).
    func verifyLedger() throws(LarderError) {
        guard !cancelled else { return }
        try walkAccounts()
        guard !cancelled else { return }
        try walkTransfers()
    }

    // MARK: Accounts, balances, history

    private func walkAccounts() throws(LarderError) {
        let total = try txn.statistics(tables.ledgerHistory).entries
        var walker = AccountWalk(total: total)
        try txn.withBytesCursor(tables.ledgerBalances) { (balances: BytesCursor) throws(LarderError) in
            try txn.withBytesCursor(tables.ledgerHistory) { (history: BytesCursor) throws(LarderError) in
                _ = try balances.first(mapError: { LarderError($0) })
                _ = try history.first(mapError: { LarderError($0) })
                try txn.forEachBytes(tables.ledgerAccounts) { key, value throws(LarderError) -> Bool in
                    try skipOrphans(before: key, balances: balances, history: history, walker: &walker)
                    try account(key: key, value: value, balances: balances, history: history, walker: &walker)
                    return !cancelled
                }
                guard !cancelled else { return }
                try skipOrphans(before: nil, balances: balances, history: history, walker: &walker)
            }
        }
        guard !muted, !cancelled else { return }
        for (ledger, sum) in walker.sums.sorted(by: { $0.key < $1.key })
        where sum.debits != sum.credits || sum.debitsPending != sum.creditsPending {
            problem(.ledgerMismatch, seq: nil, table: StoreTables.ledgerBalancesName,
                    "ledger \(ledger): debits \(sum.debits) / credits \(sum.credits), pending \(sum.debitsPending) / \(sum.creditsPending) do not balance")
        }
        tick("ledger accounts", walker.historyDone, total, force: true)
    }

    /// What the accounts walk carries from one account to the next.
    struct AccountWalk {
        let total: Int
        var historyDone = 0
        var sums: [String: (debits: UInt128, credits: UInt128, debitsPending: UInt128, creditsPending: UInt128)] = [:]
        var id: [UInt8] = []
        var ledger: [UInt8] = []
    }

    /// Reports balances and history entries whose account sorts before `key` (after the last
    /// account when nil): rows without an account.
    private func skipOrphans(before key: UnsafeRawBufferPointer?, balances: BytesCursor, history: BytesCursor,
                             walker: inout AccountWalk) throws(LarderError) {
        while balances.isPositioned, key.map({ InPlace.compare(balances.key, $0) < 0 }) ?? true {
            var id: [UInt8] = []
            KeyText.read(balances.key, into: &id)
            problem(.ledgerMismatch, seq: nil, table: StoreTables.ledgerBalancesName,
                    "a balance is kept for \(InPlace.text(id.withUnsafeBytes { $0 })), which is no account")
            _ = try balances.next(mapError: { LarderError($0) })
        }
        while history.isPositioned, key.map({ InPlace.compare(history.key, $0) < 0 }) ?? true {
            walker.historyDone += 1
            var id: [UInt8] = []
            KeyText.read(history.key, into: &id)
            let seq = history.key.count >= 8
                ? UInt64(bigEndian: history.key.loadUnaligned(fromByteOffset: history.key.count - 8, as: UInt64.self)) : nil
            problem(.ledgerMismatch, seq: seq, table: StoreTables.ledgerHistoryName,
                    "a history entry is kept for \(InPlace.text(id.withUnsafeBytes { $0 })), which is no account")
            _ = try history.next(mapError: { LarderError($0) })
        }
    }

    private func account(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, balances: BytesCursor,
                         history: BytesCursor, walker: inout AccountWalk) throws(LarderError) {
        if !muted { report.otherRecordsChecked += 1 }
        let accountsTable = StoreTables.ledgerAccountsName
        guard KeyText.read(key, into: &walker.id) == key.count else {
            problem(.ledgerMismatch, seq: nil, table: accountsTable, "an account key is not a string key: \(Array(key).hexString)")
            return
        }
        let id = walker.id
        let name = InPlace.text(id.withUnsafeBytes { $0 })
        var flags = AccountFlags()
        do throws(Malformed) {
            var reader = InPlaceReader(value)
            guard try reader.u8() == 1 else { throw Malformed(detail: "format version") }
            let ledger = try reader.string()
            walker.ledger = Array(ledger)
            let code = try reader.u16()
            flags = AccountFlags(rawValue: try reader.u16())
            let refsOffset = try reader.refs()
            let created = try reader.i64()
            let seq = try reader.u64()
            try reader.expectEnd()
            // The account as its LEDGER_ACCOUNT_CREATED record tells it.
            var fact = facts.fact(.accountRecords)
            fact.add(seq)
            fact.add(created)
            fact.add(optional: UnsafeRawBufferPointer?.none)
            fact.add(optional: UnsafeRawBufferPointer?.none)
            fact.add(optional: UnsafeRawBufferPointer?.none)
            Self.accountKind.withUnsafeBytes { kind in
                id.withUnsafeBytes { id in RefMerge.add(row: value, refsAt: refsOffset, extra: [(kind, id)], to: &fact) }
            }
            scratch.reset()
            scratch.raw("{\"account_id\":")
            id.withUnsafeBytes { scratch.jsonString($0) }
            scratch.raw(",\"ledger\":")
            scratch.jsonString(ledger)
            scratch.raw(",\"code\":")
            scratch.decimal(UInt64(code))
            scratch.raw(",\"flags\":[")
            for (index, flag) in flags.names.enumerated() {
                if index > 0 { scratch.raw(",") }
                scratch.jsonString(flag)
            }
            scratch.raw("]}")
            fact.add(bytes: scratch.buffer)
            facts.add(.accountRecords, .right, fact.finish()) {
                FactOrigin(seq: seq, what: "account \(name) (created by seq \(seq))")
            }
        } catch {
            problem(.ledgerMismatch, seq: nil, table: accountsTable, "account \(name) cannot be decoded: \(error.detail)")
            walker.ledger = []
        }

        // Its history, entry by entry: each follows from the one before by its own transfer.
        var balance = Balance()
        while history.isPositioned, InPlace.hasPrefix(history.key, key) {
            walker.historyDone += 1
            let entryKey = history.key
            guard entryKey.count == key.count + 8 else {
                problem(.ledgerMismatch, seq: nil, table: StoreTables.ledgerHistoryName,
                        "account \(name): a history key of \(entryKey.count) bytes is not (account, seq)")
                _ = try history.next(mapError: { LarderError($0) })
                continue
            }
            let seq = UInt64(bigEndian: entryKey.loadUnaligned(fromByteOffset: key.count, as: UInt64.self))
            balance = historyEntry(value: history.value, account: name, accountText: id, seq: seq, flags: flags,
                                   ledger: walker.ledger, before: balance)
            if !muted { report.otherRecordsChecked += 1 }
            guard tick("ledger accounts", walker.historyDone, walker.total) else { return }
            _ = try history.next(mapError: { LarderError($0) })
        }

        // The kept balance is the last entry's balance.
        var kept: Balance?
        if balances.isPositioned, InPlace.equal(balances.key, key) {
            let stored = balances.value
            kept = stored.count == 32 ? Self.balance(stored) : nil
            if kept == nil {
                problem(.ledgerMismatch, seq: nil, table: StoreTables.ledgerBalancesName,
                        "account \(name): the kept balance is \(stored.count) bytes, not 32")
            }
            _ = try balances.next(mapError: { LarderError($0) })
        } else {
            problem(.ledgerMismatch, seq: nil, table: StoreTables.ledgerBalancesName, "account \(name) has no kept balance")
        }
        if let kept, kept != balance {
            problem(.ledgerMismatch, seq: nil, table: StoreTables.ledgerBalancesName,
                    "account \(name): kept balance \(describe(kept)) differs from its history's \(describe(balance))")
        }
        if let kept, !muted {
            let ledger = InPlace.text(walker.ledger.withUnsafeBytes { $0 })
            var sum = walker.sums[ledger] ?? (0, 0, 0, 0)
            sum.debits += UInt128(kept.debitsPosted)
            sum.credits += UInt128(kept.creditsPosted)
            sum.debitsPending += UInt128(kept.debitsPending)
            sum.creditsPending += UInt128(kept.creditsPending)
            walker.sums[ledger] = sum
        }
    }

    /// One history entry: decoded, checked against the balance before it, and its facts. Returns
    /// the balance after it (as stored, so that one bad entry is reported once).
    private func historyEntry(value: UnsafeRawBufferPointer, account: String, accountText: [UInt8], seq: UInt64,
                              flags: AccountFlags, ledger: [UInt8], before: Balance) -> Balance {
        let table = StoreTables.ledgerHistoryName
        let transferID: UnsafeRawBufferPointer, kindText: UnsafeRawBufferPointer, isDebit: Bool, amount: UInt64, after: Balance
        do throws(Malformed) {
            var reader = InPlaceReader(value)
            transferID = try reader.string()
            kindText = try reader.string()
            let side = try reader.u8()
            guard side <= 1 else { throw Malformed(detail: "isDebit is \(side)") }
            isDebit = side == 1
            amount = try reader.u64()
            after = Self.balance(try reader.raw(32))
            try reader.expectEnd()
        } catch {
            problem(.ledgerMismatch, seq: seq, table: table, "account \(account): the history entry at seq \(seq) cannot be decoded: \(error.detail)")
            return before
        }
        func transfer() -> String { InPlace.text(transferID) }
        // The entry as its transfer's side says it should be.
        var fact = facts.fact(.historyEntries)
        accountText.withUnsafeBytes { fact.add(bytes: $0) }
        fact.add(seq)
        fact.add(bytes: transferID)
        fact.add(bytes: kindText)
        fact.add(isDebit)
        fact.add(amount)
        ledger.withUnsafeBytes { fact.add(bytes: $0) }
        facts.add(.historyEntries, .right, fact.finish()) {
            FactOrigin(seq: seq, what: "the history entry of account \(account) at seq \(seq) (transfer \(transfer()), \(isDebit ? "debit" : "credit") \(amount))")
        }
        guard let kind = Self.transferKind(kindText) else {
            problem(.ledgerMismatch, seq: seq, table: table, "account \(account): the history entry at seq \(seq) has kind \(InPlace.text(kindText))")
            return after
        }
        // This side's two components, and the other side's, before and after.
        let posted = isDebit ? (before.debitsPosted, after.debitsPosted) : (before.creditsPosted, after.creditsPosted)
        let pending = isDebit ? (before.debitsPending, after.debitsPending) : (before.creditsPending, after.creditsPending)
        let otherUnchanged = isDebit
            ? before.creditsPosted == after.creditsPosted && before.creditsPending == after.creditsPending
            : before.debitsPosted == after.debitsPosted && before.debitsPending == after.debitsPending
        let postedAdds = { (added: UInt64) in posted.0.addingReportingOverflow(added) == (posted.1, false) }
        var follows = otherUnchanged
        switch kind {
        case .single, .reversal:
            follows = follows && postedAdds(amount) && pending.0 == pending.1
        case .pending:
            follows = follows && posted.0 == posted.1 && pending.0.addingReportingOverflow(amount) == (pending.1, false)
        case .postPending, .voidPending:
            // The release (what the post or void took off pending) must be the pending transfer's
            // amount: a fact its target gives.
            let released = pending.0 &- pending.1
            follows = follows && pending.1 < pending.0 && (kind == .postPending ? postedAdds(amount) && amount <= released
                                                                                 : amount == 0 && posted.0 == posted.1)
            var fact = facts.fact(.releases)
            accountText.withUnsafeBytes { fact.add(bytes: $0) }
            fact.add(bytes: transferID)
            fact.add(isDebit)
            fact.add(released)
            facts.add(.releases, .right, fact.finish()) {
                FactOrigin(seq: seq, what: "\(kind.rawValue) \(transfer()) releasing \(released) pending on account \(account)")
            }
        }
        if !follows {
            problem(.ledgerMismatch, seq: seq, table: table,
                    "account \(account): the history entry at seq \(seq) (\(kind.rawValue) \(transfer()), \(isDebit ? "debit" : "credit") \(amount)) does not follow from the balance before it: \(describe(before)) then \(describe(after))")
        }
        if flags.contains(.debitsMustNotExceedCredits),
           UInt128(after.debitsPosted) + UInt128(after.debitsPending) > UInt128(after.creditsPosted) {
            problem(.ledgerMismatch, seq: seq, table: table,
                    "account \(account): after seq \(seq) its debits exceed its credits (debits_must_not_exceed_credits): \(describe(after))")
        }
        if flags.contains(.creditsMustNotExceedDebits),
           UInt128(after.creditsPosted) + UInt128(after.creditsPending) > UInt128(after.debitsPosted) {
            problem(.ledgerMismatch, seq: seq, table: table,
                    "account \(account): after seq \(seq) its credits exceed its debits (credits_must_not_exceed_debits): \(describe(after))")
        }
        return after
    }

    static func balance(_ bytes: UnsafeRawBufferPointer) -> Balance {
        func field(_ index: Int) -> UInt64 { UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)) }
        return Balance(debitsPosted: field(0), creditsPosted: field(1), debitsPending: field(2), creditsPending: field(3))
    }

    private func describe(_ balance: Balance) -> String {
        "debits \(balance.debitsPosted)+\(balance.debitsPending) pending, credits \(balance.creditsPosted)+\(balance.creditsPending) pending"
    }

    static let accountKind = Array("account".utf8)
    static let transferKind = Array("transfer".utf8)

    // MARK: Transfers and resolutions

    private func walkTransfers() throws(LarderError) {
        let total = try txn.statistics(tables.ledgerTransfers).entries
        var done = 0
        try txn.withBytesCursor(tables.ledgerResolutions) { (resolutions: BytesCursor) throws(LarderError) in
            _ = try resolutions.first(mapError: { LarderError($0) })
            func orphans(before key: UnsafeRawBufferPointer?) throws(LarderError) {
                while resolutions.isPositioned, key.map({ InPlace.compare(resolutions.key, $0) < 0 }) ?? true {
                    var target: [UInt8] = []
                    KeyText.read(resolutions.key, into: &target)
                    problem(.ledgerMismatch, seq: nil, table: StoreTables.ledgerResolutionsName,
                            "a resolution is kept for transfer \(InPlace.text(target.withUnsafeBytes { $0 })), which does not exist")
                    _ = try resolutions.next(mapError: { LarderError($0) })
                }
            }
            try txn.forEachBytes(tables.ledgerTransfers) { key, value throws(LarderError) -> Bool in
                done += 1
                if !muted { report.otherRecordsChecked += 1 }
                try orphans(before: key)
                let resolution: UnsafeRawBufferPointer?
                if resolutions.isPositioned, InPlace.equal(resolutions.key, key) {
                    resolution = resolutions.value
                } else {
                    resolution = nil
                }
                let decoded = KeyText.withText(key) { id in transfer(id: id, value: value, resolution: resolution) }
                if decoded == nil {
                    problem(.ledgerMismatch, seq: nil, table: StoreTables.ledgerTransfersName,
                            "a transfer key is not a string key: \(Array(key).hexString)")
                }
                if resolution != nil { _ = try resolutions.next(mapError: { LarderError($0) }) }
                return tick("ledger transfers", done, total)
            }
            guard !cancelled else { return }
            try orphans(before: nil)
        }
        guard !muted, !cancelled else { return }
        tick("ledger transfers", done, total, force: true)
    }

    /// The kind a transfer, history entry or resolution names.
    static func transferKind(_ text: UnsafeRawBufferPointer) -> TransferKind? {
        for (name, kind) in kindNames where InPlace.equal(text, name) { return kind }
        return nil
    }

    private static let kindNames: [([UInt8], TransferKind)] =
        [TransferKind.single, .pending, .postPending, .voidPending, .reversal].map { (Array($0.rawValue.utf8), $0) }

    private func transfer(id: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, resolution: UnsafeRawBufferPointer?) {
        let table = StoreTables.ledgerTransfersName
        func name() -> String { InPlace.text(id) }
        let kind: TransferKind, kindText: UnsafeRawBufferPointer, debit: UnsafeRawBufferPointer, credit: UnsafeRawBufferPointer
        let amount: UInt64, ledger: UnsafeRawBufferPointer, code: UInt16, refsOffset: Int, target: UnsafeRawBufferPointer?
        let time: Int64, seq: UInt64
        do throws(Malformed) {
            var reader = InPlaceReader(value)
            guard try reader.u8() == 1 else { throw Malformed(detail: "format version") }
            kindText = try reader.string()
            guard let known = Self.transferKind(kindText) else { throw Malformed(detail: "kind \(InPlace.text(kindText))") }
            kind = known
            debit = try reader.string()
            credit = try reader.string()
            amount = try reader.u64()
            ledger = try reader.string()
            code = try reader.u16()
            refsOffset = try reader.refs()
            target = try reader.optionalString()
            time = try reader.i64()
            seq = try reader.u64()
            try reader.expectEnd()
        } catch {
            problem(.ledgerMismatch, seq: nil, table: table, "transfer \(name()) cannot be decoded: \(error.detail)")
            return
        }
        if (target == nil) != (kind == .single || kind == .pending) {
            problem(.ledgerMismatch, seq: seq, table: table,
                    "transfer \(name()) (\(kind.rawValue)) \(target == nil ? "names no target" : "names a target")")
        }

        // The transfer as its audit record tells it: seq, time, event, refs, payload.
        var fact = facts.fact(.transferRecords)
        fact.add(seq)
        fact.add(time)
        Self.eventName(kind).withUnsafeBytes { fact.add(bytes: $0) }
        fact.add(optional: UnsafeRawBufferPointer?.none)
        fact.add(optional: UnsafeRawBufferPointer?.none)
        fact.add(optional: UnsafeRawBufferPointer?.none)
        Self.accountKind.withUnsafeBytes { accountKind in
            Self.transferKind.withUnsafeBytes { transferKind in
                extraRefs.removeAll(keepingCapacity: true)
                extraRefs.append((transferKind, id))
                extraRefs.append((accountKind, debit))
                extraRefs.append((accountKind, credit))
                if let target { extraRefs.append((transferKind, target)) }
                RefMerge.sortUnique(&extraRefs)
                RefMerge.add(row: value, refsAt: refsOffset, extra: extraRefs, to: &fact)
            }
        }
        scratch.reset()
        scratch.raw(Self.payloadTransferID)
        scratch.jsonString(id)
        scratch.raw(Self.payloadKind)
        scratch.raw(kindText)
        scratch.raw(Self.payloadDebit)
        scratch.jsonString(debit)
        scratch.raw(Self.payloadCredit)
        scratch.jsonString(credit)
        scratch.raw(Self.payloadAmount)
        scratch.decimal(amount)
        scratch.raw(Self.payloadLedger)
        scratch.jsonString(ledger)
        scratch.raw(Self.payloadCode)
        scratch.decimal(UInt64(code))
        scratch.raw(Self.payloadTarget)
        if let target { scratch.jsonString(target) } else { scratch.raw(Self.payloadNull) }
        scratch.byte(0x7D)
        fact.add(bytes: scratch.buffer)
        facts.add(.transferRecords, .right, fact.finish()) {
            FactOrigin(seq: seq, what: "transfer \(name()) (recorded at seq \(seq))")
        }

        // Its two history entries.
        let historyAmount = kind == .voidPending ? 0 : amount
        for (account, isDebit) in [(debit, true), (credit, false)] {
            var fact = facts.fact(.historyEntries)
            fact.add(bytes: account)
            fact.add(seq)
            fact.add(bytes: id)
            fact.add(bytes: kindText)
            fact.add(isDebit)
            fact.add(historyAmount)
            fact.add(bytes: ledger)
            facts.add(.historyEntries, .left, fact.finish()) {
                FactOrigin(seq: seq, what: "transfer \(name())'s \(isDebit ? "debit" : "credit") side on \(InPlace.text(account)) at seq \(seq) (on ledger \(InPlace.text(ledger)))")
            }
        }

        // A post, void or reversal: the resolution of its target, with the target's shape.
        if let target {
            var fact = facts.fact(.resolutions)
            fact.add(bytes: target)
            fact.add(bytes: kindText)
            fact.add(bytes: id)
            facts.add(.resolutions, .left, fact.finish()) {
                FactOrigin(seq: seq, what: "\(kind.rawValue) \(name()) of transfer \(InPlace.text(target))")
            }
            var shape = facts.fact(.resolutionShapes)
            shape.add(bytes: id)
            shape.add(bytes: kindText)
            shape.add(bytes: debit)
            shape.add(bytes: credit)
            shape.add(kind == .postPending ? 0 : amount)
            facts.add(.resolutionShapes, .right, shape.finish()) {
                FactOrigin(seq: seq, what: "\(kind.rawValue) \(name()) (\(InPlace.text(debit)) → \(InPlace.text(credit)), \(amount))")
            }
        }

        // Resolved itself: by a transfer that may act on it, which takes what it gives.
        guard let resolution else { return }
        let resolvedKind: TransferKind, resolvedText: UnsafeRawBufferPointer, by: UnsafeRawBufferPointer
        do throws(Malformed) {
            var reader = InPlaceReader(resolution)
            resolvedText = try reader.string()
            guard let known = Self.transferKind(resolvedText) else { throw Malformed(detail: "kind \(InPlace.text(resolvedText))") }
            resolvedKind = known
            by = try reader.string()
            try reader.expectEnd()
        } catch {
            problem(.ledgerMismatch, seq: nil, table: StoreTables.ledgerResolutionsName,
                    "the resolution of \(name()) cannot be decoded: \(error.detail)")
            return
        }
        var resolutionFact = facts.fact(.resolutions)
        resolutionFact.add(bytes: id)
        resolutionFact.add(bytes: resolvedText)
        resolutionFact.add(bytes: by)
        facts.add(.resolutions, .right, resolutionFact.finish()) {
            FactOrigin(seq: nil, what: "the resolution of \(name()) by \(resolvedKind.rawValue) \(InPlace.text(by))")
        }
        let allowed: Set<TransferKind> = switch resolvedKind {
        case .reversal: [.single, .postPending]
        case .postPending, .voidPending: [.pending]
        case .single, .pending: []
        }
        guard allowed.contains(kind) else {
            problem(.ledgerMismatch, seq: seq, table: StoreTables.ledgerResolutionsName,
                    "transfer \(name()) (\(kind.rawValue)) is recorded as resolved by \(resolvedKind.rawValue) \(InPlace.text(by)), which cannot act on it")
            return
        }
        var shape = facts.fact(.resolutionShapes)
        shape.add(bytes: by)
        shape.add(bytes: resolvedText)
        // A reversal moves the amount back; a post or void uses the pending transfer's accounts.
        shape.add(bytes: resolvedKind == .reversal ? credit : debit)
        shape.add(bytes: resolvedKind == .reversal ? debit : credit)
        shape.add(resolvedKind == .postPending ? 0 : amount)
        facts.add(.resolutionShapes, .left, shape.finish()) {
            FactOrigin(seq: seq, what: "transfer \(name()), resolved by \(resolvedKind.rawValue) \(InPlace.text(by))")
        }
        if resolvedKind != .reversal {
            for (account, isDebit) in [(debit, true), (credit, false)] {
                var fact = facts.fact(.releases)
                fact.add(bytes: account)
                fact.add(bytes: by)
                fact.add(isDebit)
                fact.add(amount)
                facts.add(.releases, .left, fact.finish()) {
                    FactOrigin(seq: seq, what: "pending transfer \(name())'s \(amount) on \(InPlace.text(account)), released by \(resolvedKind.rawValue) \(InPlace.text(by))")
                }
            }
        }
    }

    private static let payloadTransferID = Array(#"{"transfer_id":"#.utf8)
    private static let payloadKind = Array(#","kind":""#.utf8)
    private static let payloadDebit = Array(#"","debit_account":"#.utf8)
    private static let payloadCredit = Array(#","credit_account":"#.utf8)
    private static let payloadAmount = Array(#","amount":"#.utf8)
    private static let payloadLedger = Array(#","ledger":"#.utf8)
    private static let payloadCode = Array(#","code":"#.utf8)
    private static let payloadTarget = Array(#","target":"#.utf8)
    private static let payloadNull = Array("null".utf8)

    /// The audit event each transfer kind is recorded with.
    static func eventName(_ kind: TransferKind) -> [UInt8] {
        switch kind {
        case .single: posted
        case .pending: pending
        case .postPending: pendingPosted
        case .voidPending: pendingVoided
        case .reversal: reversed
        }
    }

    private static let posted = Array(AuditEvent.ledgerTransferPosted.rawValue.utf8)
    private static let pending = Array(AuditEvent.ledgerTransferPending.rawValue.utf8)
    private static let pendingPosted = Array(AuditEvent.ledgerPendingPosted.rawValue.utf8)
    private static let pendingVoided = Array(AuditEvent.ledgerPendingVoided.rawValue.utf8)
    private static let reversed = Array(AuditEvent.ledgerTransferReversed.rawValue.utf8)
}
