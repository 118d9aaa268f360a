import Synchronization

/// One domain call that may find an earlier request already did its work (see
/// ``IncidentAnswer``), described once and run by ``Store/performRecognised(_:_:)-(_,_)`` or its
/// async form: the request to fingerprint, a replay looked for in a read snapshot, and the body.
struct RecognisedWrite<Q: FingerprintedRequest, R: Codable & Sendable>: Sendable {
    let request: Q
    /// Looks for a replay without writing; nil when the request is new. Refusals are left to the
    /// write, which checks in the documented order.
    let replayInSnapshot: @Sendable (StoreView) throws(LarderError) -> IncidentAnswer<R>?
    let body: @Sendable (StoreTransaction) throws(LarderError) -> IncidentAnswer<R>
}

/// Carries the replayed seq out of a write body, which may run on the writer thread (and more
/// than once: the writer retries after a failed group commit; the last run counts).
private final class ReplayedSeq: Sendable {
    private let value = Mutex<UInt64?>(nil)
    func set(_ seq: UInt64?) { value.withLock { $0 = seq } }
    var seq: UInt64? { value.withLock { $0 } }
}

extension Store {
    /// Runs a recognised write: a replay found in a read snapshot is answered without waiting
    /// for the writer (and while writes fail); otherwise the write runs, and a replay it finds
    /// (a retry racing its original) is reported as ``WriteOutcome/Kind/replayed`` too. With a
    /// decisionID the decision answers first, as for every write.
    func performRecognised<Q, R>(_ context: WriteContext, _ operation: RecognisedWrite<Q, R>) throws -> WriteOutcome<R> {
        if let replay = snapshotReplay(context, operation) { return replay }
        let replayed = ReplayedSeq()
        let outcome = try write(context, request: operation.request) { txn in
            let answer = try operation.body(txn)
            replayed.set(answer.replayedSeq)
            return answer.value
        }
        return recognised(outcome, replayed.seq)
    }

    /// The async form of ``performRecognised(_:_:)-(_,_)``: the same steps, suspending while the writer works.
    func performRecognised<Q, R>(_ context: WriteContext, _ operation: RecognisedWrite<Q, R>) async throws -> WriteOutcome<R> {
        if let replay = snapshotReplay(context, operation) { return replay }
        let replayed = ReplayedSeq()
        let outcome = try await write(context, request: operation.request) { txn in
            let answer = try operation.body(txn)
            replayed.set(answer.replayedSeq)
            return answer.value
        }
        return recognised(outcome, replayed.seq)
    }

    private func snapshotReplay<Q, R>(_ context: WriteContext, _ operation: RecognisedWrite<Q, R>) -> WriteOutcome<R>? {
        guard context.decisionID == nil, (try? context.validate()) != nil,
              let answer = try? read({ view in try operation.replayInSnapshot(view) }),
              let seq = answer.replayedSeq else { return nil }
        counters.replayed()
        return WriteOutcome(kind: .replayed, result: answer.value, auditSeq: seq, storedResult: nil)
    }

    private func recognised<R>(_ outcome: WriteOutcome<R>, _ replayedSeq: UInt64?) -> WriteOutcome<R> {
        guard outcome.kind == .committed, let replayedSeq else { return outcome }
        counters.replayed()
        return WriteOutcome(kind: .replayed, result: outcome.result, auditSeq: replayedSeq, storedResult: outcome.storedResult)
    }
}
