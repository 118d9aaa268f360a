import Crypto
import Foundation
public import Larder
public import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// How `larder ship` ships: batch size, following, polling, and the dependency's failure policy.
public struct ShipOptions: Sendable {
    /// The box's id in the fleet database: 1 to 128 bytes of letters, digits and `. _ : - / @ #`.
    public var boxID: String
    /// Records per batch (one PostgreSQL transaction each).
    public var batchRecords = 1_000
    /// Keep shipping as the box writes, until stopped. Without it, ship what is there and return.
    public var follow = false
    /// How often a follower looks for new records once it has caught up.
    public var pollInterval: Duration = .seconds(1)
    /// Retries of one batch. A follower ignores `attemptsMax` and retries until stopped, the
    /// breaker spacing its attempts.
    public var retry = RetryPolicy()
    public var breaker = DependencyBreaker.Policy()
    /// A batch that takes longer (a server that accepts but never answers) is abandoned and
    /// retried on a new connection. Measured on the system clock, whatever `clock` is.
    public var batchTimeout: Duration = .seconds(120)
    public var clock: FleetClock = .system
    /// Whether to keep `ship-state.json` beside the store (for `larder stats` and `/metrics`).
    public var writesStateFile = true
    /// Whether to create or migrate the schema; without it a database at another version is
    /// refused (a box role without CREATE rights against an administrator-migrated database).
    public var migratesSchema = true
    public var checkpoints: ShipCheckpointSource = .none
    /// How rows are inserted. COPY is the fast path; PostgreSQL refuses it on tables with
    /// row-level security, and then the shipper switches to multi-row INSERTs by itself.
    public var bulkInsert = BulkInsert.copy
    /// Where the shipper says what changes its dependency's state, once each, with `box_id`
    /// metadata: connections (info), retries (warning), the breaker opening (error), probing
    /// (notice) and closing (notice), the switch to INSERTs (notice), a refusal or a run given up
    /// (error); each committed batch at debug. Discards everything by default (the `larder` tool
    /// prints these events itself).
    public var logger = Logger(label: "larder.ship", factory: { _ in SwiftLogNoOpLogHandler() })

    public enum BulkInsert: String, Sendable, CaseIterable {
        /// `COPY larder_audit FROM STDIN`, falling back to `.insert` when the server refuses it.
        case copy
        /// Multi-row `INSERT … VALUES` with bound parameters, up to ``FleetColumns/rowsPerInsertMax`` rows each.
        case insert
    }

    public static let batchRecordsMax = 10_000
    public static let pollIntervalMin: Duration = .milliseconds(50)
    public static let pollIntervalMax: Duration = .seconds(60)
    public static let batchTimeoutMax: Duration = .seconds(3_600)

    public init(boxID: String) { self.boxID = boxID }

    /// - throws: VALIDATION_FAILED naming the option out of range.
    public func validate() throws(LarderError) {
        try WriteContext.validateIdentifier(boxID, field: "box id")
        guard (1...Self.batchRecordsMax).contains(batchRecords) else {
            throw LarderError(.validationFailed, "--batch \(batchRecords) is not in 1...\(Self.batchRecordsMax).")
        }
        guard pollInterval >= Self.pollIntervalMin, pollInterval <= Self.pollIntervalMax else {
            throw LarderError(.validationFailed, "The poll interval \(pollInterval) is not in \(Self.pollIntervalMin)...\(Self.pollIntervalMax).")
        }
        guard batchTimeout > .zero, batchTimeout <= Self.batchTimeoutMax else {
            throw LarderError(.validationFailed, "The batch timeout \(batchTimeout) is not in (0, \(Self.batchTimeoutMax)].")
        }
    }
}

/// Where a shipper stands after a batch.
public struct ShipProgress: Sendable, Hashable {
    public let boxID: String
    /// The newest seq the fleet database holds for the box.
    public let shippedSeq: UInt64
    /// The box's newest seq when the batch was read.
    public let headSeq: UInt64
    /// Records this run has inserted so far.
    public let recordsThisRun: UInt64
    /// Records in the batch just committed (0 when there was nothing new).
    public let batchRecords: Int
}

