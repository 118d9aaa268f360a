import Foundation
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
public final class Store: Sendable {
    /// How to open a store.
    public struct Options: Sendable {
        public var limits: Limits
        public var durability: Durability
        /// Open read-only: queries and verify only; works while another process writes.
        public var readOnly: Bool
        /// Where audit times, decision ages and deadlines come from.
        public var clock: any LarderClock
        public var breaker: BreakerPolicy
        /// The failure policy the store enforces; recorded in the audit log when it changes.
        public var policy: FailurePolicy
        /// Whether opening records `policy` when it differs from the one recorded last. Tools that
        /// apply no responses (the admin server, backups) open with false, so that they never
        /// replace the embedding application's policy with their own default.
        public var recordsPolicy = true
        /// Whether a writable open creates a missing store. Tools that expect an existing store
        /// open with false and get NOT_FOUND for a mistyped path.
        public var createIfMissing = true
        /// Whether a writable open records `limits.mapSizeBytesMax` and `limits.readersMax` in the
        /// store (`LIMITS_RECORDED`, only when they differ from the recorded ones), so that every
        /// other process reports map use against the limits of the application that writes the
        /// store. Tools that only look at a store (the admin server, backups) open with false.
        public var recordsLimits = true
        /// Test-only: a fault injected into every audit append.
        @_spi(Testing) public var auditFaultInjection: AuditFaultInjection?
        /// Test-only: LMDB calls to fail on purpose.
        package var lmdbFaults: LMDBFaults?

        public init(limits: Limits = Limits(), durability: Durability = .durable, readOnly: Bool = false,
                    clock: any LarderClock = SystemClock(), breaker: BreakerPolicy = BreakerPolicy(),
                    policy: FailurePolicy = .default) {
            self.policy = policy
            self.limits = limits
            self.durability = durability
            self.readOnly = readOnly
            self.clock = clock
            self.breaker = breaker
            self.auditFaultInjection = nil
        }
    }

    /// The schema version this build writes and reads. Opening a newer store is refused.
    public static let schemaVersion: UInt32 = 1

    /// Every table of a store, for `Environment.open`.
    static var tableNames: [String] { StoreTables.allNames }

    let environment: Environment
    let tables: StoreTables
    public let options: Options
    let counters = StoreMetrics()
    /// The limits recorded in the store, as last read (nil: none recorded).
    private let recordedLimits = Mutex<RecordedLimits?>(nil)

    private init(environment: Environment, tables: StoreTables, options: Options) {
        self.environment = environment
        self.tables = tables
        self.options = options
    }

    /// Opens the store in directory `path`, creating it (with its schema, in one audited
    /// transaction) when it does not exist and the store is writable.
    ///
    /// A store whose creation fails (a full disk, an I/O error) is removed again: a failed open
    /// leaves no half-created store behind.
    ///
    /// - throws: VALIDATION_FAILED for bad options or a path already open in this process;
    ///   NOT_FOUND for a read-only open of a missing store; STORAGE_UNAVAILABLE (retryable) when
    ///   the disk is too full to create or open the store; PERSISTENCE_ERROR for a store with a
    ///   newer schema or a file LMDB cannot open.
    public static func open(at path: String, options: Options = Options()) throws(LarderError) -> Store {
        try options.policy.validate()
        var environmentOptions = Environment.Options(limits: options.limits, durability: options.durability,
                                                     readOnly: options.readOnly, breaker: options.breaker,
                                                     createIfMissing: options.createIfMissing)
        environmentOptions.faults = options.lmdbFaults
        let environment = try Environment.open(at: path, options: environmentOptions, tables: tableNames)
        var schemaFound = false
        do {
            let tables = try StoreTables(environment)
            let store = Store(environment: environment, tables: tables, options: options)
            schemaFound = try store.readMetaVersion() != nil
            try store.prepareSchema()
            return store
        } catch {
            // A store this open created but could not finish is not left behind half-made.
            if environment.createdStore && !schemaFound {
                environment.closeRemovingCreatedFiles()
            } else {
                environment.close()
            }
            throw error
        }
    }

    /// Finishes queued writes and closes the store. Idempotent.
    ///
    /// After LMDB reported a fatal error (``EnvironmentInfo/restartRequired``), close the store
    /// and open it again: nothing that committed is lost.
    public func close() { environment.close() }

    /// The directory of the store.
    public var path: String { environment.path }

    // MARK: Reading

    /// Runs `body` in a read-only snapshot on the calling thread; never waits for the writer.
    ///
    /// ```swift
    /// let head = try store.read { view in try view.audit.head() }
    /// ```
    public func read<R>(_ body: (StoreView) throws -> R) throws -> R {
        try environment.read { txn in try body(StoreView(txn: txn, tables: tables)) }
    }

    // MARK: Writing

