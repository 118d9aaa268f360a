import LarderStorage

/// Ledger changes inside a write: create accounts, post transfers (single, pending, post, void,
/// reversal) and linked batches. Reached as `txn.ledger`.
///
/// Every transfer is checked completely (existence, ledgers, balance rules, overflow) before
/// anything is written, so a refused transfer or batch leaves the transaction as it was, even
/// if the caller catches the error and goes on. A storage failure (map or disk full, an I/O
/// error) is different: the whole write fails with it, whatever the caller does with it.
public struct LedgerWriter {
    let transaction: StoreTransaction

    /// Transfers in one linked batch at most.
    public static let linkedBatchCountMax = 1_000

    /// Creates an account, or finds the identical one.
    ///
    /// - returns: ``LedgerOutcome/created(_:)``, or ``LedgerOutcome/exists(_:)`` when an account
    ///   with this id and identical fields exists (nothing written).
    /// - throws: VALIDATION_FAILED for a malformed spec; CONFLICT when the id exists with other
    ///   fields, naming the first one that differs.
    @discardableResult
    public func createAccount(_ spec: NewAccount) throws(LarderError) -> LedgerOutcome<Account> {
        try Self.validate(spec)
        let reader = LedgerReader(txn: transaction.txn, tables: transaction.tables)
        let refs = Array(Set(spec.refs)).sorted()
        if let existing = try reader.account(id: spec.id) {
            let differing: String? = existing.ledger != spec.ledger ? "ledger"
                : existing.code != spec.code ? "code"
                : existing.flags != spec.flags ? "flags"
                : existing.refs != refs ? "refs" : nil
            if let differing {
                throw LarderError(.conflict, "Account \(spec.id) exists with a different \(differing); nothing was written.",
                                  failureClass: .validation, retryable: false)
            }
            return .exists(existing)
        }
        var payload = JSONWriter()
        payload.object { o in
            o.field("account_id", spec.id)
            o.field("ledger", spec.ledger)
            o.field("code", spec.code)
            o.array("flags") { a in for name in spec.flags.names { a.value(name) } }
        }
        let entry = try transaction.appendAudit(AuditDraft(event: .ledgerAccountCreated, refs: [.account(spec.id)] + refs,
                                                           payload: payload.text))
        let account = Account(id: spec.id, ledger: spec.ledger, code: spec.code, flags: spec.flags, refs: refs,
                              createdAtMicros: transaction.timeMicros, auditSeq: entry.seq)
        let tables = transaction.tables
        try transaction.txn.put(tables.ledgerAccounts, spec.id, account.encoded(), mode: .insertNew)
        try transaction.txn.put(tables.ledgerBalances, spec.id, Balance.zero.encoded(), mode: .insertNew)
        return .created(account)
    }

    /// Posts one transfer, or finds the identical one.
    ///
    /// - returns: ``LedgerOutcome/created(_:)``, or ``LedgerOutcome/exists(_:)`` when a transfer
    ///   with this id and identical fields exists (nothing written).
    /// - throws: VALIDATION_FAILED for a malformed request; NOT_FOUND for a missing account or
    ///   target; CONFLICT for an id reused with other fields (naming the first that differs) or a
    ///   target already posted, voided or reversed; COMPUTE_ERROR for a balance rule violated or
    ///   an overflow, naming the rule and the account.
    @discardableResult
    public func post(_ request: TransferRequest) throws(LarderError) -> LedgerOutcome<Transfer> {
        var planner = LedgerPlanner(txn: transaction.txn, tables: transaction.tables, timeMicros: transaction.timeMicros,
                                    packsLedger: transaction.policy.packsLedger)
        let plan = try planner.plan(request)
        return try apply([plan])[0]
    }

    /// Posts transfers that all succeed or all fail. On failure nothing is written and the error
    /// names the failing transfer (its position and id) and its own error code.
    @discardableResult
    public func postLinked(_ requests: [TransferRequest]) throws(LarderError) -> [LedgerOutcome<Transfer>] {
        switch try planLinked(requests) {
        case .success(let plans):
            return try apply(plans)
        case .failure(let failure):
            var error = failure.error
            error.message = "Linked transfer \(failure.index + 1) of \(requests.count) (id \(requests[failure.index].id)) failed: \(error.message) No transfer of the batch was applied."
            throw error
        }
    }