/// What a shipper reports while it runs.
public enum ShipEvent: Sendable {
    /// Connected (again) and the schema is ready.
    case connected(destination: String, migratedVersions: [Int])
    case committed(ShipProgress)
    /// Nothing new to ship: once per catch-up.
    case upToDate(ShipProgress)
    case retrying(attempt: Int, delay: Duration, reason: String)
    /// The server refused COPY (row-level security): rows go in with INSERTs from now on.
    case switchedToInsert(reason: String)
    case breaker(DependencyBreaker.State)
}

/// What one `run` did.
public struct ShipSummary: Sendable, Hashable {
    public let boxID: String
    /// What the fleet database held for the box when the run started.
    public let startSeq: UInt64
    /// What it holds now.
    public let shippedSeq: UInt64
    /// The box's newest seq at the last look.
    public let headSeq: UInt64
    public let recordsShipped: UInt64
    public let batches: Int
    /// Time spent, on the options' clock.
    public let elapsed: Duration
    /// True when a stop request ended a follower (or cut a retry wait short).
    public let stopped: Bool

    public var rowsPerSecond: Double {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return seconds > 0 ? Double(recordsShipped) / seconds : 0
    }
}

/// Ships one box's audit log to the fleet database: records in seq order with their bytes,
/// hashes and decoded columns, in batches, each batch one PostgreSQL transaction (a COPY, or
/// multi-row INSERTs where COPY is refused) that also advances `larder_boxes`.
///
/// ```swift
/// let store = try Store.open(at: path, options: .init(readOnly: true))
/// let shipper = Shipper(store: store, destination: try FleetDestination(url: url), options: ShipOptions(boxID: "kitchen-7"))
/// let summary = try await shipper.run()
/// print("\(summary.recordsShipped) records, \(Int(summary.rowsPerSecond)) rows/s")
/// ```
///
/// Idempotent and resumable: it starts after what the fleet database holds for the box. Before
/// inserting it checks continuity, under a row lock on the box so two shippers of one box take
/// turns: the newest shipped row must be the one `larder_boxes` names, the box's own record at
/// that seq must have the same chain hash, and every new record must extend the chain. A box
/// whose history differs from what was shipped (a fork, a restored older backup, another box's
/// store) is refused with CONFLICT and nothing is inserted.
///
/// The store is only read, in short read transactions that never wait for (or hold up) the
/// box's writer; open it read-only.
public struct Shipper: Sendable {
    public let store: Store
    public let destination: FleetDestination
    public let options: ShipOptions
    let onEvent: @Sendable (ShipEvent) -> Void
    let afterCommit: @Sendable (ShipProgress) async -> Void

    public init(store: Store, destination: FleetDestination, options: ShipOptions,
                onEvent: @escaping @Sendable (ShipEvent) -> Void = { _ in }) {
        self.init(store: store, destination: destination, options: options, onEvent: onEvent, afterCommit: { _ in })
    }

    /// Test-only: `afterCommit` runs after every committed batch, before the next begins (to stop
    /// the server mid-ship at a known point).
    package init(store: Store, destination: FleetDestination, options: ShipOptions,
                 onEvent: @escaping @Sendable (ShipEvent) -> Void = { _ in },
                 afterCommit: @escaping @Sendable (ShipProgress) async -> Void) {
        self.store = store
        self.destination = destination
        self.options = options
        let logger = options.logger
        self.onEvent = { event in
            Self.log(event, to: logger)
            onEvent(event)
        }
        self.afterCommit = afterCommit
    }