    /// Runs `body` in one write transaction and returns once it is durable. `body` must append an
    /// audit record if it changes anything. Blocks the calling thread; from async code use the
    /// async overload.
    ///
    /// A context with a decisionID needs the request to fingerprint: use
    /// ``write(_:request:_:)-(_,_,(StoreTransaction)->R)``.
    ///
    /// - throws: VALIDATION_FAILED for a bad context; AUDIT_FAILED when the change has no audit
    ///   record or it cannot be written; STORAGE_UNAVAILABLE when the disk or map is full or the
    ///   write breaker is open; whatever `body` throws. Nothing is written in every case.
    @discardableResult
    public func write<R>(_ context: WriteContext, _ body: (StoreTransaction) throws -> R) throws -> WriteOutcome<R> {
        let started = ContinuousClock.now
        do {
            try validateUnfingerprinted(context)
            let inner = try environment.write { txn in
                try self.transact(txn, context: context, decision: nil, encode: nil, body)
            }
            return try finish(inner, started: started) { _ in
                preconditionFailure("a write without a decision cannot replay")
            }
        } catch {
            throw failed(error, context: context)
        }
    }

    /// Runs `body` as the decision `context.decisionID` about `request`.
    ///
    /// The first time, `body` runs and its result is stored with the decision in the same
    /// transaction. Later calls with the same decisionID and an identical request return that
    /// result (``WriteOutcome/Kind/replayed``) and write nothing, not even an audit record. The
    /// same decisionID with a different request is CONFLICT and writes nothing. Without a
    /// decisionID this is a plain write.
    @discardableResult
    public func write<Q: FingerprintedRequest, R: Codable>(
        _ context: WriteContext, request: Q, _ body: (StoreTransaction) throws -> R
    ) throws -> WriteOutcome<R> {
        guard context.decisionID != nil else { return try write(context, body) }
        let started = ContinuousClock.now
        do {
            let (decision, replayed) = try decide(context, request: request, as: R.self)
            if let replayed { return replayed }
            let inner = try environment.write { txn in
                try self.transact(txn, context: context, decision: decision, encode: { result throws(LarderError) in try CanonicalJSON.encode(result) }, body)
            }
            return try finish(inner, started: started) { stored in try self.replay(stored, decision: decision, as: R.self) }
        } catch {
            throw failed(error, context: context)
        }
    }

    /// The async form of ``write(_:_:)``: suspends without blocking a cooperative thread while
    /// the writer and the disk work.
    @discardableResult
    public func write<R: Sendable>(
        _ context: WriteContext, _ body: @escaping @Sendable (StoreTransaction) throws -> R
    ) async throws -> WriteOutcome<R> {
        let started = ContinuousClock.now
        do {
            try validateUnfingerprinted(context)
            let inner = try await environment.write { txn in
                try self.transact(txn, context: context, decision: nil, encode: nil, body)
            }
            return try finish(inner, started: started) { _ in
                preconditionFailure("a write without a decision cannot replay")
            }
        } catch {
            throw failed(error, context: context)
        }
    }

    /// The async form of ``write(_:request:_:)-(_,_,(StoreTransaction)->R)``.
    @discardableResult
    public func write<Q: FingerprintedRequest, R: Codable & Sendable>(
        _ context: WriteContext, request: Q, _ body: @escaping @Sendable (StoreTransaction) throws -> R
    ) async throws -> WriteOutcome<R> {
        guard context.decisionID != nil else { return try await write(context, body) }
        let started = ContinuousClock.now
        do {
            let (decision, replayed) = try decide(context, request: request, as: R.self)
            if let replayed { return replayed }
            let inner = try await environment.write { txn in
                try self.transact(txn, context: context, decision: decision, encode: { result throws(LarderError) in try CanonicalJSON.encode(result) }, body)
            }
            return try finish(inner, started: started) { stored in try self.replay(stored, decision: decision, as: R.self) }
        } catch {
            throw failed(error, context: context)
        }
    }

    // MARK: The transaction boundary

    /// A decision to record with a write.
    struct DecisionPlan: Sendable {
        let id: String
        let operation: String
        let fingerprint: [UInt8]
    }

    /// What one transaction produced, before it is turned into a ``WriteOutcome``.
    enum Inner<R> {
        case committed(R, auditSeq: UInt64?, storedResult: [UInt8]?)
        /// The decision existed already when the transaction looked: nothing was run or written.
        case existing(DecisionRecord)
    }

    /// The decision of a write, and its replay when the decision was made before (checked in a
    /// read snapshot first, so that a replay never waits for the writer; the write transaction
    /// checks again).
    private func decide<Q: FingerprintedRequest, R: Decodable>(
        _ context: WriteContext, request: Q, as: R.Type
    ) throws -> (DecisionPlan, WriteOutcome<R>?) {
        let decision = try plan(context, request: request)
        guard let stored = try read({ view in try view.decisions.decision(id: decision.id) }) else { return (decision, nil) }
        return (decision, try replay(stored, decision: decision, as: R.self))
    }