    /// A linked batch's failure: which transfer, and why.
    struct LinkedFailure: Error {
        let index: Int
        let error: LarderError
    }

    func planLinked(_ requests: [TransferRequest]) throws(LarderError) -> Result<[LedgerPlanner.Plan], LinkedFailure> {
        guard (1...Self.linkedBatchCountMax).contains(requests.count) else {
            throw LarderError(.validationFailed, "A linked batch holds 1 to \(Self.linkedBatchCountMax) transfers, not \(requests.count).")
        }
        var planner = LedgerPlanner(txn: transaction.txn, tables: transaction.tables, timeMicros: transaction.timeMicros,
                                    packsLedger: transaction.policy.packsLedger)
        var plans: [LedgerPlanner.Plan] = []
        for (index, request) in requests.enumerated() {
            do {
                plans.append(try planner.plan(request))
            } catch {
                return .failure(LinkedFailure(index: index, error: error))
            }
        }
        return .success(plans)
    }

    /// Writes planned transfers: one audit record each, then the transfer, balances, history
    /// and resolution, all under that record's seq.
    func apply(_ plans: [LedgerPlanner.Plan]) throws(LarderError) -> [LedgerOutcome<Transfer>] {
        let txn = transaction.txn
        let tables = transaction.tables
        var outcomes: [LedgerOutcome<Transfer>] = []
        for plan in plans {
            guard let draft = plan.draft else {
                outcomes.append(.exists(plan.existing!))
                continue
            }
            let entry = try transaction.appendAudit(plan.audit(draft))
            let transfer = draft.stored(seq: entry.seq)
            guard try txn.put(tables.ledgerTransfers, transfer.id, transfer.encoded(), mode: .insertNew) else {
                preconditionFailure("transfer \(transfer.id) appeared between planning and applying")
            }
            for side in [plan.debitSide, plan.creditSide] {
                try txn.put(tables.ledgerBalances, side.account, side.balanceAfter.encoded())
                let history = AccountHistoryEntry(seq: entry.seq, transferID: transfer.id, kind: transfer.kind,
                                                  isDebit: side.isDebit, amount: side.historyAmount, balanceAfter: side.balanceAfter)
                try txn.put(tables.ledgerHistory, KeyPair(side.account, entry.seq), history.encoded(), mode: .insertNew)
            }
            if let target = transfer.target {
                let resolution = TransferResolution(kind: transfer.kind, byTransfer: transfer.id)
                guard try txn.put(tables.ledgerResolutions, target, resolution.encoded(), mode: .insertNew) else {
                    preconditionFailure("transfer \(target) was resolved between planning and applying")
                }
            }
            outcomes.append(.created(transfer))
        }
        return outcomes
    }

    static func validate(_ spec: NewAccount) throws(LarderError) {
        try WriteContext.validateIdentifier(spec.id, field: "account id")
        try WriteContext.validateIdentifier(spec.ledger, field: "ledger")
        guard AccountFlags.known.isSuperset(of: spec.flags) else {
            throw LarderError(.validationFailed, "Account \(spec.id) has unknown flags \(spec.flags.rawValue).")
        }
        guard !spec.flags.isSuperset(of: [.debitsMustNotExceedCredits, .creditsMustNotExceedDebits]) else {
            throw LarderError(.validationFailed,
                              "Account \(spec.id) cannot have both debitsMustNotExceedCredits and creditsMustNotExceedDebits: nothing could ever move.")
        }
        guard spec.refs.count <= AuditDraft.refsCountMax - 1 else {
            throw LarderError(.validationFailed, "Account \(spec.id) has \(spec.refs.count) refs; at most \(AuditDraft.refsCountMax - 1).")
        }
        for ref in spec.refs { try ref.validate() }
    }
}

