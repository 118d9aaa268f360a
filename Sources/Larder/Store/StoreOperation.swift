import Synchronization

/// One domain write as a value: the request its decision fingerprints, and what it does in the
/// transaction. The blocking and the async form of each `Store` method (``Store/post(_:context:)``
/// and its `async` twin, say) run the same operation, and differ only in how they wait for the
/// writer.
struct StoreOperation<Request: FingerprintedRequest, Output: Codable & Sendable>: Sendable {
    let request: Request
    /// True for an operation that checks everything before it writes anything (the ledger's): a
    /// refusal leaves the transaction as it was, so grouped with other writes it runs without a
    /// nested transaction of its own.
    var checksBeforeWriting = false
    let body: @Sendable (StoreTransaction) throws -> Output
}

/// A write whose retry the store recognises without a decisionID (see ``IncidentAnswer``): like
/// ``StoreOperation``, plus how to recognise that retry, in a read snapshot first and inside the
/// write again. Incident reports, transitions, responses and refund outcomes, compensation
/// proposals and their decisions, and cycle counts are such writes.
struct RecognisedOperation<Request: FingerprintedRequest, Output: Codable & Sendable>: Sendable {
    let request: Request
    /// A replay found in a snapshot, or nil (a refusal is left to the write, which checks in the
    /// documented order).
    let replayInSnapshot: @Sendable (StoreView) throws(LarderError) -> IncidentAnswer<Output>?
    let change: @Sendable (StoreTransaction) throws(LarderError) -> IncidentAnswer<Output>
}

/// Where a recognised write's body notes that it answered a retry. The body may run more than once
/// (the writer retries a request alone after its batch failed as a whole): the last run counts.
final class ReplayMark: Sendable {
    private let seq = Mutex<UInt64?>(nil)

    func note(_ value: UInt64?) { seq.withLock { $0 = value } }
    var replayedSeq: UInt64? { seq.withLock { $0 } }
}

extension Store {
    func run<Q, R>(_ operation: StoreOperation<Q, R>, context: WriteContext) throws -> WriteOutcome<R> {
        try write(context, request: operation.request, checksBeforeWriting: operation.checksBeforeWriting, operation.body)
    }

    func run<Q, R>(_ operation: StoreOperation<Q, R>, context: WriteContext) async throws -> WriteOutcome<R> {
        try await write(context, request: operation.request, checksBeforeWriting: operation.checksBeforeWriting, operation.body)
    }

    /// A write that may find an earlier request already did the work; such an answer is reported
    /// as ``WriteOutcome/Kind/replayed``.
    ///
    /// Without a decisionID, a replay is looked for in a read snapshot first, so that a retry is
    /// answered without waiting for the writer (and while writes fail, e.g. on a full disk); the
    /// write checks again, for a retry that races its original. With a decisionID the decision
    /// answers first, as for every write.
    func run<Q, R>(_ operation: RecognisedOperation<Q, R>, context: WriteContext) throws -> WriteOutcome<R> {
        if let replay = snapshotReplay(operation, context: context) { return replay }
        let mark = ReplayMark()
        return answered(try write(context, request: operation.request, changeBody(operation, mark: mark)), mark: mark)
    }

    func run<Q, R>(_ operation: RecognisedOperation<Q, R>, context: WriteContext) async throws -> WriteOutcome<R> {
        if let replay = snapshotReplay(operation, context: context) { return replay }
        let mark = ReplayMark()
        return answered(try await write(context, request: operation.request, changeBody(operation, mark: mark)), mark: mark)
    }

    private func snapshotReplay<Q, R>(_ operation: RecognisedOperation<Q, R>, context: WriteContext) -> WriteOutcome<R>? {
        guard context.decisionID == nil, (try? context.validate()) != nil,
              let answer = try? read({ view in try operation.replayInSnapshot(view) }),
              let seq = answer.replayedSeq else { return nil }
        counters.replayed()
        return WriteOutcome(kind: .replayed, result: answer.value, auditSeq: seq, storedResult: nil)
    }

    private func changeBody<Q, R>(_ operation: RecognisedOperation<Q, R>, mark: ReplayMark) -> @Sendable (StoreTransaction) throws -> R {
        { txn in
            let answer = try operation.change(txn)
            mark.note(answer.replayedSeq)
            return answer.value
        }
    }

    private func answered<R>(_ outcome: WriteOutcome<R>, mark: ReplayMark) -> WriteOutcome<R> {
        guard outcome.kind == .committed, let replayedSeq = mark.replayedSeq else { return outcome }
        counters.replayed()
        return WriteOutcome(kind: .replayed, result: outcome.result, auditSeq: replayedSeq, storedResult: outcome.storedResult)
    }
}
