public import Larder

/// A deliberately simple, in-memory model of the ledger's rules, to check the store against:
/// dictionaries instead of tables, no encodings, no audit. Where several things are wrong with a
/// request, it reports them in the order the ledger documents: shape, id reuse, target, accounts,
/// ledgers, amounts, overflow, balance rules.
///
/// It also models what compensation proposals and stock counts do to the ledger: a waiting
/// credit is a pending transfer (reserved, not spendable), approval posts it and rejection voids
/// it, once; a count books the difference between the counted and the posted quantity.
public struct LedgerModel: Sendable {
    public struct ModelAccount: Sendable, Hashable {
        public let ledger: String
        public let flags: AccountFlags
        public var balance = Balance()
    }

    struct ModelTransfer: Sendable, Hashable {
        let request: TransferRequest
        let kind: TransferKind
        let debit: String
        let credit: String
        let amount: UInt64
    }

    public private(set) var accounts: [String: ModelAccount] = [:]
    private var transfers: [String: ModelTransfer] = [:]
    private var resolved: Set<String> = []
    /// Compensation proposals whose credit the model holds, by proposal id.
    private var pendingCompensation: [String: ProposalState] = [:]

    public init() {}

    /// Whether a transfer with this id was posted.
    public func hasTransfer(_ id: String) -> Bool { transfers[id] != nil }

    /// Whether a post, void or reversal has resolved the transfer.
    public func isResolved(_ transferID: String) -> Bool { resolved.contains(transferID) }

    public mutating func createAccount(_ spec: NewAccount) {
        if accounts[spec.id] == nil { accounts[spec.id] = ModelAccount(ledger: spec.ledger, flags: spec.flags) }
    }

    /// What posting the request does: the error code it fails with, or nil (applied or existed).
    public mutating func post(_ request: TransferRequest) -> LarderError.Code? {
        var copy = self
        switch copy.apply(request) {
        case .some(let code): return code
        case .none:
            self = copy
            return nil
        }
    }

    /// All or nothing: the first failing transfer's index and code, or nil.
    public mutating func postLinked(_ requests: [TransferRequest]) -> (index: Int, code: LarderError.Code)? {
        var copy = self
        for (index, request) in requests.enumerated() {
            if let code = copy.apply(request) { return (index, code) }
        }
        self = copy
        return nil
    }

    private mutating func apply(_ request: TransferRequest) -> LarderError.Code? {
        // Shape.
        switch request.kind {
        case .single, .pending:
            guard let debit = request.debitAccount, let credit = request.creditAccount, debit != credit,
                  let amount = request.amount, amount > 0, request.target == nil else { return .validationFailed }
        case .postPending, .voidPending, .reversal:
            guard request.target != nil, request.debitAccount == nil, request.creditAccount == nil else { return .validationFailed }
            if request.kind == .postPending, request.amount == 0 { return .validationFailed }
            if request.kind != .postPending, request.amount != nil { return .validationFailed }
        }
        // Idempotency by id.
        if let existing = transfers[request.id] {
            let same = existing.request.kind == request.kind
                && (request.debitAccount.map { $0 == existing.debit } ?? true)
                && (request.creditAccount.map { $0 == existing.credit } ?? true)
                && (request.amount.map { $0 == existing.amount } ?? true)
                && existing.request.code == request.code && existing.request.target == request.target
                && Set(existing.request.refs) == Set(request.refs)
            return same ? nil : .conflict
        }
        let debit: String, credit: String, amount: UInt64
        var releasePending: UInt64 = 0
        switch request.kind {
        case .single, .pending:
            guard let d = accounts[request.debitAccount!], let c = accounts[request.creditAccount!] else { return .notFound }
            guard d.ledger == c.ledger else { return .validationFailed }
            debit = request.debitAccount!
            credit = request.creditAccount!
            amount = request.amount!
        case .postPending, .voidPending:
            guard let pending = transfers[request.target!] else { return .notFound }
            guard pending.kind == .pending else { return .validationFailed }
            guard !resolved.contains(request.target!) else { return .conflict }
            debit = pending.debit
            credit = pending.credit
            amount = request.kind == .voidPending ? pending.amount : (request.amount ?? pending.amount)
            guard amount <= pending.amount else { return .computeError }
            releasePending = pending.amount
        case .reversal:
            guard let original = transfers[request.target!] else { return .notFound }
            guard original.kind == .single || original.kind == .postPending else { return .validationFailed }
            guard !resolved.contains(request.target!) else { return .conflict }
            debit = original.credit
            credit = original.debit
            amount = original.amount
        }
        var d = accounts[debit]!.balance, c = accounts[credit]!.balance
        func add(_ a: UInt64, _ b: UInt64) -> UInt64? { let (s, o) = a.addingReportingOverflow(b); return o ? nil : s }
        switch request.kind {
        case .single, .reversal:
            guard let dp = add(d.debitsPosted, amount), let cp = add(c.creditsPosted, amount) else { return .computeError }
            d.debitsPosted = dp
            c.creditsPosted = cp
        case .pending:
            guard let dp = add(d.debitsPending, amount), let cp = add(c.creditsPending, amount) else { return .computeError }
            d.debitsPending = dp
            c.creditsPending = cp
        case .postPending, .voidPending:
            d.debitsPending -= releasePending
            c.creditsPending -= releasePending
            if request.kind == .postPending {
                guard let dp = add(d.debitsPosted, amount), let cp = add(c.creditsPosted, amount) else { return .computeError }
                d.debitsPosted = dp
                c.creditsPosted = cp
            }
        }
        for (id, balance) in [(debit, d), (credit, c)] {
            let flags = accounts[id]!.flags
            if flags.contains(.debitsMustNotExceedCredits),
               UInt128(balance.debitsPosted) + UInt128(balance.debitsPending) > UInt128(balance.creditsPosted) { return .computeError }
            if flags.contains(.creditsMustNotExceedDebits),
               UInt128(balance.creditsPosted) + UInt128(balance.creditsPending) > UInt128(balance.debitsPosted) { return .computeError }
        }
        accounts[debit]!.balance = d
        accounts[credit]!.balance = c
        transfers[request.id] = ModelTransfer(request: request, kind: request.kind, debit: debit, credit: credit, amount: amount)
        if let target = request.target { resolved.insert(target) }
        return nil
    }
}

