internal import CLMDB

/// A read-only view of the environment at one moment (an MVCC snapshot). Handed to the closure of
/// ``Environment/read(_:)``; never blocked by the writer; invalid once the closure returns.
///
/// Every value read is copied out of the map, so nothing returned points into it.
package class ReadTransaction {
    let handle: EnvironmentHandle
    let txn: OpaquePointer
    private var valid = true
    /// The first LMDB failure in this transaction (write transactions only). LMDB refuses every
    /// later call with MDB_BAD_TXN; Larder answers those with this failure, and the writer fails
    /// the request with it, whatever the closure did with the error.
    var brokenBy: StorageError?

    init(handle: EnvironmentHandle, txn: OpaquePointer) {
        self.handle = handle
        self.txn = txn
    }

    func invalidate() { valid = false }

    @inline(__always)
    func assertValid() {
        precondition(valid, "A Larder transaction was used after its closure returned; transactions must not escape.")
    }

    // MARK: Point reads

    /// The value stored under `key`, or nil.
    ///
    /// - throws: ``StorageError/Kind/invalidArgument`` for a key LMDB cannot hold;
    ///   ``StorageError/Kind/damaged`` when the stored bytes do not decode.
    package func get<K, V>(_ table: Table<K, V>, _ key: K) throws(StorageError) -> V? {
        guard let bytes = try getRaw(table.dbi, key: key.encodedKey, tableName: table.name) else { return nil }
        return try V.decodeValue(bytes)
    }

    /// Whether `key` is present.
    package func contains<K, V>(_ table: Table<K, V>, _ key: K) throws(StorageError) -> Bool {
        try getRaw(table.dbi, key: key.encodedKey, tableName: table.name) != nil
    }

    func getRaw(_ dbi: MDB_dbi, key: [UInt8], tableName: String) throws(StorageError) -> [UInt8]? {
        assertValid()
        try handle.validateKey(key, table: tableName, phase: .read)
        var data = MDB_val()
        let rc: Int32 = key.withUnsafeBytes { raw in
            var mkey = MDB_val(mv_size: raw.count, mv_data: UnsafeMutableRawPointer(mutating: raw.baseAddress))
            return mdb_get(txn, dbi, &mkey, &data)
        }
        if rc == MDB_NOTFOUND { return nil }
        try checkCall(rc, "mdb_get")
        return copy(data)
    }

    // MARK: Scans

    /// Up to `limit` entries of `range`, in key order or reverse key order.
    ///
    /// ```swift
    /// let newest = try txn.scan(auditTable, in: .all, direction: .backward, limit: 10)
    /// ```
    package func scan<K, V>(
        _ table: Table<K, V>, in range: KeyRange<K> = .all, direction: CursorDirection = .forward, limit: Int
    ) throws(StorageError) -> [Entry<K, V>] {
        precondition(limit >= 0, "scan limit must not be negative")
        var entries: [Entry<K, V>] = []
        entries.reserveCapacity(Swift.min(limit, 1_024))
        guard limit > 0 else { return entries }
        try forEach(table, in: range, direction: direction) { (entry: Entry<K, V>) throws(StorageError) -> Bool in
            entries.append(entry)
            return entries.count < limit
        }
        return entries
    }

    /// Calls `body` for each entry of `range` until it returns false. Streams: memory stays
    /// constant however large the range.
    package func forEach<K, V>(
        _ table: Table<K, V>, in range: KeyRange<K> = .all, direction: CursorDirection = .forward,
        _ body: (Entry<K, V>) throws(StorageError) -> Bool
    ) throws(StorageError) {
        try forEachRaw(table.dbi, lower: range.lower, upper: range.upper, direction: direction) { key, value throws(StorageError) in
            try body(Entry(key: try K.decodeKey(key), value: try V.decodeValue(value)))
        }
    }

    /// The first (or last) entry of a table.
    package func first<K, V>(_ table: Table<K, V>, in range: KeyRange<K> = .all) throws(StorageError) -> Entry<K, V>? {
        try scan(table, in: range, direction: .forward, limit: 1).first
    }

    package func last<K, V>(_ table: Table<K, V>, in range: KeyRange<K> = .all) throws(StorageError) -> Entry<K, V>? {
        try scan(table, in: range, direction: .backward, limit: 1).first
    }

    /// Raw, undecoded walk over encoded keys; used by scans and by verification.
    func forEachRaw(
        _ dbi: MDB_dbi, lower: [UInt8]?, upper: [UInt8]?, direction: CursorDirection,
        _ body: ([UInt8], [UInt8]) throws(StorageError) -> Bool
    ) throws(StorageError) {
        assertValid()
        var cursor: OpaquePointer?
        try checkCall(mdb_cursor_open(txn, dbi, &cursor), "mdb_cursor_open")
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val()
        var data = MDB_val()

        func position(_ op: MDB_cursor_op) -> Int32 { mdb_cursor_get(cursor, &key, &data, op) }
        func seek(_ bytes: [UInt8]) -> Int32 {
            bytes.withUnsafeBytes { raw in
                key = MDB_val(mv_size: raw.count, mv_data: UnsafeMutableRawPointer(mutating: raw.baseAddress))
                return mdb_cursor_get(cursor, &key, &data, MDB_SET_RANGE)
            }
        }

        var rc: Int32
        switch direction {
        case .forward:
            rc = lower.map { seek($0) } ?? position(MDB_FIRST)
        case .backward:
            if let upper {
                rc = seek(upper)
                // SET_RANGE lands on the first key >= upper, which is outside the range.
                rc = rc == MDB_NOTFOUND ? position(MDB_LAST) : (rc == MDB_SUCCESS ? position(MDB_PREV) : rc)
            } else {
                rc = position(MDB_LAST)
            }
        }
        while rc == MDB_SUCCESS {
            let keyBytes = copy(key)
            switch direction {
            case .forward:
                if let upper, !keyBytes.lexicographicallyPrecedes(upper) { return }
            case .backward:
                if let lower, keyBytes.lexicographicallyPrecedes(lower) { return }
            }
            guard try body(keyBytes, copy(data)) else { return }
            rc = position(direction == .forward ? MDB_NEXT : MDB_PREV)
        }
        if rc != MDB_NOTFOUND { try checkCall(rc, "mdb_cursor_get") }
    }

    // MARK: Statistics

    /// Entry count and pages of a table, as of this snapshot.
    package func statistics<K, V>(_ table: Table<K, V>) throws(StorageError) -> TableUsage {
        try statistics(dbi: table.dbi, name: table.name)
    }

    /// Statistics for every table the environment declared, by name.
    package func allStatistics() throws(StorageError) -> [TableUsage] {
        var result: [TableUsage] = []
        for (name, dbi) in handle.tables.sorted(by: { $0.key < $1.key }) {
            result.append(try statistics(dbi: dbi, name: name))
        }
        return result
    }

    func statistics(dbi: MDB_dbi, name: String) throws(StorageError) -> TableUsage {
        assertValid()
        var stat = MDB_stat()
        try checkCall(mdb_stat(txn, dbi, &stat), "mdb_stat")
        return TableUsage(name: name, entries: stat.ms_entries, depth: Int(stat.ms_depth),
                               branchPages: stat.ms_branch_pages, leafPages: stat.ms_leaf_pages,
                               overflowPages: stat.ms_overflow_pages)
    }

    /// Checks an LMDB call made in this transaction. A refusal because of an earlier failure
    /// (MDB_BAD_TXN) is reported as that earlier failure; a write transaction remembers its first.
    func checkCall(_ rc: Int32, _ operation: StaticString) throws(StorageError) {
        guard rc != MDB_SUCCESS else { return }
        if rc == MDB_BAD_TXN, let brokenBy { throw brokenBy.causing(operation) }
        let error = handle.failure(rc, operation)
        if self is WriteTransaction, brokenBy == nil { brokenBy = error }
        throw error
    }

    private func copy(_ val: MDB_val) -> [UInt8] {
        guard val.mv_size > 0, let base = val.mv_data else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: val.mv_size))
    }
}

