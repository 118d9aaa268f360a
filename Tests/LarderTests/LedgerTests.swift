import Foundation
import Larder
import LarderStorage
import LarderTesting
import Testing

/// Double-entry ledgers: accounts, transfers, balance rules, two-phase transfers, reversals,
/// linked batches, history and verification.
@Suite("Ledger")
struct LedgerTests {
    let temporary: TemporaryStore
    var store: Store { temporary.store }

    init() throws {
        temporary = try TemporaryStore()
        let accounts = [
            NewAccount(id: "kitchen.packs", ledger: "packs", code: 1),
            NewAccount(id: "cust-17.packs", ledger: "packs", code: 2, flags: .debitsMustNotExceedCredits, refs: [.customer("17")]),
            NewAccount(id: "kitchen.consumed", ledger: "packs", code: 3),
            NewAccount(id: "goodwill.credits", ledger: "credits.cents", code: 4),
            NewAccount(id: "cust-17.credits", ledger: "credits.cents", code: 5, flags: .debitsMustNotExceedCredits),
            NewAccount(id: "cust-17.spent", ledger: "credits.cents", code: 6),
        ]
        let store = temporary.store
        try store.write(.test("setup")) { txn in
            for account in accounts { try txn.ledger.createAccount(account) }
        }
    }

    @discardableResult
    func post(_ transfer: TransferRequest, _ requestID: String = UUID().uuidString) throws -> LedgerOutcome<Transfer> {
        try store.post(transfer, context: .test(requestID)).result
    }

    func balance(_ account: String) throws -> Balance { try store.read { try $0.ledger.balance(of: account) } }

