internal import CSQLite
import Foundation

/// SQLite 3 in WAL mode with `synchronous=FULL`: the same logical schema (audit seq → record ‖
/// leaf ‖ chain, transfer id → transfer, decision id → decision, with the same bytes as
/// ``RawRows``) and the same one-transaction-per-decision shape.
final class SQLiteContestant: Contestant {
    let name = "SQLite WAL"
    let path: String
    private let connection: Connection

    init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/bench.sqlite"
        connection = try Connection(path: path)
        try connection.execute("""
            CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY, value BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS transfers(id TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS decisions(id TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
            """)
    }

    func bulkImport(_ range: Range<Int>, batchCount: Int) throws -> Measurement {
        var latencies: [Int64] = []
        let start = ContinuousClock.now
        for batchStart in stride(from: range.lowerBound, to: range.upperBound, by: batchCount) {
            latencies.append(try timed {
                try connection.transaction {
                    var current = try connection.head()
                    for index in batchStart..<min(batchStart + batchCount, range.upperBound) {
                        current = try connection.writeRows(TransferSpec(index: index), head: current, withDecision: false)
                    }
                }
            })
        }
        return Measurement(operations: range.count, elapsed: ContinuousClock.now - start, latenciesNanoseconds: latencies,
                           unit: "batch of \(batchCount)")
    }

    func singleWrites(_ range: Range<Int>, budget: Duration) throws -> Measurement {
        var latencies: [Int64] = []
        let start = ContinuousClock.now
        for index in range {
            if ContinuousClock.now - start > budget { break }
            latencies.append(try timed { try connection.decide(TransferSpec(index: index)) })
        }
        return Measurement(operations: latencies.count, elapsed: ContinuousClock.now - start,
                           latenciesNanoseconds: latencies, unit: "op")
    }

    /// 64 threads, each with its OWN connection (WAL, synchronous=FULL, busy_timeout 30 s), each
    /// running BEGIN IMMEDIATE … COMMIT for its transfer: SQLite's own write lock serializes them
    /// and there is no group commit, so every transfer pays its own WAL fsync.
    func concurrentWrites(_ range: Range<Int>, writers: Int, budget: Duration) async throws -> Measurement {
        let connections = try (0..<writers).map { _ in try Connection(path: path) }
        defer { for connection in connections { connection.close() } }
        let pool = ConnectionPool(connections)
        let latencies = try runClientThreads(range, writers: writers, budget: budget) { spec in
            try pool.connectionForThisThread().decide(spec)
        }
        return Measurement(operations: latencies.values.count, elapsed: latencies.elapsed,
                           latenciesNanoseconds: latencies.values, unit: "op")
    }

    func pointReads(_ indexes: [Int]) throws -> Measurement {
        var latencies: [Int64] = []
        latencies.reserveCapacity(indexes.count)
        let start = ContinuousClock.now
        for index in indexes {
            let id = TransferSpec(index: index).id
            latencies.append(try timed {
                let value = try connection.transferValue(id: id)
                precondition(value != nil, "transfer \(id) is missing")
                consume(value)
            })
        }
        return Measurement(operations: indexes.count, elapsed: ContinuousClock.now - start,
                           latenciesNanoseconds: latencies, unit: "op")
    }

    func auditScans(_ starts: [UInt64], length: Int) throws -> Measurement {
        var latencies: [Int64] = []
        let start = ContinuousClock.now
        for seq in starts {
            latencies.append(try timed {
                var values: [[UInt8]] = []
                values.reserveCapacity(length)
                try connection.scanAudit(from: seq, limit: Int64(length)) { values.append(Array($0)); return true }
                precondition(values.count == length, "audit scan from \(seq) returned \(values.count)")
                consume(values)
            })
        }
        return Measurement(operations: starts.count * length, elapsed: ContinuousClock.now - start,
                           latenciesNanoseconds: latencies, unit: "scan of \(length)")
    }

    func verifyChain() throws -> Measurement {
        let start = ContinuousClock.now
        var previous = [UInt8](repeating: 0, count: 32)
        var checked = 0
        try connection.scanAudit(from: 1, limit: Int64.max) { value in
            let (chain, ok) = RawRows.verify(value, previousChain: previous)
            precondition(ok, "SQLite chain broken at record \(checked + 1)")
            previous = chain
            checked += 1
            return true
        }
        let elapsed = ContinuousClock.now - start
        return Measurement(operations: checked, elapsed: elapsed, latenciesNanoseconds: [elapsed.nanoseconds],
                           unit: "whole chain")
    }

    func close() { connection.close() }
}

