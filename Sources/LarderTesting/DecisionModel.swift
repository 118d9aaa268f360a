public import Larder
import Synchronization

/// The rules of decisions (idempotency records), checked against what concurrent writers saw
/// and what the store holds afterwards. Writers may interleave in any order, so this model does
/// not predict which request wins a decisionID; it checks that exactly one did and that every
/// other call agrees with it:
///
/// - at most one call per decisionID committed;
/// - every replay names the winner's request and returns its stored result, byte for byte, and
///   its audit seq;
/// - every conflict names another request than the winner's, and there is no conflict or replay
///   without a winner;
/// - the store holds a decision exactly for the ids that have a winner, with the winner's result
///   and audit seq, and its audit log holds exactly the winner's records under that decisionID
///   (one contiguous set, the winner's requestID) and no others.
///
/// ```swift
/// let decisions = DecisionModel()
/// decisions.observe(decisionID: "d-1", request: "note/1/am-1", requestID: "req-7", .committed(auditSeq: 9, storedResult: bytes))
/// let problems = try decisions.problems(in: store, initialAuditCount: 2, recordsPerWrite: { _ in 1 })
/// ```
public final class DecisionModel: Sendable {
    /// What one call saw.
    public enum Seen: Sendable, Hashable {
        case committed(auditSeq: UInt64?, storedResult: [UInt8])
        case replayed(auditSeq: UInt64?, storedResult: [UInt8])
        case failed(LarderError.Code, message: String)
    }

    public struct Observation: Sendable, Hashable {
        public let decisionID: String
        /// Equal for calls that make the same request (operation, content and actor).
        public let request: String
        public let requestID: String
        public let seen: Seen
    }

    private let observations = Mutex<[Observation]>([])

    public init() {}

    /// Records what one call saw; safe from any thread or task.
    public func observe(decisionID: String, request: String, requestID: String, _ seen: Seen) {
        observations.withLock { $0.append(Observation(decisionID: decisionID, request: request, requestID: requestID, seen: seen)) }
    }

    /// Records the outcome of a write, or its error.
    public func observe<R>(decisionID: String, request: String, requestID: String, _ body: () throws -> WriteOutcome<R>) {
        observe(decisionID: decisionID, request: request, requestID: requestID, Self.seen(body))
    }

    static func seen<R>(_ body: () throws -> WriteOutcome<R>) -> Seen {
        do {
            let outcome = try body()
            let bytes = outcome.storedResult ?? []
            return outcome.kind == .committed ? .committed(auditSeq: outcome.auditSeq, storedResult: bytes)
                : .replayed(auditSeq: outcome.auditSeq, storedResult: bytes)
        } catch let error as LarderError {
            return .failed(error.code, message: error.message)
        } catch {
            return .failed(LarderError.Code(rawValue: "UNEXPECTED"), message: "\(error)")
        }
    }

    public var all: [Observation] { observations.withLock { $0 } }

    /// How many calls saw each kind of outcome (`committed`, `replayed`, or the error code).
    public var tally: [String: Int] {
        var tally: [String: Int] = [:]
        for observation in all {
            switch observation.seen {
            case .committed: tally["committed", default: 0] += 1
            case .replayed: tally["replayed", default: 0] += 1
            case .failed(let code, _): tally[code.rawValue, default: 0] += 1
            }
        }
        return tally
    }

