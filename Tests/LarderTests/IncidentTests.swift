import Foundation
import Larder
import LarderTesting
import Testing

let accountManager = ActorIdentity(id: "am-17", role: .accountManager)
let admin = ActorIdentity(id: "admin-1", role: .admin)
let system = ActorIdentity(id: "dispatch-monitor", role: .system)

func context(_ actor: ActorIdentity, _ requestID: String = UUID().uuidString, decisionID: String? = nil) -> WriteContext {
    WriteContext(actor: actor, requestID: requestID, decisionID: decisionID)
}

/// A store with a customer credit account and a packs account, and a helper to record incidents.
struct IncidentFixture {
    let temporary: TemporaryStore
    var store: Store { temporary.store }
    var clock: ManualClock { temporary.clock }

    init(options: Store.Options = Store.Options()) throws {
        temporary = try TemporaryStore(options: options)
        try temporary.store.write(context(admin, "setup")) { txn in
            try txn.ledger.createAccount(NewAccount(id: "cust-17.credits", ledger: "credits.cents", flags: .debitsMustNotExceedCredits))
            try txn.ledger.createAccount(NewAccount(id: "cust-17.spent", ledger: "credits.cents"))
            try txn.ledger.createAccount(NewAccount(id: "kitchen.packs", ledger: "packs"))
            try txn.ledger.createAccount(NewAccount(id: "cust-17.packs", ledger: "packs", flags: .debitsMustNotExceedCredits))
            try txn.ledger.createAccount(NewAccount(id: "kitchen.consumed", ledger: "packs"))
        }
    }

    func record(_ category: IncidentCategory = .delivery, _ severity: Severity = .p2, refs: [CorrelationRef] = [.order("4411")],
                decisionID: String? = nil) throws -> Incident {
        try store.recordIncident(IncidentReport(category: category, severity: severity, summary: "Van broke down on route 4",
                                                source: "dispatch-monitor", refs: refs),
                                 context: context(system, decisionID: decisionID)).result
    }

    func incident(_ id: String) throws -> Incident { try #require(try store.read { try $0.incidents.incident(id: id) }) }
}

@Suite("Incidents and the failure policy")
struct IncidentTests {
    /// A valid response of each type, as each role would send it (credits use the basis the
    /// role is allowed; the admin adds a reason code).
    static func response(_ type: ResponseType, for role: Role, now: UnixMicros) -> IncidentResponse {
        switch type {
        case .delay: .delay(revisedTimeMicros: now + 3_600_000_000, subject: .order("4411"))
        case .substitution: .substitution(item: "salmon", substitute: "trout", consent: .preAuthorised(reference: "pref-17"))
        case .credit:
            switch role {
            case .accountManager: .credit(amountCents: 400, customerAccount: "cust-17.credits", basis: .preApproved(code: "late-delivery"))
            case .system: .credit(amountCents: 300, customerAccount: "cust-17.credits", basis: .rule(id: "delivery-late-30min"))
            case .admin: .credit(amountCents: 2_500, customerAccount: "cust-17.credits", basis: .discretionary)
            }
        case .refund: .refund(billingTransaction: "bill-9001", amountCents: 1_299)
        case .cancellation: .cancellation(cycle: "cycle-2026-w48")
        }
    }

    static let expectedAllowed: [Role: Set<ResponseType>] = [
        .accountManager: [.delay, .substitution, .credit],
        .admin: Set(ResponseType.allCases),
        .system: [.delay, .credit, .cancellation],
    ]

