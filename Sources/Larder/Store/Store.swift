public import CoreMetrics
import Foundation
package import LarderStorage
public import Logging
import Synchronization

/// A Larder store: one LMDB environment holding the audit log, decisions, ledgers and incidents,
/// and the one place where anything in it is written.
///
/// Record a change with its audit record and a decisionID that makes a retry harmless:
/// ```swift
/// let store = try Store.open(at: "/var/lib/kitchen/larder")
/// let context = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager),
///                            requestID: "req-8812", decisionID: "note-order-4411")
/// let outcome = try store.write(context, request: NoteRequest(order: "4411")) { txn in
///     try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", refs: [.order("4411")]))
///     return "noted"
/// }
/// // outcome.kind == .committed the first time, .replayed for the same decision again;
/// // the same decisionID with another request throws CONFLICT. Nothing is written either way.
/// ```
///
/// One `write` is one LMDB write transaction: the domain change, its audit record(s) and its
/// decision commit together, or nothing does. A write that changed anything but appended no
/// audit record fails with AUDIT_FAILED.
///
/// Every call that writes has a blocking form and an `async` form that suspends instead of
/// blocking a thread of Swift's cooperative pool (see <doc:ConcurrencyAndTransactions>).
public final class Store: Sendable {
    /// How to open a store.
    ///
    /// ```swift
    /// var options = Store.Options(limits: Limits(), durability: .durable)
    /// options.logger = Logger(label: "kitchen.larder")   // the store logs nothing unless given a logger
    /// let store = try Store.open(at: "/var/lib/kitchen/larder", options: options)
    /// ```
    public struct Options: Sendable {
        /// Map size, readers, value size, group commit and queue depth. Default ``Limits/init()``.
        public var limits: Limits
        /// Default ``Durability/durable``.
        public var durability: Durability
        /// Open read-only: queries and verify only; works while another process writes. Default false.
        public var readOnly: Bool
        /// Where audit times, decision ages and deadlines come from. Default ``SystemClock``.
        public var clock: any LarderClock
        /// When writes stop after repeated storage failures. Default ``BreakerPolicy/init(failuresToOpen:probeIntervalSeconds:)``.
        public var breaker: BreakerPolicy
        /// The failure policy the store enforces; recorded in the audit log when it changes.
        /// Default ``FailurePolicy/default``.
        public var policy: FailurePolicy
        /// Whether opening records `policy` when it differs from the one recorded last. A process
        /// that enforces no policy of its own — it applies no responses, and only reads the store
        /// or appends records of its own — opens with false, so that it never replaces the policy
        /// of the application that does with its default. Default true.
        public var recordsPolicy = true
        /// Whether a writable open creates a missing store. A process that expects an existing
        /// store opens with false and gets NOT_FOUND for a mistyped path. Default true.
        public var createIfMissing = true
        /// Whether a writable open records `limits.mapSizeBytesMax` and `limits.readersMax` in the
        /// store (`LIMITS_RECORDED`, only when they differ from the recorded ones), so that every
        /// other process reports map use against the limits of the application that writes the
        /// store. A process that does not govern the store's size opens with false. Default true.
        public var recordsLimits = true
        /// Where the store logs what changes what it can do: open and close, schema creation,
        /// a policy or limits recorded, the write breaker opening and closing, a write that
        /// failed in the storage, LMDB's fatal error, a full write queue, writes refused after
        /// close. Never one line per successful write. Default: a logger that discards
        /// everything, so that a library never prints uninvited.
        ///
        /// Lines carry `larder.store` (the path), and `larder.request_id` and
        /// `larder.decision_id` when they concern one write.
        public var logger: Logger
        /// Where the store's counters and timers go (``StoreMetricNames``). Default
        /// `MetricsSystem.factory` as it is when the options are made: swift-metrics' no-op
        /// factory unless the application bootstrapped one.
        public var metricsFactory: any MetricsFactory
        /// Test-only: a fault injected into every audit append.
        package var auditFaultInjection: AuditFaultInjection?
        /// Test-only: LMDB calls to fail on purpose.
        package var lmdbFaults: LMDBFaults?
        /// Benchmarks only: false skips the Merkle tree (no stored nodes, no catch-up at open), so
        /// `larder-compare` can measure what the tree costs. A store written so has an incomplete
        /// tree until its next open with true.
        package var keepsMerkleTree = true

