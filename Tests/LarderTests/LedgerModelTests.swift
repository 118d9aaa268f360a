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
