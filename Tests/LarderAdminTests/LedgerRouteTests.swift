import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Synchronization
import Testing

/// `/v1/ledger/accounts/{id}`.
@Suite("Ledger routes")
struct LedgerRouteTests {
    typealias Object = [String: Any]

    static let manager = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: "ledger-setup")

    /// A packs account with five transfers: two purchases, two consumptions and a pending one.
    /// Returns the audit seq of each transfer, in order.
    @discardableResult
    func seedPacks(_ fixture: AdminFixture) throws -> [UInt64] {
        let store = fixture.store
        try store.write(Self.manager) { txn in
            try txn.ledger.createAccount(NewAccount(id: "kitchen.packs", ledger: "packs"))
            try txn.ledger.createAccount(NewAccount(id: "cust-17.packs", ledger: "packs", code: 10, flags: .debitsMustNotExceedCredits,
                                                    refs: [.customer("17")]))
            try txn.ledger.createAccount(NewAccount(id: "kitchen.consumed", ledger: "packs"))
        }
        var seqs: [UInt64] = []
        for transfer in [TransferRequest.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 10),
                         .transfer(id: "eat-1", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 1, refs: [.order("4411")]),
                         .transfer(id: "eat-2", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 1),
                         .pending(id: "hold-1", debit: "cust-17.packs", credit: "kitchen.consumed", amount: 2),
                         .transfer(id: "buy-2", debit: "kitchen.packs", credit: "cust-17.packs", amount: 5)] {
            fixture.clock.advance(seconds: 1)
            seqs.append(try store.post(transfer, context: Self.manager).result.value.auditSeq)
        }
        return seqs
    }

    func history(_ response: TestResponse) throws -> [Object] {
        try #require(try response.json()["history"] as? [Object])
    }

    @Test func anAccountWithItsBalanceAndHistory() async throws {
        let fixture = try AdminFixture()
        let seqs = try seedPacks(fixture)
        let account = try #require(try fixture.store.read { view in try view.ledger.account(id: "cust-17.packs") })
        let before = try fixture.auditCount()
        let response = try await fixture.request("/v1/ledger/accounts/cust-17.packs", secret: fixture.opsSecret)
        #expect(response.status == .ok)
        let body = try response.json()
        let served = try #require(body["account"] as? Object)
        #expect(served["id"] as? String == "cust-17.packs")
        #expect(served["ledger"] as? String == "packs")
        #expect(served["code"] as? Int == 10)
        #expect(served["flags"] as? [String] == ["debits_must_not_exceed_credits"])
        #expect(served["refs"] as? [[String: String]] == [["kind": "customer", "id": "17"]])
        #expect(served["created_at"] as? String == RFC3339.format(account.createdAtMicros))
        #expect(served["audit_seq"] as? Int == Int(account.auditSeq))
        let balance = try #require(body["balance"] as? [String: Int])
        #expect(balance == ["debits_posted": 2, "credits_posted": 15, "debits_pending": 2, "credits_pending": 0,
                            "net": 13, "available": 11])
        #expect(body["balance_as_of"] is NSNull)
        let entries = try history(response)
        #expect(entries.map { $0["seq"] as? Int } == seqs.map { Int($0) })
        #expect(entries.map { $0["transfer_id"] as? String } == ["buy-1", "eat-1", "eat-2", "hold-1", "buy-2"])
        #expect(entries.map { $0["kind"] as? String } == ["single", "single", "single", "pending", "single"])
        #expect(entries.map { $0["side"] as? String } == ["credit", "debit", "debit", "debit", "credit"])
        #expect(entries.map { $0["amount"] as? Int } == [10, 1, 1, 2, 5])
        #expect(entries.map { ($0["balance_after"] as? [String: Int])?["net"] } == [10, 9, 8, 8, 13])
        #expect(entries.map { ($0["balance_after"] as? [String: Int])?["available"] } == [10, 9, 8, 6, 11])
        #expect(body["next_cursor"] is NSNull)

        #expect(try fixture.auditCount() == before + 1)
        let access = try #require(try fixture.lastRecord())
        #expect(access.event == .forensicAccess)
        #expect(access.actor.id == "token:operator")
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(access.payload.utf8)) as? Object)
        #expect(payload["route"] as? String == "/v1/ledger/accounts/{id}")
        #expect(payload["filters"] as? [String: String] == ["id": "cust-17.packs"])
        #expect(payload["result_count"] as? Int == 5)
    }

    @Test(arguments: [ScanDirection.forward, .backward])
    func historyPagesReturnEveryEntryOnce(direction: ScanDirection) async throws {
        let fixture = try AdminFixture()
        let seqs = try seedPacks(fixture)
        var seen: [Int] = []
        var cursor: String?
        var pages = 0
        repeat {
            let before = try fixture.auditCount()
            let uri = "/v1/ledger/accounts/cust-17.packs?direction=\(direction.rawValue)&limit=2" + (cursor.map { "&cursor=\($0)" } ?? "")
            let response = try await fixture.request(uri, secret: fixture.opsSecret)
            #expect(response.status == .ok)
            #expect(try fixture.auditCount() == before + 1, "each page is one FORENSIC_ACCESS record")
            seen += try history(response).map { try #require($0["seq"] as? Int) }
            cursor = try response.json()["next_cursor"] as? String
            pages += 1
        } while cursor != nil && pages < 10
        #expect(pages == 3)
        let expected = seqs.map { Int($0) }
        #expect(seen == (direction == .forward ? expected : expected.reversed()))
    }

    @Test func theBalanceAsOfAnAuditSeq() async throws {
        let fixture = try AdminFixture()
        let seqs = try seedPacks(fixture)
        func asOf(_ seq: UInt64) async throws -> [String: Int] {
            let response = try await fixture.request("/v1/ledger/accounts/cust-17.packs?as_of_seq=\(seq)&limit=1", secret: fixture.opsSecret)
            #expect(response.status == .ok)
            var balance = try #require(try response.json()["balance_as_of"] as? [String: Int])
            #expect(balance.removeValue(forKey: "seq") == Int(seq))
            return balance
        }
        let zero = ["debits_posted": 0, "credits_posted": 0, "debits_pending": 0, "credits_pending": 0, "net": 0, "available": 0]
        #expect(try await asOf(seqs[0] - 1) == zero, "before the first transfer")
        #expect(try await asOf(seqs[0])["net"] == 10)
        #expect(try await asOf(seqs[2]) == ["debits_posted": 2, "credits_posted": 10, "debits_pending": 0, "credits_pending": 0,
                                            "net": 8, "available": 8])
        #expect(try await asOf(seqs[3])["available"] == 6)
        #expect(try await asOf(seqs[4] + 100)["net"] == 13, "past the head: the balance now")
        let access = try #require(try fixture.lastRecord())
        #expect(access.payload.contains("\"as_of_seq\":\"\(seqs[4] + 100)\""))
    }

    @Test func aMissingAccountIs404AndRecordsNothing() async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request("/v1/ledger/accounts/nobody", secret: fixture.opsSecret)
        #expect(response.status == .notFound)
        #expect(try response.errorCode() == "NOT_FOUND")
        #expect(try fixture.auditCount() == initialRecords)
    }

    @Test(arguments: ["?direction=sideways", "?direction=Backward", "?limit=0", "?limit=1001", "?as_of_seq=-1", "?as_of_seq=x",
                      "?cursor=abc", "?colour=red", "?limit=1&limit=2"])
    func badQueriesAre400(query: String) async throws {
        let fixture = try AdminFixture()
        try seedPacks(fixture)
        let before = try fixture.auditCount()
        let response = try await fixture.request("/v1/ledger/accounts/cust-17.packs\(query)", secret: fixture.opsSecret)
        #expect(response.status == .badRequest)
        #expect(try response.errorCode() == "VALIDATION_FAILED")
        #expect(try fixture.auditCount() == before, "a refused query records nothing")
    }

    @Test func anAuditOnlyTokenIs403() async throws {
        let fixture = try AdminFixture()
        try seedPacks(fixture)
        let before = try fixture.auditCount()
        let response = try await fixture.request("/v1/ledger/accounts/cust-17.packs", secret: fixture.auditSecret)
        #expect(response.status == .forbidden)
        #expect(try response.errorCode() == "PERMISSION_DENIED")
        #expect(!response.text.contains("buy-1"))
        #expect(try fixture.auditCount() == before)
    }

    @Test func whenTheRecordCannotBeWrittenTheReadIsRefused() async throws {
        let failing = Mutex(false)
        var options = Store.Options()
        options.auditFaultInjection = AuditFaultInjection { _ throws(LarderError) in
            if failing.withLock({ $0 }) { throw LarderError(.persistenceError, "injected audit fault") }
        }
        let fixture = try AdminFixture(options: options)
        try seedPacks(fixture)
        let before = try fixture.auditCount()
        failing.withLock { $0 = true }
        let response = try await fixture.request("/v1/ledger/accounts/cust-17.packs?as_of_seq=5", secret: fixture.opsSecret,
                                                 headers: [.requestID: "req-closed"])
        #expect(response.status == .internalServerError)
        let body = try response.json()
        #expect(body["error_code"] as? String == "AUDIT_FAILED")
        #expect(body["request_id"] as? String == response.headers[.requestID])
        #expect(body["account"] == nil && body["history"] == nil)
        #expect(!response.text.contains("buy-1"), "no ledger data leaks into the refusal")
        #expect(try fixture.auditCount() == before)
    }
}
