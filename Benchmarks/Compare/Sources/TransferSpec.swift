import Larder

/// Transfer number `index` of a run: the same ids, accounts and amounts for every contestant.
///
/// Transfers rotate over `accountsCount` accounts of one ledger so balances and per-account
/// history grow evenly, as in a kitchen with many customers.
struct TransferSpec: Sendable {
    static let accountsCount = 100
    static let ledger = "credits.cents"
    static let actor = ActorIdentity(id: "bench-writer", role: .system)

    let index: Int

    var id: String { "t-\(index)" }
    var requestID: String { "req-\(index)" }
    var decisionID: String { "dec-\(index)" }
    var debitAccount: String { Self.account(Self.debitNumber(index)) }
    var creditAccount: String { Self.account(Self.creditNumber(index)) }
    var amount: UInt64 { Self.amount(index) }

    static func debitNumber(_ index: Int) -> Int { index % accountsCount }
    /// Never the debit account: the offset runs 1...accountsCount-1.
    static func creditNumber(_ index: Int) -> Int {
        (index % accountsCount + 1 + (index / accountsCount) % (accountsCount - 1)) % accountsCount
    }
    static func amount(_ index: Int) -> UInt64 { UInt64(index % 997 + 1) }

    static func account(_ number: Int) -> String { "acct-\(number)" }

    var request: TransferRequest {
        .transfer(id: id, debit: debitAccount, credit: creditAccount, amount: amount)
    }

    var context: WriteContext {
        WriteContext(actor: Self.actor, requestID: requestID, decisionID: decisionID)
    }
}
