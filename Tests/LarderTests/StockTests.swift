import Foundation
import Larder
import LarderTesting
import Testing

/// Stock per item and location: receipts, issues and moves as transfers, and cycle counts that
/// reconcile by booking an adjustment, never by overwriting.
@Suite("Stock and cycle counts")
struct StockTests {
    static let bin = StockLocation(hub: "central", bin: "A3")
    static let dock = StockLocation(hub: "central")
    let temporary: TemporaryStore
    var store: Store { temporary.store }
    let keeper = ActorIdentity(id: "store-kai", role: .accountManager)

    init() throws {
        temporary = try TemporaryStore()
    }

    func quantity(_ item: String = "tomato", at location: StockLocation = Self.bin) throws -> UInt64 {
        try store.read { view in try view.stock.quantity(of: item, at: location) }
    }

    @Test func receiptsIssuesAndMovesAreTransfersOnTheItemsLedger() throws {
        let receipt = try store.receiveStock(40, of: "tomato", at: Self.dock, transferID: "grn-1", refs: [.vendor("green-farm")],
                                             context: context(keeper, "r1")).result
        #expect(receipt.wasCreated)
        #expect(receipt.value.debitAccount == "stock:tomato:received" && receipt.value.creditAccount == "stock:tomato@central")
        #expect(receipt.value.ledger == "stock:tomato" && receipt.value.code == StockAccounts.receiptCode)
        #expect(receipt.value.refs.contains(.item("tomato")) && receipt.value.refs.contains(.vendor("green-farm")))
        _ = try store.moveStock(25, of: "tomato", from: Self.dock, to: Self.bin, transferID: "mv-1", context: context(keeper))
        _ = try store.issueStock(10, of: "tomato", from: Self.bin, transferID: "iss-1", context: context(keeper))
        #expect(try quantity(at: Self.dock) == 15)
        #expect(try quantity() == 15)
        #expect(try quantity("basil") == 0)
        let account = try #require(try store.read { try $0.ledger.account(id: "stock:tomato@central/A3") })
        #expect(account.flags == .debitsMustNotExceedCredits && account.code == StockAccounts.locationCode)
        #expect(account.refs == [CorrelationRef("bin", "central/A3"), CorrelationRef("hub", "central"), .item("tomato")])

        // A retried receipt is recognised by its transfer id; a different one under that id is not.
        let count = try store.auditCount()
        let again = try store.receiveStock(40, of: "tomato", at: Self.dock, transferID: "grn-1", refs: [.vendor("green-farm")],
                                           context: context(keeper, "r1"))
        #expect(!again.result.wasCreated)
        expectError(.conflict) { try store.receiveStock(41, of: "tomato", at: Self.dock, transferID: "grn-1", context: context(keeper)) }
        // Quantities never go below zero; a location that never held the item has nothing to issue.
        expectError(.computeError) { try store.issueStock(16, of: "tomato", from: Self.bin, transferID: "iss-2", context: context(keeper)) }
        expectError(.notFound) { try store.issueStock(1, of: "tomato", from: StockLocation(hub: "north"), transferID: "iss-3", context: context(keeper)) }
        expectError(.validationFailed) { try store.issueStock(0, of: "tomato", from: Self.bin, transferID: "iss-4", context: context(keeper)) }
        expectError(.validationFailed) { try store.moveStock(1, of: "tomato", from: Self.bin, to: Self.bin, transferID: "mv-2", context: context(keeper)) }
        for (item, location) in [("tom@to", Self.bin), ("tomato", StockLocation(hub: "a/b")), ("tomato", StockLocation(hub: "c", bin: "")),
                                 (String(repeating: "t", count: 41), Self.bin)] {
            expectError(.validationFailed, "\(item) at \(location)") {
                try store.receiveStock(1, of: item, at: location, transferID: "bad", context: context(keeper))
            }
        }
        #expect(try store.auditCount() == count, "refusals and retries write nothing")
        #expect(try store.verify().isIntact)
    }

