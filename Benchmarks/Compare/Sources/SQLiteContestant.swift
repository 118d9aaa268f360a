internal import CSQLite
import Foundation

/// SQLite 3 in WAL mode with `synchronous=FULL` and `mmap_size` set: the same logical schema
/// (audit seq → record ‖ leaf ‖ chain, transfer id → transfer, decision id → decision, with the
/// same bytes as the raw LMDB contestant, built by the same ``LeanRowBuilder``) and the same
/// one-transaction-per-decision shape.
///
/// Two variants differ in how concurrent writers reach the database:
/// - ``Mode/connectionPerWriter``: each of the 64 client threads has its own connection and runs
///   `BEGIN IMMEDIATE … COMMIT`; SQLite's lock serializes them, without group commit.
/// - ``Mode/groupCommit``: one writer connection on one thread takes everything queued (up to 64)
///   into one transaction and one WAL sync, as an application would put a queue in front of
///   SQLite, and as Larder's writer does. Its single writer goes through the same queue.
final class SQLiteContestant: Contestant {
    enum Mode {
        case connectionPerWriter
        case groupCommit
    }

    let name: String
    let directory: String
    let mode: Mode
    let path: String
    private let connection: Connection
    /// The mmap size SQLite applied (it caps the request at its compile-time maximum).
    let mmapSizeBytes: Int64

    /// What every connection asks for: the whole file mapped, as LMDB maps it.
    static let mmapSizeBytesRequested: Int64 = 64 << 30