    /// Every role × every response type: allowed ones apply and are audited; denied ones are
    /// PERMISSION_DENIED and write nothing.
    @Test(arguments: Role.allCases, ResponseType.allCases)
    func roleResponseTable(role: Role, type: ResponseType) throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record()
        let actor = ActorIdentity(id: "\(role.rawValue)-1", role: role)
        let response = Self.response(type, for: role, now: fixture.clock.now().unixMicros)
        let count = try fixture.store.auditCount()
        let reason = role == .admin ? "goodwill" : nil
        let allowed = Self.expectedAllowed[role]!.contains(type)
        do {
            let applied = try fixture.store.apply(response, to: incident.id, reasonCode: reason,
                                                  responseID: type.movesMoney ? "\(type.rawValue)-1" : nil, context: context(actor)).result
            #expect(allowed, "\(role) applied \(type)")
            let record = try #require(try fixture.store.read { try $0.audit.record(seq: applied.auditSeq) })
            #expect(record.record.event == .opResponseApplied)
            #expect(record.record.responseType == type.rawValue)
            #expect(record.record.failureCategory == "delivery")
            #expect(record.record.actor == actor)
            #expect(record.record.refs.contains(.incident(incident.id)))
            #expect(try fixture.incident(incident.id).version == 2)
        } catch let error as LarderError {
            #expect(!allowed, "\(role) was refused \(type): \(error)")
            #expect(error.code == .permissionDenied)
            #expect(try fixture.store.auditCount() == count)
            #expect(try fixture.incident(incident.id).version == 1)
        }
        #expect(try fixture.store.verify().isIntact)
    }

