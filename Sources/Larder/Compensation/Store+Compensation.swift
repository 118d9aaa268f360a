/// A compensation proposal as a request, for its decision fingerprint.
public struct ProposeCompensationRequest: FingerprintedRequest, Hashable {
    public static let operationName = "compensation.propose"
    public let incidentID: String
    public let offer: CompensationOffer
    public let reasonCode: String
    public let proposalID: String?
}

/// A decision about a proposal, for its decision fingerprint.
public struct DecideCompensationRequest: FingerprintedRequest, Hashable {
    public static let operationName = "compensation.decide"
    public let proposalID: String
    public let verdict: ProposalVerdict
    public let reasonCode: String?
}

extension Store {
    /// Proposes compensation for an incident in its own write; see
    /// ``CompensationWriter/propose(_:for:reasonCode:proposalID:)``.
    ///
    /// A retry with the same decisionID answers ``WriteOutcome/Kind/replayed`` with the proposal as
    /// first made; with the same `proposalID` and the same proposal, `.replayed` with the proposal
    /// as it is now. Either way nothing is written twice.
    ///
    /// ```swift
    /// let am = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: "req-31")
    /// let proposal = try store.proposeCompensation(
    ///     .refund(CompensationRefund(billingTransaction: "bill-9001", value: .percentage(percent: 50, ofCents: 2_598, capCents: 1_500))),
    ///     for: incident.id, reasonCode: "meal-inedible", proposalID: "refund-4411", context: am).result
    /// // proposal.state == .pending: a refund always waits for an admin
    /// ```
    ///
    /// - throws: see ``CompensationWriter/propose(_:for:reasonCode:proposalID:)``.
    @discardableResult
    public func proposeCompensation(_ offer: CompensationOffer, for incidentID: String, reasonCode: String,
                                    proposalID: String? = nil, context: WriteContext) throws -> WriteOutcome<CompensationProposal> {
        try run(.propose(ProposeCompensationRequest(incidentID: incidentID, offer: offer, reasonCode: reasonCode, proposalID: proposalID),
                     actor: context.actor), context: context)
    }

    /// The async form of `proposeCompensation(_:for:reasonCode:proposalID:context:)`: suspends
    /// instead of blocking; a task cancelled before the write is queued gets `CancellationError`
    /// and nothing is written (nothing is reserved or credited).
    ///
    /// ```swift
    /// let proposal = try await store.proposeCompensation(offer, for: incident.id, reasonCode: "meal-inedible",
    ///                                                    proposalID: "refund-4411", context: am).result
    /// ```
    @discardableResult
    public func proposeCompensation(_ offer: CompensationOffer, for incidentID: String, reasonCode: String,
                                    proposalID: String? = nil, context: WriteContext) async throws -> WriteOutcome<CompensationProposal> {
        try await run(.propose(ProposeCompensationRequest(incidentID: incidentID, offer: offer, reasonCode: reasonCode, proposalID: proposalID),
                           actor: context.actor), context: context)
    }

    /// Approves a waiting proposal in its own write; see ``CompensationWriter/approve(_:reasonCode:)``.
    ///
    /// ```swift
    /// let admin = WriteContext(actor: ActorIdentity(id: "admin-1", role: .admin), requestID: "req-32",
    ///                          decisionID: "approve-refund-4411")
    /// try store.approveCompensation(proposal.id, reasonCode: "meal-inedible", context: admin)
    /// // the same call again: .replayed; another approval or a rejection: CONFLICT
    /// ```
    ///
    /// - throws: see ``CompensationWriter/approve(_:reasonCode:)``.
    @discardableResult
    public func approveCompensation(_ proposalID: String, reasonCode: String? = nil,
                                    context: WriteContext) throws -> WriteOutcome<CompensationProposal> {
        try run(.decide(DecideCompensationRequest(proposalID: proposalID, verdict: .approved, reasonCode: reasonCode), context: context),
                context: context)
    }

