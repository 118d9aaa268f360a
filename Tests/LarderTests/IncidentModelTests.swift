import Foundation
import Larder
import LarderTesting
import Testing

/// Thousands of seeded random incident calls — reports, legal and illegal transitions, stale
/// versions, responses of every kind by every role, overrides, refunds and their outcomes,
/// cancellations and the consumption they refuse, and exact retries of each with their decisionID
/// or responseID — each compared with the in-memory ``IncidentModel``: the outcome (committed,
/// replayed or the error code), the value, the audit seq, and the audit head after every step.
/// Set `LARDER_TEST_SEED` to replay a failing run and `LARDER_MODEL_STEPS` for a longer one.
@Suite("Incidents against their reference model")
struct IncidentModelTests {
    /// One call, kept so that it can be retried exactly.
    enum Call: CustomStringConvertible {
        case record(IncidentReport, WriteContext)
        case transition(String, IncidentState, expectedVersion: UInt32?, postmortemRef: String?, reasonCode: String?, WriteContext)
        case apply(IncidentResponse, String, expectedVersion: UInt32?, reasonCode: String?, overriding: String?, responseID: String?,
                   WriteContext)
        case refundOutcome(String, RefundStatus, detail: String?, WriteContext)
        case post(TransferRequest, WriteContext)

        var description: String {
            switch self {
            case .record(let report, let context): "record \(report) by \(Self.describe(context))"
            case .transition(let id, let state, let version, let postmortem, let reason, let context):
                "transition \(id) to \(state.rawValue) expecting v\(version.map(String.init) ?? "-") postmortem \(postmortem ?? "-") reason \(reason ?? "-") by \(Self.describe(context))"
            case .apply(let response, let id, let version, let reason, let overriding, let responseID, let context):
                "apply \(response) to \(id) expecting v\(version.map(String.init) ?? "-") reason \(reason ?? "-") overriding \(overriding ?? "-") responseID \(responseID ?? "-") by \(Self.describe(context))"
            case .refundOutcome(let id, let status, let detail, let context):
                "refund outcome \(id) \(status.rawValue) detail \(detail ?? "-") by \(Self.describe(context))"
            case .post(let transfer, let context): "post \(transfer) by \(Self.describe(context))"
            }
        }

        static func describe(_ context: WriteContext) -> String {
            "\(context.actor) request \(context.requestID) decision \(context.decisionID ?? "-")"
        }
    }

    static let actors = [ActorIdentity(id: "am-1", role: .accountManager), ActorIdentity(id: "am-2", role: .accountManager),
                         ActorIdentity(id: "admin-1", role: .admin), ActorIdentity(id: "sys-1", role: .system)]
    static let customers = 3

    static var steps: Int {
        if let text = ProcessInfo.processInfo.environment["LARDER_MODEL_STEPS"], let steps = Int(text) { return steps }
        return 2_000
    }

