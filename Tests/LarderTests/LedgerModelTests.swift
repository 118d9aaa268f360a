import Foundation
import Larder
import LarderTesting
import Testing

/// Thousands of random transfers, reversals, pending/post/void and linked batches, with every
/// balance and every error code compared to the in-memory ``LedgerModel`` after every step.
/// Set `LARDER_TEST_SEED` to replay a failing run.
@Suite("Ledger against its reference model")
struct LedgerModelTests {
    @Test func randomOperationsMatchTheModel() throws {
        let seed = SeededGenerator.seedFromEnvironment(default: 0x5EED_1ED6)
        var random = SeededGenerator(seed: seed)
        let temporary = try TemporaryStore(options: .init(durability: .fastUnsafe))
        let store = temporary.store
        var model = LedgerModel()

        let accounts: [NewAccount] = (0..<4).map { NewAccount(id: "packs-\($0)", ledger: "packs", flags: .debitsMustNotExceedCredits) }
            + [NewAccount(id: "packs-source", ledger: "packs"), NewAccount(id: "packs-sink", ledger: "packs", flags: .creditsMustNotExceedDebits)]
            + (0..<3).map { NewAccount(id: "cents-\($0)", ledger: "cents", flags: $0 == 0 ? [] : .debitsMustNotExceedCredits) }
        try store.write(.test("setup")) { txn in for account in accounts { try txn.ledger.createAccount(account) } }
        for account in accounts { model.createAccount(account) }
        let ids = accounts.map(\.id) + ["ghost"]

        var transferIDs: [String] = []
        var next = 0
        func freshID() -> String {
            next += 1
            return "t-\(next)"
        }
        func randomAmount() -> UInt64 {
            switch Int.random(in: 0..<20, using: &random) {
            case 0: UInt64.max - UInt64.random(in: 0...5, using: &random)
            case 1: 0
            default: UInt64.random(in: 1...40, using: &random)
            }
        }
        func randomRequest() -> TransferRequest {
            let existing = transferIDs.randomElement(using: &random)
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<45:
                return .transfer(id: freshID(), debit: ids.randomElement(using: &random)!, credit: ids.randomElement(using: &random)!,
                                 amount: randomAmount())
            case 45..<60:
                return .pending(id: freshID(), debit: ids.randomElement(using: &random)!, credit: ids.randomElement(using: &random)!,
                                amount: randomAmount())
            case 60..<70:
                let amount: UInt64? = Bool.random(using: &random) ? nil : UInt64.random(in: 1...40, using: &random)
                return .post(id: freshID(), pending: existing ?? "none", amount: amount)
            case 70..<76:
                return .void(id: freshID(), pending: existing ?? "none")
            case 76..<88:
                return .reversal(id: freshID(), of: existing ?? "none")
            default:
                // Reuse an id: sometimes identical (exists), sometimes not (conflict).
                guard let existing else { return .transfer(id: freshID(), debit: "packs-source", credit: "packs-0", amount: 5) }
                return .transfer(id: existing, debit: "packs-source", credit: "packs-0", amount: UInt64.random(in: 1...3, using: &random))
            }
        }

        let steps = 2_500
        for step in 0..<steps {
            if Int.random(in: 0..<10, using: &random) == 0 {
                let batch = (0..<Int.random(in: 2...5, using: &random)).map { _ in randomRequest() }
                let expected = model.postLinked(batch)
                let report = try store.postLinked(batch, context: .test("step-\(step)")).result
                #expect(report.committed == (expected == nil), "seed \(seed) step \(step)")
                if let expected, case .failed(let code, _) = report.items[expected.index] {
                    #expect(code == expected.code.rawValue, "seed \(seed) step \(step)")
                } else if let expected {
                    Issue.record("seed \(seed) step \(step): expected transfer \(expected.index) to fail with \(expected.code)")
                }
                if report.committed { transferIDs += batch.map(\.id) }
            } else {
                let request = randomRequest()
                let expected = model.post(request)
                do {
                    _ = try store.post(request, context: .test("step-\(step)"))
                    #expect(expected == nil, "seed \(seed) step \(step): \(request) succeeded, the model says \(String(describing: expected))")
                    transferIDs.append(request.id)
                } catch let error as LarderError {
                    #expect(error.code == expected, "seed \(seed) step \(step): \(request) failed with \(error), the model says \(String(describing: expected))")
                }
            }
            let balances = try store.read { view in
                try accounts.map { try view.ledger.balance(of: $0.id) }
            }
            for (account, balance) in zip(accounts, balances) where model.accounts[account.id]?.balance != balance {
                Issue.record("seed \(seed) step \(step): \(account.id) is \(balance), the model says \(String(describing: model.accounts[account.id]?.balance))")
                return
            }
        }
        let report = try store.verify()
        #expect(report.isIntact, "seed \(seed): \(report.problems)")
    }
}