    private func plan<Q: FingerprintedRequest>(_ context: WriteContext, request: Q) throws(LarderError) -> DecisionPlan {
        try context.validate()
        guard let id = context.decisionID else { preconditionFailure("plan without a decisionID") }
        return DecisionPlan(id: id, operation: Q.operationName,
                            fingerprint: try CanonicalJSON.fingerprint(actor: context.actor, request: request))
    }

    private func validateUnfingerprinted(_ context: WriteContext) throws(LarderError) {
        try context.validate()
        guard context.decisionID == nil else {
            throw LarderError(.validationFailed,
                              "decisionID \(JSONWriter.quoted(context.decisionID!)) needs the request to fingerprint; use write(_:request:_:).",
                              requestID: context.requestID)
        }
    }

    /// The body of every write: decision check, the caller's change, the fail-closed audit rule,
    /// the decision record. Runs on the writer thread inside one LMDB transaction.
    func transact<R>(
        _ txn: WriteTransaction, context: WriteContext, decision: DecisionPlan?,
        encode: ((R) throws(LarderError) -> [UInt8])?, _ body: (StoreTransaction) throws -> R
    ) throws -> Inner<R> {
        do {
            if let decision, let bytes = try txn.get(tables.decisions, decision.id) {
                return .existing(try DecisionRecord.decode(id: decision.id, bytes))
            }
            let time = options.clock.now().unixMicros
            let storeTransaction = StoreTransaction(context: context, timeMicros: time, txn: txn, tables: tables,
                                                    fault: options.auditFaultInjection, policy: options.policy)
            let result = try body(storeTransaction)
            if let broken = storeTransaction.brokenBy { throw broken }
            guard !storeTransaction.mutated || !storeTransaction.appended.isEmpty else {
                throw LarderError(.auditFailed,
                                  "The write changed the store but appended no audit record; nothing was written.",
                                  failurePoint: .auditWrite)
            }
            var stored: [UInt8]?
            if let decision, let encode {
                let bytes = try encode(result)
                if storeTransaction.mutated {
                    let record = DecisionRecord(decisionID: decision.id, operation: decision.operation,
                                                fingerprint: decision.fingerprint, timeMicros: time,
                                                auditSeq: storeTransaction.lastAuditSeq ?? 0, result: bytes)
                    guard try txn.put(tables.decisions, decision.id, record.encoded(), mode: .insertNew) else {
                        preconditionFailure("decision \(decision.id) appeared inside its own transaction")
                    }
                    try txn.put(tables.decisionsByTime, KeyPair(time, decision.id), Empty())
                }
                stored = bytes
            }
            return .committed(result, auditSeq: storeTransaction.lastAuditSeq, storedResult: stored)
        } catch let error as LarderError {
            throw error.rolledBack()
        }
    }

    private func finish<R>(
        _ inner: Inner<R>, started: ContinuousClock.Instant, replay: (DecisionRecord) throws -> WriteOutcome<R>
    ) throws -> WriteOutcome<R> {
        switch inner {
        case .committed(let result, let seq, let stored):
            counters.committed(after: ContinuousClock.now - started)
            return WriteOutcome(kind: .committed, result: result, auditSeq: seq, storedResult: stored)
        case .existing(let record):
            return try replay(record)
        }
    }

