internal import CLMDB
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only view of the environment at one moment (an MVCC snapshot). Handed to the closure of
/// ``Environment/read(_:)``; never blocked by the writer; invalid once the closure returns.
///
/// Every value the typed reads return is copied out of the map, so nothing they return points
/// into it. ``withValueBytes(_:_:mapError:_:)`` and ``forEachBytes(_:in:direction:mapError:_:)``
/// hand a closure the bytes where they lie instead, valid only inside that closure.
package class ReadTransaction {
    let handle: EnvironmentHandle
    let txn: OpaquePointer
    private var valid = true
    /// The first LMDB failure in this transaction (write transactions only). LMDB refuses every
    /// later call with MDB_BAD_TXN; Larder answers those with this failure, and the writer fails
    /// the request with it, whatever the closure did with the error.
    var brokenBy: StorageError?
    /// How many puts and deletes this transaction made (including failed attempts); always 0 for
    /// a read-only snapshot.
    /// Not checked for exclusive access at run time, nor is the next (both are touched at every
    /// put and delete; a transaction is used by one thread at a time).
    @exclusivity(unchecked) package final fileprivate(set) var mutationCount = 0
    /// The cell this transaction's record views check (``ViewCells``), once it made one.
    @exclusivity(unchecked) private final var viewCellTaken: UnsafeMutablePointer<UInt64>?

    init(handle: EnvironmentHandle, txn: OpaquePointer) {
        self.handle = handle
        self.txn = txn
    }

    deinit { endViews() }

    func invalidate() {
        valid = false
        endViews()
    }

    /// The cell that record views made in this transaction check (see ``ViewCells``): a view
    /// is valid while the cell's count is the one it was made at. The thread's cell, looked up at
    /// the first call; the same cell for the rest of the transaction.
    package final func viewCell() -> UnsafePointer<UInt64> {
        assertValid()
        if let viewCellTaken { return UnsafePointer(viewCellTaken) }
        let cell = ViewCells.current()
        viewCellTaken = cell
        return UnsafePointer(cell)
    }

    /// Ends every record view made in this transaction (its closure returned); idempotent.
    package final func endViews() {
        guard let cell = viewCellTaken else { return }
        viewCellTaken = nil
        ViewCells.end(cell)
    }

    /// Counts a put or delete: it may move or free the pages that bytes read in place lie on, so
    /// the views made before it end.
    @inline(__always)
    final func noteMutation() {
        mutationCount += 1
        viewCellTaken?.pointee += 1
    }

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
        let bytes = try withValueBytes(table, key, mapError: { $0 }) { (value: UnsafeRawBufferPointer) throws(StorageError) -> [UInt8] in
            Array(value)
        }
        guard let bytes else { return nil }
        return try V.decodeValue(bytes)
    }

    /// Whether `key` is present.
    package func contains<K, V>(_ table: Table<K, V>, _ key: K) throws(StorageError) -> Bool {
        try withValueBytes(table, key, mapError: { $0 }) { (_: UnsafeRawBufferPointer) throws(StorageError) in () } != nil
    }

    // MARK: Keys of views

    /// Calls `body` with `key` encoded as `table` stores it: behind its view's prefix byte, if any.
    @inline(__always)
    func withStoredKey<K, V, R, E: Error>(_ table: Table<K, V>, _ key: K,
                                           _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        guard let prefix = table.keyPrefix else { return try key.withEncodedKey(body) }
        return try key.withEncodedKey { (bytes: UnsafeRawBufferPointer) throws(E) -> R in
            try withUnsafeTemporaryAllocation(byteCount: bytes.count + 1, alignment: 1) {
                (buffer: UnsafeMutableRawBufferPointer) throws(E) -> R in
                buffer[0] = prefix
                if !bytes.isEmpty { (buffer.baseAddress! + 1).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
                return try body(UnsafeRawBufferPointer(buffer))
            }
        }
    }

    /// An already encoded key as `table` stores it.
    @inline(__always)
    func storedKey<K, V>(_ table: Table<K, V>, _ key: [UInt8]) -> [UInt8] {
        guard let prefix = table.keyPrefix else { return key }
        return [prefix] + key
    }

    /// A stored key as the view sees it: without its prefix byte.
    @inline(__always)
    static func viewKey<K, V>(_ table: Table<K, V>, _ key: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        table.keyPrefix == nil || key.isEmpty ? key : UnsafeRawBufferPointer(rebasing: key[1...])
    }

    // MARK: Bytes in place

    /// Calls `body` with the value stored under `key` where it lies in LMDB's map, without
    /// copying it; nil (and `body` is not called) when the key is absent.
    ///
    /// The buffer is valid only inside `body` (LMDB's pages stay put for the transaction, but a
    /// write transaction's next put or delete may move them): copy out what must outlive it.
    /// Storage failures reach the caller through `mapError`, so that one typed error comes out
    /// whatever `body` throws.
    ///
    /// ```swift
    /// let amount = try txn.withValueBytes(transfers, "t-1", mapError: { $0 }) { value in
    ///     value.loadUnaligned(fromByteOffset: 9, as: UInt64.self).bigEndian
    /// }
    /// ```
    ///
    /// - throws: `mapError` of ``StorageError/Kind/invalidArgument`` for a key LMDB cannot hold,
    ///   or of an LMDB failure; whatever `body` throws.
    @inline(__always)
    package func withValueBytes<K, V, R, E: Error>(
        _ table: Table<K, V>, _ key: K, mapError: (StorageError) -> E,
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R? {
        let found: UnsafeRawBufferPointer?
        do {
            found = try withStoredKey(table, key) { (keyBytes: UnsafeRawBufferPointer) throws(StorageError) -> UnsafeRawBufferPointer? in
                try valueBytes(table.dbi, key: keyBytes, tableName: table.name)
            }
        } catch {
            throw mapError(error)
        }
        guard let found else { return nil }
        return try body(found)
    }

    /// The value under an encoded key, in place (valid as ``withValueBytes(_:_:mapError:_:)`` says).
    func valueBytes(_ dbi: MDB_dbi, key: UnsafeRawBufferPointer, tableName: String) throws(StorageError) -> UnsafeRawBufferPointer? {
        assertValid()
        try handle.validateKey(count: key.count, table: tableName, phase: .read)
        var mkey = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var data = MDB_val()
        let rc = mdb_get(txn, dbi, &mkey, &data)
        if rc == MDB_NOTFOUND { return nil }
        try checkCall(rc, "mdb_get")
        return Self.buffer(data)
    }

    func getRaw(_ dbi: MDB_dbi, key: [UInt8], tableName: String) throws(StorageError) -> [UInt8]? {
        try key.withBytes { (keyBytes: UnsafeRawBufferPointer) throws(StorageError) -> [UInt8]? in
            try valueBytes(dbi, key: keyBytes, tableName: tableName).map { Array($0) }
        }
    }

    /// Calls `body` with each key and value of `range`, in key order or reverse key order, where
    /// they lie in LMDB's map (no copies), until it returns false. Memory stays constant however
    /// large the range: a cursor walk for scans and for verification.
    ///
    /// The buffers are valid only inside `body`'s call for that entry. Storage failures reach the
    /// caller through `mapError`, as in ``withValueBytes(_:_:mapError:_:)``.
    ///
    /// ```swift
    /// var total = 0
    /// try txn.forEachBytes(audit, in: .from(UInt64(1)), mapError: { $0 }) { key, value in
    ///     total += value.count
    ///     return true
    /// }
    /// ```
    ///
    /// - throws: `mapError` of an LMDB failure; whatever `body` throws.
    package func forEachBytes<K, V, E: Error>(
        _ table: Table<K, V>, in range: KeyRange<K> = .all, direction: CursorDirection = .forward,
        mapError: (StorageError) -> E,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(E) -> Bool
    ) throws(E) {
        let bounds = table.storedBounds(range)
        guard table.keyPrefix != nil else {
            try walk(table.dbi, lower: bounds.lower, upper: bounds.upper, direction: direction, mapError: mapError, body)
            return
        }
        try walk(table.dbi, lower: bounds.lower, upper: bounds.upper, direction: direction, mapError: mapError) {
            (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(E) -> Bool in
            try body(Self.viewKey(table, key), value)
        }
    }

    /// ``withValueBytes(_:_:mapError:_:)`` with the key already encoded.
    package func withValueBytes<K, V, R, E: Error>(
        _ table: Table<K, V>, encodedKey key: [UInt8], mapError: (StorageError) -> E,
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R? {
        let found: UnsafeRawBufferPointer?
        do throws(StorageError) {
            found = try storedKey(table, key).withBytes { (keyBytes: UnsafeRawBufferPointer) throws(StorageError) -> UnsafeRawBufferPointer? in
                try valueBytes(table.dbi, key: keyBytes, tableName: table.name)
            }
        } catch {
            throw mapError(error)
        }
        guard let found else { return nil }
        return try body(found)
    }

    /// Calls `body` with a walk over `range` that `body` steps itself, one call per entry:
    /// what ``forEachBytes(_:in:direction:mapError:_:)`` does without a closure per entry, for a
    /// loop in another module (a closure called per entry across modules is not specialized, and
    /// its thunks cost more than LMDB's step). The walk and the bytes it shows are valid only
    /// inside `body`, the bytes only until the next step.
    ///
    /// ```swift
    /// try txn.withBytesWalk(audit, in: .from(UInt64(1)), mapError: { $0 }) { walk in
    ///     while try walk.next() { total += walk.value.count }
    /// }
    /// ```
    ///
    /// - throws: `mapError` of an LMDB failure opening the cursor; whatever `body` throws (a
    ///   failed step throws from ``BytesWalk/next()``).
    package func withBytesWalk<K, V, R, E: Error>(
        _ table: Table<K, V>, in range: KeyRange<K> = .all, direction: CursorDirection = .forward,
        mapError: (StorageError) -> E, _ body: (BytesWalk) throws(E) -> R
    ) throws(E) -> R {
        assertValid()
        let bounds = table.storedBounds(range)
        var pointer: OpaquePointer?
        do { try checkCall(mdb_cursor_open(txn, table.dbi, &pointer), "mdb_cursor_open") } catch { throw mapError(error) }
        let walk = BytesWalk(transaction: self, cursor: pointer, lower: bounds.lower, upper: bounds.upper,
                             direction: direction, stripsPrefix: table.keyPrefix != nil)
        defer {
            walk.invalidate()
            mdb_cursor_close(pointer)
        }
        return try body(walk)
    }

    /// Calls `body` with a cursor over `table`, for walks that move through several tables side
    /// by side (merge walks). The cursor and the bytes it shows are valid only inside `body`.
    ///
    /// ```swift
    /// try txn.withBytesCursor(balances, mapError: { $0 }) { cursor in
    ///     var more = try cursor.first(mapError: { $0 })
    ///     while more { /* cursor.key, cursor.value */ more = try cursor.next(mapError: { $0 }) }
    /// }
    /// ```
    ///
    /// - throws: `mapError` of an LMDB failure; whatever `body` throws.
    package func withBytesCursor<K, V, R, E: Error>(
        _ table: Table<K, V>, mapError: (StorageError) -> E, _ body: (BytesCursor) throws(E) -> R
    ) throws(E) -> R {
        assertValid()
        precondition(table.keyPrefix == nil, "a cursor walks a whole table, not a view of one")
        var pointer: OpaquePointer?
        do { try checkCall(mdb_cursor_open(txn, table.dbi, &pointer), "mdb_cursor_open") } catch { throw mapError(error) }
        let cursor = BytesCursor(transaction: self, cursor: pointer)
        defer {
            cursor.invalidate()
            mdb_cursor_close(pointer)
        }
        return try body(cursor)
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
        let bounds = table.storedBounds(range)
        let stripped = table.keyPrefix == nil ? 0 : 1
        try forEachRaw(table.dbi, lower: bounds.lower, upper: bounds.upper, direction: direction) { key, value throws(StorageError) in
            try body(Entry(key: try K.decodeKey(stripped == 0 ? key : Array(key.dropFirst())), value: try V.decodeValue(value)))
        }
    }

    /// The first (or last) entry of a table.
    package func first<K, V>(_ table: Table<K, V>, in range: KeyRange<K> = .all) throws(StorageError) -> Entry<K, V>? {
        try scan(table, in: range, direction: .forward, limit: 1).first
    }

    package func last<K, V>(_ table: Table<K, V>, in range: KeyRange<K> = .all) throws(StorageError) -> Entry<K, V>? {
        try scan(table, in: range, direction: .backward, limit: 1).first
    }

    /// Walk over encoded keys, each key and value copied out of the map.
    func forEachRaw(
        _ dbi: MDB_dbi, lower: [UInt8]?, upper: [UInt8]?, direction: CursorDirection,
        _ body: ([UInt8], [UInt8]) throws(StorageError) -> Bool
    ) throws(StorageError) {
        try walk(dbi, lower: lower, upper: upper, direction: direction, mapError: { $0 }) { key, value throws(StorageError) in
            try body(Array(key), Array(value))
        }
    }

    /// The one cursor walk under every scan: positions on the range's first entry (or last, going
    /// backward) and steps until the range or `body` ends it.
    func walk<E: Error>(
        _ dbi: MDB_dbi, lower: [UInt8]?, upper: [UInt8]?, direction: CursorDirection, mapError: (StorageError) -> E,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws(E) -> Bool
    ) throws(E) {
        assertValid()
        var cursor: OpaquePointer?
        do { try checkCall(mdb_cursor_open(txn, dbi, &cursor), "mdb_cursor_open") } catch { throw mapError(error) }
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
        // The loop steps the cursor itself, on locals of its own: variables captured by the
        // helpers above are checked for exclusive access at run time on every call, which cost
        // more per record than LMDB's step.
        var current = key, value = data
        let step = direction == .forward ? MDB_NEXT : MDB_PREV
        let cursorHandle = cursor
        while rc == MDB_SUCCESS {
            let keyBytes = Self.buffer(current)
            switch direction {
            case .forward:
                if let upper, !Self.precedes(keyBytes, upper) { return }
            case .backward:
                if let lower, Self.precedes(keyBytes, lower) { return }
            }
            guard try body(keyBytes, Self.buffer(value)) else { return }
            rc = mdb_cursor_get(cursorHandle, &current, &value, step)
        }
        if rc != MDB_NOTFOUND {
            do { try checkCall(rc, "mdb_cursor_get") } catch { throw mapError(error) }
        }
    }

    /// Whether `bytes` sorts before `bound` as LMDB compares keys (unsigned bytes, a prefix first).
    @inline(__always)
    static func precedes(_ bytes: UnsafeRawBufferPointer, _ bound: [UInt8]) -> Bool {
        bound.withUnsafeBytes { bound in
            let common = Swift.min(bytes.count, bound.count)
            let order = common == 0 ? 0 : memcmp(bytes.baseAddress!, bound.baseAddress!, common)
            return order != 0 ? order < 0 : bytes.count < bound.count
        }
    }

    /// An MDB_val as a buffer (LMDB may hand a null pointer for an empty value).
    @inline(__always)
    static func buffer(_ val: MDB_val) -> UnsafeRawBufferPointer {
        guard val.mv_size > 0, let base = val.mv_data else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base, count: val.mv_size)
    }

    // MARK: Statistics

    /// Entry count and pages of a table, as of this snapshot.
    ///
    /// A view of a shared table (``Table/keyPrefix``) counts its entries by walking them (its
    /// page counts are those of the whole table).
    package func statistics<K, V>(_ table: Table<K, V>) throws(StorageError) -> TableUsage {
        let whole = try statistics(dbi: table.dbi, name: table.name)
        guard table.keyPrefix != nil else { return whole }
        var entries = 0
        try forEachBytes(table, mapError: { $0 }) { (_: UnsafeRawBufferPointer, _: UnsafeRawBufferPointer) throws(StorageError) -> Bool in
            entries += 1
            return true
        }
        return TableUsage(name: whole.name, entries: entries, depth: whole.depth, branchPages: whole.branchPages,
                          leafPages: whole.leafPages, overflowPages: whole.overflowPages)
    }

    /// Statistics of the whole LMDB table a view belongs to (all its prefixes), without a walk.
    package func sharedStatistics<K, V>(_ table: Table<K, V>) throws(StorageError) -> TableUsage {
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
}

/// The one write transaction of the environment, handed to the closure of
/// ``Environment/write(_:)``. Reads see this transaction's own writes.
///
/// If the closure throws, nothing it wrote is kept. Once LMDB has failed a call in the
/// transaction (map or disk full, an I/O error), the write fails with that error even if the
/// closure caught it and went on: a transaction that saw a storage failure never commits.
package final class WriteTransaction: ReadTransaction {

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
        let encoded = value.encodeValue()
        return try withStoredKey(table, key) { (keyBytes: UnsafeRawBufferPointer) throws(StorageError) -> Bool in
            try encoded.withBytes { (valueBytes: UnsafeRawBufferPointer) throws(StorageError) -> Bool in
                try putBytes(table.dbi, key: keyBytes, value: valueBytes, mode: mode, tableName: table.name)
            }
        }
    }

    /// Deletes `key`; returns whether it was there.
    @discardableResult
    package func delete<K, V>(_ table: Table<K, V>, _ key: K) throws(StorageError) -> Bool {
        try withStoredKey(table, key) { (keyBytes: UnsafeRawBufferPointer) throws(StorageError) -> Bool in
            try deleteBytes(table.dbi, key: keyBytes, tableName: table.name)
        }
    }

    func putRaw(_ dbi: MDB_dbi, key: [UInt8], value: [UInt8], mode: PutMode, tableName: String) throws(StorageError) -> Bool {
        try key.withBytes { (keyBytes: UnsafeRawBufferPointer) throws(StorageError) -> Bool in
            try value.withBytes { (valueBytes: UnsafeRawBufferPointer) throws(StorageError) -> Bool in
                try putBytes(dbi, key: keyBytes, value: valueBytes, mode: mode, tableName: tableName)
            }
        }
    }

    func deleteRaw(_ dbi: MDB_dbi, key: [UInt8], tableName: String) throws(StorageError) -> Bool {
        try key.withBytes { (keyBytes: UnsafeRawBufferPointer) throws(StorageError) -> Bool in
            try deleteBytes(dbi, key: keyBytes, tableName: tableName)
        }
    }

    func putBytes(_ dbi: MDB_dbi, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, mode: PutMode,
                  tableName: String) throws(StorageError) -> Bool {
        assertValid()
        try handle.validateKey(count: key.count, table: tableName, phase: .write)
        guard value.count <= handle.limits.valueSizeBytesMax else {
            throw StorageError(.invalidArgument,
                               "A value of \(value.count) bytes for table \(tableName) exceeds valueSizeBytesMax \(handle.limits.valueSizeBytesMax).",
                               phase: .write)
        }
        if let brokenBy { throw brokenBy.causing("mdb_put") }
        noteMutation()
        let flags: UInt32 = switch mode {
        case .upsert: 0
        case .insertNew: UInt32(MDB_NOOVERWRITE)
        case .append: UInt32(MDB_APPEND)
        }
        var rc: Int32
        if let faults = handle.faults, let code = faults.fault(.put, table: tableName, key: Array(key)) {
            rc = code
        } else {
            var mkey = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
            var mdata = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
            rc = mdb_put(txn, dbi, &mkey, &mdata, flags)
        }
        if rc == MDB_KEYEXIST, mode != .upsert { return false }
        try checkCall(rc, "mdb_put")
        return true
    }

    func deleteBytes(_ dbi: MDB_dbi, key: UnsafeRawBufferPointer, tableName: String) throws(StorageError) -> Bool {
        assertValid()
        try handle.validateKey(count: key.count, table: tableName, phase: .write)
        if let brokenBy { throw brokenBy.causing("mdb_del") }
        noteMutation()
        var rc: Int32
        if let faults = handle.faults, let code = faults.fault(.delete, table: tableName, key: Array(key)) {
            rc = code
        } else {
            var mkey = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
            rc = mdb_del(txn, dbi, &mkey, nil)
        }
        if rc == MDB_NOTFOUND { return false }
        try checkCall(rc, "mdb_del")
        return true
    }
}

extension WriteTransaction {
    /// Deletes the table named `name` and everything in it (a schema migration dropping a table of
    /// the older schema). Afterwards nothing may use the table; once the transaction committed,
    /// ``Environment/forgetTables(_:)`` forgets its name. Returns false when there is no such table.
    ///
    /// - throws: a storage failure (the transaction is then failed).
    @discardableResult
    package func dropTable(named name: String) throws(StorageError) -> Bool {
        assertValid()
        guard let dbi = handle.tables[name] else { return false }
        if let brokenBy { throw brokenBy.causing("mdb_drop") }
        noteMutation()
        try checkCall(mdb_drop(txn, dbi, 1), "mdb_drop")
        return true
    }

    /// Test-only: writes raw bytes into a named table inside this transaction.
    package func rawPut(tableNamed name: String, key: [UInt8], value: [UInt8]) throws(StorageError) {
        guard let dbi = handle.tables[name] else { throw StorageError(.notFound, "no table \(name)", phase: .write) }
        _ = try putRaw(dbi, key: key, value: value, mode: .upsert, tableName: name)
    }
}

/// A cursor over one table inside ``ReadTransaction/withBytesCursor(_:mapError:_:)``: positioned
/// with ``first(mapError:)``, ``seek(atOrAfter:mapError:)`` and friends, which return false when
/// no entry is there. ``key`` and ``value`` show the current entry where it lies in the map, valid
/// until the cursor moves or its closure returns.
package final class BytesCursor {
    private let transaction: ReadTransaction
    private let cursor: OpaquePointer?
    // Touched at every step of a walk over millions of entries: no dynamic exclusivity checks
    // (a cursor belongs to one closure on one thread, and nothing reenters it).
    @exclusivity(unchecked) private var valid = true
    @exclusivity(unchecked) private var currentKey = MDB_val()
    @exclusivity(unchecked) private var currentValue = MDB_val()
    /// Whether the cursor stands on an entry.
    @exclusivity(unchecked) package private(set) var isPositioned = false

    init(transaction: ReadTransaction, cursor: OpaquePointer?) {
        self.transaction = transaction
        self.cursor = cursor
    }

    func invalidate() { valid = false }

    /// The current entry's key (empty when not positioned).
    package var key: UnsafeRawBufferPointer {
        precondition(valid, "A Larder cursor was used after its closure returned.")
        return isPositioned ? ReadTransaction.buffer(currentKey) : UnsafeRawBufferPointer(start: nil, count: 0)
    }

    /// The current entry's value (empty when not positioned).
    package var value: UnsafeRawBufferPointer {
        precondition(valid, "A Larder cursor was used after its closure returned.")
        return isPositioned ? ReadTransaction.buffer(currentValue) : UnsafeRawBufferPointer(start: nil, count: 0)
    }

    package func first<E: Error>(mapError: (StorageError) -> E) throws(E) -> Bool { try move(MDB_FIRST, mapError) }
    package func last<E: Error>(mapError: (StorageError) -> E) throws(E) -> Bool { try move(MDB_LAST, mapError) }
    package func next<E: Error>(mapError: (StorageError) -> E) throws(E) -> Bool { try move(MDB_NEXT, mapError) }
    package func previous<E: Error>(mapError: (StorageError) -> E) throws(E) -> Bool { try move(MDB_PREV, mapError) }

    /// Moves to the first entry whose key is `key` or sorts after it.
    package func seek<E: Error>(atOrAfter key: [UInt8], mapError: (StorageError) -> E) throws(E) -> Bool {
        precondition(valid, "A Larder cursor was used after its closure returned.")
        let rc: Int32 = key.withUnsafeBytes { raw in
            currentKey = MDB_val(mv_size: raw.count, mv_data: UnsafeMutableRawPointer(mutating: raw.baseAddress))
            return mdb_cursor_get(cursor, &currentKey, &currentValue, MDB_SET_RANGE)
        }
        return try landed(rc, mapError)
    }

    private func move<E: Error>(_ op: MDB_cursor_op, _ mapError: (StorageError) -> E) throws(E) -> Bool {
        precondition(valid, "A Larder cursor was used after its closure returned.")
        return try landed(mdb_cursor_get(cursor, &currentKey, &currentValue, op), mapError)
    }

    private func landed<E: Error>(_ rc: Int32, _ mapError: (StorageError) -> E) throws(E) -> Bool {
        if rc == MDB_NOTFOUND {
            isPositioned = false
            return false
        }
        do { try transaction.checkCall(rc, "mdb_cursor_get") } catch { throw mapError(error) }
        isPositioned = true
        return true
    }
}

/// A walk over one range of a table inside ``ReadTransaction/withBytesWalk(_:in:direction:mapError:_:)``,
/// stepped by its caller: each ``next()`` moves to the range's next entry (the first, at the
/// first call) and shows it as ``key`` (without a view's prefix byte) and ``value`` where they
/// lie in the map, valid until the next step.
package final class BytesWalk {
    private let transaction: ReadTransaction
    private let cursor: OpaquePointer?
    private let lower: [UInt8]?
    private let upper: [UInt8]?
    private let forward: Bool
    private let stripsPrefix: Bool
    // Touched at every step: no dynamic exclusivity checks (a walk belongs to one closure on one
    // thread, and nothing reenters it).
    @exclusivity(unchecked) private var valid = true
    @exclusivity(unchecked) private var started = false
    @exclusivity(unchecked) private var ended = false
    @exclusivity(unchecked) private var currentKey = MDB_val()
    @exclusivity(unchecked) private var currentValue = MDB_val()
    /// The current entry's key (empty before the first step and after the last).
    @exclusivity(unchecked) package private(set) var key = UnsafeRawBufferPointer(start: nil, count: 0)
    /// The current entry's value (empty before the first step and after the last).
    @exclusivity(unchecked) package private(set) var value = UnsafeRawBufferPointer(start: nil, count: 0)

    init(transaction: ReadTransaction, cursor: OpaquePointer?, lower: [UInt8]?, upper: [UInt8]?,
         direction: CursorDirection, stripsPrefix: Bool) {
        self.transaction = transaction
        self.cursor = cursor
        self.lower = lower
        self.upper = upper
        forward = direction == .forward
        self.stripsPrefix = stripsPrefix
    }

    func invalidate() { valid = false }

    /// Moves to the next entry of the range; false (and ``key`` and ``value`` empty) once the
    /// range is done.
    ///
    /// - throws: an LMDB failure (the walk is done then).
    package func next() throws(StorageError) -> Bool {
        precondition(valid, "A Larder walk was used after its closure returned.")
        guard !ended else { return false }
        let rc: Int32
        if started {
            rc = mdb_cursor_get(cursor, &currentKey, &currentValue, forward ? MDB_NEXT : MDB_PREV)
        } else {
            started = true
            rc = position()
        }
        guard rc == MDB_SUCCESS else { return try end(rc) }
        let keyBytes = ReadTransaction.buffer(currentKey)
        if forward {
            if let upper, !ReadTransaction.precedes(keyBytes, upper) { return try end(MDB_NOTFOUND) }
        } else {
            if let lower, ReadTransaction.precedes(keyBytes, lower) { return try end(MDB_NOTFOUND) }
        }
        key = stripsPrefix && !keyBytes.isEmpty ? UnsafeRawBufferPointer(rebasing: keyBytes[1...]) : keyBytes
        value = ReadTransaction.buffer(currentValue)
        return true
    }

    /// The range's first entry (last, going backward), as ``ReadTransaction/forEachBytes(_:in:direction:mapError:_:)`` finds it.
    private func position() -> Int32 {
        func seek(_ bytes: [UInt8]) -> Int32 {
            bytes.withUnsafeBytes { raw in
                currentKey = MDB_val(mv_size: raw.count, mv_data: UnsafeMutableRawPointer(mutating: raw.baseAddress))
                return mdb_cursor_get(cursor, &currentKey, &currentValue, MDB_SET_RANGE)
            }
        }
        if forward {
            return lower.map { seek($0) } ?? mdb_cursor_get(cursor, &currentKey, &currentValue, MDB_FIRST)
        }
        guard let upper else { return mdb_cursor_get(cursor, &currentKey, &currentValue, MDB_LAST) }
        // SET_RANGE lands on the first key >= upper, which is outside the range.
        let rc = seek(upper)
        if rc == MDB_NOTFOUND { return mdb_cursor_get(cursor, &currentKey, &currentValue, MDB_LAST) }
        return rc == MDB_SUCCESS ? mdb_cursor_get(cursor, &currentKey, &currentValue, MDB_PREV) : rc
    }

    private func end(_ rc: Int32) throws(StorageError) -> Bool {
        ended = true
        key = UnsafeRawBufferPointer(start: nil, count: 0)
        value = UnsafeRawBufferPointer(start: nil, count: 0)
        if rc != MDB_NOTFOUND { try transaction.checkCall(rc, "mdb_cursor_get") }
        return false
    }
}
