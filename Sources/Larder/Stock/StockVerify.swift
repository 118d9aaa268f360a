import LarderStorage
import Foundation

extension Verifier {
    /// Checks every cycle count against its `STOCK_COUNTED` record (same count, item, account,
    /// expected and counted quantities and adjustment) and its adjustment transfer (present
    /// exactly when the adjustment is not zero, moving its size between the location and the
    /// item's adjustments account in the right direction).
    mutating func verifyStock() throws(LarderError) {
        let table = StoreTables.stockCountsName
        let ledger = LedgerReader(txn: txn, tables: tables)
        try txn.forEach(tables.stockCounts) { (entry: Entry<String, [UInt8]>) throws(LarderError) -> Bool in
            report.otherRecordsChecked += 1
            guard let count = try? StockCount.decode(id: entry.key, entry.value) else {
                report.add(.ledgerMismatch, seq: nil, table: table, "stock count \(entry.key) cannot be decoded")
                return true
            }
            func problem(_ detail: String) { report.add(.ledgerMismatch, seq: count.auditSeq, table: table, "stock count \(count.id): \(detail)") }
            let account = StockAccounts.location(item: count.item, at: count.location)
            let record = try txn.get(tables.audit, count.auditSeq).flatMap { try? AuditEntry.decode($0).record }
            let payload = record.flatMap { try? JSONDecoder().decode(CountPayload.self, from: Data($0.payload.utf8)) }
            if record?.event != .stockCounted || record?.refs.contains(.stockCount(count.id)) != true || payload == nil {
                problem("names audit seq \(count.auditSeq), which is not its STOCK_COUNTED record")
            } else if let payload, payload.count_id != count.id || payload.item != count.item || payload.account != account
                        || payload.expected != count.expected || payload.counted != count.counted
                        || payload.adjustment != count.adjustment || payload.adjustment_transfer != count.adjustmentTransferID {
                problem("differs from its STOCK_COUNTED record")
            }
            if Int128(count.counted) - Int128(count.expected) != Int128(count.adjustment) {
                problem("counted \(count.counted) and expected \(count.expected) do not make the adjustment \(count.adjustment)")
            }
            let adjustments = StockAccounts.adjustments(item: count.item)
            if let transferID = count.adjustmentTransferID {
                let transfer = try ledger.transfer(id: transferID)
                let (debit, credit) = count.adjustment < 0 ? (account, adjustments) : (adjustments, account)
                if transfer?.kind != .single || transfer?.amount != count.adjustment.magnitude || transfer?.debitAccount != debit
                    || transfer?.creditAccount != credit || transfer?.ledger != StockAccounts.ledger(item: count.item) {
                    problem("its adjustment \(transferID) is not a transfer of \(count.adjustment.magnitude) from \(debit) to \(credit)")
                }
            } else if count.adjustment != 0 {
                problem("an adjustment of \(count.adjustment) has no transfer")
            }
            return true
        }
    }

    /// The fields of a `STOCK_COUNTED` payload that verify compares.
    private struct CountPayload: Decodable {
        let count_id: String
        let item: String
        let account: String
        let expected: UInt64
        let counted: UInt64
        let adjustment: Int64
        let adjustment_transfer: String?
    }
}
