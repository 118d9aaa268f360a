internal import CLMDB
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// One LMDB environment: a directory holding one memory-mapped file with named tables.
///
/// ```swift
/// let environment = try Environment.open(at: "/var/lib/kitchen/larder", tables: ["audit", "meta"])
/// let audit = try environment.table("audit", key: UInt64.self, value: [UInt8].self)
/// try environment.write { txn in try txn.put(audit, 1, [0x01]) }
/// let first = try environment.read { txn in try txn.get(audit, 1) }
/// ```
///
/// - Reads run on the calling thread in an MVCC snapshot; the writer never blocks them.
/// - Writes are serialized through one writer thread, which may commit several queued writes in
///   one transaction (group commit). Every caller is answered after the commit is durable.
/// - Closures are not re-entrant: a `read` or `write` inside another one is a programmer error and
///   stops with a clear message (it could otherwise deadlock).
///
/// Wraps [`mdb_env_open`](http://www.lmdb.tech/doc/group__mdb.html#ga32a193c6bf4d7d5c5d579e71f22e9340),
/// opened with `MDB_NOTLS` so that read transactions are not tied to threads.
package final class Environment: Sendable {
    /// The options of one environment.
    package struct Options: Sendable {
        package var limits = Limits()
        package var durability = Durability.durable
        /// Open read-only (`MDB_RDONLY`): no writer, no table creation; works while another
        /// process writes. A missing store is ``StorageError/Kind/notFound`` and is not created.
        package var readOnly = false
        package var breaker = BreakerPolicy()
        /// Whether a writable open creates a missing store (read-only opens never do).
        package var createIfMissing = true
        /// Told about commits and about each change in what the environment can do (see
        /// ``StorageEvent``); nil reports nothing.
        package var observer: (@Sendable (StorageEvent) -> Void)?
        /// Test-only: LMDB calls to fail on purpose (see ``LMDBFaults``).
        package var faults: LMDBFaults?

        package init(limits: Limits = Limits(), durability: Durability = .durable, readOnly: Bool = false,
                     breaker: BreakerPolicy = BreakerPolicy(), createIfMissing: Bool = true) {
            self.limits = limits
            self.durability = durability
            self.readOnly = readOnly
            self.breaker = breaker
            self.createIfMissing = createIfMissing
        }
    }

    let handle: EnvironmentHandle
    private let writer: Writer?
    package let options: Options
    private let closed = Atomic<Bool>(false)
    /// Set once a write was refused because the environment is closed (reported once).
    private let refusedClosedReported = Atomic<Bool>(false)

    /// The resolved directory of the environment.
    package var path: String { handle.path }

    private init(handle: EnvironmentHandle, options: Options) {
        self.handle = handle
        self.options = options
        self.writer = options.readOnly ? nil : Writer(handle: handle, breakerPolicy: options.breaker, observer: options.observer)
    }

    /// Opens (creating when writable and missing) the environment in directory `path` and the
    /// named tables in it.
    ///
    /// The map is opened at `options.limits.mapSizeBytesMax` and never resized by this process;
    /// the data file grows with the data. A failed open leaves nothing behind that it created
    /// (no directory, no `data.mdb`, no `lock.mdb`).
    ///
    /// - throws: ``StorageError/Kind/invalidArgument`` for invalid limits or a path already open
    ///   in this process; ``StorageError/Kind/notFound`` for a read-only open of a missing store;
    ///   ``StorageError/Kind/exhausted`` when the disk is too full to create or open the store;
    ///   ``StorageError/Kind/failed`` or ``StorageError/Kind/damaged`` when LMDB cannot open it
    ///   (an I/O error, permissions, a damaged file).
    ///
    /// `existingTables` are opened only when the store has them, never created: the tables of an
    /// older schema, read once by a migration that then drops them (``WriteTransaction/dropTable(named:)``).
    package static func open(at path: String, options: Options = Options(), tables: [String],
                             existingTables: [String] = []) throws(StorageError) -> Environment {
        let handle = try EnvironmentHandle.open(path: path, limits: options.limits, durability: options.durability,
                                                readOnly: options.readOnly, create: !options.readOnly && options.createIfMissing,
                                                tableNames: tables, existingTableNames: existingTables, faults: options.faults,
                                                observer: options.observer)
        return Environment(handle: handle, options: options)
    }

    deinit {
        close()
    }

    /// Finishes queued writes, then closes the environment. Idempotent. Afterwards reads and
    /// writes throw ``StorageError/Kind/closed`` and ``info()`` reports the environment closed.
    package func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        writer?.stop()
        // Wait for readers still inside a transaction to finish before the handle goes.
        handle.gate.exclusive { handle.close() }
    }

    /// Closes the environment and removes the files its open created: for a caller whose
    /// creation of a new store failed after the environment opened.
    package func closeRemovingCreatedFiles() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        writer?.stop()
        handle.gate.exclusive { handle.closeRemovingCreatedFiles() }
    }

    /// Whether this open created the store's data file.
    package var createdStore: Bool { handle.created.data }

    /// The typed table named `name`, declared at open.
    ///
    /// - throws: ``StorageError/Kind/notFound`` when no such table exists (it was not declared,
    ///   or a read-only open found a store made before the table existed).
    package func table<K: OrderedKey, V: StoredValue>(_ name: String, key: K.Type = K.self, value: V.Type = V.self) throws(StorageError) -> Table<K, V> {
        guard let dbi = handle.tables[name] else {
            throw StorageError(.notFound, "The store at \(path) has no table named \(name).", phase: .open)
        }
        return Table(name: name, dbi: dbi)
    }

    /// A view of the table named `name` whose keys all start with the byte `prefix` (see
    /// ``Table``): several views share one table.
    ///
    /// - throws: ``StorageError/Kind/notFound`` as ``table(_:key:value:)``.
    package func table<K: OrderedKey, V: StoredValue>(_ name: String, prefix: UInt8, key: K.Type = K.self,
                                                     value: V.Type = V.self) throws(StorageError) -> Table<K, V> {
        guard let dbi = handle.tables[name] else {
            throw StorageError(.notFound, "The store at \(path) has no table named \(name).", phase: .open)
        }
        return Table(name: name, dbi: dbi, keyPrefix: prefix)
    }

    /// Whether a table of that name exists.
    package func hasTable(_ name: String) -> Bool { handle.tables[name] != nil }

    /// Forgets tables a committed transaction dropped (``WriteTransaction/dropTable(named:)``):
    /// they leave ``hasTable(_:)`` and the statistics. Waits for running transactions to end.
    package func forgetTables(_ names: [String]) {
        handle.gate.exclusive {
            for name in names { handle.tables.removeValue(forKey: name) }
        }
    }

    // MARK: Reading

    /// Runs `body` in a read-only snapshot on the calling thread.
    ///
    /// Any number of reads run at once, from any thread or task, and none waits for the writer.
    /// The transaction is invalid once `body` returns: copy out what you need.
    ///
    /// - throws: whatever `body` throws; ``StorageError/Kind/exhausted`` when every reader slot is
    ///   taken, ``StorageError/Kind/closed`` when the environment is closed,
    ///   ``StorageError/Kind/restartRequired`` after LMDB reported a fatal error.
    package func read<R>(_ body: (ReadTransaction) throws -> R) throws -> R {
        precondition(TransactionScope.current == .none,
                     "Environment.read inside another read or write closure: use the transaction you were given.")
        handle.gate.enterShared()
        TransactionScope.set(.read)
        defer {
            TransactionScope.set(.none)
            handle.gate.leaveShared()
        }
        // Checked inside the gate: close() takes it exclusive, so the handle cannot go meanwhile.
        let txn = try handle.beginTransaction(readOnly: true)
        let transaction = ReadTransaction(handle: handle, txn: txn)
        defer {
            transaction.invalidate()
            mdb_txn_abort(txn)
        }
        return try body(transaction)
    }

    // MARK: Writing

    /// Runs `body` in the write transaction and returns once its changes are durable (with
    /// ``Durability/durable``). If `body` throws, nothing it wrote is kept and the error is rethrown.
    ///
    /// Blocks the calling thread while waiting for the writer and the disk; from async code use
    /// ``write(_:)-(@Sendable(WriteTransaction)->R)`` instead.
    ///
    /// `body` runs once, with one exception: when it ran in a group-commit batch whose commit then
    /// failed as a whole (map or disk full, an LMDB limit), nothing of the batch was written and
    /// `body` runs again, alone, so that only a request that does not fit fails. Keep `body` free
    /// of effects outside the transaction.
    ///
    /// If LMDB fails a call inside `body` (map or disk full, an I/O error), the write fails with
    /// that error even when `body` catches it and returns normally.
    ///
    /// - throws: whatever `body` throws; a ``StorageError``: ``StorageError/Kind/exhausted`` when
    ///   the map is at its maximum, the disk is full or the write queue is at its depth,
    ///   ``StorageError/Kind/paused`` while the write breaker is open, ``StorageError/Kind/closed``
    ///   after close, ``StorageError/Kind/failed`` when LMDB fails to commit,
    ///   ``StorageError/Kind/restartRequired`` after LMDB reported a fatal error.
    ///
    /// With `isolated` false, `body` promises to check everything before it writes anything (a
    /// refusal leaves the transaction as it was): grouped with other writes it then runs in the
    /// batch's transaction itself, without a nested transaction of its own.
    @discardableResult
    package func write<R>(isolated: Bool = true, _ body: (WriteTransaction) throws -> R) throws -> R {
        precondition(TransactionScope.current == .none,
                     "Environment.write inside a read or write closure would deadlock: use the transaction you were given.")
        return try withoutActuallyEscaping(body) { escapable in
            let box = OutcomeBox<R>()
            let done = DispatchSemaphore(value: 0)
            let request = WriteRequest(
                isolated: isolated,
                run: { txn in box.run { try escapable(txn) } },
                finish: { error in
                    if let error { box.fail(error) }
                    done.signal()
                })
            try submit(request)
            done.wait()
            return try box.take()
        }
    }

    /// Runs `body` in the write transaction, suspending (not blocking a thread of Swift's
    /// cooperative pool) until its changes are durable. See ``write(_:)-(WriteTransaction)->R``.
    @discardableResult
    package func write<R: Sendable>(isolated: Bool = true, _ body: @escaping @Sendable (WriteTransaction) throws -> R) async throws -> R {
        let box = OutcomeBox<R>()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, any Error>) in
            let request = WriteRequest(
                isolated: isolated,
                run: { txn in box.run { try body(txn) } },
                finish: { error in
                    if let error { box.fail(error) }
                    continuation.resume(with: Result { try box.take() })
                })
            do {
                try submit(request)
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    private func submit(_ request: WriteRequest) throws(StorageError) {
        guard let writer else {
            throw StorageError(.readOnly, "The store at \(path) is open read-only.", phase: .write)
        }
        guard !closed.load(ordering: .acquiring), !handle.restartRequired else {
            if !handle.restartRequired { reportRefusedClosed() }
            throw handle.unusableError()
        }
        do {
            try writer.submit(request)
        } catch {
            if error.kind == .closed { reportRefusedClosed() }
            throw error
        }
    }

    private func reportRefusedClosed() {
        guard let observer = options.observer, !refusedClosedReported.exchange(true, ordering: .acquiringAndReleasing) else { return }
        observer(.writeRefusedClosed)
    }

    /// Whether the calling thread may begin a transaction (it is not inside a read or write closure).
    package var canBeginTransactionHere: Bool { TransactionScope.current == .none }

    /// Write requests waiting for the writer (not counting the batch it is running).
    package var queuedWriteCount: Int { writer?.queuedCount ?? 0 }

    // MARK: State

    /// Map size, use and readers, as of now. Safe at any time, from any thread, also while
    /// another process writes, and after ``close()`` (then ``EnvironmentInfo/isOpen`` is false
    /// and the sizes are zero).
    package func info() -> Info {
        handle.withMap { () -> Info in
            var info = MDB_envinfo()
            var stat = MDB_stat()
            var readers = 0
            let open = !handle.isClosed
            if open {
                mdb_env_info(handle.env, &info)
                mdb_env_stat(handle.env, &stat)
                readers = handle.currentReaderCount()
            }
            return Info(
                path: path,
                mapSizeBytes: info.me_mapsize,
                mapSizeBytesMax: handle.limits.mapSizeBytesMax,
                mapUsedBytes: open ? (info.me_last_pgno + 1) * Int(stat.ms_psize) : 0,
                pageSizeBytes: Int(stat.ms_psize),
                readersUsed: readers,
                readersMax: open ? Int(info.me_maxreaders) : handle.limits.readersMax,
                lastTransactionID: info.me_last_txnid,
                keySizeBytesMax: handle.keySizeBytesMax,
                readOnly: options.readOnly,
                durability: options.durability,
                breaker: writer?.breakerState ?? .closed,
                isOpen: open,
                restartRequired: handle.restartRequired
            )
        }
    }

    /// What the writer has done since open (zeros when read-only).
    package var writerStatistics: WriterStatistics { writer?.statistics ?? WriterStatistics() }

    /// A compacting (or plain) copy of the environment into directory `destination`, taken while
    /// writers run. Wraps `mdb_env_copy2`. The destination must not hold a store yet.
    ///
    /// - throws: ``StorageError/Kind/invalidArgument`` for a destination that holds a store;
    ///   ``StorageError/Kind/exhausted`` when the destination's disk is full;
    ///   ``StorageError/Kind/closed`` after close; ``StorageError/Kind/failed`` when LMDB fails
    ///   to copy.
    package func copy(to destination: String, compact: Bool = true) throws(StorageError) {
        try EnvironmentCopy.prepare(destination)
        for attempt in 1...2 {
            let rc = handle.withMap { () -> Int32 in
                guard !handle.isClosed else { return MDB_SUCCESS }
                return mdb_env_copy2(handle.env, destination, compact ? UInt32(MDB_CP_COMPACT) : 0)
            }
            guard !handle.isClosed else { throw handle.unusableError() }
            // `prepare` made sure no store was there: a failed copy leaves no partial one.
            if rc != MDB_SUCCESS { unlink(destination + "/data.mdb") }
            if rc == MDB_MAP_RESIZED && attempt == 1 && TransactionScope.current == .none {
                // Another process grew the map since this one opened: adopt its size, copy again.
                let adopted = handle.adoptMapSize()
                guard adopted == MDB_SUCCESS else { throw handle.failure(adopted, "mdb_env_set_mapsize") }
                continue
            }
            guard rc == MDB_SUCCESS else { throw handle.failure(rc, "mdb_env_copy2").diskFullAware(path: destination).at(.copy) }
            return
        }
    }
}