// MARK: Pending compensation

extension LedgerModel {
    /// A proposal's credit reserved while it waits: a pending transfer `<proposal>.hold` from the
    /// issuing account (created on first use, on the customer's ledger) into the customer's
    /// account. Returns the code the store fails with, or nil.
    public mutating func holdCompensation(_ proposal: String, issuing: String, customer: String, amount: UInt64) -> LarderError.Code? {
        guard amount > 0 else { return .validationFailed }
        guard let account = accounts[customer] else { return .notFound }
        guard pendingCompensation[proposal] == nil else { return .conflict }
        var copy = self
        copy.createAccount(NewAccount(id: issuing, ledger: account.ledger))
        guard copy.accounts[issuing]?.ledger == account.ledger else { return .validationFailed }
        if let code = copy.apply(.pending(id: "\(proposal).hold", debit: issuing, credit: customer, amount: amount)) { return code }
        copy.pendingCompensation[proposal] = .pending
        self = copy
        return nil
    }

    /// Approval posts the hold (`<proposal>.credit`); a proposal is decided once.
    public mutating func approveCompensation(_ proposal: String) -> LarderError.Code? {
        decideCompensation(proposal, .approved, .post(id: "\(proposal).credit", pending: "\(proposal).hold"))
    }

    /// Rejection voids the hold (`<proposal>.release`); a proposal is decided once.
    public mutating func rejectCompensation(_ proposal: String) -> LarderError.Code? {
        decideCompensation(proposal, .rejected, .void(id: "\(proposal).release", pending: "\(proposal).hold"))
    }

    /// Where a proposal the model knows is.
    public func compensationState(_ proposal: String) -> ProposalState? { pendingCompensation[proposal] }

    private mutating func decideCompensation(_ proposal: String, _ state: ProposalState, _ transfer: TransferRequest) -> LarderError.Code? {
        guard let current = pendingCompensation[proposal] else { return .notFound }
        guard current == .pending else { return .conflict }
        var copy = self
        if let code = copy.apply(transfer) { return code }
        copy.pendingCompensation[proposal] = state
        self = copy
        return nil
    }
}

// MARK: Stock

extension LedgerModel {
    /// A receipt: `quantity` from `stock:<item>:received` into the location (both created on first use).
    public mutating func receiveStock(_ quantity: UInt64, of item: String, at location: StockLocation, id: String) -> LarderError.Code? {
        moveStock(id, quantity, from: StockAccounts.received(item: item), to: StockAccounts.location(item: item, at: location),
                  item: item, fromLocation: false)
    }

    /// An issue: `quantity` from the location (which must have been used) into `stock:<item>:issued`.
    public mutating func issueStock(_ quantity: UInt64, of item: String, from location: StockLocation, id: String) -> LarderError.Code? {
        moveStock(id, quantity, from: StockAccounts.location(item: item, at: location), to: StockAccounts.issued(item: item),
                  item: item, fromLocation: true)
    }

    /// A cycle count: the location's posted quantity is `expected`; the difference is booked as
    /// `<id>.adjust` between the location and `stock:<item>:adjustments`. Returns the code the
    /// store fails with, or nil with the expected quantity and the adjustment.
    public mutating func recordCount(_ id: String, item: String, at location: StockLocation,
                                     counted: UInt64) -> (code: LarderError.Code?, expected: UInt64, adjustment: Int64) {
        let spot = StockAccounts.location(item: item, at: location)
        let expected = UInt64(max(0, accounts[spot]?.balance.net ?? 0))
        let adjustment = Int64(counted) - Int64(expected)
        guard !hasTransfer("\(id).adjust") else { return (.conflict, expected, adjustment) }
        guard adjustment != 0 else { return (nil, expected, 0) }
        var copy = self
        copy.createAccount(NewAccount(id: spot, ledger: StockAccounts.ledger(item: item), flags: .debitsMustNotExceedCredits))
        let adjustments = StockAccounts.adjustments(item: item)
        copy.createAccount(NewAccount(id: adjustments, ledger: StockAccounts.ledger(item: item)))
        let (debit, credit) = adjustment < 0 ? (spot, adjustments) : (adjustments, spot)
        if let code = copy.apply(.transfer(id: "\(id).adjust", debit: debit, credit: credit, amount: adjustment.magnitude)) {
            return (code, expected, adjustment)
        }
        self = copy
        return (nil, expected, adjustment)
    }

    private mutating func moveStock(_ id: String, _ quantity: UInt64, from: String, to: String, item: String,
                                    fromLocation: Bool) -> LarderError.Code? {
        guard quantity > 0 else { return .validationFailed }
        if fromLocation, accounts[from] == nil, !hasTransfer(id) { return .notFound }
        var copy = self
        for account in [from, to] where copy.accounts[account] == nil {
            copy.createAccount(NewAccount(id: account, ledger: StockAccounts.ledger(item: item),
                                          flags: account.contains("@") ? .debitsMustNotExceedCredits : []))
        }
        if let code = copy.apply(.transfer(id: id, debit: from, credit: to, amount: quantity)) { return code }
        self = copy
        return nil
    }
}