    init(directory: String, mode: Mode) throws {
        self.directory = directory
        self.mode = mode
        name = switch mode {
        case .connectionPerWriter: "SQLite WAL (connection per writer)"
        case .groupCommit: "SQLite WAL (one writer, group commit)"
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/bench.sqlite"
        connection = try Connection(path: path, createSchema: true)
        mmapSizeBytes = connection.mmapSizeBytes
    }

    func support(_ workload: Workload) -> Support {
        switch (mode, workload) {
        case (_, .verifyChainOnly): .notApplicable
        case (.groupCommit, .bulk), (.groupCommit, .single), (.groupCommit, .concurrent): .measured
        // The reads and the chain walk are the other variant's, connection for connection.
        case (.groupCommit, _): .notApplicable
        case (.connectionPerWriter, _): .measured
        }
    }

    func run(_ workload: Workload, _ plan: Plan) throws -> Measurement {
        switch workload {
        case .bulk: try bulkImport(plan.bulkRange, batchCount: plan.batchCount)
        case .single where mode == .groupCommit:
            try groupCommitWrites(plan.singleRange, writers: 1, budget: plan.budget)
        case .single: try singleWrites(plan.singleRange, budget: plan.budget, sync: true)
        case .singleNoSync: try singleWrites(plan.noSyncRange, budget: plan.budget, sync: false)
        case .concurrent where mode == .groupCommit:
            try groupCommitWrites(plan.concurrentRange, writers: plan.writers, budget: plan.budget)
        case .concurrent: try connectionPerWriterWrites(plan.concurrentRange, writers: plan.writers, budget: plan.budget)
        case .pointRead: try pointReads(plan.readIndexes, zeroCopy: false)
        case .pointReadZeroCopy: try pointReads(plan.readIndexes, zeroCopy: true)
        case .scan: try auditScans(plan.scanStarts, length: plan.scanLength, views: false)
        case .scanViews: try auditScans(plan.scanStarts, length: plan.scanLength, views: true)
        case .verify: try verifyChain()
        case .verifyChainOnly: preconditionFailure("not applicable")
        }
    }

    func bulkImport(_ range: Range<Int>, batchCount: Int) throws -> Measurement {
        var latencies: [Int64] = []
        let start = ContinuousClock.now
        for batchStart in stride(from: range.lowerBound, to: range.upperBound, by: batchCount) {
            latencies.append(try timed {
                try connection.transaction {
                    var seq = try connection.headSeq()
                    for index in batchStart..<min(batchStart + batchCount, range.upperBound) {
                        seq = try connection.writeRows(LeanSpec(index: index), after: seq, importBatchStart: batchStart)
                    }
                }
            })
        }
        return Measurement(operations: range.count, elapsed: ContinuousClock.now - start, latenciesNanoseconds: latencies,
                           unit: "batch of \(batchCount)", commits: latencies.count)
    }

    /// One decision per transaction on this thread's connection; without `sync`, with
    /// `synchronous=OFF` for the phase (the CPU of the path).
    func singleWrites(_ range: Range<Int>, budget: Duration, sync: Bool) throws -> Measurement {
        if !sync { try connection.execute("PRAGMA synchronous=OFF") }
        defer { if !sync { try? connection.execute("PRAGMA synchronous=FULL") } }
        return try measureUntilBudget(range, budget: budget) { index in try connection.decide(LeanSpec(index: index)) }
    }

    /// Each client thread with its OWN connection, each running BEGIN IMMEDIATE … COMMIT for its
    /// transfer: SQLite's write lock serializes them and there is no group commit, so every
    /// transfer pays its own WAL fsync (and a waiting writer sleeps in the busy handler).
    func connectionPerWriterWrites(_ range: Range<Int>, writers: Int, budget: Duration) throws -> Measurement {
        let connections = try (0..<writers).map { _ in try Connection(path: path, createSchema: false) }
        defer { for connection in connections { connection.close() } }
        let pool = ConnectionPool(connections)
        let latencies = try runClientThreads(range, writers: writers, budget: budget) { index in
            try pool.connectionForThisThread().decide(LeanSpec(index: index))
        }
        return Measurement(operations: latencies.values.count, elapsed: latencies.elapsed,
                           latenciesNanoseconds: latencies.values, unit: "op", commits: latencies.values.count)
    }

    /// `writers` client threads hand their transfers to one writer thread with one connection,
    /// which commits each batch it takes (up to 64) in one transaction.
    func groupCommitWrites(_ range: Range<Int>, writers: Int, budget: Duration) throws -> Measurement {
        let commits = Counter()
        let connection = self.connection
        let latencies = try runGroupCommit(range, writers: writers, budget: budget) { batch in
            try connection.transaction {
                var seq = try connection.headSeq()
                for item in batch { seq = try connection.decideInTransaction(LeanSpec(index: item.index), after: seq) }
            }
            commits.add()
        }
        return Measurement(operations: latencies.values.count, elapsed: latencies.elapsed,
                           latenciesNanoseconds: latencies.values, unit: "op", commits: commits.value)
    }

    func pointReads(_ indexes: [Int], zeroCopy: Bool) throws -> Measurement {
        try measureEach(indexes) { index in
            try connection.withTransferValue(LeanSpec(index: index).id) { value in
                if zeroCopy {
                    consume(try DecodedTransfer.amountInPlace(value))
                } else {
                    consume(try DecodedTransfer.decode(value))
                }
            }
        }
    }

    func auditScans(_ starts: [UInt64], length: Int, views: Bool) throws -> Measurement {
        try measureEach(starts, unit: "scan of \(length)", operationsPerItem: length) { seq in
            var seen = 0
            if views {
                var tally = AuditViewTally()
                try connection.scanAudit(from: seq, limit: Int64(length)) { value in
                    try tally.visit(auditValue: value)
                    seen += 1
                }
                consume(tally)
            } else {
                var records: [DecodedAuditRecord] = []
                records.reserveCapacity(length)
                try connection.scanAudit(from: seq, limit: Int64(length)) { value in
                    records.append(try DecodedAuditRecord.decode(auditValue: value))
                    seen += 1
                }
                consume(records)
            }
            precondition(seen == length, "audit scan from \(seq) returned \(seen)")
        }
    }

    func verifyChain() throws -> Measurement {
        let start = ContinuousClock.now
        var verifier = LeanChainVerifier()
        defer { verifier.deallocate() }
        try connection.scanAudit(from: 1, limit: Int64.max) { value in
            let ok = verifier.check(value)
            precondition(ok, "SQLite chain broken at record \(verifier.checked + 1)")
        }
        let elapsed = ContinuousClock.now - start
        return Measurement(operations: verifier.checked, elapsed: elapsed, latenciesNanoseconds: [elapsed.nanoseconds],
                           unit: "whole chain")
    }

    func close() { connection.close() }
}

/// One SQLite connection, its prepared statements and its row builder; used by one thread at a time.
final class Connection: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private var db: OpaquePointer?
    private let rows = LeanRowBuilder()
    private var begin: OpaquePointer?, commit: OpaquePointer?, rollback: OpaquePointer?
    private var selectHead: OpaquePointer?, selectDecision: OpaquePointer?, selectTransfer: OpaquePointer?
    private var selectAudit: OpaquePointer?
    private var insertAudit: OpaquePointer?, insertTransfer: OpaquePointer?, insertDecision: OpaquePointer?
    private(set) var mmapSizeBytes: Int64 = 0