/// One SQLite connection and its prepared statements; used by one thread at a time.
final class Connection: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private var db: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    init(path: String) throws {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK else { throw Failure(description: "sqlite3_open_v2: \(rc)") }
        sqlite3_busy_timeout(db, 30_000)
        try execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
    }

    func close() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements = [:]
        sqlite3_close_v2(db)
        db = nil
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

    private func check(_ rc: Int32, _ what: String) throws {
        guard rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW else {
            throw Failure(description: "\(what): \(String(cString: sqlite3_errmsg(db)))")
        }
    }

    /// A prepared statement, reset and cleared for reuse.
    private func statement(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
            return statement
        }
        var statement: OpaquePointer?
        try check(sqlite3_prepare_v2(db, sql, -1, &statement, nil), "prepare \(sql)")
        statements[sql] = statement!
        return statement!
    }

    private func bind(_ statement: OpaquePointer, _ index: Int32, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            try check(sqlite3_bind_blob(statement, index, raw.baseAddress, Int32(raw.count), larder_sqlite_transient()), "bind blob")
        }
    }

    private func bind(_ statement: OpaquePointer, _ index: Int32, text: String) throws {
        try check(sqlite3_bind_text(statement, index, text, -1, larder_sqlite_transient()), "bind text")
    }

    /// Runs `body` between BEGIN IMMEDIATE and COMMIT (ROLLBACK when it throws).
    func transaction(_ body: () throws -> Void) throws {
        try check(sqlite3_step(try statement("BEGIN IMMEDIATE")), "BEGIN IMMEDIATE")
        do {
            try body()
        } catch {
            sqlite3_step(try statement("ROLLBACK"))
            throw error
        }
        try check(sqlite3_step(try statement("COMMIT")), "COMMIT")
    }

    /// The chain head, read from the log inside the transaction (several connections write).
    func head() throws -> (seq: UInt64, chain: [UInt8]) {
        let select = try statement("SELECT seq, value FROM audit ORDER BY seq DESC LIMIT 1")
        guard sqlite3_step(select) == SQLITE_ROW else { return (0, [UInt8](repeating: 0, count: 32)) }
        // Reset at once: a statement left stepping keeps its read snapshot open, and a later
        // BEGIN IMMEDIATE on a stale snapshot fails with SQLITE_BUSY without waiting.
        defer { sqlite3_reset(select) }
        let seq = UInt64(sqlite3_column_int64(select, 0))
        let count = Int(sqlite3_column_bytes(select, 1))
        let value = UnsafeRawBufferPointer(start: sqlite3_column_blob(select, 1), count: count)
        return (seq, Array(value[(count - 32)...]))
    }

    func writeRows(_ spec: TransferSpec, head: (seq: UInt64, chain: [UInt8]), withDecision: Bool) throws -> (seq: UInt64, chain: [UInt8]) {
        let seq = head.seq + 1
        let rows = RawRows(spec, seq: seq, timeMicros: nowMicros(), previousChain: head.chain)
        let insertAudit = try statement("INSERT INTO audit(seq, value) VALUES (?, ?)")
        sqlite3_bind_int64(insertAudit, 1, Int64(seq))
        try bind(insertAudit, 2, rows.auditValue)
        try check(sqlite3_step(insertAudit), "insert audit")
        let insertTransfer = try statement("INSERT INTO transfers(id, value) VALUES (?, ?)")
        try bind(insertTransfer, 1, text: spec.id)
        try bind(insertTransfer, 2, rows.transferValue)
        try check(sqlite3_step(insertTransfer), "insert transfer")
        if withDecision {
            let insertDecision = try statement("INSERT INTO decisions(id, value) VALUES (?, ?)")
            try bind(insertDecision, 1, text: spec.decisionID)
            try bind(insertDecision, 2, rows.decisionValue)
            try check(sqlite3_step(insertDecision), "insert decision")
        }
        return (seq, rows.chainHash)
    }

    /// One decision in its own durable transaction: look it up, then write the three rows.
    func decide(_ spec: TransferSpec) throws {
        try transaction {
            let select = try statement("SELECT value FROM decisions WHERE id = ?")
            try bind(select, 1, text: spec.decisionID)
            let found = sqlite3_step(select)
            sqlite3_reset(select)
            precondition(found == SQLITE_DONE, "decision \(spec.decisionID) exists")
            _ = try writeRows(spec, head: try head(), withDecision: true)
        }
    }

    func transferValue(id: String) throws -> [UInt8]? {
        let select = try statement("SELECT value FROM transfers WHERE id = ?")
        try bind(select, 1, text: id)
        defer { sqlite3_reset(select) }
        guard sqlite3_step(select) == SQLITE_ROW else { return nil }
        return Array(UnsafeRawBufferPointer(start: sqlite3_column_blob(select, 0), count: Int(sqlite3_column_bytes(select, 0))))
    }

    /// Calls `body` with each audit value from `seq` on, in one read transaction, until it
    /// returns false or `limit` values were seen.
    func scanAudit(from seq: UInt64, limit: Int64, _ body: (UnsafeRawBufferPointer) -> Bool) throws {
        let select = try statement("SELECT value FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?")
        sqlite3_bind_int64(select, 1, Int64(seq))
        sqlite3_bind_int64(select, 2, limit)
        defer { sqlite3_reset(select) }
        var rc = sqlite3_step(select)
        while rc == SQLITE_ROW {
            let value = UnsafeRawBufferPointer(start: sqlite3_column_blob(select, 0), count: Int(sqlite3_column_bytes(select, 0)))
            guard body(value) else { return }
            rc = sqlite3_step(select)
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