    private func replay<R: Decodable>(_ stored: DecisionRecord, decision: DecisionPlan, as: R.Type) throws -> WriteOutcome<R> {
        guard stored.fingerprint == decision.fingerprint else {
            let what = stored.operation == decision.operation
                ? "a different \(decision.operation) request"
                : "a \(decision.operation) request, but it was first used for \(stored.operation)"
            throw LarderError(.conflict,
                              "decisionID \(JSONWriter.quoted(decision.id)) was already used for \(what); nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        counters.replayed()
        return WriteOutcome(kind: .replayed, result: try CanonicalJSON.decode(R.self, from: stored.result),
                            auditSeq: stored.auditSeq == 0 ? nil : stored.auditSeq, storedResult: stored.result)
    }

    private func failed(_ error: any Error, context: WriteContext) -> any Error {
        counters.failed(error)
        guard let larderError = error as? LarderError else { return error }
        return larderError.withRequestID(context.requestID)
    }

    // MARK: Schema

    private func prepareSchema() throws(LarderError) {
        let found = try readMetaVersion()
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
        default:
            break
        }
        if !options.readOnly && options.recordsPolicy { try recordPolicy() }
        if !options.readOnly && options.recordsLimits { try recordLimits() }
        refreshRecordedLimits()
    }

    /// Records the limits this process opened with (`LIMITS_RECORDED`) when they differ from the
    /// ones recorded last; an absent record stands for ``RecordedLimits/implied``.
    private func recordLimits() throws(LarderError) {
        let mine = RecordedLimits(mapSizeBytesMax: options.limits.mapSizeBytesMax, readersMax: options.limits.readersMax)
        // Most opens change nothing: check in a snapshot first, so they cost no commit.
        let current = try readRecordedLimits()
        guard (current ?? .implied) != mine else { return }
        let now = options.clock.now().unixMicros
        do {
            try write(WriteContext(actor: .larder, requestID: "larder.limits.\(now)")) { txn in
                let recorded = try txn.txn.get(tables.meta, MetaKey.limits).map { bytes throws(LarderError) in
                    try RecordedLimits.decode(bytes)
                }
                guard (recorded ?? .implied) != mine else { return }
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
            }
        } catch let error as LarderError {
            throw error
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    private func readRecordedLimits() throws(LarderError) -> RecordedLimits? {
        do {
            return try environment.read { txn -> RecordedLimits? in
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
        do {
            try write(WriteContext(actor: .larder, requestID: "larder.policy.\(now)")) { txn in
                let recorded = try txn.txn.get(tables.meta, MetaKey.policySHA256)
                guard recorded != digest else { return }
                try txn.txn.put(tables.meta, MetaKey.policySHA256, digest)
                var payload = JSONWriter()
                payload.object { o in
                    o.field("policy_sha256", digest.hexString)
                    o.field("previous_sha256", recorded?.hexString)
                    o.rawField("policy", json: String(decoding: policyJSON, as: UTF8.self))
                }
                try txn.appendAudit(AuditDraft(event: .policyChanged, payload: payload.text))
            }
        } catch let error as LarderError {
            throw error
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    fileprivate func readMetaVersion() throws(LarderError) -> UInt32? {
        do {
            return try environment.read { txn -> UInt32? in
                guard let bytes = try txn.get(tables.meta, MetaKey.schemaVersion) else { return nil }
                var reader = ByteReader(bytes)
                return try reader.read(UInt32.self)
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
        do {
            try write(context) { txn in
                // Another process may have created the schema since we looked.
                guard try txn.txn.get(tables.meta, MetaKey.schemaVersion) == nil else { return }
                var version = ByteWriter()
                version.write(Self.schemaVersion)
                try txn.txn.put(tables.meta, MetaKey.schemaVersion, version.bytes)
                try txn.txn.put(tables.meta, MetaKey.formatVersion, [AuditRecord.formatVersion])
                var created = ByteWriter()
                created.write(txn.timeMicros)
                try txn.txn.put(tables.meta, MetaKey.createdAt, created.bytes)
                var payload = JSONWriter()
                payload.object { o in
                    o.field("from_schema", 0)
                    o.field("to_schema", Self.schemaVersion)
                    o.field("audit_format", AuditRecord.formatVersion)
                }
                try txn.appendAudit(AuditDraft(event: .schemaMigrated, payload: payload.text))
            }
        } catch let error as LarderError {
            throw error
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    // MARK: State

    /// Counters since open: writes, replays, errors by code, latency, writer statistics.
    public var metrics: StoreMetricsSnapshot {
        var snapshot = counters.snapshot
        snapshot.writer = environment.writerStatistics
        return snapshot
    }

    /// Map size and use, readers, breaker state. Safe at any time, also after ``close()``.
    ///
    /// `mapSizeBytesMax` (and so `mapUseFraction`) is the maximum recorded in the store by the
    /// application that writes it (``Options/recordsLimits``), whatever this process opened with;
    /// this process's own maximum when none is recorded.
    public func info() -> EnvironmentInfo {
        let info = environment.info()
        guard info.isOpen else { return info }
        refreshRecordedLimits()
        guard let recorded = recordedLimits.withLock({ $0 }) else { return info }
        return info.governed(byRecordedMapSizeBytesMax: recorded.mapSizeBytesMax)
    }

    /// The limits recorded in the store by its writer, or nil when none are recorded (then the
    /// writer used ``RecordedLimits/implied``, or a Larder that did not record limits).
    public func recordedStoreLimits() throws -> RecordedLimits? { try readRecordedLimits() }

    /// Entry counts and pages of every table, in one snapshot.
    public func tableStatistics() throws -> [TableStatistics] {
        try environment.read { txn in try txn.allStatistics() }
    }
}

extension Store.Inner: Sendable where R: Sendable {}

extension Store {
    /// Test-only: the environment under the store, for raw corruption in tests.
    @_spi(Testing)
    public var environmentForTesting: Environment { environment }

    /// A compacting copy of the store into `destination` (an empty or missing directory), taken
    /// while writers run.
    public func copy(to destination: String, compact: Bool = true) throws(LarderError) {
        try environment.copy(to: destination, compact: compact)
    }
}
