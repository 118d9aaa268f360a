import Foundation
import Larder
import LarderTesting
import Testing

/// Compensation proposals under the failure policy: applied at once when the policy allows it,
/// otherwise reserved and decided once by someone allowed to.
@Suite("Compensation proposals")
struct CompensationTests {
    static let lateCredit = CompensationOffer.credit(
        CompensationCredit(customerAccount: "cust-17.credits", value: .amount(cents: 400), basis: .preApproved(code: "late-delivery")))
    static let goodwill = CompensationOffer.credit(
        CompensationCredit(customerAccount: "cust-17.credits", value: .amount(cents: 2_500), basis: .discretionary))
    static let halfRefund = CompensationOffer.refund(
        CompensationRefund(billingTransaction: "bill-9001", value: .percentage(percent: 50, ofCents: 2_598, capCents: 1_000)))

    /// The events a write appended, in order.
    func events(_ fixture: IncidentFixture, since count: Int) throws -> [AuditRecord] {
        try fixture.store.read { view in
            try view.audit.records(fromSeq: UInt64(count + 1), limit: 100).records.map(\.record)
        }
    }

    func balance(_ fixture: IncidentFixture, _ account: String = "cust-17.credits") throws -> Balance {
        try fixture.store.read { view in try view.ledger.balance(of: account) }
    }

