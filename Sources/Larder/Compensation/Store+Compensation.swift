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
        try performRecognised(context, Self.proposal(offer, for: incidentID, reasonCode: reasonCode, proposalID: proposalID, context: context))
    }

    /// The async form of ``proposeCompensation(_:for:reasonCode:proposalID:context:)``.
    @discardableResult
    public func proposeCompensation(_ offer: CompensationOffer, for incidentID: String, reasonCode: String,
                                    proposalID: String? = nil, context: WriteContext) async throws -> WriteOutcome<CompensationProposal> {
        try await performRecognised(context, Self.proposal(offer, for: incidentID, reasonCode: reasonCode, proposalID: proposalID, context: context))
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
        try performRecognised(context, Self.decision(proposalID, .approved, reasonCode: reasonCode, context: context))
    }

    /// The async form of ``approveCompensation(_:reasonCode:context:)``.
    @discardableResult
    public func approveCompensation(_ proposalID: String, reasonCode: String? = nil,
                                    context: WriteContext) async throws -> WriteOutcome<CompensationProposal> {
        try await performRecognised(context, Self.decision(proposalID, .approved, reasonCode: reasonCode, context: context))
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
        try performRecognised(context, Self.decision(proposalID, .rejected, reasonCode: reasonCode, context: context))
    }

    /// The async form of ``rejectCompensation(_:reasonCode:context:)``.
    @discardableResult
    public func rejectCompensation(_ proposalID: String, reasonCode: String? = nil,
                                   context: WriteContext) async throws -> WriteOutcome<CompensationProposal> {
        try await performRecognised(context, Self.decision(proposalID, .rejected, reasonCode: reasonCode, context: context))
    }

    /// Proposals still waiting past their deadline, by the store's clock, most overdue first.
    public func overdueProposals(limit: Int = CompensationReader.proposalsPerPageMax) throws -> [CompensationProposal] {
        let now = options.clock.now().unixMicros
        return try read { view in try view.compensation.overdue(atMicros: now, limit: limit) }
    }

    // One description of each call, shared by the sync and async forms.

    private static func proposal(_ offer: CompensationOffer, for incidentID: String, reasonCode: String, proposalID: String?,
                                 context: WriteContext) -> RecognisedWrite<ProposeCompensationRequest, CompensationProposal> {
        RecognisedWrite(
            request: ProposeCompensationRequest(incidentID: incidentID, offer: offer, reasonCode: reasonCode, proposalID: proposalID),
            replayInSnapshot: { view throws(LarderError) in
                guard let proposalID, let full = try? CompensationWriter.proposalID(chosen: proposalID, incident: incidentID),
                      let existing = try CompensationReplays(txn: view.txn, tables: view.tables).proposal(id: full) else { return nil }
                return try? CompensationReplays(txn: view.txn, tables: view.tables)
                    .propose(offer, for: incidentID, reasonCode: reasonCode, by: context.actor, existing: existing)
            },
            body: { txn throws(LarderError) in
                try txn.compensation.proposeOrReplay(offer, for: incidentID, reasonCode: reasonCode, proposalID: proposalID)
            })
    }

    private static func decision(_ proposalID: String, _ verdict: ProposalVerdict, reasonCode: String?,
                                 context: WriteContext) -> RecognisedWrite<DecideCompensationRequest, CompensationProposal> {
        RecognisedWrite(
            request: DecideCompensationRequest(proposalID: proposalID, verdict: verdict, reasonCode: reasonCode),
            replayInSnapshot: { view throws(LarderError) in
                let replays = CompensationReplays(txn: view.txn, tables: view.tables)
                guard (try? WriteContext.validateIdentifier(proposalID, field: "proposal id")) != nil,
                      let proposal = try replays.proposal(id: proposalID) else { return nil }
                return try? replays.decision(proposal, verdict: verdict, reasonCode: reasonCode, context: context)
            },
            body: { txn throws(LarderError) in
                try txn.compensation.decideOrReplay(proposalID, verdict: verdict, reasonCode: reasonCode)
            })
    }
}