    init(path: String, createSchema: Bool) throws {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK else { throw Failure(description: "sqlite3_open_v2: \(rc)") }
        sqlite3_busy_timeout(db, 30_000)
        try execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA mmap_size=\(SQLiteContestant.mmapSizeBytesRequested);")
        if createSchema {
            try execute("""
                CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY, value BLOB NOT NULL);
                CREATE TABLE IF NOT EXISTS transfers(id TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS decisions(id TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
                """)
        }
        let mmap = try prepare("PRAGMA mmap_size")
        if sqlite3_step(mmap) == SQLITE_ROW { mmapSizeBytes = sqlite3_column_int64(mmap, 0) }
        sqlite3_finalize(mmap)
        begin = try prepare("BEGIN IMMEDIATE")
        commit = try prepare("COMMIT")
        rollback = try prepare("ROLLBACK")
        selectHead = try prepare("SELECT seq, value FROM audit ORDER BY seq DESC LIMIT 1")
        selectDecision = try prepare("SELECT 1 FROM decisions WHERE id = ?")
        selectTransfer = try prepare("SELECT value FROM transfers WHERE id = ?")
        selectAudit = try prepare("SELECT value FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?")
        insertAudit = try prepare("INSERT INTO audit(seq, value) VALUES (?, ?)")
        insertTransfer = try prepare("INSERT INTO transfers(id, value) VALUES (?, ?)")
        insertDecision = try prepare("INSERT INTO decisions(id, value) VALUES (?, ?)")
    }