/// Pending compensation and cycle counts against the same model: random proposals (waiting
/// credits), approvals, rejections and second decisions, spending that must not reach a reserved
/// credit, stock receipts, issues and counts — every outcome code and every balance compared
/// after every step. Set `LARDER_TEST_SEED` to replay a failing run.
@Suite("Pending compensation and stock counts against the ledger model")
struct PendingCompensationModelTests {
    @Test func randomProposalsDecisionsAndCountsMatchTheModel() throws {
        let seed = SeededGenerator.seedFromEnvironment(default: 0xC0_4E_5A_7E)
        var random = SeededGenerator(seed: seed)
        // Every proposal waits: no auto rule, so the model sees only holds, posts and voids.
        var policy = FailurePolicy.default
        policy.compensation.autoApply = []
        let temporary = try TemporaryStore(options: .init(durability: .fastUnsafe, policy: policy))
        let store = temporary.store
        var model = LedgerModel()
        let manager = WriteContext(actor: ActorIdentity(id: "am-1", role: .accountManager), requestID: "setup")
        let admin = ActorIdentity(id: "admin-1", role: .admin)

        let customers = (0..<3).map { "cust-\($0).credits" }
        var accounts = customers.map { NewAccount(id: $0, ledger: "credits.cents", flags: .debitsMustNotExceedCredits) }
        accounts.append(NewAccount(id: "spent", ledger: "credits.cents"))
        accounts.append(NewAccount(id: "cust-0.packs", ledger: "packs", flags: .debitsMustNotExceedCredits))
        try store.write(manager) { txn in for account in accounts { try txn.ledger.createAccount(account) } }
        for account in accounts { model.createAccount(account) }
        let incident = try store.recordIncident(IncidentReport(category: .delivery, severity: .p1, summary: "late", source: "dispatch"),
                                                context: manager).result
        let items = ["tomato", "basil"]
        let locations = [StockLocation(hub: "central", bin: "A1"), StockLocation(hub: "central", bin: "B2"), StockLocation(hub: "north")]

        var proposals: [String] = []
        var next = 0
        func fresh(_ prefix: String) -> String {
            next += 1
            return "\(prefix)-\(next)"
        }
        func check<R>(_ step: Int, _ what: String, expected: LarderError.Code?, _ body: () throws -> R) -> R? {
            do {
                let result = try body()
                #expect(expected == nil, "seed \(seed) step \(step): \(what) succeeded, the model says \(String(describing: expected))")
                return result
            } catch let error as LarderError {
                #expect(error.code == expected, "seed \(seed) step \(step): \(what) failed with \(error), the model says \(String(describing: expected))")
            } catch {
                Issue.record("seed \(seed) step \(step): \(what) threw \(error)")
            }
            return nil
        }

        for step in 0..<400 {
            let context = WriteContext(actor: ActorIdentity(id: "am-1", role: .accountManager), requestID: "step-\(step)")
            let decider = WriteContext(actor: admin, requestID: "step-\(step)")
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<30:
                let customer = Int.random(in: 0..<10, using: &random) == 0 ? "ghost.credits" : customers.randomElement(using: &random)!
                let amount = Int.random(in: 0..<15, using: &random) == 0 ? 0 : UInt64.random(in: 1...500, using: &random)
                let id = fresh("p")
                let expected = model.holdCompensation("\(incident.id).\(id)", issuing: policy.creditIssuingAccount,
                                                      customer: customer, amount: amount)
                let offer = CompensationOffer.credit(CompensationCredit(customerAccount: customer, value: .amount(cents: amount),
                                                                        basis: .discretionary))
                if let proposal = check(step, "propose \(amount) to \(customer)", expected: expected, {
                    try store.proposeCompensation(offer, for: incident.id, reasonCode: "goodwill", proposalID: id, context: context).result
                }) {
                    #expect(proposal.state == .pending)
                    proposals.append(proposal.id)
                }
            case 30..<50:
                // Sometimes a proposal decided already, or one that does not exist.
                let id = proposals.randomElement(using: &random) ?? "\(incident.id).none"
                let expected = model.approveCompensation(id)
                _ = check(step, "approve \(id)", expected: expected) {
                    try store.approveCompensation(id, reasonCode: "ok", context: decider)
                }
            case 50..<65:
                let id = proposals.randomElement(using: &random) ?? "\(incident.id).none"
                let expected = model.rejectCompensation(id)
                _ = check(step, "reject \(id)", expected: expected) {
                    try store.rejectCompensation(id, reasonCode: "no", context: decider)
                }
            case 65..<75:
                // Spending reaches posted credits only, never a reserved one.
                let customer = customers.randomElement(using: &random)!
                let transfer = TransferRequest.transfer(id: fresh("spend"), debit: customer, credit: "spent",
                                                        amount: UInt64.random(in: 1...400, using: &random))
                let expected = model.post(transfer)
                _ = check(step, "spend \(transfer)", expected: expected) { try store.post(transfer, context: context) }
            case 75..<85:
                let item = items.randomElement(using: &random)!, location = locations.randomElement(using: &random)!
                let quantity = UInt64.random(in: 0...20, using: &random)
                let id = fresh("grn")
                let expected = model.receiveStock(quantity, of: item, at: location, id: id)
                _ = check(step, "receive \(quantity) \(item) at \(location)", expected: expected) {
                    try store.receiveStock(quantity, of: item, at: location, transferID: id, context: context)
                }
            case 85..<93:
                let item = items.randomElement(using: &random)!, location = locations.randomElement(using: &random)!
                let quantity = UInt64.random(in: 1...15, using: &random)
                let id = fresh("iss")
                let expected = model.issueStock(quantity, of: item, from: location, id: id)
                _ = check(step, "issue \(quantity) \(item) from \(location)", expected: expected) {
                    try store.issueStock(quantity, of: item, from: location, transferID: id, context: context)
                }
            default:
                let item = items.randomElement(using: &random)!, location = locations.randomElement(using: &random)!
                let id = fresh("cc")
                let current = model.accounts[StockAccounts.location(item: item, at: location)]?.balance.net ?? 0
                let counted = UInt64(max(0, current + Int64.random(in: -4...3, using: &random)))
                let expected = model.recordCount(id, item: item, at: location, counted: counted)
                if let count = check(step, "count \(counted) \(item) at \(location)", expected: expected.code, {
                    try store.recordCount(item: item, location: location, counted: counted, countID: id, context: context).result
                }) {
                    #expect(count.expected == expected.expected && count.adjustment == expected.adjustment, "seed \(seed) step \(step)")
                }
            }
            let ids = Array(model.accounts.keys).sorted()
            let balances = try store.read { view in try ids.map { try view.ledger.balance(of: $0) } }
            for (id, balance) in zip(ids, balances) where model.accounts[id]?.balance != balance {
                Issue.record("seed \(seed) step \(step): \(id) is \(balance), the model says \(String(describing: model.accounts[id]?.balance))")
                return
            }
        }
        for id in proposals {
            let stored = try store.read { view in try view.compensation.proposal(id: id)?.state }
            #expect(stored == model.compensationState(id), "seed \(seed): \(id)")
        }
        let report = try store.verify()
        #expect(report.isIntact, "seed \(seed): \(report.problems)")
    }
}