    /// The README example: a pack purchase, a consumption, a credit and its reversal.
    @Test func packsAndCreditsEndToEnd() throws {
        try post(.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 10, refs: [.order("4411")]))
        try post(.transfer(id: "eat-1", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 3, refs: [.pack("P-1")]))
        #expect(try balance("cust-17.packs").net == 7)
        let credit = try post(.transfer(id: "credit-1", debit: "goodwill.credits", credit: "cust-17.credits", amount: 500,
                                        refs: [.incident("inc-1")]))
        #expect(credit.wasCreated)
        #expect(try balance("cust-17.credits").net == 500)
        let reversal = try post(.reversal(id: "credit-1.rev", of: "credit-1"))
        #expect(reversal.value.debitAccount == "cust-17.credits")
        #expect(reversal.value.amount == 500)
        #expect(try balance("cust-17.credits").net == 0)
        #expect(try balance("goodwill.credits").net == 0)
        try store.read { (view: StoreView) throws in
            #expect(try view.ledger.resolution(of: "credit-1") == TransferResolution(kind: .reversal, byTransfer: "credit-1.rev"))
            let events = try view.audit.records(ref: .transfer("credit-1"), limit: 10).records.map(\.record.event)
            #expect(events == [.ledgerTransferPosted, .ledgerTransferReversed])
        }
        #expect(try store.verify().isIntact)
    }

    @Test func packsNeverGoBelowZero() throws {
        try post(.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 2))
        let count = try store.auditCount()
        let error = try #require(throws: LarderError.self) {
            try post(.transfer(id: "eat-1", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 3))
        }
        #expect(error.code == .computeError)
        #expect(error.message.contains("debits_must_not_exceed_credits"))
        #expect(error.message.contains("cust-17.packs"))
        #expect(try store.auditCount() == count)
        #expect(try store.read { try $0.ledger.transfer(id: "eat-1") } == nil)
        #expect(try balance("cust-17.packs").net == 2)
    }

    @Test func amountOverflowIsAComputeError() throws {
        try post(.transfer(id: "big-1", debit: "kitchen.packs", credit: "kitchen.consumed", amount: UInt64.max))
        let error = try #require(throws: LarderError.self) {
            try post(.transfer(id: "big-2", debit: "kitchen.packs", credit: "kitchen.consumed", amount: 1))
        }
        #expect(error.code == .computeError)
        #expect(error.message.contains("overflow"))
    }

    @Test func malformedTransfersAreRefused() throws {
        let cases: [(TransferRequest, LarderError.Code)] = [
            (.transfer(id: "t", debit: "kitchen.packs", credit: "kitchen.packs", amount: 1), .validationFailed),
            (.transfer(id: "t", debit: "kitchen.packs", credit: "cust-17.packs", amount: 0), .validationFailed),
            (.transfer(id: "t", debit: "kitchen.packs", credit: "cust-17.credits", amount: 1), .validationFailed),
            (.transfer(id: "t", debit: "nobody", credit: "cust-17.packs", amount: 1), .notFound),
            (.reversal(id: "t", of: "missing"), .notFound),
            (.post(id: "t", pending: "missing"), .notFound),
            (.transfer(id: "bad id", debit: "kitchen.packs", credit: "cust-17.packs", amount: 1), .validationFailed),
        ]
        for (request, code) in cases {
            let error = try #require(throws: LarderError.self) { try post(request) }
            #expect(error.code == code, "\(request): \(error)")
        }
        #expect(try store.read { try $0.ledger.transfer(id: "t") } == nil)
    }

    @Test func theSameTransferIDIsIdempotent() throws {
        let transfer = TransferRequest.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 10)
        #expect(try post(transfer).wasCreated)
        let count = try store.auditCount()
        let again = try post(transfer)
        #expect(!again.wasCreated)
        #expect(again.value.amount == 10)
        #expect(try store.auditCount() == count)
        var different = transfer
        different.amount = 11
        let error = try #require(throws: LarderError.self) { try post(different) }
        #expect(error.code == .conflict)
        #expect(error.message.contains("amount (10 before, 11 now)"))
        different = transfer
        different.creditAccount = "kitchen.consumed"
        #expect(try #require(throws: LarderError.self) { try post(different) }.message.contains("credit account"))
        #expect(try balance("cust-17.packs").net == 10)
    }

    @Test func accountsAreIdempotentAndImmutable() throws {
        let outcome = try store.createAccount(NewAccount(id: "kitchen.packs", ledger: "packs", code: 1), context: .test("again"))
        #expect(!outcome.result.wasCreated)
        let error = try #require(throws: LarderError.self) {
            try store.createAccount(NewAccount(id: "kitchen.packs", ledger: "stock", code: 1), context: .test("clash"))
        }
        #expect(error.code == .conflict)
        #expect(error.message.contains("ledger"))
        #expect(throws: LarderError.self) {
            try store.createAccount(NewAccount(id: "x", ledger: "packs", flags: [.debitsMustNotExceedCredits, .creditsMustNotExceedDebits]),
                                    context: .test("both-flags"))
        }
    }

    @Test func pendingTransfersPostPartlyOrVoidOnce() throws {
        try post(.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 10))
        try post(.pending(id: "hold-1", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 4))
        var packs = try balance("cust-17.packs")
        #expect(packs.debitsPending == 4)
        #expect(packs.available == 6)
        // The reservation counts against the balance rule.
        #expect(throws: LarderError.self) {
            try post(.transfer(id: "eat-1", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 7))
        }
        #expect(try #require(throws: LarderError.self) { try post(.post(id: "post-1", pending: "hold-1", amount: 5)) }.code == .computeError)
        try post(.post(id: "post-1", pending: "hold-1", amount: 3))
        packs = try balance("cust-17.packs")
        #expect(packs.debitsPending == 0)
        #expect(packs.debitsPosted == 3)
        #expect(packs.net == 7)
        let twice = try #require(throws: LarderError.self) { try post(.void(id: "void-1", pending: "hold-1")) }
        #expect(twice.code == .conflict)
        #expect(twice.message.contains("post-1"))

        try post(.pending(id: "hold-2", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 2))
        try post(.void(id: "void-2", pending: "hold-2"))
        #expect(try balance("cust-17.packs") == Balance(debitsPosted: 3, creditsPosted: 10))
        // A pending transfer cannot be reversed; its post can.
        #expect(try #require(throws: LarderError.self) { try post(.reversal(id: "r", of: "hold-2")) }.code == .validationFailed)
        try post(.reversal(id: "post-1.rev", of: "post-1"))
        #expect(try balance("cust-17.packs").net == 10)
        #expect(try #require(throws: LarderError.self) { try post(.reversal(id: "r2", of: "post-1")) }.code == .conflict)
        #expect(try store.verify().isIntact)
    }

    @Test func aReversalThatWouldOverdrawIsRefused() throws {
        try post(.transfer(id: "credit-1", debit: "goodwill.credits", credit: "cust-17.credits", amount: 500))
        try post(.transfer(id: "spend-1", debit: "cust-17.credits", credit: "cust-17.spent", amount: 400))
        let error = try #require(throws: LarderError.self) { try post(.reversal(id: "credit-1.rev", of: "credit-1")) }
        #expect(error.code == .computeError)
        #expect(try balance("cust-17.credits").net == 100)
    }

    @Test func linkedBatchesAreAllOrNothing() throws {
        let good = [
            TransferRequest.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 5),
            TransferRequest.transfer(id: "eat-1", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 5),
        ]
        let report = try store.postLinked(good, context: .test("batch-1")).result
        #expect(report.committed)
        #expect(try balance("cust-17.packs").net == 0)
        let count = try store.auditCount()

        let bad = [
            TransferRequest.transfer(id: "buy-2", debit: "kitchen.packs", credit: "cust-17.packs", amount: 1),
            TransferRequest.transfer(id: "eat-2", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 2),
            TransferRequest.transfer(id: "buy-3", debit: "kitchen.packs", credit: "cust-17.packs", amount: 1),
        ]
        let failed = try store.postLinked(bad, context: .test("batch-2")).result
        #expect(!failed.committed)
        #expect(failed.items[0] == .linkedTransferFailed(causeIndex: 1))
        guard case .failed(let code, let message) = failed.items[1] else { Issue.record("item 1 should fail"); return }
        #expect(code == "COMPUTE_ERROR")
        #expect(message.contains("cust-17.packs"))
        #expect(failed.items[2] == .linkedTransferFailed(causeIndex: 1))
        #expect(try store.auditCount() == count)
        #expect(try store.read { try $0.ledger.transfer(id: "buy-2") } == nil)

        // Inside a larger write, the thrown error names the failing transfer, and a caller that
        // catches it still finds nothing of the batch applied.
        try store.write(.test("batch-3")) { txn in
            let error = try #require(throws: LarderError.self) { try txn.ledger.postLinked(bad) }
            #expect(error.message.contains("Linked transfer 2 of 3 (id eat-2)"))
            #expect(try txn.view.ledger.transfer(id: "buy-2") == nil)
        }
        // Transfers later in a batch see the earlier ones.
        let chained = [
            TransferRequest.pending(id: "hold-9", debit: "kitchen.packs", credit: "cust-17.packs", amount: 2),
            TransferRequest.post(id: "post-9", pending: "hold-9"),
        ]
        #expect(try store.postLinked(chained, context: .test("batch-4")).result.committed)
        #expect(try balance("cust-17.packs").net == 2)
        #expect(try store.verify().isIntact)
    }

    @Test func historyPagesAndBalancesAsOfASeq() throws {
        var seqs: [UInt64] = []
        for index in 1...9 {
            let outcome = try post(.transfer(id: "buy-\(index)", debit: "kitchen.packs", credit: "cust-17.packs", amount: UInt64(index)))
            seqs.append(outcome.value.auditSeq)
        }
        try store.read { (view: StoreView) throws in
            var all: [AccountHistoryEntry] = []
            var cursor: String?
            repeat {
                let page = try view.ledger.history(of: "cust-17.packs", limit: 4, cursor: cursor)
                all += page.entries
                cursor = page.nextCursor
            } while cursor != nil
            #expect(all.map(\.transferID) == (1...9).map { "buy-\($0)" })
            #expect(all.last?.balanceAfter.net == 45)
            let newest = try view.ledger.history(of: "cust-17.packs", direction: .backward, limit: 2)
            #expect(newest.entries.map(\.transferID) == ["buy-9", "buy-8"])
            let older = try view.ledger.history(of: "cust-17.packs", direction: .backward, limit: 2, cursor: newest.nextCursor)
            #expect(older.entries.map(\.transferID) == ["buy-7", "buy-6"])
            #expect(try view.ledger.balance(of: "cust-17.packs", asOfSeq: seqs[2]).net == 6)
            #expect(try view.ledger.balance(of: "cust-17.packs", asOfSeq: seqs[2] + 0).net == 1 + 2 + 3)
            #expect(try view.ledger.balance(of: "cust-17.packs", asOfSeq: 1).net == 0)
            #expect(try view.ledger.balance(of: "cust-17.packs", asOfSeq: .max).net == 45)
            #expect(throws: LarderError.self) { try view.ledger.balance(of: "nobody") }
        }
    }

    @Test func verifyRecomputesBalancesFromTransfers() throws {
        try post(.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 10))
        #expect(try store.verify().isIntact)
        // Damage a kept balance through the raw path: verify must notice.
        try store.environmentForTesting.rawPut(table: "ledger_balances", key: "cust-17.packs".encodedKey,
                                               value: Balance(creditsPosted: 11).encodedForTesting)
        let report = try store.verify()
        #expect(report.problems.contains { $0.kind == .ledgerMismatch && $0.detail.contains("cust-17.packs") })
        #expect(report.problems.contains { $0.detail.contains("do not balance") })
    }
}

