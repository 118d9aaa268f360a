import Foundation
import Larder

/// A realistic, seeded kitchen day played through Larder's public Swift API (its async forms): customers' packs
/// and credits, orders consuming packs, a supply, a delivery and a kitchen incident, responses by
/// an account manager, an admin and the system — with one denied action, two replayed retries (a
/// report and a credit), one refund request and its outcome, one reversal and one cancelled cycle;
/// compensation proposals (one applied at once by the policy, one approved, one rejected, one left
/// waiting); tomatoes received, issued and cycle-counted (the count finds a shortfall); and the
/// day's incident costs. Every money-moving call carries a decisionID or a caller-chosen id.
///
/// Running it again on the same store plays the next day (ids are prefixed `d<day>-`).
struct KitchenDay {
    let store: Store
    let console: Console
    var random: DemoRandom
    let day: Int

    static let customerNames = ["ana", "ben", "chloe", "dev", "eli", "fay", "gus", "hana"]

    let accountManager = ActorIdentity(id: "am-maria", role: .accountManager)
    let admin = ActorIdentity(id: "admin-sam", role: .admin)
    let dispatch = ActorIdentity(id: "dispatch-monitor", role: .system)
    let vendorMonitor = ActorIdentity(id: "vendor-monitor", role: .system)
    let billing = ActorIdentity(id: "billing-callback", role: .system)
    let chef = ActorIdentity(id: "chef-lee", role: .system)
    let storekeeper = ActorIdentity(id: "store-kai", role: .accountManager)

    /// Where the tomatoes are kept.
    static let tomatoBin = StockLocation(hub: "central", bin: "chill-A3")

    struct Summary {
        var customers: [(name: String, packs: Int64, credits: Int64)] = []
        var openIncidents: [Incident] = []
        var incidentsToday: [Incident] = []
        var head = ChainHead.empty
        var verify = VerifyReport()
        /// Today's compensation proposals, as they ended.
        var proposals: [CompensationProposal] = []
        /// Proposals still waiting in the store, and how many of them are overdue.
        var waitingProposals = 0
        var overdueProposals = 0
        /// Today's tomato count.
        var count: StockCount?
        /// What today's incidents cost.
        var costs: IncidentCostReport?
    }

    init(store: Store, console: Console, seed: UInt64) throws {
        self.store = store
        self.console = console
        random = DemoRandom(seed: seed)
        var day = 1
        while try store.read({ view in try !view.audit.records(ref: CorrelationRef("demo_day", "\(day)"), limit: 1).records.isEmpty }) {
            day += 1
        }
        self.day = day
    }

    private var prefix: String { "d\(day)" }
    private var dayRef: CorrelationRef { CorrelationRef("demo_day", "\(day)") }
    private func context(_ actor: ActorIdentity, _ what: String, decision: String? = nil) -> WriteContext {
        WriteContext(actor: actor, requestID: "\(prefix)-\(what)", traceID: "\(prefix)-trace", decisionID: decision)
    }

    private func step(_ text: String) { console.print("  ✓ \(text)") }
    private func refused(_ text: String, _ error: LarderError) {
        console.print("  ✗ \(text): refused with \(error.code.rawValue) (\(error.message))")
    }