    @Test func randomIncidentCallsMatchTheModel() throws {
        let seed = SeededGenerator.seedFromEnvironment(default: 0x1C1D_E575)
        var random = SeededGenerator(seed: seed)
        let temporary = try TemporaryStore(options: .init(durability: .fastUnsafe))
        let store = temporary.store
        let clock = temporary.clock

        // Customers with credit, spending and pack accounts; plenty of packs, so that only a
        // cancelled cycle refuses a consumption.
        var accounts: [NewAccount] = [NewAccount(id: "kitchen.packs", ledger: "packs"), NewAccount(id: "kitchen.consumed", ledger: "packs")]
        for index in 0..<Self.customers {
            accounts += [NewAccount(id: "cust-\(index).credits", ledger: "credits.cents", flags: .debitsMustNotExceedCredits),
                         NewAccount(id: "cust-\(index).spent", ledger: "credits.cents"),
                         NewAccount(id: "cust-\(index).packs", ledger: "packs", flags: .debitsMustNotExceedCredits)]
        }
        let funding = (0..<Self.customers).map {
            TransferRequest.transfer(id: "fund-\($0)", debit: "kitchen.packs", credit: "cust-\($0).packs", amount: 1_000_000)
        }
        try store.write(WriteContext(actor: Self.actors[2], requestID: "setup")) { txn in
            for account in accounts { try txn.ledger.createAccount(account) }
            for transfer in funding { try txn.ledger.post(transfer) }
        }
        var ledger = LedgerModel()
        for account in accounts { ledger.createAccount(account) }
        for transfer in funding { #expect(ledger.post(transfer) == nil) }
        var model = IncidentModel(auditHead: try store.read { try $0.audit.head().seq }, ledger: ledger)

        // Who last moved each incident, so that a call can be the same request again.
        var lastTransition: [String: Call] = [:]
        var previous: Call?
        var counts: [String: Int] = [:]

        func pick<T>(_ values: [T]) -> T { values.randomElement(using: &random)! }
        func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }
        // Mostly the newest incidents, so that calls meet on the same ones.
        func someIncident() -> String {
            let known = model.incidents.values.sorted { ($0.createdAtMicros, $0.id) < ($1.createdAtMicros, $1.id) }.map(\.id)
            if known.isEmpty || chance(4) { return "ghost" }
            return chance(80) ? pick(Array(known.suffix(6))) : pick(known)
        }
        func decision() -> String? { chance(25) ? "d-\(Int.random(in: 0..<400, using: &random))" : nil }
        func version(of id: String) -> UInt32? {
            guard let current = model.incidents[id]?.version else { return chance(50) ? 1 : nil }
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<50: return nil
            case 50..<85: return current
            default: return chance(50) ? current + 1 : max(current, 2) - 1
            }
        }
        func now() -> UnixMicros { clock.now().unixMicros }

        func randomResponse(for actor: ActorIdentity, category: IncidentCategory?) -> IncidentResponse {
            // Sorted: a Set's order changes from one process to the next, and the run must not.
            let types: [ResponseType] = chance(70) ? IncidentModel.allowed(actor.role).sorted { $0.rawValue < $1.rawValue } : ResponseType.allCases
            switch pick(types.isEmpty ? ResponseType.allCases : types) {
            case .delay:
                return .delay(revisedTimeMicros: now() + Int64.random(in: -600...7_200, using: &random) * 1_000_000,
                              subject: chance(95) ? .order("o-\(Int.random(in: 0..<3, using: &random))") : CorrelationRef("Bad", "x"))
            case .substitution:
                return .substitution(item: "salmon", substitute: pick(["trout", "cod"]),
                                     consent: chance(10) ? nil : pick([.preAuthorised(reference: "pref-1"), .explicit(reference: "call-9")]))
            case .credit:
                let customer = chance(90) ? "cust-\(Int.random(in: 0..<Self.customers, using: &random)).credits" : pick(["cust-0.packs", "ghost"])
                let basis: CreditBasis
                let amount: UInt64
                switch (actor.role, chance(65)) {
                case (.accountManager, true):
                    basis = .preApproved(code: pick(["late-delivery", "missing-item"]))
                    amount = pick([100, 300, 500])
                case (.system, true):
                    let rule = category == .orderingSystem ? "ordering-outage" : "delivery-late-30min"
                    basis = .rule(id: rule)
                    amount = rule == "ordering-outage" ? 500 : 300
                case (.admin, true):
                    basis = .discretionary
                    amount = pick([50, 700, 2_500])
                default:
                    basis = pick([.preApproved(code: "late-delivery"), .preApproved(code: "vip"), .rule(id: "delivery-late-30min"),
                                  .rule(id: "none"), .discretionary])
                    amount = pick([0, 250, 300, 600, 2_000])
                }
                return .credit(amountCents: amount, customerAccount: customer, basis: basis)
            case .refund:
                return .refund(billingTransaction: chance(90) ? "bill-\(Int.random(in: 0..<5, using: &random))" : nil,
                               amountCents: chance(92) ? 1_299 : 0)
            case .cancellation:
                return .cancellation(cycle: "c-\(Int.random(in: 0..<6, using: &random))")
            }
        }

