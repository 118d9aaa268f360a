public import Larder

/// A deliberately simple, in-memory model of the ledger's rules, to check the store against:
/// dictionaries instead of tables, no encodings, no audit. Where several things are wrong with a
/// request, it reports them in the order the ledger documents: shape, id reuse, target, accounts,
/// ledgers, amounts, overflow, balance rules.
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