    /// Ships until the box is up to date (or, following, until `stop` is requested).
    ///
    /// - throws: VALIDATION_FAILED for bad options or URL; CONFLICT (data inconsistency) for a
    ///   box whose history differs from what the fleet database holds; STORAGE_UNAVAILABLE
    ///   (external dependency) when the database stayed unreachable through every retry;
    ///   PERSISTENCE_ERROR for other database errors. Each message says what was shipped so far.
    public func run(stop: ShipStop = ShipStop()) async throws(LarderError) -> ShipSummary {
        try options.validate()
        let configuration = try destination.configuration()
        let clock = options.clock
        let started = clock.now()
        let logger = options.logger
        let onEvent = self.onEvent
        let breaker = DependencyBreaker(name: destination.redacted, policy: options.breaker, clock: clock,
                                        onChange: { onEvent(.breaker($0)) })
        let retry = options.follow
            ? RetryPolicy(attemptsMax: nil, initialDelay: options.retry.initialDelay, delayMax: options.retry.delayMax)
            : options.retry
        let slot = ConnectionSlot(configuration: configuration, usesInsert: options.bulkInsert == .insert)
        let guarded = GuardedCall(retry: retry, breaker: breaker, clock: clock,
                                  pause: { await stop.pause($0, clock: clock) },
                                  onRetry: { attempt, error, delay in
                                      onEvent(.retrying(attempt: attempt, delay: delay, reason: FleetFailure.describe(error)))
                                  })
        var run = RunState()
        do {
            let summary = try await ship(slot: slot, guarded: guarded, stop: stop, run: &run, started: started)
            await slot.drop()
            return summary
        } catch {
            await slot.drop()
            logger.error("shipping stopped: \(error.message)", metadata: ["box_id": "\(options.boxID)", "error_code": "\(error.code.rawValue)"])
            throw error
        }
    }

    /// Logs what a shipper event says about the fleet database (``ShipOptions/logger``).
    static func log(_ event: ShipEvent, to logger: Logger) {
        switch event {
        case .connected(let destination, let migrated):
            logger.info("connected to the fleet database", metadata: ["destination": "\(destination)", "migrated": "\(migrated)"])
        case .committed(let progress):
            logger.debug("batch committed", metadata: ["box_id": "\(progress.boxID)", "shipped_seq": "\(progress.shippedSeq)",
                                                       "records": "\(progress.batchRecords)"])
        case .upToDate(let progress):
            logger.debug("up to date", metadata: ["box_id": "\(progress.boxID)", "shipped_seq": "\(progress.shippedSeq)"])
        case .retrying(let attempt, let delay, let reason):
            logger.warning("fleet database unreachable; retrying", metadata: ["attempt": "\(attempt)", "delay": "\(delay)", "reason": "\(reason)"])
        case .switchedToInsert(let reason):
            logger.notice("COPY refused; shipping with INSERTs", metadata: ["reason": "\(reason)"])
        case .breaker(let state):
            switch state {
            case .open: logger.error("fleet database breaker open", metadata: ["state": "\(state)"])
            case .halfOpen: logger.notice("fleet database breaker probing")
            case .closed: logger.notice("fleet database breaker closed")
            }
        }
    }