    /// Plays the day through the store's async API: every write suspends instead of blocking a
    /// thread of the cooperative pool.
    mutating func play() async throws -> Summary {
        console.print("Larder kitchen day \(day) at \(store.path)")
        let customers = Array(Self.customerNames.shuffled(using: &random).prefix(4)).sorted()
        let dayRef = self.dayRef

        // Accounts: created once, found again on later days.
        try await store.write(context(admin, "open-accounts")) { txn in
            try txn.ledger.createAccount(NewAccount(id: "kitchen.packs.sold", ledger: "packs", code: 1))
            try txn.ledger.createAccount(NewAccount(id: "kitchen.packs.consumed", ledger: "packs", code: 2))
            for name in Self.customerNames {
                try txn.ledger.createAccount(NewAccount(id: "cust-\(name).packs", ledger: "packs", code: 10,
                                                        flags: .debitsMustNotExceedCredits, refs: [.customer(name)]))
                try txn.ledger.createAccount(NewAccount(id: "cust-\(name).credits", ledger: "credits.cents", code: 20,
                                                        flags: .debitsMustNotExceedCredits, refs: [.customer(name)]))
            }
            try txn.appendAudit(AuditDraft(event: "DEMO_DAY_STARTED", refs: [dayRef], payload: "{\"customers\":\(customers.count)}"))
        }
        step("accounts ready for \(customers.joined(separator: ", "))")

        // Morning: pack purchases.
        for name in customers {
            let packs = UInt64(random.next(in: 8...12))
            try await store.post(.transfer(id: "\(prefix)-buy-\(name)", debit: "kitchen.packs.sold", credit: "cust-\(name).packs",
                                     amount: packs, code: 1, refs: [.order("\(prefix)-o-\(name)-bundle"), .customer(name), dayRef]),
                           context: context(accountManager, "buy-\(name)"))
        }
        step("\(customers.count) customers bought pack bundles")

        // Stock: the morning's tomato delivery, short (the supply incident below names the item).
        let delivered = UInt64(random.next(in: 36...44))
        try await store.receiveStock(delivered, of: "tomato", at: Self.tomatoBin, transferID: "\(prefix)-grn-tomato",
                               refs: [.vendor("green-farm"), .order("\(prefix)-po-tomato"), dayRef],
                               context: context(storekeeper, "grn-tomato"))
        step("received \(delivered) tomatoes of the 100 ordered into \(Self.tomatoBin)")

        // Lunch: orders consume packs.
        var orders = 0
        for name in customers {
            for meal in 0..<random.next(in: 1...2) {
                try await store.post(.transfer(id: "\(prefix)-eat-\(name)-lunch-\(meal)", debit: "cust-\(name).packs",
                                         credit: "kitchen.packs.consumed", amount: 1, code: 2,
                                         refs: [.order("\(prefix)-o-\(name)-lunch-\(meal)"), .cycle("\(prefix)-lunch"), dayRef]),
                               context: context(dispatch, "eat-\(name)-lunch-\(meal)"))
                orders += 1
            }
        }
        step("lunch: \(orders) orders consumed one pack each")
        let tomatoesUsed = UInt64(random.next(in: 10...16))
        try await store.issueStock(tomatoesUsed, of: "tomato", from: Self.tomatoBin, transferID: "\(prefix)-issue-tomato-lunch",
                             refs: [.cycle("\(prefix)-lunch"), dayRef], context: context(chef, "issue-tomato-lunch"))
        step("the kitchen issued \(tomatoesUsed) tomatoes for lunch")

        // One reversal: a double charge at lunch, undone through the ledger.
        let doubled = customers[0]
        try await store.post(.transfer(id: "\(prefix)-eat-\(doubled)-lunch-dup", debit: "cust-\(doubled).packs",
                                 credit: "kitchen.packs.consumed", amount: 1, code: 2, refs: [.cycle("\(prefix)-lunch"), dayRef]),
                       context: context(dispatch, "eat-\(doubled)-dup"))
        try await store.post(.reversal(id: "\(prefix)-eat-\(doubled)-lunch-dup.rev", of: "\(prefix)-eat-\(doubled)-lunch-dup",
                                 refs: [dayRef]),
                       context: context(accountManager, "reverse-dup"))
        step("a duplicate lunch charge for \(doubled) was reversed (a new reversing entry, nothing edited)")

        // Incident 1 — supply: a vendor short delivery, answered with a consented substitution.
        let supply = try await store.recordIncident(
            IncidentReport(category: .supply, severity: .p2, summary: "Green Farm delivered 40% of the tomatoes ordered",
                           source: "vendor-monitor", refs: [.vendor("green-farm"), .item("tomato"), dayRef]),
            context: context(vendorMonitor, "supply-report")).result
        try await store.transition(supply.id, to: .acknowledged, expectedVersion: 1, context: context(accountManager, "supply-ack"))
        try await store.apply(.substitution(item: "tomato-salad", substitute: "roast-pepper-salad",
                                      consent: .preAuthorised(reference: "\(customers[1])-prefs-2026")),
                        to: supply.id, context: context(accountManager, "supply-substitute"))
        // A standard credit on a P2 incident: the policy applies it at once.
        let missing = try await store.proposeCompensation(
            .credit(CompensationCredit(customerAccount: "cust-\(customers[1]).credits", value: .amount(cents: 300),
                                       basis: .preApproved(code: "missing-item"))),
            for: supply.id, reasonCode: "salad-changed", proposalID: "missing-tomato-\(customers[1])",
            context: context(accountManager, "supply-propose")).result
        try await store.transition(supply.id, to: .contained, context: context(accountManager, "supply-contain"))
        step("supply incident \(supply.id): substitution with pre-authorised consent; a 300¢ missing-item credit was \(missing.state.rawValue) at once (\(missing.decision?.autoRule ?? "no rule")); contained")

        // Incident 2 — delivery: a late van. The detector's report is retried with the same decisionID.
        let report = IncidentReport(category: .delivery, severity: .p1, summary: "Van on route R4 running 40 minutes late",
                                    source: "dispatch-monitor", refs: [.route("R4"), .customer(customers[1]), .customer(customers[2]), dayRef])
        let late = try await store.recordIncident(report, context: context(dispatch, "r4-report", decision: "\(prefix)-dispatch-R4-late")).result
        let retry = try await store.recordIncident(report, context: context(dispatch, "r4-report-retry", decision: "\(prefix)-dispatch-R4-late"))
        step("delivery incident \(late.id) recorded; the detector's retry was \(retry.kind.rawValue) (same incident, nothing written)")
        try await store.transition(late.id, to: .acknowledged, context: context(accountManager, "r4-ack"))
        let now = store.options.clock.now().unixMicros
        try await store.apply(.delay(revisedTimeMicros: now + 45 * 60_000_000, subject: .route("R4")), to: late.id,
                        context: context(accountManager, "r4-delay"))
        // Money-moving responses carry a decisionID or a responseID, so that a retry cannot pay twice.
        let ruleCredit = IncidentResponse.credit(amountCents: 300, customerAccount: "cust-\(customers[1]).credits",
                                                 basis: .rule(id: "delivery-late-30min"))
        try await store.apply(ruleCredit, to: late.id, context: context(dispatch, "r4-rule-credit", decision: "\(prefix)-R4-late-rule-credit"))
        let creditRetry = try await store.apply(ruleCredit, to: late.id,
                                          context: context(dispatch, "r4-rule-credit-retry", decision: "\(prefix)-R4-late-rule-credit"))
        let amCredit = try await store.apply(
            .credit(amountCents: 400, customerAccount: "cust-\(customers[2]).credits", basis: .preApproved(code: "late-delivery")),
            to: late.id, responseID: "am-credit-\(customers[2])", context: context(accountManager, "r4-am-credit")).result
        step("delay by the account manager, a 300¢ rule credit by the system (its retry was \(creditRetry.kind.rawValue): credited once), a 400¢ pre-approved credit")
        do {
            try await store.apply(.refund(billingTransaction: "bill-\(prefix)-\(customers[2])-77", amountCents: 1_299), to: late.id,
                            responseID: "am-refund-\(customers[2])", context: context(accountManager, "r4-am-refund"))
        } catch let error as LarderError {
            refused("the account manager tried a refund", error)
        }
        try await store.apply(.credit(amountCents: 800, customerAccount: "cust-\(customers[2]).credits", basis: .discretionary),
                        to: late.id, reasonCode: "vip-customer", overriding: amCredit.id, responseID: "override-\(customers[2])",
                        context: context(admin, "r4-override"))
        let refund = try await store.apply(.refund(billingTransaction: "bill-\(prefix)-\(customers[2])-77", amountCents: 1_299), to: late.id,
                                     reasonCode: "meal-inedible", responseID: "refund-\(customers[2])",
                                     context: context(admin, "r4-refund")).result
        try await store.recordRefundOutcome(refund.refundID!, status: .succeeded, detail: "psp-ref-\(prefix)-77",
                                      context: context(billing, "r4-refund-outcome"))
        step("the admin overrode the credit (800¢, reason vip-customer) and requested a 1299¢ refund; Billing reported it succeeded")
        // A P1 incident: even a standard credit waits for a decision; its amount is reserved meanwhile.
        let coldMeal = try await store.proposeCompensation(
            .credit(CompensationCredit(customerAccount: "cust-\(customers[1]).credits",
                                       value: .percentage(percent: 50, ofCents: 2_400, capCents: 1_000), basis: .preApproved(code: "quality-issue"))),
            for: late.id, reasonCode: "meal-arrived-cold", proposalID: "cold-meal-\(customers[1])",
            context: context(accountManager, "r4-propose")).result
        let reserved = try store.read { view in try view.ledger.balance(of: "cust-\(customers[1]).credits") }
        step("proposed 50% of 24.00 capped at 10.00 for \(customers[1]): \(coldMeal.state.rawValue), \(coldMeal.creditCents ?? 0)¢ reserved (pending \(reserved.creditsPending)¢, not spendable)")
        try await store.approveCompensation(coldMeal.id, reasonCode: "meal-arrived-cold",
                                      context: context(admin, "r4-approve", decision: "\(prefix)-approve-cold-meal"))
        step("the admin approved it: the reserved credit was posted and applied as a response")
        let waiting = try await store.proposeCompensation(
            .credit(CompensationCredit(customerAccount: "cust-\(customers[2]).credits", value: .amount(cents: 300),
                                       basis: .rule(id: "delivery-late-30min"))),
            for: late.id, reasonCode: "route-late", context: context(dispatch, "r4-propose-rule", decision: "\(prefix)-R4-rule-proposal")).result
        step("the dispatch monitor proposed a 300¢ rule credit for \(customers[2]): \(waiting.state.rawValue) until someone decides")
        try await store.transition(late.id, to: .contained, context: context(accountManager, "r4-contain"))
        try await store.transition(late.id, to: .resolved, context: context(accountManager, "r4-resolve"))

        // Dinner reservations: packs held (pending) for the dinner cycle.
        let diners = [customers[0], customers[3]]
        for name in diners {
            try await store.post(.pending(id: "\(prefix)-reserve-\(name)-dinner", debit: "cust-\(name).packs", credit: "kitchen.packs.consumed",
                                    amount: 1, code: 2, refs: [.cycle("\(prefix)-dinner"), dayRef]),
                           context: context(dispatch, "reserve-\(name)-dinner"))
        }
        step("dinner: \(diners.count) packs reserved")

        // Incident 3 — kitchen: an oven fails; the dinner cycle is cancelled, its packs are not consumed.
        let oven = try await store.recordIncident(
            IncidentReport(category: .kitchenProduction, severity: .p0, summary: "Oven 2 failed during dinner prep",
                           source: "chef-lee", refs: [.cycle("\(prefix)-dinner"), dayRef]),
            context: context(chef, "oven-report")).result
        try await store.transition(oven.id, to: .acknowledged, context: context(accountManager, "oven-ack"))
        try await store.apply(.cancellation(cycle: "\(prefix)-dinner"), to: oven.id, reasonCode: "oven-failure",
                        context: context(admin, "oven-cancel", decision: "\(prefix)-oven-cancel-dinner"))
        do {
            try await store.post(.transfer(id: "\(prefix)-eat-\(customers[3])-dinner-0", debit: "cust-\(customers[3]).packs",
                                     credit: "kitchen.packs.consumed", amount: 1, code: 2,
                                     refs: [.cycle("\(prefix)-dinner"), dayRef]),
                           context: context(dispatch, "eat-\(customers[3])-dinner"))
        } catch let error as LarderError {
            refused("a dinner order tried to consume a pack of the cancelled cycle", error)
        }
        for name in diners {
            try await store.post(.void(id: "\(prefix)-reserve-\(name)-dinner.void", pending: "\(prefix)-reserve-\(name)-dinner",
                                 refs: [.cycle("\(prefix)-dinner"), dayRef]),
                           context: context(dispatch, "release-\(name)-dinner"))
        }
        step("the \(diners.count) dinner reservations were released: the packs stay with their customers")
        // A mixed proposal (a credit and half the meal refunded) is non-standard: only an admin decides it.
        let mixed = try await store.proposeCompensation(
            .mixed(credit: CompensationCredit(customerAccount: "cust-\(customers[3]).credits", value: .amount(cents: 500), basis: .discretionary),
                   refund: CompensationRefund(billingTransaction: "bill-\(prefix)-\(customers[3])-88",
                                              value: .percentage(percent: 50, ofCents: 2_598, capCents: 1_500))),
            for: oven.id, reasonCode: "dinner-cancelled", proposalID: "dinner-\(customers[3])",
            context: context(accountManager, "oven-propose")).result
        do {
            try await store.approveCompensation(mixed.id, context: context(accountManager, "oven-am-approve"))
        } catch let error as LarderError {
            refused("the account manager tried to approve the non-standard proposal", error)
        }
        let rejection = context(admin, "oven-reject", decision: "\(prefix)-reject-dinner-\(customers[3])")
        try await store.rejectCompensation(mixed.id, reasonCode: "covered-by-cancellation", context: rejection)
        let rejectionRetry = try await store.rejectCompensation(mixed.id, reasonCode: "covered-by-cancellation", context: rejection)
        step("the admin rejected the mixed proposal (\(mixed.offer.totalCents)¢; its reserved 500¢ released); the retry was \(rejectionRetry.kind.rawValue)")
        do {
            try await store.approveCompensation(mixed.id, reasonCode: "second-thoughts", context: context(admin, "oven-approve-late"))
        } catch let error as LarderError {
            refused("approving the rejected proposal afterwards", error)
        }
        for (state, what) in [(IncidentState.contained, "contain"), (.resolved, "resolve")] {
            try await store.transition(oven.id, to: state, context: context(accountManager, "oven-\(what)"))
        }
        do {
            try await store.transition(oven.id, to: .closed, context: context(accountManager, "oven-close-early"))
        } catch let error as LarderError {
            refused("closing the P0 without a postmortem", error)
        }
        try await store.transition(oven.id, to: .closed, postmortemRef: "pm-\(prefix)-oven2", context: context(admin, "oven-close"))
        step("kitchen incident \(oven.id): dinner cycle cancelled by the admin, closed with postmortem pm-\(prefix)-oven2")

        // The afternoon cycle count: the bin holds fewer tomatoes than the ledger says (some spoiled).
        let onLedger = try store.read { view in try view.stock.quantity(of: "tomato", at: Self.tomatoBin) }
        let counted = onLedger - UInt64(random.next(in: 1...3))
        let count = try await store.recordCount(item: "tomato", location: Self.tomatoBin, counted: counted,
                                          countID: "\(prefix)-cc-tomato-chill-A3", refs: [dayRef],
                                          context: context(storekeeper, "cc-tomato")).result
        step("cycle count of tomatoes at \(Self.tomatoBin): counted \(count.counted), the ledger expected \(count.expected); adjustment \(count.adjustment) booked, nothing overwritten")

        // The summary.
        var summary = Summary()
        for name in customers {
            let (packs, credits) = try store.read { view in
                (try view.ledger.balance(of: "cust-\(name).packs").net, try view.ledger.balance(of: "cust-\(name).credits").net)
            }
            summary.customers.append((name, packs, credits))
        }
        summary.incidentsToday = try [supply.id, late.id, oven.id].map { id in
            try store.read { view in try view.incidents.incident(id: id)! }
        }
        summary.openIncidents = try store.read { view in
            try view.incidents.incidents(limit: 500).incidents.filter { $0.state != .closed }
        }
        summary.proposals = try [missing.id, coldMeal.id, waiting.id, mixed.id].map { id in
            try store.read { view in try view.compensation.proposal(id: id)! }
        }
        summary.waitingProposals = try store.read { view in
            try view.compensation.proposals(state: .pending, limit: CompensationReader.proposalsPerPageMax).proposals.count
        }
        summary.overdueProposals = try store.overdueProposals().count
        summary.count = count
        summary.costs = try store.read { view in try view.reports.incidentCosts(since: supply.createdAtMicros) }
        summary.head = try store.read { view in try view.audit.head() }
        summary.verify = try store.verify()
        return summary
    }
}

/// SplitMix64: the demo's seeded randomness (the same seed plays the same day).
struct DemoRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(in range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
}
