import LarderStorage

/// A page of compensation proposals, newest first.
public struct ProposalPage: Sendable, Hashable {
    public let proposals: [CompensationProposal]
    /// Pass back to continue; nil on the last page.
    public let nextCursor: String?
}

/// Reads compensation proposals in one snapshot. Reached as `view.compensation`.
///
/// ```swift
/// let waiting = try store.read { view in try view.compensation.proposals(state: .pending, limit: 50) }
/// ```
public struct CompensationReader {
    let txn: TableReader
    let tables: StoreTables

    public static let proposalsPerPageMax = 500

    public func proposal(id: String) throws(LarderError) -> CompensationProposal? {
        try WriteContext.validateIdentifier(id, field: "proposal id")
        return try txn.get(tables.compensationProposals, id).map { bytes throws(LarderError) in try CompensationProposal.decode(bytes) }
    }

    /// The proposals about one incident, oldest first (at most ``CompensationWriter/proposalsPerIncidentMax``).
    public func proposals(incident incidentID: String) throws(LarderError) -> [CompensationProposal] {
        try WriteContext.validateIdentifier(incidentID, field: "incident id")
        var found: [CompensationProposal] = []
        try txn.forEach(tables.compensationIndex, in: .prefix("incident:" + incidentID)) {
            (entry: Entry<KeyPair<String, KeyPair<Int64, String>>, Empty>) throws(LarderError) -> Bool in
            found.append(try indexed(entry.key.second.second))
            return found.count < CompensationWriter.proposalsPerIncidentMax
        }
        return found
    }

    /// Proposals in one state (or all), newest first.
    public func proposals(state: ProposalState? = nil, limit: Int, cursor: String? = nil) throws(LarderError) -> ProposalPage {
        guard (1...Self.proposalsPerPageMax).contains(limit) else {
            throw LarderError(.validationFailed, "limit \(limit) is not in 1...\(Self.proposalsPerPageMax).")
        }
        let dimension = state.map { "state:" + $0.rawValue } ?? "all"
        typealias Key = KeyPair<String, KeyPair<Int64, String>>
        var range = KeyRange<Key>.prefix(dimension)
        if let cursor {
            let parts = cursor.split(separator: "/", maxSplits: 1)
            guard parts.count == 2, let time = Int64(parts[0]) else {
                throw LarderError(.validationFailed, "The cursor \(JSONWriter.quoted(cursor)) is not a proposal cursor.")
            }
            range = range.intersected(with: .before(KeyPair(dimension, KeyPair(time, String(parts[1])))))
        }
        let rows = try txn.scan(tables.compensationIndex, in: range, direction: .backward, limit: limit + 1)
        var proposals: [CompensationProposal] = []
        for row in rows.prefix(limit) { proposals.append(try indexed(row.key.second.second)) }
        let next = rows.count > limit ? "\(rows[limit - 1].key.second.first)/\(rows[limit - 1].key.second.second)" : nil
        return ProposalPage(proposals: proposals, nextCursor: next)
    }

    /// Pending proposals past their deadline at `nowMicros`, most overdue first (at most `limit`).
    public func overdue(atMicros nowMicros: UnixMicros, limit: Int = proposalsPerPageMax) throws(LarderError) -> [CompensationProposal] {
        guard (1...Self.proposalsPerPageMax).contains(limit) else {
            throw LarderError(.validationFailed, "limit \(limit) is not in 1...\(Self.proposalsPerPageMax).")
        }
        var overdue: [CompensationProposal] = []
        try txn.forEach(tables.compensationIndex, in: .prefix("state:" + ProposalState.pending.rawValue)) {
            (entry: Entry<KeyPair<String, KeyPair<Int64, String>>, Empty>) throws(LarderError) -> Bool in
            let proposal = try indexed(entry.key.second.second)
            if proposal.isOverdue(atMicros: nowMicros) { overdue.append(proposal) }
            return true
        }
        return Array(overdue.sorted { ($0.decideByMicros, $0.id) < ($1.decideByMicros, $1.id) }.prefix(limit))
    }