    /// The async form of `approveCompensation(_:reasonCode:context:)`: suspends instead of
    /// blocking; a task cancelled before the write is queued gets `CancellationError` and nothing
    /// is written.
    @discardableResult
    public func approveCompensation(_ proposalID: String, reasonCode: String? = nil,
                                    context: WriteContext) async throws -> WriteOutcome<CompensationProposal> {
        try await run(.decide(DecideCompensationRequest(proposalID: proposalID, verdict: .approved, reasonCode: reasonCode), context: context),
                      context: context)
    }

    /// Rejects a waiting proposal in its own write; see ``CompensationWriter/reject(_:reasonCode:)``.
    ///
    /// ```swift
    /// try store.rejectCompensation(proposal.id, reasonCode: "duplicate-claim", context: admin)
    /// ```
    ///
    /// - throws: see ``CompensationWriter/reject(_:reasonCode:)``.
    @discardableResult
    public func rejectCompensation(_ proposalID: String, reasonCode: String? = nil,
                                   context: WriteContext) throws -> WriteOutcome<CompensationProposal> {
        try run(.decide(DecideCompensationRequest(proposalID: proposalID, verdict: .rejected, reasonCode: reasonCode), context: context),
                context: context)
    }

    /// The async form of `rejectCompensation(_:reasonCode:context:)`: suspends instead of
    /// blocking; a task cancelled before the write is queued gets `CancellationError` and nothing
    /// is written.
    @discardableResult
    public func rejectCompensation(_ proposalID: String, reasonCode: String? = nil,
                                   context: WriteContext) async throws -> WriteOutcome<CompensationProposal> {
        try await run(.decide(DecideCompensationRequest(proposalID: proposalID, verdict: .rejected, reasonCode: reasonCode), context: context),
                      context: context)
    }

    /// Proposals still waiting past their deadline, by the store's clock, most overdue first.
    ///
    /// - throws: VALIDATION_FAILED for a limit outside 1...``CompensationReader/proposalsPerPageMax``;
    ///   STORAGE_UNAVAILABLE when the store is closed or no reader slot is free.
    public func overdueProposals(limit: Int = CompensationReader.proposalsPerPageMax) throws -> [CompensationProposal] {
        let now = options.clock.now().unixMicros
        return try read { view in try view.compensation.overdue(atMicros: now, limit: limit) }
    }
}

extension RecognisedOperation where Request == ProposeCompensationRequest, Output == CompensationProposal {
    static func propose(_ request: ProposeCompensationRequest, actor: ActorIdentity) -> Self {
        Self(request: request, replayInSnapshot: { view throws(LarderError) in
            let replays = CompensationReplays(view)
            guard let proposalID = request.proposalID,
                  let full = try? CompensationWriter.proposalID(chosen: proposalID, incident: request.incidentID),
                  let existing = try replays.proposal(id: full) else { return nil }
            return try? replays.propose(request.offer, for: request.incidentID, reasonCode: request.reasonCode, by: actor,
                                        existing: existing)
        }, change: { txn throws(LarderError) in
            try txn.compensation.proposeOrReplay(request.offer, for: request.incidentID, reasonCode: request.reasonCode,
                                                 proposalID: request.proposalID)
        })
    }
}

extension RecognisedOperation where Request == DecideCompensationRequest, Output == CompensationProposal {
    static func decide(_ request: DecideCompensationRequest, context: WriteContext) -> Self {
        Self(request: request, replayInSnapshot: { view throws(LarderError) in
            let replays = CompensationReplays(view)
            guard (try? WriteContext.validateIdentifier(request.proposalID, field: "proposal id")) != nil,
                  let proposal = try replays.proposal(id: request.proposalID) else { return nil }
            return try? replays.decision(proposal, verdict: request.verdict, reasonCode: request.reasonCode, context: context)
        }, change: { txn throws(LarderError) in
            try txn.compensation.decideOrReplay(request.proposalID, verdict: request.verdict, reasonCode: request.reasonCode)
        })
    }
}

extension CompensationReplays {
    /// The checks, in a read snapshot.
    init(_ view: StoreView) {
        self.init(txn: view.txn, tables: view.tables)
    }
}
