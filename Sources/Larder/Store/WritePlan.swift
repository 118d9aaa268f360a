import LarderStorage

/// The writes of one domain change, decided in full before the first is made: audit records,
/// accounts to create, planned transfers and rows, each with the audit seq it will take.
///
/// A domain writer builds the plan (every check, every id, every record), then ``write(_:)``
/// makes the writes in order. From the first write on only storage can fail, and then the whole
/// transaction is broken, so a refusal never leaves half a change behind.
struct WritePlan {
    enum Step {
        case audit(AuditDraft)
        case createAccount(NewAccount)
        case transfer(LedgerPlanner.Plan)
        case put(table: WritableTable, key: String, value: [UInt8], insertOnly: Bool)
        case index(KeyPair<String, KeyPair<Int64, String>>, table: WritableIndex, add: Bool)
    }

    /// The string-keyed state tables a plan may write.
    enum WritableTable {
        case incidents, incidentRefunds, compensationProposals, stockCounts
    }

    /// The (dimension, time, id) indexes a plan may change.
    enum WritableIndex {
        case compensation
    }

    private(set) var steps: [Step] = []
    /// The seq the next audit record of this plan will take.
    private(set) var nextSeq: UInt64
    private let firstSeq: UInt64

    init(firstSeq: UInt64) {
        self.firstSeq = firstSeq
        nextSeq = firstSeq
    }

    /// Adds an audit record, checked now against what the log accepts; returns its seq.
    @discardableResult
    mutating func audit(_ draft: AuditDraft) throws(LarderError) -> UInt64 {
        try AuditAppender.validate(draft)
        steps.append(.audit(draft))
        nextSeq += 1
        return nextSeq - 1
    }

    /// Adds an account creation (one `LEDGER_ACCOUNT_CREATED` record); returns its seq.
    @discardableResult
    mutating func createAccount(_ spec: NewAccount) -> UInt64 {
        steps.append(.createAccount(spec))
        nextSeq += 1
        return nextSeq - 1
    }

    /// Adds a planned transfer (one `LEDGER_*` record); returns its seq.
    @discardableResult
    mutating func transfer(_ plan: LedgerPlanner.Plan) -> UInt64 {
        precondition(plan.draft != nil, "a plan only writes new transfers")
        steps.append(.transfer(plan))
        nextSeq += 1
        return nextSeq - 1
    }

    mutating func put(_ table: WritableTable, _ key: String, _ value: [UInt8], insertOnly: Bool) {
        steps.append(.put(table: table, key: key, value: value, insertOnly: insertOnly))
    }

    mutating func index(_ table: WritableIndex, _ key: KeyPair<String, KeyPair<Int64, String>>, add: Bool) {
        steps.append(.index(key, table: table, add: add))
    }

    /// Makes every write, in order. A storage failure breaks the transaction; a seq or an
    /// insert that differs from the plan is a bug (the plan was decided in this transaction).
    func write(_ transaction: StoreTransaction) throws(LarderError) {
        let txn = transaction.txn, tables = transaction.tables
        var expected = try transaction.nextAuditSeq()
        precondition(expected == firstSeq, "the plan was made for seq \(firstSeq), the log is at \(expected)")
        do throws(LarderError) {
            for step in steps {
                switch step {
                case .audit(let draft):
                    let entry = try transaction.appendAudit(draft)
                    precondition(entry.seq == expected, "record \(draft.event) got seq \(entry.seq), not the planned \(expected)")
                    expected += 1
                case .createAccount(let spec):
                    guard try LedgerWriter(transaction: transaction).createAccount(spec).wasCreated else {
                        preconditionFailure("account \(spec.id) appeared between planning and writing")
                    }
                    expected += 1
                case .transfer(let plan):
                    _ = try LedgerWriter(transaction: transaction).apply([plan])
                    precondition(transaction.lastAuditSeq == expected, "transfer \(plan.draft!.request.id) did not get seq \(expected)")
                    expected += 1
                case .put(let table, let key, let value, let insertOnly):
                    let target: Table<String, [UInt8]> = switch table {
                    case .incidents: tables.incidents
                    case .incidentRefunds: tables.incidentRefunds
                    case .compensationProposals: tables.compensationProposals
                    case .stockCounts: tables.stockCounts
                    }
                    let written = try txn.put(target, key, value, mode: insertOnly ? .insertNew : .upsert)
                    precondition(written, "\(key) appeared between planning and writing")
                case .index(let key, let table, let add):
                    switch table {
                    case .compensation:
                        if add { try txn.put(tables.compensationIndex, key, Empty()) } else { try txn.delete(tables.compensationIndex, key) }
                    }
                }
            }
        } catch {
            throw transaction.broken(by: error)
        }
        precondition(expected == nextSeq, "the plan appended up to seq \(expected - 1), not the planned \(nextSeq - 1)")
    }
}