        public init(limits: Limits = Limits(), durability: Durability = .durable, readOnly: Bool = false,
                    clock: any LarderClock = SystemClock(), breaker: BreakerPolicy = BreakerPolicy(),
                    policy: FailurePolicy = .default, logger: Logger = Store.silentLogger,
                    metricsFactory: any MetricsFactory = MetricsSystem.factory) {
            self.policy = policy
            self.limits = limits
            self.durability = durability
            self.readOnly = readOnly
            self.clock = clock
            self.breaker = breaker
            self.logger = logger
            self.metricsFactory = metricsFactory
            self.auditFaultInjection = nil
        }
    }

    /// A logger that discards everything: the default of ``Options/logger``.
    public static var silentLogger: Logger {
        Logger(label: "larder", factory: { _ in SwiftLogNoOpLogHandler() })
    }

    /// The schema version this build writes and reads. Opening a newer store is refused; an
    /// older one (1) is migrated at its first writable open (docs/FORMAT.md section 17).
    public static let schemaVersion: UInt32 = 2

    /// Every table of a store, for `Environment.open`.
    static var tableNames: [String] { StoreTables.allNames }

    let environment: Environment
    let tables: StoreTables
    public let options: Options
    let counters: StoreMetrics
    let log: StoreLog
    /// The limits recorded in the store, as last read (nil: none recorded).
    private let recordedLimits = Mutex<RecordedLimits?>(nil)
    /// Set by the first ``close()``: later calls change nothing and log nothing.
    private let closed = Atomic<Bool>(false)
    /// The schema version this open found (nil: the open created the store).
    private let schemaFoundAtOpen = Mutex<UInt32?>(nil)

    /// The schema version the store had when this open found it: nil when the open created it,
    /// lower than ``schemaVersion`` when the open migrated it (docs/FORMAT.md section 17).
    public var schemaVersionAtOpen: UInt32? { schemaFoundAtOpen.withLock { $0 } }

    private init(environment: Environment, tables: StoreTables, options: Options, counters: StoreMetrics, log: StoreLog) {
        self.environment = environment
        self.tables = tables
        self.options = options
        self.counters = counters
        self.log = log
    }

    /// Opens the store in directory `path`, creating it (with its schema, in one audited
    /// transaction) when it does not exist and the store is writable.
    ///
    /// A store whose creation fails (a full disk, an I/O error) is removed again: a failed open
    /// leaves no half-created store behind.
    ///
    /// ```swift
    /// let store = try Store.open(at: "/var/lib/kitchen/larder")
    /// defer { store.close() }
    /// ```
    ///
    /// - throws: VALIDATION_FAILED for bad options or a path already open in this process;
    ///   NOT_FOUND for a read-only open of a missing store; STORAGE_UNAVAILABLE (retryable) when
    ///   the disk is too full to create or open the store; PERSISTENCE_ERROR for a store with a
    ///   newer schema or a file LMDB cannot open.
    public static func open(at path: String, options: Options = Options()) throws(LarderError) -> Store {
        try options.policy.validate()
        let log = StoreLog(logger: options.logger, path: path)
        let counters = StoreMetrics(factory: options.metricsFactory)
        var environmentOptions = Environment.Options(limits: options.limits.storageLimits,
                                                     durability: options.durability.storageDurability,
                                                     readOnly: options.readOnly, breaker: options.breaker.storagePolicy,
                                                     createIfMissing: options.createIfMissing)
        environmentOptions.faults = options.lmdbFaults
        environmentOptions.observer = { event in
            counters.record(event)
            log.record(event)
        }
        let environment: Environment
        do {
            environment = try Environment.open(at: path, options: environmentOptions, tables: tableNames,
                                               existingTables: StoreTables.Legacy.names)
        } catch {
            let failure = LarderError(error)
            log.openFailed(failure)
            throw failure
        }
        var schemaFound = false
        do throws(LarderError) {
            if options.readOnly, !environment.hasTable(StoreTables.indexName), environment.hasTable(StoreTables.Legacy.auditByRequest) {
                // A schema-1 store: only a writable open can migrate it.
                throw LarderError(.persistenceError,
                                  "The store at \(path) has schema version 1; this Larder reads schema \(Self.schemaVersion). Run `larder migrate --db \(path)` (or open it writable once: that migrates it, docs/FORMAT.md section 17); it was not touched.",
                                  failureClass: .dataInconsistency, failurePoint: .open)
            }
            let tables: StoreTables
            do { tables = try StoreTables(environment) } catch { throw LarderError(error) }
            let store = Store(environment: environment, tables: tables, options: options, counters: counters, log: log)
            schemaFound = try store.readMetaVersion() != nil
            try store.prepareSchema()
            log.opened(store.info(), options: options)
            return store
        } catch {
            // A store this open created but could not finish is not left behind half-made.
            if environment.createdStore && !schemaFound {
                environment.closeRemovingCreatedFiles()
            } else {
                environment.close()
            }
            log.openFailed(error)
            throw error
        }
    }