/// Checks transfers against the ledger as it is plus the transfers planned before them in the
/// same batch, without writing anything.
struct LedgerPlanner {
    let txn: TableReader
    let tables: StoreTables
    let timeMicros: UnixMicros
    /// Transfers on this ledger tagged with a cancelled cycle are refused.
    let packsLedger: String
    private var reader: LedgerReader { LedgerReader(txn: txn, tables: tables) }
    /// Balances as changed by earlier plans of this batch.
    private var balances: [String: Balance] = [:]
    /// Transfers planned earlier in this batch, by id.
    private var planned: [String: TransferDraft] = [:]
    /// Targets resolved by earlier plans of this batch.
    private var resolved: [String: String] = [:]
    /// Accounts the caller will create before applying the plans (with zero balances).
    private var expected: [String: NewAccount] = [:]

    init(txn: TableReader, tables: StoreTables, timeMicros: UnixMicros, packsLedger: String) {
        self.txn = txn
        self.tables = tables
        self.timeMicros = timeMicros
        self.packsLedger = packsLedger
    }

    /// A transfer before its audit seq is known.
    struct TransferDraft: Hashable {
        let request: TransferRequest
        let kind: TransferKind
        let debitAccount: String
        let creditAccount: String
        let amount: UInt64
        let ledger: String
        let refs: [CorrelationRef]
        let timeMicros: UnixMicros

        func stored(seq: UInt64) -> Transfer {
            Transfer(id: request.id, kind: kind, debitAccount: debitAccount, creditAccount: creditAccount, amount: amount,
                     ledger: ledger, code: request.code, refs: refs, target: request.target, timeMicros: timeMicros,
                     auditSeq: seq)
        }
    }

    struct Side {
        let account: String
        let isDebit: Bool
        let historyAmount: UInt64
        let balanceAfter: Balance
    }

    struct Plan {
        /// Nil when an identical transfer exists.
        let draft: TransferDraft?
        let existing: Transfer?
        let debitSide: Side
        let creditSide: Side

        func audit(_ draft: TransferDraft) -> AuditDraft {
            let event: AuditEvent = switch draft.kind {
            case .single: .ledgerTransferPosted
            case .pending: .ledgerTransferPending
            case .postPending: .ledgerPendingPosted
            case .voidPending: .ledgerPendingVoided
            case .reversal: .ledgerTransferReversed
            }
            var refs: [CorrelationRef] = [.transfer(draft.request.id), .account(draft.debitAccount), .account(draft.creditAccount)]
            if let target = draft.request.target { refs.append(.transfer(target)) }
            refs += draft.refs
            var payload = JSONWriter()
            payload.object { o in
                o.field("transfer_id", draft.request.id)
                o.field("kind", draft.kind.rawValue)
                o.field("debit_account", draft.debitAccount)
                o.field("credit_account", draft.creditAccount)
                o.field("amount", draft.amount)
                o.field("ledger", draft.ledger)
                o.field("code", draft.request.code)
                o.field("target", draft.request.target)
            }
            return AuditDraft(event: event, refs: refs, payload: payload.text)
        }
    }

    /// Plans as if `spec` existed with a zero balance: the caller creates it before applying the
    /// plans, so that a transfer from a new account is checked in full before anything is written.
    mutating func expect(_ spec: NewAccount) {
        expected[spec.id] = spec
    }