    private func ship(slot: ConnectionSlot, guarded: GuardedCall, stop: ShipStop, run: inout RunState,
                      started: Duration) async throws(LarderError) -> ShipSummary {
        let clock = options.clock
        let onEvent = self.onEvent
        while true {
            if stop.isRequested || Task.isCancelled {
                run.stopped = true
                break
            }
            let outcome: BatchOutcome
            do {
                outcome = try await guarded.run {
                    do {
                        // The whole attempt, connecting included, is bounded: a server that
                        // accepts but never answers must not hold the shipper (or its stop).
                        return try await withBatchTimeout(options.batchTimeout, onTimeout: { await slot.abort() }) { [self] in
                            let connection = try await slot.connection(self, onEvent: onEvent)
                            let insert = slot.usesInsert
                            do {
                                return try await self.shipBatch(on: connection, insert: insert)
                            } catch where !insert && FleetFailure.sqlState(error) == "0A000" {
                                // COPY is not supported here (row-level security): the same batch
                                // again, with INSERTs, and INSERTs from now on.
                                slot.usesInsert = true
                                onEvent(.switchedToInsert(reason: FleetFailure.describe(error)))
                                return try await self.shipBatch(on: connection, insert: true)
                            }
                        }
                    } catch {
                        if FleetFailure.isTransient(error) { await slot.drop() }
                        throw error
                    }
                }
            } catch is GuardedCall.Stopped {
                run.stopped = true
                break
            } catch is CancellationError {
                run.stopped = true
                break
            } catch let gaveUp as GuardedCall.GaveUp {
                let reason = FleetFailure.describe(gaveUp.lastError)
                let seconds = Int(gaveUp.elapsed.components.seconds)
                let what = gaveUp.breakerOpen
                    ? "\(destination.redacted) failed \(gaveUp.attempts) time(s) in \(seconds) s and its breaker is open"
                    : "\(destination.redacted) did not answer after \(gaveUp.attempts) attempt(s) over \(seconds) s"
                let error = LarderError(.storageUnavailable, "\(what) (last error: \(reason)). \(run.account(boxID: options.boxID))",
                                        failureClass: .externalDependency, failurePoint: "ship", retryable: true)
                saveState(run, error: error)
                throw error
            } catch {
                var failure = FleetFailure.larderError(error, doing: "Shipping box \(options.boxID) to \(destination.redacted)")
                failure.message += " " + run.account(boxID: options.boxID)
                saveState(run, error: failure)
                throw failure
            }
            switch outcome {
            case .committed(let batch):
                if !run.observed { run.startSeq = batch.firstSeq - 1 }
                run.record(batch)
                let progress = ShipProgress(boxID: options.boxID, shippedSeq: batch.lastSeq, headSeq: batch.headSeq,
                                            recordsThisRun: run.recordsShipped, batchRecords: batch.count)
                saveState(run, error: nil)
                onEvent(.committed(progress))
                await afterCommit(progress)
                run.reportedUpToDate = false
            case .upToDate(let shippedSeq, let chainHash, let headSeq):
                if !run.observed { run.startSeq = shippedSeq }
                run.observe(shippedSeq: shippedSeq, chainHash: chainHash, headSeq: headSeq)
                if !run.reportedUpToDate {
                    saveState(run, error: nil)
                    onEvent(.upToDate(ShipProgress(boxID: options.boxID, shippedSeq: shippedSeq, headSeq: headSeq,
                                                   recordsThisRun: run.recordsShipped, batchRecords: 0)))
                    run.reportedUpToDate = true
                }
                guard options.follow else { return summary(run, elapsed: clock.now() - started) }
                // Caught up: watch the box's own head, and contact the database only when there
                // is something new to ship.
                while true {
                    if await stop.pause(options.pollInterval, clock: clock) {
                        run.stopped = true
                        return summary(run, elapsed: clock.now() - started)
                    }
                    guard let head = try? store.read({ view in try view.audit.head().seq }), head <= shippedSeq else { break }
                }
            }
        }
        return summary(run, elapsed: clock.now() - started)
    }

    private func summary(_ run: RunState, elapsed: Duration) -> ShipSummary {
        ShipSummary(boxID: options.boxID, startSeq: run.startSeq, shippedSeq: run.shippedSeq, headSeq: run.headSeq,
                    recordsShipped: run.recordsShipped, batches: run.batches, elapsed: elapsed, stopped: run.stopped)
    }

    private func saveState(_ run: RunState, error: LarderError?) {
        guard options.writesStateFile else { return }
        let now = store.options.clock.now().unixMicros
        var state = (try? ShipState.load(storePath: store.path)) ?? nil
        if state?.boxID != options.boxID || state?.destination != destination.redacted { state = nil }
        if run.observed {
            let shippedAt = run.batches > 0 ? now : state?.shippedAtMicros
            state = ShipState(boxID: options.boxID, destination: destination.redacted, shippedSeq: run.shippedSeq,
                              shippedChainHash: run.shippedChainHash, shippedAtMicros: shippedAt,
                              lastAttemptAtMicros: now, lastError: error?.message)
        } else if state != nil {
            state!.lastAttemptAtMicros = now
            state!.lastError = error?.message
        } else {
            // Never reached the database and never shipped before: nothing true to record about
            // the fleet's side, so the lag stays unknown rather than claiming seq 0.
            return
        }
        // The state file is a report, not a source of truth (the fleet database is): failing to
        // write it must not stop shipping.
        try? state!.save(storePath: store.path)
    }