    /// Finishes queued writes and closes the store. Idempotent.
    ///
    /// After LMDB reported a fatal error (``EnvironmentInfo/restartRequired``), close the store
    /// and open it again: nothing that committed is lost.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        environment.close()
        log.closed()
    }

    /// The directory of the store.
    public var path: String { environment.path }

    // MARK: Reading

    /// Runs `body` in a read-only snapshot on the calling thread; never waits for the writer.
    ///
    /// ```swift
    /// let head = try store.read { view in try view.audit.head() }
    /// ```
    ///
    /// - throws: whatever `body` throws; STORAGE_UNAVAILABLE when every reader slot is taken or
    ///   the store is closed; PERSISTENCE_ERROR ("restart required") after LMDB's fatal error.
    public func read<R>(_ body: (StoreView) throws -> R) throws -> R {
        try readTables { txn in try body(StoreView(txn: txn, tables: tables)) }
    }

    /// Runs `body` over the tables of one read snapshot, in the contract's errors.
    func readTables<R>(_ body: (TableReader) throws -> R) throws -> R {
        do {
            return try environment.read { txn in
                let reader = TableReader(txn)
                defer { reader.close() }
                return try body(reader)
            }
        } catch {
            throw LarderError.contract(error)
        }
    }

    // MARK: Schema

    private func prepareSchema() throws(LarderError) {
        let found = try readMetaVersion()
        schemaFoundAtOpen.withLock { $0 = found }
        switch found {
        case nil:
            guard !options.readOnly else {
                throw LarderError(.notFound, "\(path) is not a Larder store (it has no schema version).", failurePoint: .open)
            }
            try createSchema()
        case let version? where version > Self.schemaVersion:
            throw LarderError(.persistenceError,
                              "The store at \(path) has schema version \(version); this Larder reads up to \(Self.schemaVersion). Upgrade Larder; the store was not touched.",
                              failureClass: .dataInconsistency, failurePoint: .open)
        case let version? where version < Self.schemaVersion:
            guard !options.readOnly else {
                throw LarderError(.persistenceError,
                                  "The store at \(path) has schema version \(version); this Larder reads schema \(Self.schemaVersion). Run `larder migrate --db \(path)` (or open it writable once) to migrate it; it was not touched.",
                                  failureClass: .dataInconsistency, failurePoint: .open)
            }
        default:
            break
        }
        // Before any other record of this open: an append at a 256-record boundary reads the
        // stored nodes below it.
        if !options.readOnly && options.keepsMerkleTree { try buildMissingMerkleNodes() }
        if let found, found < Self.schemaVersion { try migrateFromSchema1() }
        if !options.readOnly && options.recordsPolicy { try recordPolicy() }
        if !options.readOnly && options.recordsLimits { try recordLimits() }
        refreshRecordedLimits()
    }

    /// Runs one of the store's own writes at open (schema, policy, limits) in the contract's errors.
    func internalWrite<R>(_ context: WriteContext, _ body: (StoreTransaction) throws -> R) throws(LarderError) -> WriteOutcome<R> {
        do {
            return try write(context, body)
        } catch let error as LarderError {
            throw error
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    /// Records the limits this process opened with (`LIMITS_RECORDED`) when they differ from the
    /// ones recorded last; an absent record stands for ``RecordedLimits/implied``.
    private func recordLimits() throws(LarderError) {
        let mine = RecordedLimits(mapSizeBytesMax: options.limits.mapSizeBytesMax, readersMax: options.limits.readersMax)
        // Most opens change nothing: check in a snapshot first, so they cost no commit.
        let current = try readRecordedLimits()
        guard (current ?? .implied) != mine else { return }
        let now = options.clock.now().unixMicros
        let context = WriteContext(actor: .larder, requestID: "larder.limits.\(now)")
        let outcome = try internalWrite(context) { txn -> RecordedLimits?? in
            let recorded = try txn.txn.get(tables.meta, MetaKey.limits).map { bytes throws(LarderError) in
                try RecordedLimits.decode(bytes)
            }
            guard (recorded ?? .implied) != mine else { return nil }
            try txn.txn.put(tables.meta, MetaKey.limits, mine.encoded())
            var payload = JSONWriter()
            payload.object { o in
                o.field("map_size_bytes_max", mine.mapSizeBytesMax)
                o.field("readers_max", mine.readersMax)
                if let recorded {
                    o.object("previous") { p in
                        p.field("map_size_bytes_max", recorded.mapSizeBytesMax)
                        p.field("readers_max", recorded.readersMax)
                    }
                } else {
                    o.rawField("previous", json: "null")
                }
            }
            try txn.appendAudit(AuditDraft(event: .limitsRecorded, payload: payload.text))
            return .some(recorded)
        }
        if let previous = outcome.result { log.limitsRecorded(mine, previous: previous, context: context, seq: outcome.auditSeq) }
    }

    private func readRecordedLimits() throws(LarderError) -> RecordedLimits? {
        do {
            return try readTables { txn -> RecordedLimits? in
                guard let bytes = try txn.get(tables.meta, MetaKey.limits) else { return nil }
                return try RecordedLimits.decode(bytes)
            }
        } catch let error as LarderError {
            throw error
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    /// Rereads the recorded limits (another process may have recorded new ones). Keeps the last
    /// known ones when the store cannot be read now, or when called inside a transaction.
    private func refreshRecordedLimits() {
        guard environment.canBeginTransactionHere else { return }
        do {
            let limits = try readRecordedLimits()
            recordedLimits.withLock { $0 = limits }
        } catch {
            // Unreadable now (readers full, closed): the last known limits stand.
        }
    }

    /// Records the policy in force (`POLICY_CHANGED`, with the whole policy as payload) when it
    /// differs from the one recorded last.
    private func recordPolicy() throws(LarderError) {
        let policyJSON = try options.policy.canonicalJSON()
        let digest = AuditChain.sha256(policyJSON)
        let now = options.clock.now().unixMicros
        let context = WriteContext(actor: .larder, requestID: "larder.policy.\(now)")
        let outcome = try internalWrite(context) { txn -> [UInt8]?? in
            let recorded = try txn.txn.get(tables.meta, MetaKey.policySHA256)
            guard recorded != digest else { return nil }
            try txn.txn.put(tables.meta, MetaKey.policySHA256, digest)
            var payload = JSONWriter()
            payload.object { o in
                o.field("policy_sha256", digest.hexString)
                o.field("previous_sha256", recorded?.hexString)
                o.rawField("policy", json: String(decoding: policyJSON, as: UTF8.self))
            }
            try txn.appendAudit(AuditDraft(event: .policyChanged, payload: payload.text))
            return .some(recorded)
        }
        if let previous = outcome.result {
            log.policyRecorded(sha256: digest.hexString, previous: previous?.hexString, context: context, seq: outcome.auditSeq)
        }
    }

    fileprivate func readMetaVersion() throws(LarderError) -> UInt32? {
        do {
            return try readTables { txn -> UInt32? in
                guard let bytes = try txn.get(tables.meta, MetaKey.schemaVersion) else { return nil }
                var reader = ByteReader(bytes)
                return try reader.readUInt32()
            }
        } catch let error as LarderError {
            throw error
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    private func createSchema() throws(LarderError) {
        let now = options.clock.now().unixMicros
        let context = WriteContext(actor: .larder, requestID: "larder.open.\(now)")
        let outcome = try internalWrite(context) { txn -> Bool in
            // Another process may have created the schema since we looked.
            guard try txn.txn.get(tables.meta, MetaKey.schemaVersion) == nil else { return false }
            var version = ByteWriter()
            version.write(Self.schemaVersion)
            try txn.txn.put(tables.meta, MetaKey.schemaVersion, version.bytes)
            try txn.txn.put(tables.meta, MetaKey.formatVersion, [AuditRecord.formatVersion])
            var created = ByteWriter()
            created.write(txn.timeMicros)
            try txn.txn.put(tables.meta, MetaKey.createdAt, created.bytes)
            var orderedFrom = ByteWriter()
            orderedFrom.write(UInt64(1))
            try txn.txn.put(tables.meta, MetaKey.timeOrderedFrom, orderedFrom.bytes)
            var payload = JSONWriter()
            payload.object { o in
                o.field("from_schema", 0)
                o.field("to_schema", Self.schemaVersion)
                o.field("audit_format", AuditRecord.formatVersion)
            }
            try txn.appendAudit(AuditDraft(event: .schemaMigrated, payload: payload.text))
            return true
        }
        if outcome.result { log.schemaCreated(version: Self.schemaVersion, context: context, seq: outcome.auditSeq) }
    }

    // MARK: State

    /// Counters since open: writes, replays, errors by code, latency, writer statistics.
    ///
    /// The same figures go to ``Options/metricsFactory`` as they happen.
    public var metrics: StoreMetricsSnapshot {
        counters.snapshot(writer: environment.writerStatistics)
    }

    /// Map size and use, readers, breaker state. Safe at any time, also after ``close()``.
    ///
    /// `mapSizeBytesMax` (and so `mapUseFraction`) is the maximum recorded in the store by the
    /// application that writes it (``Options/recordsLimits``), whatever this process opened with;
    /// this process's own maximum when none is recorded.
    ///
    /// ```swift
    /// let info = store.info()
    /// print(info.mapUsedBytes, info.mapSizeBytesMax, info.readersUsed, info.breaker)
    /// ```
    public func info() -> EnvironmentInfo {
        let info = environment.info()
        guard info.isOpen else { return EnvironmentInfo(info, durability: options.durability, recordedMapSizeBytesMax: nil) }
        refreshRecordedLimits()
        let recorded = recordedLimits.withLock { $0 }
        return EnvironmentInfo(info, durability: options.durability, recordedMapSizeBytesMax: recorded?.mapSizeBytesMax)
    }

    /// The limits recorded in the store by its writer, or nil when none are recorded (then the
    /// writer used ``RecordedLimits/implied``, or a Larder that did not record limits).
    ///
    /// - throws: STORAGE_UNAVAILABLE when the store is closed or no reader slot is free.
    public func recordedStoreLimits() throws -> RecordedLimits? { try readRecordedLimits() }

    /// Entry counts and pages of every table, in one snapshot.
    ///
    /// - throws: STORAGE_UNAVAILABLE when the store is closed or no reader slot is free.
    public func tableStatistics() throws -> [TableStatistics] {
        try readTables { txn in try txn.allStatistics() }
    }

    /// A compacting copy of the store into `destination` (an empty or missing directory), taken
    /// while writers run.
    ///
    /// ```swift
    /// try store.copy(to: "/var/backups/larder-2026-11-23")
    /// ```
    ///
    /// - throws: VALIDATION_FAILED for a destination that holds a store; STORAGE_UNAVAILABLE when
    ///   its disk is full or the store is closed; PERSISTENCE_ERROR when LMDB fails to copy.
    public func copy(to destination: String, compact: Bool = true) throws(LarderError) {
        do { try environment.copy(to: destination, compact: compact) } catch { throw LarderError(error) }
    }
}

extension Store {
    /// Test-only: the environment under the store, for raw corruption in tests.
    package var environmentForTesting: Environment { environment }
}