    func close() {
        for statement in [begin, commit, rollback, selectHead, selectDecision, selectTransfer, selectAudit,
                          insertAudit, insertTransfer, insertDecision] {
            sqlite3_finalize(statement)
        }
        sqlite3_close_v2(db)
        db = nil
        headChainStorage.deallocate()
    }

    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &message)
        guard rc == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? "code \(rc)"
            sqlite3_free(message)
            throw Failure(description: "\(sql): \(text)")
        }
    }

    private func prepare(_ sql: String) throws -> OpaquePointer {
        var statement: OpaquePointer?
        try check(sqlite3_prepare_v2(db, sql, -1, &statement, nil), "prepare \(sql)")
        return statement!
    }

    @inline(__always) private func check(_ rc: Int32, _ what: @autoclosure () -> String) throws {
        guard rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW else {
            throw Failure(description: "\(what()): \(String(cString: sqlite3_errmsg(db)))")
        }
    }

    /// Binds bytes that stay valid until the statement is stepped (SQLITE_STATIC: no copy).
    @inline(__always) private func bind(_ statement: OpaquePointer?, _ index: Int32, blob: UnsafeRawBufferPointer) throws {
        try check(sqlite3_bind_blob(statement, index, blob.baseAddress, Int32(blob.count), nil), "bind blob")
    }

    @inline(__always) private func bind(_ statement: OpaquePointer?, _ index: Int32, text: UnsafeRawBufferPointer) throws {
        try check(sqlite3_bind_text(statement, index, text.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(text.count), nil),
                  "bind text")
    }

    /// Steps a statement that returns no row, then resets it.
    @inline(__always) private func stepDone(_ statement: OpaquePointer?, _ what: StaticString) throws {
        let rc = sqlite3_step(statement)
        sqlite3_reset(statement)
        guard rc == SQLITE_DONE else { throw Failure(description: "\(what): \(String(cString: sqlite3_errmsg(db)))") }
    }

    /// Runs `body` between BEGIN IMMEDIATE and COMMIT (ROLLBACK when it throws).
    func transaction(_ body: () throws -> Void) throws {
        try stepDone(begin, "BEGIN IMMEDIATE")
        do {
            try body()
        } catch {
            sqlite3_step(rollback)
            sqlite3_reset(rollback)
            throw error
        }
        try stepDone(commit, "COMMIT")
    }

    /// The chain head's seq, read from the log inside the transaction (several connections
    /// write); its chain hash goes into the row builder's chain state.
    func headSeq() throws -> UInt64 {
        guard sqlite3_step(selectHead) == SQLITE_ROW else {
            sqlite3_reset(selectHead)
            headChain = LeanRowBuilder.genesis
            return 0
        }
        // Reset at once: a statement left stepping keeps its read snapshot open, and a later
        // BEGIN IMMEDIATE on a stale snapshot fails with SQLITE_BUSY without waiting.
        defer { sqlite3_reset(selectHead) }
        let seq = UInt64(sqlite3_column_int64(selectHead, 0))
        let count = Int(sqlite3_column_bytes(selectHead, 1))
        let value = UnsafeRawBufferPointer(start: sqlite3_column_blob(selectHead, 1), count: count)
        headChainStorage.copyMemory(from: UnsafeRawBufferPointer(rebasing: value[(count - 32)...]))
        headChain = UnsafeRawBufferPointer(headChainStorage)
        return seq
    }

    /// The chain hash to chain the next row after: the stored head's (copied: SQLite's row
    /// buffer does not outlive the statement), or the row builder's last one.
    private var headChain: UnsafeRawBufferPointer?
    private let headChainStorage = UnsafeMutableRawBufferPointer.allocate(byteCount: 32, alignment: 8)

    /// Writes one transfer's rows as the record after `seq`; returns the new seq.
    func writeRows(_ spec: LeanSpec, after seq: UInt64, importBatchStart: Int?) throws -> UInt64 {
        let next = seq + 1
        rows.build(spec, seq: next, timeMicros: nowMicros(), previousChain: headChain ?? rows.chainHash,
                   importBatchStart: importBatchStart)
        headChain = nil
        sqlite3_bind_int64(insertAudit, 1, Int64(next))
        try bind(insertAudit, 2, blob: rows.auditValue)
        try stepDone(insertAudit, "insert audit")
        try bind(insertTransfer, 1, text: rows.idKey(spec.id))
        try bind(insertTransfer, 2, blob: rows.transferValue)
        try stepDone(insertTransfer, "insert transfer")
        if importBatchStart == nil {
            try bind(insertDecision, 1, text: rows.idKey(spec.decisionID))
            try bind(insertDecision, 2, blob: rows.decisionValue)
            try stepDone(insertDecision, "insert decision")
        }
        return next
    }

    /// Inside a transaction: look the decision up, then write its three rows after `seq`.
    func decideInTransaction(_ spec: LeanSpec, after seq: UInt64) throws -> UInt64 {
        try bind(selectDecision, 1, text: rows.idKey(spec.decisionID))
        let found = sqlite3_step(selectDecision)
        sqlite3_reset(selectDecision)
        precondition(found == SQLITE_DONE, "decision dec-\(spec.index) exists")
        return try writeRows(spec, after: seq, importBatchStart: nil)
    }

    /// One decision in its own transaction.
    func decide(_ spec: LeanSpec) throws {
        try transaction { _ = try decideInTransaction(spec, after: try headSeq()) }
    }

    /// Calls `body` with the transfer's value where SQLite holds it (valid during the call).
    func withTransferValue(_ id: LeanID, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try bind(selectTransfer, 1, text: rows.idKey(id))
        defer { sqlite3_reset(selectTransfer) }
        guard sqlite3_step(selectTransfer) == SQLITE_ROW else { throw Failure(description: "transfer \(id.number) is missing") }
        try body(UnsafeRawBufferPointer(start: sqlite3_column_blob(selectTransfer, 0), count: Int(sqlite3_column_bytes(selectTransfer, 0))))
    }

    /// Calls `body` with each audit value from `seq` on (valid during the call), in one read
    /// transaction, until `limit` values were seen.
    func scanAudit(from seq: UInt64, limit: Int64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        sqlite3_bind_int64(selectAudit, 1, Int64(seq))
        sqlite3_bind_int64(selectAudit, 2, limit)
        defer { sqlite3_reset(selectAudit) }
        var rc = sqlite3_step(selectAudit)
        while rc == SQLITE_ROW {
            try body(UnsafeRawBufferPointer(start: sqlite3_column_blob(selectAudit, 0), count: Int(sqlite3_column_bytes(selectAudit, 0))))
            rc = sqlite3_step(selectAudit)
        }
        try check(rc, "scan audit")
    }
}

/// Hands each client thread its own connection for the whole run.
final class ConnectionPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [Connection]
    private let key = "larder.compare.sqlite.connection"

    init(_ connections: [Connection]) { free = connections }

    func connectionForThisThread() -> Connection {
        let dictionary = Thread.current.threadDictionary
        if let connection = dictionary[key] as? Connection { return connection }
        let connection: Connection = lock.withLock { free.removeLast() }
        dictionary[key] = connection
        return connection
    }
}
