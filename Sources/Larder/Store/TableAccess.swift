import LarderStorage

/// The tables of one transaction, as Larder's domain code reads them: the storage core's read
/// transaction, with every storage failure mapped into the error contract where it crosses into
/// Larder. Invalid once the transaction's closure returns, like the transaction itself.
class TableReader {
    let raw: ReadTransaction

    init(_ raw: ReadTransaction) {
        self.raw = raw
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

    /// The last entry of `range`.
    final func last<K, V>(_ table: Table<K, V>, in range: KeyRange<K> = .all) throws(LarderError) -> Entry<K, V>? {
        do { return try raw.last(table, in: range) } catch { throw LarderError(error) }
    }

    /// Entry count and pages of one table.
    final func statistics<K, V>(_ table: Table<K, V>) throws(LarderError) -> TableStatistics {
        do { return TableStatistics(try raw.statistics(table)) } catch { throw LarderError(error) }
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

    /// Test-only: raw bytes into a named table, standing in for a domain store's write.
    func rawPut(tableNamed name: String, key: [UInt8], value: [UInt8]) throws(LarderError) {
        do { try rawWrite.rawPut(tableNamed: name, key: key, value: value) } catch { throw LarderError(error) }
    }
}