    @Test func aStandardCreditOnALowSeverityIncidentAppliesAtOnce() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.delivery, .p2)
        let count = try fixture.store.auditCount()
        let outcome = try fixture.store.proposeCompensation(Self.lateCredit, for: incident.id, reasonCode: "van-late",
                                                            proposalID: "late-4411", context: context(accountManager, "req-p"))
        let proposal = outcome.result
        #expect(outcome.kind == .committed)
        #expect(proposal.id == "\(incident.id).late-4411")
        #expect(proposal.state == .approved)
        #expect(proposal.standard)
        #expect(proposal.holdTransferID == nil)
        #expect(proposal.decision?.autoRule == "standard-credit-low-severity")
        #expect(proposal.creditTransferID == "\(proposal.id).credit")
        #expect(try balance(fixture).net == 400)
        let records = try events(fixture, since: count)
        #expect(records.map(\.event) == [.compensationProposed, .compensationApproved, .opResponseApplied, .ledgerAccountCreated,
                                         .ledgerTransferPosted, .opCreditGranted])
        for record in records where record.event.rawValue.hasPrefix("COMPENSATION_") {
            #expect(record.failureCategory == "delivery")
            #expect(record.responseType == "credit")
            #expect(record.actor == accountManager)
            #expect(record.refs.contains(.incident(incident.id)) && record.refs.contains(.proposal(proposal.id))
                    && record.refs.contains(.order("4411")))
        }
        #expect(records[0].reasonCode == "van-late")
        #expect(records[0].payload.contains("\"state\":\"approved\",\"hold_transfer\":null"))
        #expect(records[1].payload.contains("\"auto_rule\":\"standard-credit-low-severity\""))
        // The response is the one a directly applied credit would be, marked with its proposal.
        let stored = try fixture.incident(incident.id)
        #expect(stored.version == 2)
        let response = try #require(stored.responses.first)
        #expect(response.id == "\(proposal.id).credit")
        #expect(response.proposalID == proposal.id)
        #expect(response.transferID == proposal.creditTransferID)
        #expect(response.auditSeq == UInt64(count + 3))
        #expect(records[2].payload == """
            {"incident_id":"\(incident.id)","response_id":"\(response.id)","type":"credit","amount_cents":400,"customer_account":"cust-17.credits","basis":"pre_approved:late-delivery","overrides":null}
            """)
        #expect(try fixture.store.verify().isIntact)
    }

    @Test func aWaitingCreditIsReservedAndNotSpendable() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.delivery, .p1)
        let proposal = try fixture.store.proposeCompensation(Self.lateCredit, for: incident.id, reasonCode: "van-late",
                                                             proposalID: "late-4411", context: context(accountManager)).result
        #expect(proposal.state == .pending)
        #expect(proposal.holdTransferID == "\(proposal.id).hold")
        let held = try balance(fixture)
        #expect(held.creditsPending == 400 && held.net == 0 && held.available == 0)
        let hold = try #require(try fixture.store.read { try $0.ledger.transfer(id: proposal.holdTransferID!) })
        #expect(hold.kind == .pending && hold.amount == 400 && hold.creditAccount == "cust-17.credits")
        #expect(hold.refs.contains(.proposal(proposal.id)))
        // Not spendable while it waits.
        let spend = TransferRequest.transfer(id: "spend-1", debit: "cust-17.credits", credit: "cust-17.spent", amount: 1)
        expectError(.computeError) { try fixture.store.post(spend, context: context(accountManager)) }
        #expect(try fixture.incident(incident.id).responses.isEmpty, "a waiting proposal applies nothing")

        let approved = try fixture.store.approveCompensation(proposal.id, reasonCode: "van-late", context: context(admin)).result
        #expect(approved.state == .approved)
        #expect(approved.decision?.actor == admin)
        let after = try balance(fixture)
        #expect(after.creditsPending == 0 && after.net == 400)
        #expect(try fixture.store.read { try $0.ledger.resolution(of: proposal.holdTransferID!) }
                == TransferResolution(kind: .postPending, byTransfer: "\(proposal.id).credit"))
        _ = try fixture.store.post(spend, context: context(accountManager))
        #expect(try fixture.store.verify().isIntact)
    }

    @Test func rejectionVoidsTheReservedCredit() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.delivery, .p1)
        let proposal = try fixture.store.proposeCompensation(Self.goodwill, for: incident.id, reasonCode: "vip",
                                                             proposalID: "goodwill", context: context(accountManager)).result
        #expect(!proposal.standard)
        let count = try fixture.store.auditCount()
        let rejected = try fixture.store.rejectCompensation(proposal.id, reasonCode: "not-warranted", context: context(admin)).result
        #expect(rejected.state == .rejected)
        #expect(rejected.decision?.verdict == .rejected)
        #expect(try events(fixture, since: count).map(\.event) == [.compensationRejected, .ledgerPendingVoided])
        #expect(try balance(fixture) == Balance())
        #expect(try fixture.store.read { try $0.ledger.resolution(of: proposal.holdTransferID!) }
                == TransferResolution(kind: .voidPending, byTransfer: "\(proposal.id).release"))
        #expect(try fixture.incident(incident.id).responses.isEmpty)
        #expect(try fixture.store.verify().isIntact)
    }

    /// PD-010's authority: an account manager may propose anything, decide standard proposals,
    /// and never a non-standard one; the system decides nothing; an admin must say why.
    @Test func onlyAnAdminDecidesANonStandardProposal() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.delivery, .p1)
        let proposal = try fixture.store.proposeCompensation(Self.goodwill, for: incident.id, reasonCode: "vip",
                                                             proposalID: "goodwill", context: context(accountManager)).result
        let count = try fixture.store.auditCount()
        expectError(.permissionDenied) { try fixture.store.approveCompensation(proposal.id, context: context(accountManager)) }
        expectError(.permissionDenied) { try fixture.store.rejectCompensation(proposal.id, context: context(accountManager)) }
        expectError(.permissionDenied) { try fixture.store.approveCompensation(proposal.id, context: context(system)) }
        expectError(.validationFailed) { try fixture.store.approveCompensation(proposal.id, context: context(admin)) }
        #expect(try fixture.store.auditCount() == count, "refusals write nothing")
        _ = try fixture.store.approveCompensation(proposal.id, reasonCode: "vip", context: context(admin))
        #expect(try balance(fixture).net == 2_500)

        // A standard one: an account manager may decide it.
        let standard = try fixture.store.proposeCompensation(Self.lateCredit, for: incident.id, reasonCode: "van-late",
                                                             proposalID: "late", context: context(system)).result
        #expect(standard.state == .pending, "P1 is not covered by the auto rule")
        let second = ActorIdentity(id: "am-22", role: .accountManager)
        #expect(try fixture.store.approveCompensation(standard.id, context: context(second)).result.state == .approved)
        #expect(try fixture.store.verify().isIntact)
    }

    @Test func proposersAndDecidersComeFromThePolicy() throws {
        var policy = FailurePolicy.default
        policy.compensation.proposers = [.admin]
        policy.compensation.standardApprovers = []
        let fixture = try IncidentFixture(options: Store.Options(policy: policy))
        let incident = try fixture.record(.delivery, .p1)
        expectError(.permissionDenied) {
            try fixture.store.proposeCompensation(Self.lateCredit, for: incident.id, reasonCode: "x", proposalID: "a",
                                                  context: context(accountManager))
        }
        let proposal = try fixture.store.proposeCompensation(Self.lateCredit, for: incident.id, reasonCode: "x", proposalID: "a",
                                                             context: context(admin)).result
        expectError(.permissionDenied) { try fixture.store.approveCompensation(proposal.id, context: context(accountManager)) }

        // A policy that would let an account manager decide refunds is refused at open.
        for role in [Role.accountManager, .system] {
            var lax = FailurePolicy.default
            lax.compensation.nonStandardApprovers = [.admin, role]
            let directory = try TemporaryDirectory(prefix: "larder-policy")
            expectError(.validationFailed) { try Store.open(at: directory.path("store"), options: Store.Options(policy: lax)) }
        }
        var none = FailurePolicy.default
        none.compensation.decideWithinSeconds = 0
        expectError(.validationFailed) { try none.validate() }
    }

    @Test func aProposalIsDecidedOnce() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.delivery, .p1)
        let proposal = try fixture.store.proposeCompensation(Self.goodwill, for: incident.id, reasonCode: "vip",
                                                             proposalID: "goodwill", context: context(accountManager)).result
        let decided = context(admin, "req-decide", decisionID: "approve-goodwill")
        let first = try fixture.store.approveCompensation(proposal.id, reasonCode: "vip", context: decided)
        let count = try fixture.store.auditCount()
        // The same decision again: its decisionID replays it.
        let again = try fixture.store.approveCompensation(proposal.id, reasonCode: "vip", context: decided)
        #expect(again.kind == .replayed)
        #expect(again.result == first.result)
        #expect(again.auditSeq == first.auditSeq)
        // The same request without the decisionID (a client that lost the answer): replayed too.
        let retry = try fixture.store.approveCompensation(proposal.id, reasonCode: "vip", context: context(admin, "req-decide"))
        #expect(retry.kind == .replayed)
        #expect(retry.auditSeq == first.result.decision?.auditSeq)
        // Anything else is a second decision: CONFLICT.
        expectError(.conflict) { try fixture.store.approveCompensation(proposal.id, reasonCode: "vip", context: context(admin)) }
        expectError(.conflict) { try fixture.store.rejectCompensation(proposal.id, reasonCode: "vip", context: context(admin, "req-decide")) }
        expectError(.conflict) { try fixture.store.approveCompensation(proposal.id, reasonCode: "other", context: context(admin, "req-decide")) }
        expectError(.conflict) {
            try fixture.store.rejectCompensation(proposal.id, reasonCode: "vip", context: context(admin, "req-x", decisionID: "approve-goodwill"))
        }
        #expect(try fixture.store.auditCount() == count, "replays and conflicts write nothing")
        #expect(try balance(fixture).net == 2_500, "credited once")
    }

    @Test func proposalRetriesAreRecognised() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.delivery, .p1)
        let first = try fixture.store.proposeCompensation(Self.lateCredit, for: incident.id, reasonCode: "van-late",
                                                          proposalID: "late", context: context(accountManager))
        let count = try fixture.store.auditCount()
        let again = try fixture.store.proposeCompensation(Self.lateCredit, for: incident.id, reasonCode: "van-late",
                                                          proposalID: "late", context: context(accountManager))
        #expect(again.kind == .replayed)
        #expect(again.result == first.result)
        #expect(again.auditSeq == first.result.proposedSeq)
        let other = CompensationOffer.credit(
            CompensationCredit(customerAccount: "cust-17.credits", value: .amount(cents: 300), basis: .preApproved(code: "late-delivery")))
        let conflict = try #require(throws: LarderError.self) {
            try fixture.store.proposeCompensation(other, for: incident.id, reasonCode: "van-late", proposalID: "late", context: context(accountManager))
        }
        #expect(conflict.code == .conflict && conflict.message.contains("credit"))
        expectError(.conflict) {
            try fixture.store.proposeCompensation(Self.lateCredit, for: incident.id, reasonCode: "other", proposalID: "late",
                                                  context: context(accountManager))
        }
        // Without a proposalID, a decisionID recognises the retry; without either, nothing is proposed.
        let keyed = try fixture.store.proposeCompensation(Self.lateCredit, for: incident.id, reasonCode: "van-late",
                                                          context: context(accountManager, decisionID: "propose-late-2"))
        #expect(keyed.result.id == "\(incident.id).p2")
        let keyedAgain = try fixture.store.proposeCompensation(Self.lateCredit, for: incident.id, reasonCode: "van-late",
                                                               context: context(accountManager, decisionID: "propose-late-2"))
        #expect(keyedAgain.kind == .replayed && keyedAgain.result == keyed.result)
        let unkeyed = try #require(throws: LarderError.self) {
            try fixture.store.proposeCompensation(Self.lateCredit, for: incident.id, reasonCode: "van-late", context: context(accountManager))
        }
        #expect(unkeyed.code == .validationFailed && unkeyed.message.contains("proposalID"))
        expectError(.validationFailed, "p<n> is the store's") {
            try fixture.store.proposeCompensation(Self.lateCredit, for: incident.id, reasonCode: "x", proposalID: "p7",
                                                  context: context(accountManager))
        }
        #expect(try fixture.store.auditCount() == count + 2, "only the keyed proposal wrote (its record and its hold)")
        #expect(try balance(fixture).creditsPending == 800)
    }

    @Test func aRefundGoesThroughTheRefundRequest() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.delivery, .p3)
        let proposal = try fixture.store.proposeCompensation(Self.halfRefund, for: incident.id, reasonCode: "meal-inedible",
                                                             proposalID: "refund", context: context(accountManager)).result
        #expect(proposal.state == .pending, "a refund is never standard")
        #expect(proposal.refundCents == 1_000, "50 % of 2598 is 1299, capped at 1000")
        #expect(proposal.holdTransferID == nil)
        let count = try fixture.store.auditCount()
        let approved = try fixture.store.approveCompensation(proposal.id, reasonCode: "meal-inedible", context: context(admin)).result
        #expect(try events(fixture, since: count).map(\.event) == [.compensationApproved, .opResponseApplied, .opRefundIssued])
        let refundID = try #require(approved.refundID)
        let refund = try #require(try fixture.store.read { try $0.incidents.refund(id: refundID) })
        #expect(refund.status == .requested && refund.amountCents == 1_000 && refund.billingTransaction == "bill-9001")
        let response = try #require(try fixture.incident(incident.id).responses.first)
        #expect(response.refundID == refundID && response.actor == admin && response.reasonCode == "meal-inedible")
        let billing = ActorIdentity(id: "billing", role: .system)
        #expect(try fixture.store.recordRefundOutcome(refundID, status: .succeeded, context: context(billing)).result.status == .succeeded)
        #expect(try fixture.store.verify().isIntact)
    }

    @Test func aMixedProposalAppliesBothPartsOrReleasesItsCredit() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.kitchenProduction, .p0)
        let mixed = CompensationOffer.mixed(
            credit: CompensationCredit(customerAccount: "cust-17.credits", value: .amount(cents: 500), basis: .discretionary),
            refund: CompensationRefund(billingTransaction: "bill-9001", value: .amount(cents: 1_299)))
        #expect(mixed.channel == .mixed && mixed.totalCents == 1_799)
        let first = try fixture.store.proposeCompensation(mixed, for: incident.id, reasonCode: "oven", proposalID: "a",
                                                          context: context(accountManager)).result
        let second = try fixture.store.proposeCompensation(mixed, for: incident.id, reasonCode: "oven", proposalID: "b",
                                                           context: context(accountManager)).result
        #expect(try balance(fixture).creditsPending == 1_000)
        let approved = try fixture.store.approveCompensation(first.id, reasonCode: "oven", context: context(admin)).result
        #expect(approved.responseIDs == ["\(first.id).credit", "\(first.id).refund"])
        _ = try fixture.store.rejectCompensation(second.id, reasonCode: "duplicate", context: context(admin))
        let after = try balance(fixture)
        #expect(after.net == 500 && after.creditsPending == 0)
        let incidentNow = try fixture.incident(incident.id)
        #expect(incidentNow.responses.map(\.id) == approved.responseIDs)
        #expect(incidentNow.version == 3, "one bump per applied response")
        #expect(try fixture.store.verify().isIntact)
    }

    @Test func valuesResolveToCents() throws {
        #expect(CompensationValue.amount(cents: 750).cents == 750)
        #expect(CompensationValue.percentage(percent: 50, ofCents: 2_400, capCents: 1_000).cents == 1_000)
        #expect(CompensationValue.percentage(percent: 33, ofCents: 100, capCents: 1_000).cents == 33, "rounded down")
        #expect(CompensationValue.percentage(percent: 100, ofCents: UInt64.max, capCents: UInt64.max).cents == UInt64.max)
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.delivery, .p1)
        func offer(_ value: CompensationValue) -> CompensationOffer {
            .credit(CompensationCredit(customerAccount: "cust-17.credits", value: value, basis: .discretionary))
        }
        let refused: [(CompensationOffer, LarderError.Code)] = [
            (offer(.amount(cents: 0)), .validationFailed),
            (offer(.percentage(percent: 0, ofCents: 100, capCents: 100)), .validationFailed),
            (offer(.percentage(percent: 101, ofCents: 100, capCents: 100)), .validationFailed),
            (offer(.percentage(percent: 1, ofCents: 50, capCents: 100)), .validationFailed),
            (offer(.percentage(percent: 10, ofCents: 100, capCents: 0)), .validationFailed),
            (CompensationOffer(credit: nil, refund: nil), .validationFailed),
            (.credit(CompensationCredit(customerAccount: "nobody", value: .amount(cents: 1), basis: .discretionary)), .notFound),
            (.credit(CompensationCredit(customerAccount: "cust-17.packs", value: .amount(cents: 1), basis: .discretionary)), .validationFailed),
            (.credit(CompensationCredit(customerAccount: "cust-17.credits", value: .amount(cents: 1), basis: .preApproved(code: "vip"))),
             .validationFailed),
            (.credit(CompensationCredit(customerAccount: "cust-17.credits", value: .amount(cents: 1), basis: .rule(id: "nope"))),
             .validationFailed),
            (.refund(CompensationRefund(billingTransaction: "bad id", value: .amount(cents: 1))), .validationFailed),
        ]
        let count = try fixture.store.auditCount()
        for (index, (offer, code)) in refused.enumerated() {
            expectError(code, "\(offer)") {
                try fixture.store.proposeCompensation(offer, for: incident.id, reasonCode: "x", proposalID: "v\(index)",
                                                      context: context(admin))
            }
        }
        expectError(.notFound) {
            try fixture.store.proposeCompensation(Self.lateCredit, for: "inc-404", reasonCode: "x", proposalID: "a", context: context(admin))
        }
        expectError(.notFound) { try fixture.store.approveCompensation("inc-404.a", reasonCode: "x", context: context(admin)) }
        #expect(try fixture.store.auditCount() == count)
    }

    @Test func staleProposalsAreOverdue() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.delivery, .p1)
        let waiting = try fixture.store.proposeCompensation(Self.goodwill, for: incident.id, reasonCode: "vip", proposalID: "a",
                                                            context: context(accountManager)).result
        let decided = try fixture.store.proposeCompensation(Self.goodwill, for: incident.id, reasonCode: "vip", proposalID: "b",
                                                            context: context(accountManager)).result
        #expect(waiting.decideByMicros == waiting.proposedAtMicros + 4 * 3_600 * 1_000_000)
        _ = try fixture.store.rejectCompensation(decided.id, reasonCode: "no", context: context(admin))
        #expect(try fixture.store.overdueProposals().isEmpty)
        fixture.clock.advance(seconds: 4 * 3_600)
        #expect(try fixture.store.overdueProposals().isEmpty, "due exactly now is not overdue yet")
        fixture.clock.advance(seconds: 1)
        let overdue = try fixture.store.overdueProposals()
        #expect(overdue.map(\.id) == [waiting.id])
        #expect(overdue.first?.isOverdue(atMicros: fixture.clock.now().unixMicros) == true)
        _ = try fixture.store.approveCompensation(waiting.id, reasonCode: "late-but-fair", context: context(admin))
        #expect(try fixture.store.overdueProposals().isEmpty)
        let page = try fixture.store.read { try $0.compensation.proposals(state: .approved, limit: 10) }
        #expect(page.proposals.map(\.id) == [waiting.id])
    }

    @Test func aClosedIncidentTakesNoProposalAndNoApproval() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.delivery, .p3)
        let approveLater = try fixture.store.proposeCompensation(Self.goodwill, for: incident.id, reasonCode: "vip", proposalID: "a",
                                                                 context: context(accountManager)).result
        let rejectLater = try fixture.store.proposeCompensation(Self.goodwill, for: incident.id, reasonCode: "vip", proposalID: "b",
                                                                context: context(accountManager)).result
        for state in [IncidentState.acknowledged, .contained, .resolved, .closed] {
            try fixture.store.transition(incident.id, to: state, context: context(admin))
        }
        expectError(.conflict) {
            try fixture.store.proposeCompensation(Self.goodwill, for: incident.id, reasonCode: "vip", proposalID: "c", context: context(admin))
        }
        expectError(.conflict) { try fixture.store.approveCompensation(approveLater.id, reasonCode: "vip", context: context(admin)) }
        _ = try fixture.store.rejectCompensation(rejectLater.id, reasonCode: "closed", context: context(admin))
        #expect(try balance(fixture).creditsPending == 2_500)
        #expect(try fixture.store.verify().isIntact)
    }

    @Test func forceMajeureCompensationIsAnAdminsDecision() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.forceMajeure, .p3)
        let proposal = try fixture.store.proposeCompensation(Self.lateCredit, for: incident.id, reasonCode: "storm", proposalID: "a",
                                                             context: context(accountManager)).result
        #expect(proposal.standard && proposal.state == .pending, "force majeure is admin-only: nothing applies at once")
        expectError(.permissionDenied) { try fixture.store.approveCompensation(proposal.id, context: context(accountManager)) }
        #expect(try fixture.store.approveCompensation(proposal.id, reasonCode: "storm", context: context(admin)).result.state == .approved)
    }

    @Test func theAsyncFormsShareTheRules() async throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.delivery, .p1)
        let proposal = try await fixture.store.proposeCompensation(Self.goodwill, for: incident.id, reasonCode: "vip",
                                                                   proposalID: "a", context: context(accountManager)).result
        let again = try await fixture.store.proposeCompensation(Self.goodwill, for: incident.id, reasonCode: "vip",
                                                                proposalID: "a", context: context(accountManager))
        #expect(again.kind == .replayed)
        await expectError(.permissionDenied) { try await fixture.store.approveCompensation(proposal.id, context: context(accountManager)) }
        let approved = try await fixture.store.approveCompensation(proposal.id, reasonCode: "vip", context: context(admin, "req-a"))
        #expect(approved.result.state == .approved)
        let retried = try await fixture.store.approveCompensation(proposal.id, reasonCode: "vip", context: context(admin, "req-a"))
        #expect(retried.kind == .replayed)
        await expectError(.conflict) { try await fixture.store.rejectCompensation(proposal.id, reasonCode: "vip", context: context(admin)) }
        let other = try await fixture.store.proposeCompensation(Self.goodwill, for: incident.id, reasonCode: "vip",
                                                                proposalID: "b", context: context(accountManager)).result
        #expect(try await fixture.store.rejectCompensation(other.id, reasonCode: "no", context: context(admin)).result.state == .rejected)
        #expect(try fixture.store.verify().isIntact)
    }

    @Test func thePolicyRecordsItsCompensationRules() throws {
        let json = String(decoding: try CanonicalJSONProbe.policyJSON(.default), as: UTF8.self)
        #expect(json.contains(#""compensation":{"autoApply":[{"categories":["delivery","humanProcess","kitchenProduction","orderingSystem","supply"],"creditCentsMax":1500,"id":"standard-credit-low-severity","severities":["P2","P3"]}],"decideWithinSeconds":14400,"nonStandardApprovers":["admin"],"proposers":["accountManager","admin","system"],"standardApprovers":["accountManager","admin"]}"#),
                "\(json)")
        // A policy read back is the same policy.
        let decoded = try JSONDecoder().decode(FailurePolicy.self, from: Data(json.utf8))
        #expect(decoded == .default)
    }

    /// verify checks proposals against their records and ledger effects.
    @Test func verifyFindsATamperedProposal() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.delivery, .p1)
        let proposal = try fixture.store.proposeCompensation(Self.goodwill, for: incident.id, reasonCode: "vip", proposalID: "a",
                                                             context: context(accountManager)).result
        #expect(try fixture.store.verify().isIntact)
        // Marked approved without approval, its hold still open.
        var forged = proposal
        forged.state = .approved
        let bytes = [UInt8(1)] + Array(try JSONEncoder.canonical.encode(forged))
        try fixture.store.write(context(admin)) { txn in
            try txn.rawPutForTesting(table: "compensation_proposals", key: Array(proposal.id.utf8) + [0, 0], value: bytes)
            try txn.appendAudit(AuditDraft(event: "TAMPER"))
        }
        let report = try fixture.store.verify()
        #expect(!report.isIntact)
        #expect(report.problems.contains { $0.kind == .incidentMismatch && $0.detail.contains(proposal.id) }, "\(report.problems)")
        #expect(report.problems.contains { $0.kind == .missingIndexEntry && $0.table == "index/compensation" }, "\(report.problems)")
    }
}

extension JSONEncoder {
    /// Canonical JSON as the store writes it (sorted keys, unescaped slashes).
    static var canonical: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

enum CanonicalJSONProbe {
    static func policyJSON(_ policy: FailurePolicy) throws -> Data { try JSONEncoder.canonical.encode(policy) }
}