    mutating func plan(_ request: TransferRequest) throws(LarderError) -> Plan {
        try Self.validateShape(request)
        if let existing = try existingTransfer(request.id) {
            try Self.compare(request, with: existing)
            let side = Side(account: existing.debitAccount, isDebit: true, historyAmount: 0, balanceAfter: .zero)
            return Plan(draft: nil, existing: existing, debitSide: side, creditSide: side)
        }
        if planned[request.id] != nil {
            throw LarderError(.conflict, "Transfer id \(request.id) appears twice in one batch.", failureClass: .validation, retryable: false)
        }
        let refs = Array(Set(request.refs)).sorted()
        let draft: TransferDraft
        var debit: Balance, credit: Balance
        let debitAccount: Account, creditAccount: Account
        switch request.kind {
        case .single, .pending:
            debitAccount = try account(request.debitAccount!, role: "debit")
            creditAccount = try account(request.creditAccount!, role: "credit")
            guard debitAccount.ledger == creditAccount.ledger else {
                throw LarderError(.validationFailed,
                                  "Transfer \(request.id): debit account \(debitAccount.id) is on ledger \(debitAccount.ledger), credit account \(creditAccount.id) on \(creditAccount.ledger).")
            }
            draft = TransferDraft(request: request, kind: request.kind, debitAccount: debitAccount.id, creditAccount: creditAccount.id,
                                  amount: request.amount!, ledger: debitAccount.ledger, refs: refs, timeMicros: timeMicros)
            debit = try balance(debitAccount.id)
            credit = try balance(creditAccount.id)
            let amount = draft.amount
            if request.kind == .single {
                debit.debitsPosted = try Self.add(debit.debitsPosted, amount, debitAccount.id, "debits_posted")
                credit.creditsPosted = try Self.add(credit.creditsPosted, amount, creditAccount.id, "credits_posted")
            } else {
                debit.debitsPending = try Self.add(debit.debitsPending, amount, debitAccount.id, "debits_pending")
                credit.creditsPending = try Self.add(credit.creditsPending, amount, creditAccount.id, "credits_pending")
            }
        case .postPending, .voidPending:
            let pending = try target(request, expecting: [.pending])
            debitAccount = try account(pending.debitAccount, role: "debit")
            creditAccount = try account(pending.creditAccount, role: "credit")
            let amount = request.kind == .voidPending ? pending.amount : (request.amount ?? pending.amount)
            guard amount <= pending.amount else {
                throw LarderError(.computeError,
                                  "Transfer \(request.id) posts \(amount), more than pending transfer \(pending.id) reserved (\(pending.amount)).")
            }
            draft = TransferDraft(request: request, kind: request.kind, debitAccount: pending.debitAccount,
                                  creditAccount: pending.creditAccount, amount: amount, ledger: pending.ledger, refs: refs,
                                  timeMicros: timeMicros)
            debit = try balance(debitAccount.id)
            credit = try balance(creditAccount.id)
            debit.debitsPending = try Self.subtract(debit.debitsPending, pending.amount, debitAccount.id, "debits_pending")
            credit.creditsPending = try Self.subtract(credit.creditsPending, pending.amount, creditAccount.id, "credits_pending")
            if request.kind == .postPending {
                debit.debitsPosted = try Self.add(debit.debitsPosted, amount, debitAccount.id, "debits_posted")
                credit.creditsPosted = try Self.add(credit.creditsPosted, amount, creditAccount.id, "credits_posted")
            }
        case .reversal:
            let original = try target(request, expecting: [.single, .postPending])
            // The reversal moves the same amount back: debit the original's credit side.
            debitAccount = try account(original.creditAccount, role: "debit")
            creditAccount = try account(original.debitAccount, role: "credit")
            draft = TransferDraft(request: request, kind: .reversal, debitAccount: debitAccount.id, creditAccount: creditAccount.id,
                                  amount: original.amount, ledger: original.ledger, refs: refs, timeMicros: timeMicros)
            debit = try balance(debitAccount.id)
            credit = try balance(creditAccount.id)
            debit.debitsPosted = try Self.add(debit.debitsPosted, original.amount, debitAccount.id, "debits_posted")
            credit.creditsPosted = try Self.add(credit.creditsPosted, original.amount, creditAccount.id, "credits_posted")
        }
        if draft.ledger == packsLedger, draft.kind != .voidPending, draft.kind != .reversal {
            // A cancelled cycle's packs are not consumed (the failure policy's cancellation).
            for ref in draft.refs where ref.kind == "cycle" {
                if let by = try txn.get(tables.cancelledCycles, ref.id) {
                    throw LarderError(.conflict,
                                      "Transfer \(request.id) consumes packs of cycle \(ref.id), which incident \(String(decoding: by, as: UTF8.self)) cancelled; nothing was written.",
                                      failureClass: .validation, retryable: false)
                }
            }
        }
        try Self.checkRules(debitAccount, debit, transfer: request.id)
        try Self.checkRules(creditAccount, credit, transfer: request.id)
        balances[debitAccount.id] = debit
        balances[creditAccount.id] = credit
        planned[request.id] = draft
        if let target = request.target { resolved[target] = request.id }
        let historyAmount = draft.kind == .voidPending ? 0 : draft.amount
        return Plan(draft: draft, existing: nil,
                    debitSide: Side(account: debitAccount.id, isDebit: true, historyAmount: historyAmount, balanceAfter: debit),
                    creditSide: Side(account: creditAccount.id, isDebit: false, historyAmount: historyAmount, balanceAfter: credit))
    }