    // MARK: One batch

    enum BatchOutcome: Sendable {
        case committed(CommittedBatch)
        case upToDate(shippedSeq: UInt64, chainHash: [UInt8], headSeq: UInt64)
    }

    struct CommittedBatch: Sendable {
        let firstSeq: UInt64
        let lastSeq: UInt64
        let lastChainHash: [UInt8]
        let headSeq: UInt64
        var count: Int { Int(lastSeq - firstSeq + 1) }
    }

    /// What the box's store holds past a seq, read in one snapshot.
    struct BoxRead {
        let head: ChainHead
        /// The box's record at the last shipped seq (nil when that seq is 0 or beyond its head).
        let overlap: AuditEntry?
        let entries: [AuditEntry]
    }

    func readBox(after shippedSeq: UInt64) throws -> BoxRead {
        try store.read { view in
            let head = try view.audit.head()
            let overlap = shippedSeq > 0 ? try view.audit.record(seq: shippedSeq) : nil
            var entries: [AuditEntry] = []
            var next = shippedSeq + 1
            while entries.count < options.batchRecords, next <= head.seq {
                let limit = min(AuditLog.recordsPerPageMax, options.batchRecords - entries.count)
                let page = try view.audit.records(fromSeq: next, limit: limit)
                guard !page.records.isEmpty else { break }
                entries += page.records
                next = page.records.last!.seq + 1
            }
            return BoxRead(head: head, overlap: overlap, entries: entries)
        }
    }

