import LarderStorage

/// The tables of one transaction, as Larder's domain code reads them: the storage core's read
/// transaction, with every storage failure mapped into the error contract where it crosses into
/// Larder. Invalid once the transaction's closure returns, like the transaction itself.
class TableReader {
    let raw: ReadTransaction

    init(_ raw: ReadTransaction) {
        self.raw = raw
    }

    /// Marks the snapshot's closure as returned (the transaction ends right after): every record
    /// view made in it is invalid from here on.
    final func close() { raw.endViews() }

    /// What a record view made now checks on every access (see ``ViewValidity``).
    final func viewValidity() -> ViewValidity { ViewValidity(cell: raw.viewCell()) }

    /// Calls `body` with the value under `key` where it lies in the map (no copy); nil when
    /// absent. The buffer is valid only inside `body`.
    @inline(__always)
    final func withValueBytes<K, V, R>(_ table: Table<K, V>, _ key: K,
                                       _ body: (UnsafeRawBufferPointer) throws(LarderError) -> R) throws(LarderError) -> R? {
        try raw.withValueBytes(table, key, mapError: { LarderError($0) }, body)
    }

    /// Calls `body` with each key and value of `range` where they lie in the map (no copies),
    /// until it returns false. The buffers are valid only inside that call of `body`.
    final func forEachBytes<K, V>(_ table: Table<K, V>, in range: KeyRange<K> = .all, direction: ScanDirection = .forward,
                                  _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws(LarderError) -> Bool) throws(LarderError) {
        try raw.forEachBytes(table, in: range, direction: direction.cursorDirection, mapError: { LarderError($0) }, body)
    }

    /// The value stored under `key`, or nil.
    final func get<K, V>(_ table: Table<K, V>, _ key: K) throws(LarderError) -> V? {
        do { return try raw.get(table, key) } catch { throw LarderError(error) }
    }

    /// Whether `key` is present.
    final func contains<K, V>(_ table: Table<K, V>, _ key: K) throws(LarderError) -> Bool {
        do { return try raw.contains(table, key) } catch { throw LarderError(error) }
    }

    /// Up to `limit` entries of `range`, in key order or reverse key order.
    final func scan<K, V>(_ table: Table<K, V>, in range: KeyRange<K> = .all, direction: ScanDirection = .forward,
                          limit: Int) throws(LarderError) -> [Entry<K, V>] {
        do {
            return try raw.scan(table, in: range, direction: direction.cursorDirection, limit: limit)
        } catch {
            throw LarderError(error)
        }
    }

    /// Calls `body` for each entry of `range` until it returns false; memory stays constant.
    /// An error `body` throws ends the walk and is rethrown as it is.
    final func forEach<K, V>(_ table: Table<K, V>, in range: KeyRange<K> = .all, direction: ScanDirection = .forward,
                             _ body: (Entry<K, V>) throws(LarderError) -> Bool) throws(LarderError) {
        var thrown: LarderError?
        do throws(StorageError) {
            try raw.forEach(table, in: range, direction: direction.cursorDirection) { (entry: Entry<K, V>) -> Bool in
                do throws(LarderError) {
                    return try body(entry)
                } catch {
                    thrown = error
                    return false
                }
            }
        } catch {
            throw LarderError(error)
        }
        if let thrown { throw thrown }
    }

    /// Calls `body` with the value under `key` where it lies in the map (valid only inside
    /// `body`); nil when absent.
    final func withValueBytes<K, V, R>(_ table: Table<K, V>, encodedKey key: [UInt8],
                                       _ body: (UnsafeRawBufferPointer) throws(LarderError) -> R) throws(LarderError) -> R? {
        try raw.withValueBytes(table, encodedKey: key, mapError: { LarderError($0) }, body)
    }

    /// Calls `body` with a walk over `range` that it steps itself (no closure per entry); the
    /// walk and its bytes are valid only inside `body`, the bytes only until the next step.
    final func withBytesWalk<K, V, R>(_ table: Table<K, V>, in range: KeyRange<K>, direction: ScanDirection,
                                      _ body: (BytesWalk) throws(LarderError) -> R) throws(LarderError) -> R {
        try raw.withBytesWalk(table, in: range, direction: direction.cursorDirection, mapError: { LarderError($0) }, body)
    }

    /// Calls `body` with a cursor over `table`, for merge walks; valid only inside `body`.
    final func withBytesCursor<K, V, R>(_ table: Table<K, V>, _ body: (BytesCursor) throws(LarderError) -> R) throws(LarderError) -> R {
        try raw.withBytesCursor(table, mapError: { LarderError($0) }, body)
    }

    /// The last entry of `range`.
    final func last<K, V>(_ table: Table<K, V>, in range: KeyRange<K> = .all) throws(LarderError) -> Entry<K, V>? {
        do { return try raw.last(table, in: range) } catch { throw LarderError(error) }
    }

    /// Entry count and pages of one table.
    final func statistics<K, V>(_ table: Table<K, V>) throws(LarderError) -> TableStatistics {
        do { return TableStatistics(try raw.statistics(table)) } catch { throw LarderError(error) }
    }

    /// Entry count and pages of the whole table a view of a shared table belongs to.
    final func sharedStatistics<K, V>(_ table: Table<K, V>) throws(LarderError) -> TableStatistics {
        do { return TableStatistics(try raw.sharedStatistics(table)) } catch { throw LarderError(error) }
    }

    /// Entry counts and pages of every table, by name.
    final func allStatistics() throws(LarderError) -> [TableStatistics] {
        do { return try raw.allStatistics().map(TableStatistics.init) } catch { throw LarderError(error) }
    }
}

/// The tables of the one write transaction: reads see its own writes.
final class TableWriter: TableReader {
    let rawWrite: WriteTransaction

    init(_ raw: WriteTransaction) {
        rawWrite = raw
        super.init(raw)
    }

    /// Stores `value` under `key`; false when `mode` refused it (an existing key for
    /// `.insertNew`, a key out of order for `.append`).
    @discardableResult
    func put<K, V>(_ table: Table<K, V>, _ key: K, _ value: V, mode: WriteTransaction.PutMode = .upsert) throws(LarderError) -> Bool {
        do { return try rawWrite.put(table, key, value, mode: mode) } catch { throw LarderError(error) }
    }

    /// Deletes `key`; returns whether it was there.
    @discardableResult
    func delete<K, V>(_ table: Table<K, V>, _ key: K) throws(LarderError) -> Bool {
        do { return try rawWrite.delete(table, key) } catch { throw LarderError(error) }
    }

    /// Puts and deletes made so far (including failed attempts).
    var mutationCount: Int { rawWrite.mutationCount }

    /// Drops a table of an older schema (a migration); false when the store has no such table.
    @discardableResult
    func dropTable(named name: String) throws(LarderError) -> Bool {
        do { return try rawWrite.dropTable(named: name) } catch { throw LarderError(error) }
    }

    /// Test-only: raw bytes into a named table, standing in for a domain store's write.
    func rawPut(tableNamed name: String, key: [UInt8], value: [UInt8]) throws(LarderError) {
        do { try rawWrite.rawPut(tableNamed: name, key: key, value: value) } catch { throw LarderError(error) }
    }
}