    // MARK: Lookups through the batch overlay

    private func account(_ id: String, role: String) throws(LarderError) -> Account {
        if let spec = expected[id] {
            return Account(id: spec.id, ledger: spec.ledger, code: spec.code, flags: spec.flags, refs: spec.refs,
                           createdAtMicros: timeMicros, auditSeq: 0)
        }
        guard let account = try reader.account(id: id) else {
            throw LarderError(.notFound, "The \(role) account \(id) does not exist.", failureClass: .dataInconsistency)
        }
        return account
    }

    private func balance(_ id: String) throws(LarderError) -> Balance {
        if let balance = balances[id] { return balance }
        if expected[id] != nil { return .zero }
        return try reader.balance(of: id)
    }

    private func existingTransfer(_ id: String) throws(LarderError) -> Transfer? {
        try reader.transfer(id: id)
    }

    /// The transfer a post, void or reversal acts on, which must be of an allowed kind and not
    /// resolved yet (in the store or earlier in this batch).
    private func target(_ request: TransferRequest, expecting kinds: Set<TransferKind>) throws(LarderError) -> Transfer {
        let targetID = request.target!
        let view: Transfer
        if let draft = planned[targetID] {
            // Planned earlier in this batch: its seq is not known yet, and not needed here.
            view = draft.stored(seq: 0)
        } else if let stored = try reader.transfer(id: targetID) {
            view = stored
        } else {
            throw LarderError(.notFound, "Transfer \(request.id) refers to transfer \(targetID), which does not exist.",
                              failureClass: .dataInconsistency)
        }
        guard kinds.contains(view.kind) else {
            let allowed = kinds.map(\.rawValue).sorted().joined(separator: " or ")
            throw LarderError(.validationFailed,
                              "Transfer \(request.id) (\(request.kind.rawValue)) needs a \(allowed) transfer; \(targetID) is \(view.kind.rawValue).")
        }
        var resolvedBy = resolved[targetID]
        if resolvedBy == nil { resolvedBy = try reader.resolution(of: targetID)?.byTransfer }
        if let by = resolvedBy {
            throw LarderError(.conflict, "Transfer \(targetID) was already resolved by transfer \(by); nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        return view
    }

    // MARK: Rules

    static func validateShape(_ request: TransferRequest) throws(LarderError) {
        try WriteContext.validateIdentifier(request.id, field: "transfer id")
        func fail(_ text: String) -> LarderError {
            LarderError(.validationFailed, "Transfer \(request.id) (\(request.kind.rawValue)): \(text).")
        }
        switch request.kind {
        case .single, .pending:
            guard let debit = request.debitAccount, let credit = request.creditAccount else { throw fail("needs a debit and a credit account") }
            try WriteContext.validateIdentifier(debit, field: "debit account")
            try WriteContext.validateIdentifier(credit, field: "credit account")
            guard debit != credit else { throw fail("debit and credit account are both \(debit)") }
            guard let amount = request.amount, amount > 0 else { throw fail("needs an amount greater than zero") }
            guard request.target == nil else { throw fail("takes no target") }
        case .postPending, .voidPending, .reversal:
            guard let target = request.target else { throw fail("needs the id of the transfer it acts on") }
            try WriteContext.validateIdentifier(target, field: "target transfer")
            guard request.debitAccount == nil, request.creditAccount == nil else {
                throw fail("takes its accounts from transfer \(target); leave them out")
            }
            if request.kind == .postPending {
                if let amount = request.amount, amount == 0 { throw fail("posts an amount greater than zero, or nil for all") }
            } else if request.amount != nil {
                throw fail("takes its amount from transfer \(target); leave it out")
            }
        }
        guard request.refs.count <= AuditDraft.refsCountMax - 4 else {
            throw fail("has \(request.refs.count) refs; at most \(AuditDraft.refsCountMax - 4)")
        }
        for ref in request.refs { try ref.validate() }
    }

    /// Idempotency by id: identical fields → exists; otherwise CONFLICT naming the first field
    /// that differs.
    static func compare(_ request: TransferRequest, with existing: Transfer) throws(LarderError) {
        let differing: String?
        if request.kind != existing.kind {
            differing = "kind (\(existing.kind.rawValue) before, \(request.kind.rawValue) now)"
        } else if let debit = request.debitAccount, debit != existing.debitAccount {
            differing = "debit account (\(existing.debitAccount) before, \(debit) now)"
        } else if let credit = request.creditAccount, credit != existing.creditAccount {
            differing = "credit account (\(existing.creditAccount) before, \(credit) now)"
        } else if let amount = request.amount, amount != existing.amount {
            differing = "amount (\(existing.amount) before, \(amount) now)"
        } else if request.code != existing.code {
            differing = "code (\(existing.code) before, \(request.code) now)"
        } else if request.target != existing.target {
            differing = "target (\(existing.target ?? "none") before, \(request.target ?? "none") now)"
        } else if Array(Set(request.refs)).sorted() != existing.refs {
            differing = "refs"
        } else {
            differing = nil
        }
        if let differing {
            throw LarderError(.conflict, "Transfer \(request.id) exists with a different \(differing); nothing was written.",
                              failureClass: .validation, retryable: false)
        }
    }

    static func checkRules(_ account: Account, _ balance: Balance, transfer: String) throws(LarderError) {
        if account.flags.contains(.debitsMustNotExceedCredits) {
            let debits = UInt128(balance.debitsPosted) + UInt128(balance.debitsPending)
            if debits > UInt128(balance.creditsPosted) {
                throw LarderError(.computeError,
                                  "Transfer \(transfer) would break debits_must_not_exceed_credits on account \(account.id): debits \(debits) (posted \(balance.debitsPosted), pending \(balance.debitsPending)) over credits \(balance.creditsPosted).")
            }
        }
        if account.flags.contains(.creditsMustNotExceedDebits) {
            let credits = UInt128(balance.creditsPosted) + UInt128(balance.creditsPending)
            if credits > UInt128(balance.debitsPosted) {
                throw LarderError(.computeError,
                                  "Transfer \(transfer) would break credits_must_not_exceed_debits on account \(account.id): credits \(credits) (posted \(balance.creditsPosted), pending \(balance.creditsPending)) over debits \(balance.debitsPosted).")
            }
        }
    }

    static func add(_ value: UInt64, _ amount: UInt64, _ account: String, _ field: String) throws(LarderError) -> UInt64 {
        let (sum, overflow) = value.addingReportingOverflow(amount)
        guard !overflow else {
            throw LarderError(.computeError, "Amount overflow: \(field) of account \(account) would exceed \(UInt64.max).")
        }
        return sum
    }

    static func subtract(_ value: UInt64, _ amount: UInt64, _ account: String, _ field: String) throws(LarderError) -> UInt64 {
        let (difference, overflow) = value.subtractingReportingOverflow(amount)
        guard !overflow else {
            // Pending amounts are only released after being reserved; an underflow is corruption.
            throw LarderError(.persistenceError, "\(field) of account \(account) would go below zero; run verify.",
                              failureClass: .dataInconsistency)
        }
        return difference
    }
}