    @Test func aCountThatFindsAShortfallBooksAnAdjustment() throws {
        _ = try store.receiveStock(34, of: "tomato", at: Self.bin, transferID: "grn-1", context: context(keeper))
        let before = try store.auditCount()
        let outcome = try store.recordCount(item: "tomato", location: Self.bin, counted: 31, countID: "cc-1", refs: [.order("po-7")],
                                            context: context(keeper, "cc"))
        let count = outcome.result
        #expect(outcome.kind == .committed)
        #expect(count.expected == 34 && count.counted == 31 && count.adjustment == -3)
        #expect(count.adjustmentTransferID == "cc-1.adjust")
        #expect(count.auditSeq == UInt64(before + 1))
        #expect(try quantity() == 31)
        let transfer = try #require(try store.read { try $0.ledger.transfer(id: "cc-1.adjust") })
        #expect(transfer.debitAccount == "stock:tomato@central/A3" && transfer.creditAccount == "stock:tomato:adjustments")
        #expect(transfer.amount == 3 && transfer.code == StockAccounts.adjustmentCode)
        let records = try store.read { try $0.audit.records(fromSeq: UInt64(before + 1), limit: 10).records.map(\.record) }
        #expect(records.map(\.event) == [.stockCounted, .ledgerAccountCreated, .ledgerTransferPosted])
        #expect(records[0].payload == """
            {"count_id":"cc-1","item":"tomato","hub":"central","bin":"A3","account":"stock:tomato@central/A3","expected":34,"counted":31,"adjustment":-3,"adjustment_transfer":"cc-1.adjust"}
            """)
        #expect(records[0].refs == [.account("stock:tomato@central/A3"), .item("tomato"), .order("po-7"), .stockCount("cc-1")])
        #expect(try store.read { try $0.stock.count(id: "cc-1") } == count)
        #expect(try store.verify().isIntact)
    }

    @Test func aSurplusAndAMatchingCount() throws {
        _ = try store.receiveStock(10, of: "basil", at: Self.bin, transferID: "grn-1", context: context(keeper))
        let surplus = try store.recordCount(item: "basil", location: Self.bin, counted: 12, countID: "cc-1", context: context(keeper)).result
        #expect(surplus.adjustment == 2)
        let transfer = try #require(try store.read { try $0.ledger.transfer(id: "cc-1.adjust") })
        #expect(transfer.debitAccount == "stock:basil:adjustments" && transfer.creditAccount == "stock:basil@central/A3")
        let before = try store.auditCount()
        let match = try store.recordCount(item: "basil", location: Self.bin, counted: 12, countID: "cc-2", context: context(keeper)).result
        #expect(match.adjustment == 0 && match.adjustmentTransferID == nil)
        #expect(try store.auditCount() == before + 1, "a matching count is still recorded, without a transfer")
        // Counting a location that never held the item books the whole count as found.
        let found = try store.recordCount(item: "basil", location: Self.dock, counted: 5, countID: "cc-3", context: context(keeper)).result
        #expect(found.expected == 0 && found.adjustment == 5)
        #expect(try quantity("basil", at: Self.dock) == 5)
        #expect(try store.verify().isIntact)
    }

    @Test func countRetriesAreRecognised() throws {
        _ = try store.receiveStock(10, of: "tomato", at: Self.bin, transferID: "grn-1", context: context(keeper))
        let first = try store.recordCount(item: "tomato", location: Self.bin, counted: 8, countID: "cc-1", context: context(keeper, "a"))
        let count = try store.auditCount()
        // Stock moved since: the retry must not count again (it would undo the receipt).
        _ = try store.receiveStock(5, of: "tomato", at: Self.bin, transferID: "grn-2", context: context(keeper))
        let again = try store.recordCount(item: "tomato", location: Self.bin, counted: 8, countID: "cc-1", context: context(keeper, "b"))
        #expect(again.kind == .replayed && again.result == first.result && again.auditSeq == first.result.auditSeq)
        #expect(try quantity() == 13)
        expectError(.conflict) { try store.recordCount(item: "tomato", location: Self.bin, counted: 9, countID: "cc-1", context: context(keeper)) }
        expectError(.conflict) {
            try store.recordCount(item: "tomato", location: Self.bin, counted: 8, countID: "cc-1",
                                  context: context(ActorIdentity(id: "other", role: .accountManager)))
        }
        let unkeyed = try #require(throws: LarderError.self) {
            try store.recordCount(item: "tomato", location: Self.bin, counted: 8, context: context(keeper))
        }
        #expect(unkeyed.code == .validationFailed && unkeyed.message.contains("countID"))
        expectError(.validationFailed) {
            try store.recordCount(item: "tomato", location: Self.bin, counted: UInt64.max, countID: "cc-9", context: context(keeper))
        }
        #expect(try store.auditCount() == count + 1, "only the second receipt wrote")
        // A decisionID names the count after its record and replays it.
        let keyed = try store.recordCount(item: "tomato", location: Self.bin, counted: 13,
                                                context: context(keeper, "c", decisionID: "count-A3-evening"))
        #expect(keyed.result.id == "count-\(keyed.result.auditSeq)" && keyed.result.adjustment == 0)
        let keyedAgain = try store.recordCount(item: "tomato", location: Self.bin, counted: 13,
                                               context: context(keeper, "c", decisionID: "count-A3-evening"))
        #expect(keyedAgain.kind == .replayed && keyedAgain.result == keyed.result)
    }

    @Test func theAsyncFormsShareTheRules() async throws {
        let receipt = try await store.receiveStock(10, of: "tomato", at: Self.dock, transferID: "grn-1", context: context(keeper))
        #expect(receipt.result.wasCreated)
        _ = try await store.moveStock(6, of: "tomato", from: Self.dock, to: Self.bin, transferID: "mv-1", context: context(keeper))
        _ = try await store.issueStock(2, of: "tomato", from: Self.bin, transferID: "iss-1", context: context(keeper))
        await expectError(.computeError) {
            try await store.issueStock(5, of: "tomato", from: Self.bin, transferID: "iss-2", context: context(keeper))
        }
        let count = try await store.recordCount(item: "tomato", location: Self.bin, counted: 3, countID: "cc-1", context: context(keeper))
        #expect(count.result.adjustment == -1)
        let again = try await store.recordCount(item: "tomato", location: Self.bin, counted: 3, countID: "cc-1", context: context(keeper))
        #expect(again.kind == .replayed && again.result == count.result)
        #expect(try quantity() == 3 && quantity(at: Self.dock) == 4)
    }

    @Test func aSupplyIncidentNamesTheItemsItAffects() throws {
        _ = try store.receiveStock(40, of: "tomato", at: Self.bin, transferID: "grn-1", refs: [.vendor("green-farm")], context: context(keeper))
        let monitor = ActorIdentity(id: "vendor-monitor", role: .system)
        let incident = try store.recordIncident(IncidentReport(category: .supply, severity: .p2, summary: "Green Farm delivered 40%",
                                                               source: "vendor-monitor", refs: [.vendor("green-farm"), .item("tomato")]),
                                                context: context(monitor)).result
        _ = try store.recordIncident(IncidentReport(category: .delivery, severity: .p3, summary: "Van late", source: "dispatch",
                                                    refs: [.incident(incident.id)]), context: context(monitor))
        _ = try store.recordCount(item: "tomato", location: Self.bin, counted: 38, countID: "cc-1", context: context(keeper))
        let affecting = try store.read { try $0.stock.incidents(affecting: "tomato") }
        #expect(affecting.map(\.id) == [incident.id])
        #expect(try store.read { try $0.stock.incidents(affecting: "basil") }.isEmpty)
        // The item ref gathers the receipt, the incident and the count in one audit query.
        let trail = try store.read { try $0.audit.records(ref: .item("tomato"), limit: 100).records.map(\.record.event) }
        #expect(trail.contains(.ledgerTransferPosted) && trail.contains(.opFailureRecorded) && trail.contains(.stockCounted))
    }

    @Test func verifyFindsATamperedCount() throws {
        _ = try store.receiveStock(10, of: "tomato", at: Self.bin, transferID: "grn-1", context: context(keeper))
        let count = try store.recordCount(item: "tomato", location: Self.bin, counted: 7, countID: "cc-1", context: context(keeper)).result
        #expect(try store.verify().isIntact)
        // The stored count claims the ledger expected 9: it no longer matches its record or its adjustment.
        let forged = StockCountProbe.encode(count, expected: 9)
        try store.write(context(keeper)) { txn in
            try txn.rawPutForTesting(table: "stock_counts", key: Array("cc-1".utf8) + [0, 0], value: forged)
            try txn.appendAudit(AuditDraft(event: "TAMPER"))
        }
        let report = try store.verify()
        #expect(report.problems.contains { $0.kind == .ledgerMismatch && $0.table == "stock_counts" && $0.detail.contains("STOCK_COUNTED") },
                "\(report.problems)")
        #expect(report.problems.contains { $0.detail.contains("do not make the adjustment") }, "\(report.problems)")
    }
}

/// The stock count encoding of docs/FORMAT.md, written out independently.
enum StockCountProbe {
    static func encode(_ count: StockCount, expected: UInt64) -> [UInt8] {
        func string(_ text: String) -> [UInt8] { withUnsafeBytes(of: UInt32(text.utf8.count).bigEndian, Array.init) + Array(text.utf8) }
        func u64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.bigEndian, Array.init) }
        var bytes: [UInt8] = [1] + string(count.item) + string(count.location.hub)
        bytes += count.location.bin.map { [1] + string($0) } ?? [0]
        bytes += u64(expected) + u64(count.counted) + u64(UInt64(bitPattern: count.adjustment))
        bytes += count.adjustmentTransferID.map { [1] + string($0) } ?? [0]
        bytes += string(count.countedBy.id) + string(count.countedBy.role.rawValue)
        bytes += u64(UInt64(bitPattern: count.timeMicros)) + u64(count.auditSeq)
        return bytes
    }
}
