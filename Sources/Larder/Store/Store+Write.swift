import LarderStorage

extension Store {
    // MARK: Writing

    /// Runs `body` in one write transaction and returns once it is durable. `body` must append an
    /// audit record if it changes anything. Blocks the calling thread; from async code use
    /// ``write(_:_:)-27jq4`` with `await`, which suspends instead.
    ///
    /// ```swift
    /// try store.write(context) { txn in
    ///     try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", refs: [.order("4411")]))
    /// }
    /// ```
    ///
    /// A context with a decisionID needs the request to fingerprint: use
    /// ``write(_:request:_:)-8eb4w``.
    ///
    /// - throws: VALIDATION_FAILED for a bad context; AUDIT_FAILED when the change has no audit
    ///   record or it cannot be written; STORAGE_UNAVAILABLE when the disk or map is full or the
    ///   write breaker is open; whatever `body` throws. Nothing is written in every case.
    @discardableResult
    public func write<R>(_ context: WriteContext, _ body: (StoreTransaction) throws -> R) throws -> WriteOutcome<R> {
        do {
            let plan = try plainPlan(context)
            let inner = try environment.write { txn in try self.transact(txn, plan: plan, encode: nil, body) }
            return try finish(inner, plan: plan, replay: Self.noReplay)
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
    ///
    /// ```swift
    /// let outcome = try store.write(context, request: NoteRequest(order: "4411")) { txn in
    ///     try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", refs: [.order("4411")]))
    ///     return "noted"
    /// }
    /// ```
    ///
    /// - throws: CONFLICT for a decisionID used before with another request; everything
    ///   ``write(_:_:)-27jq4`` throws.
    @discardableResult
    public func write<Q: FingerprintedRequest, R: Codable>(
        _ context: WriteContext, request: Q, _ body: (StoreTransaction) throws -> R
    ) throws -> WriteOutcome<R> {
        try write(context, request: request, checksBeforeWriting: false, body)
    }

    /// ``write(_:request:_:)-8eb4w`` for a built-in operation that checks everything before it
    /// writes anything (`checksBeforeWriting`): grouped with other writes, it needs no nested
    /// transaction.
    func write<Q: FingerprintedRequest, R: Codable>(
        _ context: WriteContext, request: Q, checksBeforeWriting: Bool, _ body: (StoreTransaction) throws -> R
    ) throws -> WriteOutcome<R> {
        do {
            let plan: WritePlan
            switch try decisionPlan(context, request: request, as: R.self) {
            case .replayed(let outcome): return outcome
            case .write(let decided): plan = decided
            }
            let inner = try environment.write(isolated: !checksBeforeWriting) { txn in try self.transact(txn, plan: plan, encode: { result throws(LarderError) in try JCS.encode(result) }, body) }
            return try finish(inner, plan: plan, replay: replayFound(in: plan, as: R.self))
        } catch {
            throw failed(error, context: context)
        }
    }

    /// The async form of ``write(_:_:)-27jq4``: suspends, without blocking a
    /// thread of the cooperative pool, while the writer and the disk work.
    ///
    /// ```swift
    /// try await store.write(context) { txn in
    ///     try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", refs: [.order("4411")]))
    /// }
    /// ```
    ///
    /// Cancellation is checked once, just before the write is queued: a task cancelled by then
    /// gets `CancellationError` and nothing is written. Once queued, the write runs to its end
    /// and its outcome is returned even if the task is cancelled meanwhile: a write is never
    /// abandoned half-way, and its caller always learns whether it committed.
    ///
    /// - throws: `CancellationError` when the task was cancelled before the write was queued;
    ///   everything the blocking form throws.
    @discardableResult
    public func write<R: Sendable>(
        _ context: WriteContext, _ body: @escaping @Sendable (StoreTransaction) throws -> R
    ) async throws -> WriteOutcome<R> {
        do {
            let plan = try plainPlan(context)
            try Task.checkCancellation()
            let inner = try await environment.write { txn in try self.transact(txn, plan: plan, encode: nil, body) }
            return try finish(inner, plan: plan, replay: Self.noReplay)
        } catch {
            throw failed(error, context: context)
        }
    }

    /// The async form of ``write(_:request:_:)-8eb4w``. A replay found in a
    /// read snapshot is answered without queueing anything; otherwise cancellation is checked
    /// just before the write is queued, as in ``write(_:_:)-27jq4``.
    ///
    /// - throws: `CancellationError` when the task was cancelled before the write was queued;
    ///   everything the blocking form throws.
    @discardableResult
    public func write<Q: FingerprintedRequest, R: Codable & Sendable>(
        _ context: WriteContext, request: Q, _ body: @escaping @Sendable (StoreTransaction) throws -> R
    ) async throws -> WriteOutcome<R> {
        try await write(context, request: request, checksBeforeWriting: false, body)
    }

    /// The async form of ``write(_:request:checksBeforeWriting:_:)``.
    func write<Q: FingerprintedRequest, R: Codable & Sendable>(
        _ context: WriteContext, request: Q, checksBeforeWriting: Bool, _ body: @escaping @Sendable (StoreTransaction) throws -> R
    ) async throws -> WriteOutcome<R> {
        do {
            let plan: WritePlan
            switch try decisionPlan(context, request: request, as: R.self) {
            case .replayed(let outcome): return outcome
            case .write(let decided): plan = decided
            }
            try Task.checkCancellation()
            let inner = try await environment.write(isolated: !checksBeforeWriting) { txn in try self.transact(txn, plan: plan, encode: { result throws(LarderError) in try JCS.encode(result) }, body) }
            return try finish(inner, plan: plan, replay: replayFound(in: plan, as: R.self))
        } catch {
            throw failed(error, context: context)
        }
    }

    // MARK: One write, before and after it waits

    /// A decision to record with a write.
    struct DecisionPlan: Sendable {
        let id: String
        let operation: String
        /// Over RFC 8785 canonical JSON: what a new decision record stores.
        let fingerprint: [UInt8]
        /// The request's fingerprint in another form, for decisions recorded in it (computed
        /// only when such a decision is found).
        let fingerprintIn: @Sendable (FingerprintForm) throws(LarderError) -> [UInt8]

        /// Whether `stored` was recorded for this very request (same actor, operation and content).
        func matches(_ stored: DecisionRecord) throws(LarderError) -> Bool {
            switch stored.fingerprintForm {
            case .jcs: stored.fingerprint == fingerprint
            case let form: stored.fingerprint == (try fingerprintIn(form))
            }
        }
    }

    /// A write that passed validation and is ready to be queued.
    struct WritePlan: Sendable {
        let context: WriteContext
        let decision: DecisionPlan?
        /// When the caller asked: write latency is measured from here.
        let started: ContinuousClock.Instant
    }

    /// What a write with a decision does next: answer a replay, or run.
    enum DecisionStart<R> {
        case replayed(WriteOutcome<R>)
        case write(WritePlan)
    }

    /// What one transaction produced, before it is turned into a ``WriteOutcome``.
    enum Inner<R> {
        case committed(R, auditSeq: UInt64?, storedResult: [UInt8]?)
        /// The decision existed already when the transaction looked: nothing was run or written.
        case existing(DecisionRecord)
    }

    /// The plan of a write without a decision.
    private func plainPlan(_ context: WriteContext) throws(LarderError) -> WritePlan {
        let started = ContinuousClock.now
        try context.validate()
        guard context.decisionID == nil else {
            throw LarderError(.validationFailed,
                              "decisionID \(JSONWriter.quoted(context.decisionID!)) needs the request to fingerprint; use write(_:request:_:).",
                              requestID: context.requestID)
        }
        return WritePlan(context: context, decision: nil, started: started)
    }

    /// The plan of a write that may carry a decision, or its replay when the decision was made
    /// before (checked in a read snapshot first, so that a replay never waits for the writer; the
    /// write transaction checks again).
    private func decisionPlan<Q: FingerprintedRequest, R: Decodable>(
        _ context: WriteContext, request: Q, as: R.Type
    ) throws -> DecisionStart<R> {
        let started = ContinuousClock.now
        guard let id = context.decisionID else {
            return .write(try plainPlan(context))
        }
        try context.validate()
        let actor = context.actor
        let decision = DecisionPlan(id: id, operation: Q.operationName,
                                    fingerprint: try Fingerprint.of(actor: actor, request: request, form: .jcs),
                                    fingerprintIn: { form throws(LarderError) in try Fingerprint.of(actor: actor, request: request, form: form) })
        let plan = WritePlan(context: context, decision: decision, started: started)
        guard let stored = try read({ view in try view.decisions.decision(id: id) }) else { return .write(plan) }
        return .replayed(try replay(stored, decision: decision, as: R.self))
    }

    /// The body of every write: decision check, the caller's change, the fail-closed audit rule,
    /// the decision record. Runs on the writer thread inside one LMDB transaction.
    func transact<R>(
        _ raw: WriteTransaction, plan: WritePlan,
        encode: ((R) throws(LarderError) -> [UInt8])?, _ body: (StoreTransaction) throws -> R
    ) throws -> Inner<R> {
        let txn = TableWriter(raw)
        // Record views made in this write must not outlive it (their bytes go with the transaction).
        defer { txn.close() }
        do {
            if let decision = plan.decision, let bytes = try txn.get(tables.decisions, decision.id) {
                return .existing(try DecisionRecord.decode(id: decision.id, bytes))
            }
            // Record times never decrease (docs/FORMAT.md section 3): a clock that went back writes
            // the last record's time again, so that a time range is found by binary search on seq.
            let last = try AuditLog(txn: txn, tables: tables).headAndLastTime()
            let time = max(options.clock.now().unixMicros, last.timeMicros ?? .min)
            let storeTransaction = StoreTransaction(context: plan.context, timeMicros: time, txn: txn, tables: tables,
                                                    fault: options.auditFaultInjection, policy: options.policy,
                                                    keepsMerkleTree: options.keepsMerkleTree, head: last.head)
            let result = try body(storeTransaction)
            if let broken = storeTransaction.brokenBy { throw broken }
            guard !storeTransaction.mutated || !storeTransaction.appended.isEmpty else {
                throw LarderError(.auditFailed,
                                  "The write changed the store but appended no audit record; nothing was written.",
                                  failurePoint: .auditWrite)
            }
            var stored: [UInt8]?
            if let decision = plan.decision, let encode {
                let bytes = try encode(result)
                if storeTransaction.mutated {
                    let record = DecisionRecord(decisionID: decision.id, operation: decision.operation,
                                                fingerprint: decision.fingerprint, timeMicros: time,
                                                auditSeq: storeTransaction.lastAuditSeq ?? 0, result: bytes)
                    guard try txn.put(tables.decisions, decision.id, record.encoded(), mode: .insertNew) else {
                        preconditionFailure("decision \(decision.id) appeared inside its own transaction")
                    }
                }
                stored = bytes
            }
            return .committed(result, auditSeq: storeTransaction.lastAuditSeq, storedResult: stored)
        } catch let error as LarderError {
            throw error.rolledBack()
        }
    }

    /// The outcome of a transaction: committed now, or the replay of a decision the transaction
    /// found (made by a racing write since the snapshot looked).
    private func finish<R>(_ inner: Inner<R>, plan: WritePlan,
                           replay: (DecisionRecord) throws -> WriteOutcome<R>) throws -> WriteOutcome<R> {
        switch inner {
        case .committed(let result, let seq, let stored):
            counters.committed(after: ContinuousClock.now - plan.started)
            return WriteOutcome(kind: .committed, result: result, auditSeq: seq, storedResult: stored)
        case .existing(let record):
            return try replay(record)
        }
    }

    /// The replay of a decision found inside the transaction.
    private func replayFound<R: Decodable>(in plan: WritePlan, as: R.Type) -> (DecisionRecord) throws -> WriteOutcome<R> {
        { stored in
            guard let decision = plan.decision else { preconditionFailure("a write without a decision cannot replay") }
            return try self.replay(stored, decision: decision, as: R.self)
        }
    }

    /// Plain writes never find a decision.
    private static func noReplay<R>(_: DecisionRecord) -> WriteOutcome<R> {
        preconditionFailure("a write without a decision cannot replay")
    }

    private func replay<R: Decodable>(_ stored: DecisionRecord, decision: DecisionPlan, as: R.Type) throws -> WriteOutcome<R> {
        guard try decision.matches(stored) else {
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

    /// A failed write in the contract's terms, counted and, when the storage failed, logged with
    /// its ids. A cancellation is neither: nothing was tried.
    func failed(_ error: any Error, context: WriteContext) -> any Error {
        if error is CancellationError { return error }
        let storage = error as? StorageError
        let contract = LarderError.contract(error)
        counters.failed(contract)
        guard var larderError = contract as? LarderError else { return contract }
        larderError = larderError.withRequestID(context.requestID)
        if let storage { log.writeFailed(storage, error: larderError, context: context) }
        return larderError
    }
}

extension Store.Inner: Sendable where R: Sendable {}
