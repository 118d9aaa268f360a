import LarderStorage

/// A read-only view of the whole store at one moment. Handed to ``Store/read(_:)``; invalid
/// once the closure returns.
public struct StoreView {
    let txn: TableReader
    let tables: StoreTables

    /// The audit log.
    public var audit: AuditLog { AuditLog(txn: txn, tables: tables) }
    /// The decisions (idempotency records).
    public var decisions: DecisionLog { DecisionLog(txn: txn, tables: tables) }
    /// Ledger accounts, balances, transfers and history.
    public var ledger: LedgerReader { LedgerReader(txn: txn, tables: tables) }
    /// Incidents, their responses, refunds and cancelled cycles.
    public var incidents: IncidentReader { IncidentReader(txn: txn, tables: tables) }
}

/// The write transaction as a domain store sees it: one LMDB write transaction that holds the
/// change, its audit record(s) and its decision, committed together or not at all.
///
/// A transaction that changed anything must append at least one audit record, or the write fails
/// with AUDIT_FAILED and nothing is kept.
public final class StoreTransaction {
    /// Who writes, for which request and decision.
    public let context: WriteContext
    /// The time of this write (one value for every record it appends).
    public let timeMicros: UnixMicros
    let txn: TableWriter
    let tables: StoreTables
    private let fault: AuditFaultInjection?
    /// The failure policy in force.
    let policy: FailurePolicy
    /// Audit records appended by this write, in order.
    public private(set) var appended: [AuditEntry] = []
    /// The log's head as this transaction found it (or read at its first append), then advanced
    /// by each append.
    private var head: ChainHead?
    /// Set when a domain store failed after it had begun writing: the write cannot commit, even
    /// if the closure caught the error and went on.
    private(set) var brokenBy: LarderError?

    /// Whether appends keep the Merkle tree (always, but in benchmarks that measure its cost).
    private let keepsMerkleTree: Bool

    /// `head`, when given, is the log's head as this transaction found it (read with the time).
    init(context: WriteContext, timeMicros: UnixMicros, txn: TableWriter, tables: StoreTables,
         fault: AuditFaultInjection?, policy: FailurePolicy, keepsMerkleTree: Bool = true, head: ChainHead? = nil) {
        self.head = head
        self.keepsMerkleTree = keepsMerkleTree
        self.policy = policy
        self.context = context
        self.timeMicros = timeMicros
        self.txn = txn
        self.tables = tables
        self.fault = fault
    }

    /// Reads within this transaction (seeing its own writes).
    public var view: StoreView { StoreView(txn: txn, tables: tables) }

    /// Ledger changes: accounts, transfers, linked batches.
    public var ledger: LedgerWriter { LedgerWriter(transaction: self) }

    /// Incident changes: record, lifecycle, responses under the failure policy.
    public var incidents: IncidentWriter { IncidentWriter(transaction: self) }

    /// Appends an audit record for this write and returns it (with its seq and hashes).
    ///
    /// - throws: VALIDATION_FAILED for a malformed draft; AUDIT_FAILED when the record cannot be
    ///   written (then the whole write rolls back).
    @discardableResult
    public func appendAudit(_ draft: AuditDraft) throws(LarderError) -> AuditEntry {
        let current: ChainHead
        if let head { current = head } else { current = try AuditLog(txn: txn, tables: tables).head() }
        let entry = try AuditAppender(txn: txn, tables: tables, keepsMerkleTree: keepsMerkleTree)
            .append(draft, context: context, timeMicros: timeMicros, after: current, fault: fault)
        head = ChainHead(seq: entry.seq, chainHash: entry.chainHash)
        appended.append(entry)
        return entry
    }

    /// The seq the next appended record will get.
    func nextAuditSeq() throws(LarderError) -> UInt64 {
        if let head { return head.seq + 1 }
        return try AuditLog(txn: txn, tables: tables).head().seq + 1
    }

    /// The seq of the last record this write appended.
    public var lastAuditSeq: UInt64? { appended.last?.seq }

    /// Whether this write changed any table.
    var mutated: Bool { txn.mutationCount > 0 }

    /// Marks the transaction as unable to commit and returns `error`, for a domain store whose
    /// change failed half-way (after it had decided everything, only storage can fail there).
    func broken(by error: LarderError) -> LarderError {
        if brokenBy == nil { brokenBy = error }
        return error
    }
}

extension StoreTransaction {
    /// Test-only: a raw change to a named table, standing in for a domain store's write.
    package func rawPutForTesting(table: String, key: [UInt8], value: [UInt8]) throws(LarderError) {
        try txn.rawPut(tableNamed: table, key: key, value: value)
    }
}
