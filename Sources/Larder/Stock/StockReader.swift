import LarderStorage
import Foundation

/// Reads stock in one snapshot: quantities, cycle counts, and the incidents that name an item.
/// Reached as `view.stock`.
///
/// ```swift
/// let onHand = try store.read { view in try view.stock.quantity(of: "tomato", at: StockLocation(hub: "central", bin: "A3")) }
/// ```
public struct StockReader {
    let txn: TableReader
    let tables: StoreTables

    public static let incidentsPerItemMax = 500

    /// The units of `item` at `location` on the ledger (posted), 0 where it was never kept.
    public func quantity(of item: String, at location: StockLocation) throws(LarderError) -> UInt64 {
        try StockAccounts.validateItem(item)
        try location.validate()
        let ledger = LedgerReader(txn: txn, tables: tables)
        let id = StockAccounts.location(item: item, at: location)
        guard try ledger.account(id: id) != nil else { return 0 }
        return UInt64(clamping: try ledger.balance(of: id).net)
    }

    public func count(id: String) throws(LarderError) -> StockCount? {
        try WriteContext.validateIdentifier(id, field: "count id")
        return try txn.get(tables.stockCounts, id).map { bytes throws(LarderError) in try StockCount.decode(id: id, bytes) }
    }

    /// The incidents whose report names `item` (``CorrelationRef/item(_:)``), oldest first.
    public func incidents(affecting item: String, limit: Int = incidentsPerItemMax) throws(LarderError) -> [Incident] {
        try StockAccounts.validateItem(item)
        guard (1...Self.incidentsPerItemMax).contains(limit) else {
            throw LarderError(.validationFailed, "limit \(limit) is not in 1...\(Self.incidentsPerItemMax).")
        }
        let log = AuditLog(txn: txn, tables: tables)
        let incidents = IncidentReader(txn: txn, tables: tables)
        var found: [Incident] = []
        try txn.forEach(tables.auditByRef, in: .prefix(KeyPair("item", item))) {
            (entry: Entry<KeyPair<KeyPair<String, String>, UInt64>, Empty>) throws(LarderError) -> Bool in
            guard let record = try log.record(seq: entry.key.second)?.record, record.event == .opFailureRecorded,
                  let reported = try? JSONDecoder().decode(ReportedIncident.self, from: Data(record.payload.utf8)),
                  let incident = try incidents.incident(id: reported.incident_id) else { return true }
            found.append(incident)
            return found.count < limit
        }
        return found
    }
}

/// The field of an `OP_FAILURE_RECORDED` payload that names the incident it reports.
private struct ReportedIncident: Decodable {
    let incident_id: String
}

extension StoreView {
    /// Stock quantities, cycle counts and the incidents that affect an item.
    public var stock: StockReader { StockReader(txn: txn, tables: tables) }
}