    func shipBatch(on connection: PostgresConnection, insert: Bool) async throws -> BatchOutcome {
        let logger = FleetLogging.silent
        let box = options.boxID
        try await connection.query("BEGIN", logger: logger)
        do {
            var shipped: (seq: UInt64, chain: [UInt8], key: String?)?
            for try await (seq, chain, key) in try await connection.query(
                "SELECT last_seq, last_chain_hash, verifier_key FROM larder_boxes WHERE box_id = \(box) FOR UPDATE",
                logger: logger).decode((Int64, ByteBuffer, String?).self) {
                shipped = (UInt64(seq), Array(buffer: chain), key)
            }
            guard let shipped else {
                throw LarderError(.persistenceError, "Box \(box) vanished from larder_boxes during shipping.",
                                  failureClass: .dataInconsistency, failurePoint: "ship.continuity", retryable: true)
            }
            try await checkNewestRow(on: connection, shippedSeq: shipped.seq, chainHash: shipped.chain)
            let read = try readBox(after: shipped.seq)
            try checkContinuity(read, shippedSeq: shipped.seq, chainHash: shipped.chain)
            guard let last = read.entries.last else {
                try await connection.query("ROLLBACK", logger: logger)
                return .upToDate(shippedSeq: shipped.seq, chainHash: shipped.chain, headSeq: read.head.seq)
            }
            if insert {
                for start in stride(from: 0, to: read.entries.count, by: FleetColumns.rowsPerInsertMax) {
                    let rows = read.entries[start..<min(start + FleetColumns.rowsPerInsertMax, read.entries.count)]
                    try await connection.query(try FleetColumns.insert(rows, boxID: box), logger: logger)
                }
            } else {
                var rows = CopyTextWriter(capacity: read.entries.count * 768)
                for entry in read.entries { rows.row(boxID: box, entry: entry) }
                try await connection.copyFrom(table: "larder_audit", columns: FleetColumns.auditColumns, logger: logger) { writer in
                    try await writer.write(ByteBuffer(bytes: rows.bytes))
                }
            }
            if !options.checkpoints.isNone {
                try await shipCheckpoints(on: connection, registeredKey: shipped.key, through: last.seq)
            }
            try await connection.query("""
                UPDATE larder_boxes SET last_seq = \(Int64(last.seq)), last_chain_hash = \(ByteBuffer(bytes: last.chainHash)),
                    shipped_at = now() WHERE box_id = \(box)
                """, logger: logger)
            try await connection.query("COMMIT", logger: logger)
            return .committed(CommittedBatch(firstSeq: read.entries[0].seq, lastSeq: last.seq, lastChainHash: last.chainHash,
                                             headSeq: read.head.seq))
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// The newest stored row of the box must be the one `larder_boxes` names: otherwise rows were
    /// added or removed behind the shipper's back, and continuing would build on a guess.
    private func checkNewestRow(on connection: PostgresConnection, shippedSeq: UInt64, chainHash: [UInt8]) async throws {
        var newest: (seq: UInt64, chain: [UInt8])?
        for try await (seq, chain) in try await connection.query(
            "SELECT seq, chain_hash FROM larder_audit WHERE box_id = \(options.boxID) ORDER BY seq DESC LIMIT 1",
            logger: FleetLogging.silent).decode((Int64, ByteBuffer).self) {
            newest = (UInt64(seq), Array(buffer: chain))
        }
        let stored = newest ?? (0, AuditChain.genesis)
        guard stored.seq == shippedSeq, stored.chain == chainHash else {
            throw refusal("""
                PostgreSQL's rows for box \(options.boxID) end at seq \(stored.seq) (chain \(stored.chain.hexString.prefix(16))…), \
                but larder_boxes says seq \(shippedSeq) (chain \(chainHash.hexString.prefix(16))…): the fleet database was \
                changed outside larder ship. Run larder fleet verify --box-id \(options.boxID).
                """)
        }
    }

    func checkContinuity(_ read: BoxRead, shippedSeq: UInt64, chainHash: [UInt8]) throws(LarderError) {
        let box = options.boxID
        if shippedSeq > 0 {
            guard read.head.seq >= shippedSeq, let overlap = read.overlap else {
                throw refusal("""
                    Box \(box)'s log ends at seq \(read.head.seq), but the fleet database already holds its records up to \
                    seq \(shippedSeq): this store is behind what was shipped (a restored older backup, or another box's \
                    store). Refused; nothing was inserted.
                    """)
            }
            guard overlap.chainHash == chainHash else {
                throw refusal("""
                    Box \(box)'s record \(shippedSeq) has chain hash \(overlap.chainHash.hexString), but the fleet database \
                    holds \(chainHash.hexString) for it: this store's history differs from what was shipped (a fork, a \
                    restored backup that then wrote on, or another box's store). Refused; nothing was inserted.
                    """)
            }
        }
        var previous = chainHash
        var expectedSeq = shippedSeq + 1
        for entry in read.entries {
            let leaf = AuditChain.leafHash(entry.recordBytes)
            let chain = AuditChain.chainHash(previous: previous, leaf: leaf)
            guard entry.seq == expectedSeq, entry.leafHash == leaf, entry.chainHash == chain else {
                throw refusal("""
                    Box \(box)'s record \(entry.seq) does not extend the chain shipped up to seq \(shippedSeq) (its stored \
                    hashes do not follow from the record before it): run larder verify on the box. Refused; nothing was \
                    inserted.
                    """)
            }
            previous = chain
            expectedSeq += 1
        }
    }

    private func refusal(_ message: String) -> LarderError {
        LarderError(.conflict, message, failureClass: .dataInconsistency, failurePoint: "ship.continuity", retryable: false)
    }

    private func shipCheckpoints(on connection: PostgresConnection, registeredKey: String?, through: UInt64) async throws {
        let logger = FleetLogging.silent
        let box = options.boxID
        if let key = try options.checkpoints.verifierKey(store) {
            if let registeredKey, registeredKey != key {
                throw refusal("""
                    Box \(box) is registered in the fleet database with another verifier key; its checkpoints would not \
                    verify. Refused; nothing was inserted.
                    """)
            }
            if registeredKey == nil {
                try await connection.query("UPDATE larder_boxes SET verifier_key = \(key) WHERE box_id = \(box)", logger: logger)
            }
        }
        var newest: UInt64 = 0
        for try await size in try await connection.query(
            "SELECT coalesce(max(tree_size), 0) FROM larder_checkpoints WHERE box_id = \(box)", logger: logger).decode(Int64.self) {
            newest = UInt64(size)
        }
        guard through > newest else { return }
        for checkpoint in try options.checkpoints.checkpoints(store, newest, through)
        where checkpoint.treeSize > newest && checkpoint.treeSize <= through {
            try await connection.query("""
                INSERT INTO larder_checkpoints (box_id, tree_size, root_hash, signed_note)
                VALUES (\(box), \(Int64(checkpoint.treeSize)), \(ByteBuffer(bytes: checkpoint.rootHash)), \(checkpoint.signedNote))
                """, logger: logger)
        }
    }
}

/// The connection a shipper reuses across batches, replaced after a transient failure.
private final class ConnectionSlot: Sendable {
    private struct State {
        /// The connection batches use, once it is set up.
        var current: PostgresConnection?
        /// A connection being set up (schema check, box row), so that a timeout can close it.
        var pending: PostgresConnection?
        /// Whether rows go in with INSERT rather than COPY (chosen, or learnt from a refused COPY).
        var usesInsert: Bool
    }

    private let configuration: PostgresConnection.Configuration
    private let state: Mutex<State>
    private static let ids = Mutex(0)

    init(configuration: PostgresConnection.Configuration, usesInsert: Bool) {
        self.configuration = configuration
        self.state = Mutex(State(usesInsert: usesInsert))
    }

    var usesInsert: Bool {
        get { state.withLock { $0.usesInsert } }
        set { state.withLock { $0.usesInsert = newValue } }
    }

    func connection(_ shipper: Shipper, onEvent: @Sendable (ShipEvent) -> Void) async throws -> PostgresConnection {
        if let current = state.withLock({ $0.current }), !current.isClosed { return current }
        let id = Self.ids.withLock { value -> Int in
            value += 1
            return value
        }
        let connection = try await PostgresConnection.connect(configuration: configuration, id: id, logger: FleetLogging.silent)
        state.withLock { $0.pending = connection }
        do {
            let applied: [Int]
            if shipper.options.migratesSchema {
                applied = try await FleetSchema.migrate(connection, logger: FleetLogging.silent)
            } else {
                let found = try await FleetSchema.currentVersion(connection, logger: FleetLogging.silent)
                guard found == FleetSchema.version else {
                    throw LarderError(.persistenceError,
                                      "The fleet database has schema version \(found ?? 0), not \(FleetSchema.version); migrate it first (larder fleet migrate).",
                                      failureClass: .externalDependency, failurePoint: "fleet.schema", retryable: false)
                }
                applied = []
            }
            try await connection.query(
                "INSERT INTO larder_boxes (box_id) VALUES (\(shipper.options.boxID)) ON CONFLICT (box_id) DO NOTHING",
                logger: FleetLogging.silent)
            state.withLock {
                $0.pending = nil
                $0.current = connection
            }
            onEvent(.connected(destination: shipper.destination.redacted, migratedVersions: applied))
            return connection
        } catch {
            state.withLock { $0.pending = nil }
            try? await connection.close()
            throw error
        }
    }

    func drop() async {
        let connection = state.withLock { state -> PostgresConnection? in
            defer { state.current = nil }
            return state.current
        }
        try? await connection?.close()
    }

    /// Closes whatever connection an attempt that timed out holds, so that its queries fail.
    func abort() async {
        let connections = state.withLock { state -> [PostgresConnection] in
            defer {
                state.current = nil
                state.pending = nil
            }
            return [state.current, state.pending].compactMap { $0 }
        }
        for connection in connections { try? await connection.close() }
    }
}

/// Counters of one run.
private struct RunState {
    var startSeq: UInt64 = 0
    var shippedSeq: UInt64 = 0
    var shippedChainHash = AuditChain.genesis
    var headSeq: UInt64 = 0
    var recordsShipped: UInt64 = 0
    var firstShipped: UInt64?
    var batches = 0
    var stopped = false
    /// Whether the fleet database's position is known (a batch ran at least once).
    var observed = false
    var reportedUpToDate = false

    mutating func record(_ batch: Shipper.CommittedBatch) {
        if firstShipped == nil { firstShipped = batch.firstSeq }
        observe(shippedSeq: batch.lastSeq, chainHash: batch.lastChainHash, headSeq: batch.headSeq)
        recordsShipped += UInt64(batch.count)
        batches += 1
    }

    mutating func observe(shippedSeq: UInt64, chainHash: [UInt8], headSeq: UInt64) {
        self.shippedSeq = shippedSeq
        self.shippedChainHash = chainHash
        self.headSeq = max(headSeq, self.headSeq)
        observed = true
    }

    /// "Shipped this run: …; PostgreSQL holds …; run again to resume."
    func account(boxID: String) -> String {
        var text = recordsShipped > 0
            ? "Shipped this run: \(recordsShipped) record(s), seq \(firstShipped!)…\(shippedSeq)."
            : "Shipped this run: nothing."
        if observed {
            text += " The fleet database holds box \(boxID) up to seq \(shippedSeq)"
            text += headSeq > shippedSeq ? "; the box is at seq \(headSeq) (\(headSeq - shippedSeq) not yet shipped)." : "."
        }
        return text + " Run larder ship again to resume; it continues after what the fleet database holds."
    }
}

/// Runs `body` and gives up after `timeout` of real time, cancelling it.
func withBatchTimeout<T: Sendable>(_ timeout: Duration, onTimeout: @escaping @Sendable () async -> Void,
                                   _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    // Not a task group: a group waits for every child, and a query (or a connection's startup)
    // waiting on a server that never answers does not end when cancelled. The attempt runs as a
    // task of its own that is cancelled and left behind when the time is up; closing its
    // connection (onTimeout) then fails what it waits for, so it does not linger.
    let race = TimeoutRace<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            race.start(continuation)
            let work = Task {
                do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
            }
            race.attach(work)
            let timer = Task {
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                let failure = LarderError(.storageUnavailable, "a batch took longer than \(timeout); abandoned and retried on a new connection",
                                          failureClass: .externalDependency, failurePoint: "ship", retryable: true)
                if race.finish(.failure(failure)) {
                    work.cancel()
                    await onTimeout()
                }
            }
            race.attach(timer)
        }
    } onCancel: {
        race.finish(.failure(CancellationError()))
    }
}

/// The first of an attempt, its timer and a cancellation to finish resumes the caller; the
/// others find it done. Finishing cancels the tasks still running.
final class TimeoutRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var early: Result<T, any Error>?
        var done = false
        var tasks: [Task<Void, Never>] = []
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        let early = state.withLock { state -> Result<T, any Error>? in
            if let early = state.early { return early }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func attach(_ task: Task<Void, Never>) {
        let finished = state.withLock { state -> Bool in
            if state.done { return true }
            state.tasks.append(task)
            return false
        }
        if finished { task.cancel() }
    }

    /// Returns whether this call was the first to finish.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (first, continuation, tasks) = state.withLock { state -> (Bool, CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
            guard !state.done else { return (false, nil, []) }
            state.done = true
            let continuation = state.continuation
            state.continuation = nil
            if continuation == nil { state.early = result }
            defer { state.tasks = [] }
            return (true, continuation, state.tasks)
        }
        guard first else { return false }
        continuation?.resume(with: result)
        for task in tasks { task.cancel() }
        return true
    }
}

/// postgres-nio logs through swift-log; the shipper reports through its own events instead.
enum FleetLogging {
    static let silent = Logger(label: "larder.fleet", factory: { _ in SwiftLogNoOpLogHandler() })
}