/// The one write transaction of the environment, handed to the closure of
/// ``Environment/write(_:)``. Reads see this transaction's own writes.
///
/// If the closure throws, nothing it wrote is kept. Once LMDB has failed a call in the
/// transaction (map or disk full, an I/O error), the write fails with that error even if the
/// closure caught it and went on: a transaction that saw a storage failure never commits.
package final class WriteTransaction: ReadTransaction {
    /// How many puts and deletes this transaction made (including failed attempts).
    package private(set) var mutationCount = 0

    /// How a put treats an existing key.
    package enum PutMode: Sendable {
        /// Insert or replace.
        case upsert
        /// Insert only; an existing key is left alone and `put` returns false.
        case insertNew
        /// The key is greater than every key in the table (append order, the fastest insert);
        /// a key out of order returns false.
        case append
    }

    /// Stores `value` under `key`.
    ///
    /// - returns: false when `mode` is ``PutMode/insertNew`` and the key exists, or ``PutMode/append``
    ///   and the key is not the greatest; true when written.
    /// - throws: ``StorageError/Kind/invalidArgument`` for an empty, oversized key or an oversized
    ///   value (the transaction stays usable); ``StorageError/Kind/exhausted`` when the map is at
    ///   its maximum or the disk is full, ``StorageError/Kind/failed`` for an I/O error or an
    ///   LMDB limit (the transaction is then failed: the write fails with this error whatever the
    ///   closure does next).
    @discardableResult
    package func put<K, V>(_ table: Table<K, V>, _ key: K, _ value: V, mode: PutMode = .upsert) throws(StorageError) -> Bool {
        try putRaw(table.dbi, key: key.encodedKey, value: value.encodeValue(), mode: mode, tableName: table.name)
    }

    /// Deletes `key`; returns whether it was there.
    @discardableResult
    package func delete<K, V>(_ table: Table<K, V>, _ key: K) throws(StorageError) -> Bool {
        try deleteRaw(table.dbi, key: key.encodedKey, tableName: table.name)
    }

    func putRaw(_ dbi: MDB_dbi, key: [UInt8], value: [UInt8], mode: PutMode, tableName: String) throws(StorageError) -> Bool {
        assertValid()
        try handle.validateKey(key, table: tableName, phase: .write)
        guard value.count <= handle.limits.valueSizeBytesMax else {
            throw StorageError(.invalidArgument,
                               "A value of \(value.count) bytes for table \(tableName) exceeds valueSizeBytesMax \(handle.limits.valueSizeBytesMax).",
                               phase: .write)
        }
        if let brokenBy { throw brokenBy.causing("mdb_put") }
        mutationCount += 1
        let flags: UInt32 = switch mode {
        case .upsert: 0
        case .insertNew: UInt32(MDB_NOOVERWRITE)
        case .append: UInt32(MDB_APPEND)
        }
        let rc: Int32 = handle.faults?.fault(.put, table: tableName, key: key) ?? key.withUnsafeBytes { rawKey in
            value.withUnsafeBytes { rawValue in
                var mkey = MDB_val(mv_size: rawKey.count, mv_data: UnsafeMutableRawPointer(mutating: rawKey.baseAddress))
                var mdata = MDB_val(mv_size: rawValue.count, mv_data: UnsafeMutableRawPointer(mutating: rawValue.baseAddress))
                return mdb_put(txn, dbi, &mkey, &mdata, flags)
            }
        }
        if rc == MDB_KEYEXIST, mode != .upsert { return false }
        try checkCall(rc, "mdb_put")
        return true
    }

    func deleteRaw(_ dbi: MDB_dbi, key: [UInt8], tableName: String) throws(StorageError) -> Bool {
        assertValid()
        try handle.validateKey(key, table: tableName, phase: .write)
        if let brokenBy { throw brokenBy.causing("mdb_del") }
        mutationCount += 1
        let rc: Int32 = handle.faults?.fault(.delete, table: tableName, key: key) ?? key.withUnsafeBytes { rawKey in
            var mkey = MDB_val(mv_size: rawKey.count, mv_data: UnsafeMutableRawPointer(mutating: rawKey.baseAddress))
            return mdb_del(txn, dbi, &mkey, nil)
        }
        if rc == MDB_NOTFOUND { return false }
        try checkCall(rc, "mdb_del")
        return true
    }
}

extension WriteTransaction {
    /// Test-only: writes raw bytes into a named table inside this transaction.
    package func rawPut(tableNamed name: String, key: [UInt8], value: [UInt8]) throws(StorageError) {
        guard let dbi = handle.tables[name] else { throw StorageError(.notFound, "no table \(name)", phase: .write) }
        _ = try putRaw(dbi, key: key, value: value, mode: .upsert, tableName: name)
    }
}