extension Environment {
    /// A snapshot of an environment's size and use.
    package struct Info: Sendable, Hashable {
        package let path: String
        package let mapSizeBytes: Int
        /// This process's own maximum (``Limits/mapSizeBytesMax``).
        package let mapSizeBytesMax: Int
        /// Bytes of the map in use (up to the last used page).
        package let mapUsedBytes: Int
        package let pageSizeBytes: Int
        package let readersUsed: Int
        package let readersMax: Int
        package let lastTransactionID: Int
        package let keySizeBytesMax: Int
        package let readOnly: Bool
        package let durability: Durability
        package let breaker: BreakerState
        /// False once the environment was closed.
        package let isOpen: Bool
        /// True once LMDB reported a fatal error (MDB_PANIC): reads and writes fail until the
        /// environment is closed and opened again.
        package let restartRequired: Bool
    }
}

/// Holds a closure's outcome until its caller takes it.
final class OutcomeBox<R>: @unchecked Sendable {
    private var outcome: Result<R, any Error>?

    /// Runs the closure; returns whether it succeeded.
    func run(_ body: () throws -> R) -> Bool {
        do {
            outcome = .success(try body())
            return true
        } catch {
            outcome = .failure(error)
            return false
        }
    }

    func fail(_ error: any Error) { outcome = .failure(error) }