    /// Every (from, to) pair of states: only the next state is legal; everything else is CONFLICT.
    @Test(arguments: IncidentState.allCases, IncidentState.allCases)
    func lifecycleTable(from: IncidentState, to: IncidentState) throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.kitchenProduction, .p3)
        var state = IncidentState.open
        while state != from {
            state = state.next!
            try fixture.store.transition(incident.id, to: state, context: context(accountManager))
        }
        let before = try fixture.incident(incident.id)
        do {
            let after = try fixture.store.transition(incident.id, to: to, expectedVersion: before.version, context: context(accountManager)).result
            #expect(from.next == to, "\(from) → \(to) was allowed")
            #expect(after.state == to)
            #expect(after.version == before.version + 1)
            let trail = try fixture.store.read { try $0.audit.records(ref: .incident(incident.id), limit: 100) }
            #expect(trail.records.last?.record.event == .incidentStateChanged)
            #expect(trail.records.last?.record.payload.contains("\"from\":\"\(from.rawValue)\",\"to\":\"\(to.rawValue)\"") == true)
        } catch let error as LarderError {
            #expect(from.next != to, "\(from) → \(to) was refused: \(error)")
            #expect(error.code == .conflict)
            #expect(try fixture.incident(incident.id) == before)
        }
    }

    @Test func criticalIncidentsNeedAPostmortemToClose() throws {
        let fixture = try IncidentFixture()
        for severity in Severity.allCases {
            let incident = try fixture.record(.orderingSystem, severity)
            for state in [IncidentState.acknowledged, .contained, .resolved] {
                try fixture.store.transition(incident.id, to: state, context: context(admin))
            }
            if severity.requiresPostmortem {
                let error = try #require(throws: LarderError.self) {
                    try fixture.store.transition(incident.id, to: .closed, context: context(admin))
                }
                #expect(error.code == .validationFailed)
                #expect(error.message.contains("postmortem"))
                try fixture.store.transition(incident.id, to: .closed, postmortemRef: "pm-2026-11-23", context: context(admin))
            } else {
                try fixture.store.transition(incident.id, to: .closed, context: context(admin))
            }
            #expect(try fixture.incident(incident.id).state == .closed)
        }
    }

    @Test func aStaleVersionIsAConflict() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record()
        try fixture.store.transition(incident.id, to: .acknowledged, expectedVersion: 1, context: context(accountManager))
        let error = try #require(throws: LarderError.self) {
            try fixture.store.apply(.delay(revisedTimeMicros: fixture.clock.now().unixMicros + 60_000_000, subject: .order("4411")),
                                    to: incident.id, expectedVersion: 1, context: context(accountManager))
        }
        #expect(error.code == .conflict)
        #expect(error.retryable)
        #expect(error.message.contains("State changed during operation"))
    }

    @Test func aRetriedReportCreatesOneIncident() throws {
        let fixture = try IncidentFixture()
        let first = try fixture.record(decisionID: "detector-7:route-4:2026-11-23T09")
        let again = try fixture.record(decisionID: "detector-7:route-4:2026-11-23T09")
        #expect(first == again)
        #expect(try fixture.store.read { try $0.incidents.incidents(limit: 10).incidents.count } == 1)
    }

    @Test func policyRulesRefuseWithTheRightCode() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record()
        let now = fixture.clock.now().unixMicros
        let cases: [(ActorIdentity, IncidentResponse, String?, LarderError.Code, String)] = [
            (accountManager, .credit(amountCents: 600, customerAccount: "cust-17.credits", basis: .preApproved(code: "late-delivery")), nil,
             .permissionDenied, "capped"),
            (accountManager, .credit(amountCents: 100, customerAccount: "cust-17.credits", basis: .preApproved(code: "vip")), nil,
             .permissionDenied, "not on the pre-approved list"),
            (accountManager, .credit(amountCents: 100, customerAccount: "cust-17.credits", basis: .discretionary), nil,
             .permissionDenied, "pre-approved list"),
            (system, .credit(amountCents: 250, customerAccount: "cust-17.credits", basis: .rule(id: "delivery-late-30min")), nil,
             .permissionDenied, "exactly 300"),
            (system, .credit(amountCents: 500, customerAccount: "cust-17.credits", basis: .rule(id: "ordering-outage")), nil,
             .permissionDenied, "orderingSystem"),
            (admin, .credit(amountCents: 100, customerAccount: "cust-17.credits", basis: .discretionary), nil,
             .validationFailed, "reason code"),
            (admin, .refund(billingTransaction: nil, amountCents: 100), "goodwill", .validationFailed, "original billing transaction"),
            (accountManager, .substitution(item: "salmon", substitute: "trout", consent: nil), nil, .validationFailed, "consent"),
            (accountManager, .delay(revisedTimeMicros: now - 1, subject: .order("4411")), nil, .validationFailed, "future"),
            (accountManager, .credit(amountCents: 100, customerAccount: "nobody", basis: .preApproved(code: "late-delivery")), nil,
             .notFound, "nobody"),
            (admin, .credit(amountCents: 100, customerAccount: "cust-17.packs", basis: .discretionary), "x", .validationFailed, "credit ledger"),
        ]
        let count = try fixture.store.auditCount()
        for (actor, response, reason, code, words) in cases {
            let error = try #require(throws: LarderError.self) {
                try fixture.store.apply(response, to: incident.id, reasonCode: reason, context: context(actor))
            }
            #expect(error.code == code, "\(response): \(error)")
            #expect(error.message.contains(words), "\(error.message)")
        }
        #expect(try fixture.store.auditCount() == count)
        #expect(try fixture.incident(incident.id).responses.isEmpty)
    }

    @Test func forceMajeureIsAdminOnly() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record(.forceMajeure, .p1)
        let delay = IncidentResponse.delay(revisedTimeMicros: fixture.clock.now().unixMicros + 86_400_000_000, subject: .order("4411"))
        #expect(try #require(throws: LarderError.self) {
            try fixture.store.apply(delay, to: incident.id, context: context(accountManager))
        }.code == .permissionDenied)
        #expect(try #require(throws: LarderError.self) {
            try fixture.store.apply(delay, to: incident.id, context: context(system))
        }.code == .permissionDenied)
        try fixture.store.apply(delay, to: incident.id, reasonCode: "storm", context: context(admin))
    }

    @Test func anAdminOverrideIsAudited() throws {
        let fixture = try IncidentFixture()
        let incident = try fixture.record()
        let delay = IncidentResponse.delay(revisedTimeMicros: fixture.clock.now().unixMicros + 600_000_000, subject: .order("4411"))
        let amResponse = try fixture.store.apply(delay, to: incident.id, context: context(accountManager)).result
        #expect(try #require(throws: LarderError.self) {
            try fixture.store.apply(delay, to: incident.id, overriding: amResponse.id, context: context(accountManager))
        }.code == .permissionDenied)
        let credit = IncidentResponse.credit(amountCents: 2_000, customerAccount: "cust-17.credits", basis: .discretionary)
        let override = try fixture.store.apply(credit, to: incident.id, reasonCode: "vip-customer", overriding: amResponse.id,
                                               responseID: "override-1", context: context(admin)).result
        #expect(override.overrides == amResponse.id)
        // The overridden response was a delay: nothing to reverse. Now override a credit.
        let amCredit = try fixture.store.apply(.credit(amountCents: 400, customerAccount: "cust-17.credits",
                                                       basis: .preApproved(code: "late-delivery")),
                                               to: incident.id, responseID: "am-credit", context: context(accountManager)).result
        try fixture.store.apply(.credit(amountCents: 900, customerAccount: "cust-17.credits", basis: .discretionary),
                                to: incident.id, reasonCode: "vip-customer", overriding: amCredit.id, responseID: "override-2",
                                context: context(admin))
        // 2,000 from the first override plus 900 replacing the account manager's 400.
        #expect(try fixture.store.read { try $0.ledger.balance(of: "cust-17.credits").net } == 2_900)
        #expect(try fixture.store.read { try $0.ledger.resolution(of: amCredit.transferID!) }?.kind == .reversal)
        let events = try fixture.store.read { try $0.audit.records(ref: .incident(incident.id), limit: 100) }.records.map(\.record.event)
        #expect(events.contains(.opOverrideUsed))
        #expect(events.contains(.opCreditGranted))
        #expect(try #require(throws: LarderError.self) {
            try fixture.store.apply(credit, to: incident.id, reasonCode: "again", overriding: amResponse.id, responseID: "override-3",
                                    context: context(admin))
        }.code == .conflict)
    }

    /// Invariants: a credit is a balanced ledger transfer; a cancelled cycle refuses consumption.
    @Test func creditsAreBalancedAndCancelledCyclesAreNotConsumed() throws {
        let fixture = try IncidentFixture()
        let store = fixture.store
        let incident = try fixture.record()
        try store.apply(.credit(amountCents: 300, customerAccount: "cust-17.credits", basis: .rule(id: "delivery-late-30min")),
                        to: incident.id, context: context(system, decisionID: "rule-credit-1"))
        try store.read { (view: StoreView) throws in
            #expect(try view.ledger.balance(of: "cust-17.credits").net == 300)
            #expect(try view.ledger.balance(of: "larder.credits.issued").net == -300)
        }
        try store.post(.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 4), context: context(admin))
        try store.post(.transfer(id: "eat-1", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 1, refs: [.cycle("w48")]),
                       context: context(system))
        try store.apply(.cancellation(cycle: "w48"), to: incident.id, context: context(system, decisionID: "cancel-w48"))
        let error = try #require(throws: LarderError.self) {
            try store.post(.transfer(id: "eat-2", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 1, refs: [.cycle("w48")]),
                           context: context(system))
        }
        #expect(error.code == .conflict)
        #expect(error.message.contains("cycle w48"))
        // Other cycles are consumed as usual.
        try store.post(.transfer(id: "eat-3", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 1, refs: [.cycle("w49")]),
                       context: context(system))
        #expect(try store.read { try $0.incidents.cancellation(ofCycle: "w48") } == incident.id)
        #expect(try store.verify().isIntact)
    }

    @Test func overdueIncidentsFollowTheClock() throws {
        let fixture = try IncidentFixture()
        let p0 = try fixture.record(.orderingSystem, .p0)
        fixture.clock.advance(seconds: 10 * 60)
        let p1 = try fixture.record(.supply, .p1)
        let p3 = try fixture.record(.humanProcess, .p3)
        #expect(try fixture.store.overdueIncidents().isEmpty)
        fixture.clock.advance(seconds: 6 * 60)      // P0 past 15 minutes
        #expect(try fixture.store.overdueIncidents().map(\.id) == [p0.id])
        fixture.clock.advance(seconds: 60 * 60)     // P1 past 1 hour too
        #expect(try fixture.store.overdueIncidents().map(\.id) == [p0.id, p1.id])
        try fixture.store.transition(p0.id, to: .acknowledged, context: context(accountManager))
        #expect(try fixture.store.overdueIncidents().map(\.id) == [p1.id])
        fixture.clock.advance(seconds: 24 * 3_600)
        #expect(try fixture.store.overdueIncidents().map(\.id) == [p1.id, p3.id])
    }

    @Test func queriesFilterByStateCategoryAndSeverity() throws {
        let fixture = try IncidentFixture()
        var ids: [String] = []
        for index in 0..<12 {
            fixture.clock.advance(seconds: 60)
            let category = IncidentCategory.allCases[index % 6]
            let incident = try fixture.record(category, Severity.allCases[index % 4])
            ids.append(incident.id)
            if index % 3 == 0 { try fixture.store.transition(incident.id, to: .acknowledged, context: context(accountManager)) }
        }
        try fixture.store.read { (view: StoreView) throws in
            let all = try view.incidents.incidents(limit: 100).incidents
            #expect(all.map(\.id) == ids.reversed())
            #expect(try view.incidents.incidents(state: .acknowledged, limit: 100).incidents.count == 4)
            #expect(try view.incidents.incidents(category: .delivery, limit: 100).incidents.allSatisfy { $0.category == .delivery })
            #expect(try view.incidents.incidents(category: .delivery, limit: 100).incidents.count == 2)
            #expect(try view.incidents.incidents(state: .open, severity: .p0, limit: 100).incidents.count == 2)
            var paged: [String] = []
            var cursor: String?
            repeat {
                let page = try view.incidents.incidents(limit: 5, cursor: cursor)
                paged += page.incidents.map(\.id)
                cursor = page.nextCursor
            } while cursor != nil
            #expect(paged == ids.reversed())
        }
    }

    @Test func aChangedPolicyIsRecordedWhenTheStoreOpens() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("store")
        try Store.open(at: path).close()
        try Store.open(at: path).close()
        var policy = FailurePolicy.default
        policy.preApprovedCredits.append(PreApprovedCredit(code: "birthday", amountCentsMax: 200))
        let store = try Store.open(at: path, options: .init(policy: policy))
        defer { store.close() }
        let events = try store.read { try $0.audit.records(fromSeq: 1, limit: 10) }.records.map(\.record.event)
        #expect(events == [.schemaMigrated, .policyChanged, .policyChanged])
        let last = try #require(try store.read { try $0.audit.record(seq: 3) })
        #expect(last.record.payload.contains("birthday"))
        store.close()

        func count() throws -> Int {
            let reader = try Store.open(at: path, options: .init(readOnly: true))
            defer { reader.close() }
            return try reader.auditCount()
        }
        // The same policy with its lists in another order is the same policy.
        var reordered = policy
        reordered.preApprovedCredits.reverse()
        reordered.creditRules.reverse()
        reordered.allowedResponses[.accountManager] = []
        var sameAsBefore = policy
        sameAsBefore.allowedResponses[.accountManager] = nil
        try Store.open(at: path, options: .init(policy: sameAsBefore)).close()
        let countAfterRemoval = try count()
        try Store.open(at: path, options: .init(policy: reordered)).close()
        #expect(try count() == countAfterRemoval)

        // A tool that applies no responses opens without recording its own (default) policy.
        var toolOptions = Store.Options()
        toolOptions.recordsPolicy = false
        try Store.open(at: path, options: toolOptions).close()
        #expect(try count() == countAfterRemoval)
    }

    /// From a delivery failure to a credit, a refund request and its outcome, through the
    /// lifecycle to closed, with the incident's full trail and ledger effects.
    @Test func aDeliveryFailureEndToEnd() throws {
        let fixture = try IncidentFixture()
        let store = fixture.store
        let incident = try fixture.record(.delivery, .p1, refs: [.order("4411"), .route("R4"), .customer("17")],
                                          decisionID: "dispatch:R4:late")
        fixture.clock.advance(seconds: 20 * 60)
        try store.transition(incident.id, to: .acknowledged, expectedVersion: 1, context: context(accountManager))
        try store.apply(.delay(revisedTimeMicros: fixture.clock.now().unixMicros + 45 * 60_000_000, subject: .order("4411")),
                        to: incident.id, context: context(accountManager))
        let credit = try store.apply(.credit(amountCents: 500, customerAccount: "cust-17.credits", basis: .preApproved(code: "late-delivery")),
                                     to: incident.id, context: context(accountManager, decisionID: "credit-4411")).result
        // The customer's retry of the same credit changes nothing.
        let retry = try store.apply(.credit(amountCents: 500, customerAccount: "cust-17.credits", basis: .preApproved(code: "late-delivery")),
                                    to: incident.id, context: context(accountManager, decisionID: "credit-4411"))
        #expect(retry.isReplay)
        #expect(retry.result == credit)
        // The account manager may not refund; the admin may.
        #expect(try #require(throws: LarderError.self) {
            try store.apply(.refund(billingTransaction: "bill-77", amountCents: 1_299), to: incident.id, context: context(accountManager))
        }.code == .permissionDenied)
        let refund = try store.apply(.refund(billingTransaction: "bill-77", amountCents: 1_299), to: incident.id,
                                     reasonCode: "meal-inedible", responseID: "refund-bill-77", context: context(admin)).result
        let refundID = try #require(refund.refundID)
        try store.write(context(system, "billing-callback-1")) { txn in
            try txn.incidents.recordRefundOutcome(refundID, status: .succeeded, detail: "stripe-re_123")
        }
        #expect(try #require(throws: LarderError.self) {
            try store.write(context(system, "billing-callback-2")) { txn in try txn.incidents.recordRefundOutcome(refundID, status: .failed) }
        }.code == .conflict)
        // The credit was a mistake after all: reverse it through the ledger.
        try store.post(.reversal(id: "\(credit.transferID!).rev", of: credit.transferID!, refs: [.incident(incident.id)]),
                       context: context(admin, "reverse-credit"))
        try store.transition(incident.id, to: .contained, context: context(accountManager))
        try store.transition(incident.id, to: .resolved, context: context(accountManager))
        try store.transition(incident.id, to: .closed, postmortemRef: "pm-41", context: context(admin))

        let detail = try #require(try store.read { try $0.incidents.detail(id: incident.id) })
        #expect(detail.incident.state == .closed)
        #expect(detail.incident.responses.map(\.response.type) == [.delay, .credit, .refund])
        #expect(detail.refunds.first?.status == .succeeded)
        #expect(detail.transfers.map(\.kind) == [.single, .reversal])
        let events = detail.trail.map(\.record.event)
        for event: AuditEvent in [.opFailureRecorded, .incidentStateChanged, .opResponseApplied, .opCreditGranted,
                                  .ledgerTransferPosted, .opRefundIssued, .opRefundOutcome, .ledgerTransferReversed] {
            #expect(events.contains(event), "\(event) missing from \(events)")
        }
        #expect(try store.read { try $0.ledger.balance(of: "cust-17.credits").net } == 0)
        // The acknowledgement came late for a P1 (20 minutes is fine; the deadline is an hour).
        #expect(detail.trail.contains { $0.record.payload.contains("\"overdue\":false") })
        #expect(try store.verify().isIntact)
    }
}