extension LedgerTests {
    /// A transfer slipped into the ledger tables without its audit record, balances adjusted to
    /// match, is still found: verify checks that every row is backed by its record.
    @Test func aTransferWithoutItsAuditRecordIsFound() throws {
        try post(.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 10))
        let genuine = try #require(try store.read { try $0.ledger.transfer(id: "buy-1") })
        // Forge "gift-1" by copying buy-1's bytes under another id and doubling the balances.
        let raw = try #require(try store.environmentForTesting.rawGet(table: "ledger_transfers", key: "buy-1".encodedKey))
        try store.environmentForTesting.rawPut(table: "ledger_transfers", key: "gift-1".encodedKey, value: raw)
        try store.environmentForTesting.rawPut(table: "ledger_balances", key: "cust-17.packs".encodedKey,
                                               value: Balance(creditsPosted: 20).encodedForTesting)
        try store.environmentForTesting.rawPut(table: "ledger_balances", key: "kitchen.packs".encodedKey,
                                               value: Balance(debitsPosted: 20).encodedForTesting)
        let report = try store.verify()
        #expect(report.problems.contains {
            $0.kind == .ledgerMismatch && $0.seq == genuine.auditSeq && $0.detail.contains("transfer gift-1")
        }, "\(report.problems)")
    }
}

extension Balance {
    var encodedForTesting: [UInt8] {
        [debitsPosted, creditsPosted, debitsPending, creditsPending].flatMap(\.encodedKey)
    }
}