    /// How many proposals an incident holds.
    func count(incident incidentID: String) throws(LarderError) -> Int {
        var count = 0
        try txn.forEach(tables.compensationIndex, in: .prefix("incident:" + incidentID)) {
            (_: Entry<KeyPair<String, KeyPair<Int64, String>>, Empty>) throws(LarderError) -> Bool in
            count += 1
            return true
        }
        return count
    }

    private func indexed(_ id: String) throws(LarderError) -> CompensationProposal {
        guard let proposal = try proposal(id: id) else {
            throw LarderError(.persistenceError, "The compensation index names \(id), which does not exist; run verify.",
                              failureClass: .dataInconsistency, failurePoint: .read)
        }
        return proposal
    }
}

extension StoreView {
    /// Compensation proposals: one, an incident's, by state, overdue.
    public var compensation: CompensationReader { CompensationReader(txn: txn, tables: tables) }
}

/// Recognises retried compensation requests from the proposals the store holds, in a read
/// snapshot or inside the write. Each check answers a replay, throws CONFLICT naming what
/// differs, or returns nil when the request is new.
struct CompensationReplays {
    let txn: TableReader
    let tables: StoreTables

    func proposal(id: String) throws(LarderError) -> CompensationProposal? {
        try CompensationReader(txn: txn, tables: tables).proposal(id: id)
    }

    /// A proposal under an id that exists: a replay when it is the same offer, incident and
    /// reason by the same proposer; CONFLICT otherwise.
    func propose(_ offer: CompensationOffer, for incidentID: String, reasonCode: String, by actor: ActorIdentity,
                 existing: CompensationProposal) throws(LarderError) -> IncidentAnswer<CompensationProposal> {
        let differing: String? = existing.incidentID != incidentID ? "incident (\(existing.incidentID) before, \(incidentID) now)"
            : existing.proposedBy != actor ? "proposer (\(existing.proposedBy) before, \(actor) now)"
            : existing.reasonCode != reasonCode ? "reasonCode (\(existing.reasonCode) before, \(reasonCode) now)"
            : Self.difference(existing.offer, offer)
        if let differing {
            throw LarderError(.conflict, "Proposal \(existing.id) exists already with a different \(differing); nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        return .replayed(existing, seq: existing.proposedSeq)
    }

    /// A decision about a proposal that is decided already: a replay when the same request (same
    /// requestID) made it with the same actor, verdict and reason code; CONFLICT otherwise (a
    /// proposal is decided once). Nil while the proposal is pending.
    func decision(_ proposal: CompensationProposal, verdict: ProposalVerdict, reasonCode: String?,
                  context: WriteContext) throws(LarderError) -> IncidentAnswer<CompensationProposal>? {
        guard proposal.state != .pending, let decision = proposal.decision else { return nil }
        let how = decision.autoRule.map { "by the policy's rule \($0)" } ?? "by \(decision.actor.id) (\(decision.actor.role.rawValue), request \(decision.requestID))"
        guard decision.autoRule == nil, decision.requestID == context.requestID else {
            throw LarderError(.conflict,
                              "Proposal \(proposal.id) was \(decision.verdict.rawValue) already \(how) at audit seq \(decision.auditSeq); a proposal is decided once. Nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        let differing: String? = decision.verdict != verdict ? "verdict (\(decision.verdict.rawValue) before, \(verdict.rawValue) now)"
            : decision.actor != context.actor ? "actor (\(decision.actor) before, \(context.actor) now)"
            : decision.reasonCode != reasonCode ? "reasonCode (\(decision.reasonCode ?? "none") before, \(reasonCode ?? "none") now)"
            : nil
        if let differing {
            throw LarderError(.conflict,
                              "This request decided proposal \(proposal.id) already (audit seq \(decision.auditSeq)) with a different \(differing); nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        return .replayed(proposal, seq: decision.auditSeq)
    }

    /// The first part in which two offers differ, named; nil when they are equal.
    static func difference(_ before: CompensationOffer, _ now: CompensationOffer) -> String? {
        if before.channel != now.channel { return "channel (\(before.channel.rawValue) before, \(now.channel.rawValue) now)" }
        if before.credit != now.credit { return "credit" }
        if before.refund != now.refund { return "refund" }
        return nil
    }
}