    func take() throws -> R {
        guard let outcome else { preconditionFailure("a write finished without an outcome") }
        return try outcome.get()
    }
}

// MARK: Test-only raw access

extension Environment {
    /// Test-only: writes raw bytes into a table, bypassing every rule above the storage core.
    /// Used to corrupt a copy of a store and prove that verify notices.
    package func rawPut(table name: String, key: [UInt8], value: [UInt8]) throws {
        guard let dbi = handle.tables[name] else { throw StorageError(.notFound, "no table \(name)", phase: .write) }
        try write { txn in _ = try txn.putRaw(dbi, key: key, value: value, mode: .upsert, tableName: name) }
    }

    /// Test-only: deletes a raw key from a table.
    package func rawDelete(table name: String, key: [UInt8]) throws {
        guard let dbi = handle.tables[name] else { throw StorageError(.notFound, "no table \(name)", phase: .write) }
        try write { txn in _ = try txn.deleteRaw(dbi, key: key, tableName: name) }
    }

    /// Test-only: reads raw bytes from a table.
    package func rawGet(table name: String, key: [UInt8]) throws -> [UInt8]? {
        guard let dbi = handle.tables[name] else { throw StorageError(.notFound, "no table \(name)", phase: .read) }
        return try read { txn in try txn.getRaw(dbi, key: key, tableName: name) }
    }
}