        func nextCall(step: Int) -> Call {
            // An exact retry of the previous call, as a client sends after a lost answer.
            if let previous, chance(10) { return previous }
            let requestID = "req-\(step)"
            let actor = pick(Self.actors)
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<10:
                let chosen: String? = chance(40) ? "ci-\(Int.random(in: 0..<40, using: &random))" : nil
                let report = IncidentReport(id: chosen, category: pick(IncidentCategory.allCases), severity: pick(Severity.allCases),
                                            summary: chance(97) ? pick(["Van late", "Oven down"]) : "",
                                            source: "detector-\(Int.random(in: 0..<2, using: &random))",
                                            refs: chance(50) ? [.order("o-1")] : [.route("R4"), .order("o-2")])
                return .record(report, WriteContext(actor: actor, requestID: requestID, decisionID: decision()))
            case 10..<36:
                let id = someIncident()
                // The request that made the current state, sent again (sometimes with a change).
                if let last = lastTransition[id], chance(30) {
                    guard case .transition(_, let state, let version, let postmortem, _, let context) = last else { return last }
                    return chance(75) ? last
                        : .transition(id, state, expectedVersion: version, postmortemRef: postmortem, reasonCode: chance(50) ? "other" : nil,
                                      context)
                }
                let current = model.incidents[id]?.state ?? .open
                let target: IncidentState = switch Int.random(in: 0..<100, using: &random) {
                case 0..<72: current.next ?? .closed
                case 72..<86: current
                default: pick(IncidentState.allCases)
                }
                let postmortem: String? = target == .closed ? (chance(75) ? "pm-\(step)" : nil) : (chance(8) ? "pm-x" : nil)
                return .transition(id, target, expectedVersion: version(of: id), postmortemRef: postmortem,
                                   reasonCode: chance(20) ? pick(["paged", "bad reason!"]) : nil,
                                   WriteContext(actor: actor, requestID: requestID, decisionID: decision()))
            case 36..<74:
                let id = someIncident()
                let response = randomResponse(for: actor, category: model.incidents[id]?.category)
                let reason: String? = actor.role == .admin ? (chance(88) ? "goodwill" : nil) : (chance(15) ? "note" : nil)
                var overriding: String?
                if chance(actor.role == .admin ? 30 : 3) {
                    let responses = model.incidents[id]?.responses ?? []
                    let managers = responses.filter { $0.actor.role == .accountManager && !responses.map(\.overrides).contains($0.id) }
                    overriding = (chance(75) ? managers.randomElement(using: &random) : responses.randomElement(using: &random))?.id ?? "ghost.r1"
                }
                let responseID: String? = switch Int.random(in: 0..<100, using: &random) {
                case 0..<60: "k\(Int.random(in: 0..<6, using: &random))"
                case 60..<63: "r1"
                default: nil
                }
                return .apply(response, id, expectedVersion: version(of: id), reasonCode: reason, overriding: overriding,
                              responseID: responseID, WriteContext(actor: actor, requestID: requestID, decisionID: decision()))
            case 74..<82:
                let refund = model.refunds.keys.sorted().randomElement(using: &random) ?? "ghost.refund"
                let status: RefundStatus = chance(6) ? .requested : pick([.succeeded, .failed])
                return .refundOutcome(chance(95) ? refund : "ghost.refund", status, detail: chance(50) ? "psp-\(Int.random(in: 0..<2, using: &random))" : nil,
                                      WriteContext(actor: actor, requestID: requestID, decisionID: decision()))
            case 82..<87:
                // Often all of it, and often the customer of a credit an admin may override, so
                // that reversing the overridden credit breaks the balance rule.
                var customer = "cust-\(Int.random(in: 0..<Self.customers, using: &random)).credits"
                if chance(50), let target = overridable().randomElement(using: &random), case .credit(_, let account, _) = target.1.response {
                    customer = account
                }
                let net = model.ledger.accounts[customer].map { $0.balance.net } ?? 0
                let amount = net > 0 && chance(60) ? UInt64(net) : UInt64.random(in: 1...2_000, using: &random)
                return .post(.transfer(id: "spend-\(step)", debit: customer, credit: customer.replacingOccurrences(of: ".credits", with: ".spent"),
                                       amount: amount),
                             WriteContext(actor: actor, requestID: requestID))
            case 87..<89:
                let credits = model.incidents.values.flatMap { $0.responses.compactMap(\.transferID) }.sorted()
                return .post(.reversal(id: "rev-\(step)", of: credits.randomElement(using: &random) ?? "ghost.credit"),
                             WriteContext(actor: actor, requestID: requestID))
            case 89..<94:
                let customer = Int.random(in: 0..<Self.customers, using: &random)
                return .post(.transfer(id: "eat-\(step)", debit: "cust-\(customer).packs", credit: "kitchen.consumed", amount: 1,
                                       refs: [.cycle("c-\(Int.random(in: 0..<6, using: &random))")]),
                             WriteContext(actor: actor, requestID: requestID))
            default:
                // An admin overrides an account manager's credit with a credit of their own.
                guard let (incident, target) = overridable().randomElement(using: &random) else {
                    return .record(IncidentReport(category: .supply, severity: .p3, summary: "x", source: "s"),
                                   WriteContext(actor: actor, requestID: requestID))
                }
                let response = IncidentResponse.credit(amountCents: pick([100, 900]), customerAccount: "cust-\(Int.random(in: 0..<Self.customers, using: &random)).credits",
                                                       basis: .discretionary)
                return .apply(response, incident, expectedVersion: nil, reasonCode: "override", overriding: target.id,
                              responseID: "o\(Int.random(in: 0..<3, using: &random))",
                              WriteContext(actor: Self.actors[2], requestID: requestID, decisionID: nil))
            }
        }

        /// Open incidents' account-manager credits that no override replaced yet and whose transfer stands.
        func overridable() -> [(String, IncidentModel.ModelResponse)] {
            model.incidents.keys.sorted().flatMap { id -> [(String, IncidentModel.ModelResponse)] in
                let incident = model.incidents[id]!
                guard incident.state != .closed else { return [] }
                return incident.responses.filter { response in
                    response.actor.role == .accountManager && !incident.responses.contains { $0.overrides == response.id }
                        && response.transferID.map { !model.ledger.isResolved($0) } == true
                }.map { (id, $0) }
            }
        }

        /// Runs `call` against the store and the model; false at the first difference.
        func run(_ call: Call, step: Int) -> Bool {
            func compare<V, M: Hashable & Sendable>(_ expected: IncidentModel.Outcome<M>, _ convert: (V) -> M,
                                                     _ body: () throws -> WriteOutcome<V>) -> Bool {
                let actual: IncidentModel.Outcome<M>
                var message = ""
                do {
                    let outcome = try body()
                    actual = outcome.kind == .committed ? .committed(convert(outcome.result), auditSeq: outcome.auditSeq ?? 0)
                        : .replayed(convert(outcome.result), auditSeq: outcome.auditSeq ?? 0)
                } catch let error as LarderError {
                    actual = .failed(error.code)
                    message = error.message
                } catch {
                    actual = .failed(LarderError.Code(rawValue: "\(error)"))
                }
                let key: String = switch actual {
                case .committed: "committed"
                case .replayed: "replayed"
                case .failed(let code): code.rawValue
                }
                counts["\(call.kind) \(key)", default: 0] += 1
                if case .apply(_, _, _, _, let overriding?, _, _) = call, !overriding.hasPrefix("ghost") { counts["override \(key)", default: 0] += 1 }
                guard actual == expected else {
                    Issue.record("seed \(seed) step \(step): \(call)\n  store: \(actual) \(message)\n  model: \(expected)")
                    return false
                }
                return true
            }
            let time = now()
            switch call {
            case .record(let report, let context):
                return compare(model.record(report, context: context, nowMicros: time), IncidentModel.ModelIncident.init) {
                    try store.recordIncident(report, context: context)
                }
            case .transition(let id, let state, let version, let postmortem, let reason, let context):
                let expected = model.transition(id, to: state, expectedVersion: version, postmortemRef: postmortem, reasonCode: reason,
                                                context: context, nowMicros: time)
                if case .committed = expected { lastTransition[id] = call }
                return compare(expected, IncidentModel.ModelIncident.init) {
                    try store.transition(id, to: state, expectedVersion: version, postmortemRef: postmortem, reasonCode: reason, context: context)
                }
            case .apply(let response, let id, let version, let reason, let overriding, let responseID, let context):
                let expected = model.apply(response, to: id, expectedVersion: version, reasonCode: reason, overriding: overriding,
                                           responseID: responseID, context: context, nowMicros: time)
                return compare(expected, IncidentModel.ModelResponse.init) {
                    try store.apply(response, to: id, expectedVersion: version, reasonCode: reason, overriding: overriding,
                                    responseID: responseID, context: context)
                }
            case .refundOutcome(let id, let status, let detail, let context):
                return compare(model.recordRefundOutcome(id, status: status, detail: detail, context: context), IncidentModel.ModelRefund.init) {
                    try store.recordRefundOutcome(id, status: status, detail: detail, context: context)
                }
            case .post(let transfer, let context):
                return compare(model.post(transfer), { (outcome: LedgerOutcome<Transfer>) in outcome.value.id }) {
                    try store.post(transfer, context: context)
                }
            }
        }

        for step in 0..<Self.steps {
            if chance(30) { clock.advance(seconds: Double(Int.random(in: 1...900, using: &random))) }
            let call = nextCall(step: step)
            guard run(call, step: step) else { return }
            previous = call
            let head = try store.read { try $0.audit.head().seq }
            guard head == model.auditHead else {
                Issue.record("seed \(seed) step \(step): after \(call) the audit head is \(head), the model says \(model.auditHead)")
                return
            }
            if step % 250 == 249 { guard try Self.compareState(store, model, seed: seed, step: step) else { return } }
        }
        guard try Self.compareState(store, model, seed: seed, step: Self.steps) else { return }
        let report = try store.verify()
        #expect(report.isIntact, "seed \(seed): \(report.problems)")
        // The run must have reached what it is meant to test.
        for outcome in ["apply committed", "apply replayed", "apply CONFLICT", "apply PERMISSION_DENIED", "apply VALIDATION_FAILED",
                        "apply COMPUTE_ERROR", "override committed", "override COMPUTE_ERROR", "record replayed", "record CONFLICT", "transition committed", "transition replayed",
                        "transition CONFLICT", "refundOutcome committed", "refundOutcome replayed", "post CONFLICT"] {
            #expect(counts[outcome, default: 0] > 0, "seed \(seed): no \(outcome) in \(Self.steps) steps: \(counts.sorted { $0.key < $1.key })")
        }
    }

    /// Every incident, refund, cancelled cycle and balance of the model, read back from the store.
    static func compareState(_ store: Store, _ model: IncidentModel, seed: UInt64, step: Int) throws -> Bool {
        try store.read { view in
            var stored: [String: IncidentModel.ModelIncident] = [:]
            var cursor: String?
            repeat {
                let page = try view.incidents.incidents(limit: 500, cursor: cursor)
                for incident in page.incidents { stored[incident.id] = IncidentModel.ModelIncident(incident) }
                cursor = page.nextCursor
            } while cursor != nil
            guard stored == model.incidents else {
                let differing = Set(stored.keys).union(model.incidents.keys).sorted().first { stored[$0] != model.incidents[$0] }!
                Issue.record("seed \(seed) step \(step): incident \(differing) is \(String(describing: stored[differing])), the model says \(String(describing: model.incidents[differing]))")
                return false
            }
            for (id, refund) in model.refunds {
                let actual = try view.incidents.refund(id: id).map(IncidentModel.ModelRefund.init)
                guard actual == refund else {
                    Issue.record("seed \(seed) step \(step): refund \(id) is \(String(describing: actual)), the model says \(refund)")
                    return false
                }
            }
            for cycle in (0..<6).map({ "c-\($0)" }) where try view.incidents.cancellation(ofCycle: cycle) != model.cancelledCycles[cycle] {
                Issue.record("seed \(seed) step \(step): cycle \(cycle) cancellation differs from the model's \(String(describing: model.cancelledCycles[cycle]))")
                return false
            }
            for (id, account) in model.ledger.accounts {
                let balance = try view.ledger.balance(of: id)
                guard balance == account.balance else {
                    Issue.record("seed \(seed) step \(step): \(id) is \(balance), the model says \(account.balance)")
                    return false
                }
            }
            return true
        }
    }
}

extension IncidentModelTests.Call {
    var kind: String {
        switch self {
        case .record: "record"
        case .transition: "transition"
        case .apply: "apply"
        case .refundOutcome: "refundOutcome"
        case .post: "post"
        }
    }
}

extension IncidentModel {
    /// The response types the default policy lets `role` apply.
    static func allowed(_ role: Role) -> Set<ResponseType> { FailurePolicy.default.allowedResponses[role] ?? [] }
}