    /// Every way the observations and the store break the rules above; empty when none.
    ///
    /// - parameter allowedFailures: error codes a call may see besides CONFLICT (for example
    ///   STORAGE_UNAVAILABLE on a full map).
    /// - parameter initialAuditCount: audit records before the writers started.
    /// - parameter recordsPerWrite: how many audit records the winning request appends.
    public func problems(in store: Store, allowedFailures: Set<LarderError.Code> = [], initialAuditCount: Int,
                         recordsPerWrite: (String) -> Int) throws -> [String] {
        var problems: [String] = []
        let byID = Dictionary(grouping: all, by: \.decisionID)
        // Records carrying each decisionID, by seq.
        var records: [String: [AuditRecord]] = [:]
        var total = 0
        try store.read { view in
            var cursor: String?
            repeat {
                let page = try view.audit.records(fromSeq: 1, limit: AuditLog.recordsPerPageMax, cursor: cursor)
                for entry in page.records {
                    total += 1
                    if let id = entry.record.decisionID { records[id, default: []].append(entry.record) }
                }
                cursor = page.nextCursor
            } while cursor != nil
        }
        var expectedTotal = initialAuditCount
        for (id, seen) in byID.sorted(by: { $0.key < $1.key }) {
            let winners = seen.filter { if case .committed = $0.seen { true } else { false } }
            let stored = try store.read { view in try view.decisions.decision(id: id) }
            guard winners.count <= 1 else {
                problems.append("\(id): \(winners.count) calls committed (\(winners.map(\.requestID)))")
                continue
            }
            guard let winner = winners.first, case .committed(let seq, let bytes) = winner.seen else {
                for observation in seen {
                    switch observation.seen {
                    case .replayed: problems.append("\(id): \(observation.requestID) replayed, but no call committed")
                    case .failed(.conflict, _): problems.append("\(id): \(observation.requestID) was CONFLICT, but no call committed")
                    default: break
                    }
                }
                if stored != nil { problems.append("\(id): the store holds a decision no call committed") }
                if let extra = records[id] { problems.append("\(id): \(extra.count) audit records without a committed call") }
                problems += unexpected(seen, allowed: allowedFailures, id: id)
                continue
            }
            for observation in seen where observation != winner {
                switch observation.seen {
                case .committed:
                    break
                case .replayed(let replaySeq, let replayBytes):
                    if observation.request != winner.request {
                        problems.append("\(id): \(observation.requestID) (\(observation.request)) replayed \(winner.request)")
                    }
                    if replayBytes != bytes { problems.append("\(id): \(observation.requestID) replayed other bytes than were stored") }
                    if replaySeq != seq { problems.append("\(id): \(observation.requestID) replayed seq \(String(describing: replaySeq)), not \(String(describing: seq))") }
                case .failed(.conflict, _):
                    if observation.request == winner.request {
                        problems.append("\(id): \(observation.requestID) was CONFLICT with the winning request itself")
                    }
                case .failed:
                    break
                }
            }
            problems += unexpected(seen, allowed: allowedFailures, id: id)
            if let stored {
                if stored.result != bytes { problems.append("\(id): the stored result differs from what the winner returned") }
                if stored.auditSeq != (seq ?? 0) { problems.append("\(id): the decision names seq \(stored.auditSeq), the winner \(String(describing: seq))") }
            } else {
                problems.append("\(id): \(winner.requestID) committed but the store holds no decision")
            }
            let expected = recordsPerWrite(winner.request)
            expectedTotal += expected
            let mine = records[id] ?? []
            let seqs = mine.map(\.seq)
            if mine.count != expected || Set(mine.map(\.requestID)) != [winner.requestID] || seqs.last != seq
                || zip(seqs, seqs.dropFirst()).contains(where: { $0 + 1 != $1 }) {
                problems.append("\(id): audit records \(seqs) by \(Set(mine.map(\.requestID)).sorted()) are not the \(expected) record(s) of \(winner.requestID) ending at \(String(describing: seq))")
            }
        }
        for id in records.keys where byID[id] == nil { problems.append("\(id): audit records for a decision no call made") }
        if total != expectedTotal { problems.append("the audit log holds \(total) records; the committed calls account for \(expectedTotal)") }
        return problems
    }

    private func unexpected(_ seen: [Observation], allowed: Set<LarderError.Code>, id: String) -> [String] {
        seen.compactMap { observation in
            guard case .failed(let code, let message) = observation.seen, code != .conflict, !allowed.contains(code) else { return nil }
            return "\(id): \(observation.requestID) failed with \(code.rawValue): \(message)"
        }
    }
}
