import LarderStorage

/// Every named table of a Larder store, with its key and value types. docs/FORMAT.md describes
/// each one byte for byte; `mdb_stat -a` lists them.
final class StoreTables: Sendable {
    /// Audit records by sequence number.
    static let auditName = "audit"
    /// The secondary indexes, in one table: each key starts with the byte of its index
    /// (``IndexPrefix``), so that a write touching several indexes dirties one B-tree.
    static let indexName = "index"
    /// decisionID → decision record.
    static let decisionsName = "decisions"
    /// name → bytes: schema version, format version, creation time, policy, limits, time order.
    static let metaName = "meta"

    /// Ledger accounts by id (immutable).
    static let ledgerAccountsName = "ledger_accounts"
    /// Balances by account id, updated with every transfer.
    static let ledgerBalancesName = "ledger_balances"
    /// Transfers by id (immutable).
    static let ledgerTransfersName = "ledger_transfers"
    /// Transfer id → the post, void or reversal that resolved it.
    static let ledgerResolutionsName = "ledger_resolutions"
    /// (account id, audit seq) → history entry with the balance after.
    static let ledgerHistoryName = "ledger_history"

    /// Incidents by id.
    static let incidentsName = "incidents"
    /// Refund requests by id.
    static let incidentRefundsName = "incident_refunds"
    /// Cancelled cycle → the incident that cancelled it.
    static let cancelledCyclesName = "cancelled_cycles"

    /// Compensation proposals by id.
    static let compensationProposalsName = "compensation_proposals"
    /// Stock cycle counts by count id.
    static let stockCountsName = "stock_counts"
    /// (tile level, index) → the 32-byte hash of a complete subtree of 256^level audit records:
    /// the stored nodes of the audit log's Merkle tree (docs/FORMAT.md section 14.3).
    static let merkleNodesName = "merkle_nodes"

    /// The tables of schema 2.
    static let allNames = [auditName, indexName, decisionsName, metaName,
                           ledgerAccountsName, ledgerBalancesName, ledgerTransfersName, ledgerResolutionsName, ledgerHistoryName,
                           incidentsName, incidentRefundsName, cancelledCyclesName,
                           compensationProposalsName, stockCountsName, merkleNodesName]

    // The views of `index`, named as problems name them.
    /// (requestID, seq) → empty.
    static let auditByRequestName = "index/request"
    /// ((kind, id), seq) → empty.
    static let auditByRefName = "index/ref"
    /// (time µs, seq) → empty: the records before `meta.time_ordered_from` only.
    static let auditByTimeName = "index/time"
    /// (dimension, (created µs, id)) → empty.
    static let incidentsIndexName = "index/incident"
    /// (dimension, (proposed µs, id)) → empty.
    static let compensationIndexName = "index/compensation"

    /// The tables of schema 1 that schema 2 folded into `index` or dropped; opened only to
    /// migrate a schema-1 store, which drops them (docs/FORMAT.md section 17).
    enum Legacy {
        static let auditByRequest = "audit_by_request"
        static let auditByRef = "audit_by_ref"
        static let auditByTime = "audit_by_time"
        static let decisionsByTime = "decisions_by_time"
        static let incidentsIndex = "incidents_index"
        static let compensationIndex = "compensation_index"
        static let names = [auditByRequest, auditByRef, auditByTime, decisionsByTime, incidentsIndex, compensationIndex]
    }

    let audit: Table<UInt64, [UInt8]>
    let auditByRequest: Table<KeyPair<String, UInt64>, Empty>
    let auditByRef: Table<KeyPair<KeyPair<String, String>, UInt64>, Empty>
    let auditByTime: Table<KeyPair<Int64, UInt64>, Empty>
    let decisions: Table<String, [UInt8]>
    let meta: Table<String, [UInt8]>
    let ledgerAccounts: Table<String, [UInt8]>
    let ledgerBalances: Table<String, [UInt8]>
    let ledgerTransfers: Table<String, [UInt8]>
    let ledgerResolutions: Table<String, [UInt8]>
    let ledgerHistory: Table<KeyPair<String, UInt64>, [UInt8]>
    let incidents: Table<String, [UInt8]>
    let incidentsIndex: Table<KeyPair<String, KeyPair<Int64, String>>, Empty>
    let incidentRefunds: Table<String, [UInt8]>
    let cancelledCycles: Table<String, [UInt8]>
    let compensationProposals: Table<String, [UInt8]>
    let compensationIndex: Table<KeyPair<String, KeyPair<Int64, String>>, Empty>
    let stockCounts: Table<String, [UInt8]>
    let merkleNodes: Table<KeyPair<UInt8, UInt64>, [UInt8]>

    init(_ environment: Environment) throws(StorageError) {
        audit = try environment.table(Self.auditName)
        auditByRequest = try environment.table(Self.indexName, prefix: IndexPrefix.request.rawValue)
        auditByRef = try environment.table(Self.indexName, prefix: IndexPrefix.ref.rawValue)
        auditByTime = try environment.table(Self.indexName, prefix: IndexPrefix.time.rawValue)
        decisions = try environment.table(Self.decisionsName)
        meta = try environment.table(Self.metaName)
        ledgerAccounts = try environment.table(Self.ledgerAccountsName)
        ledgerBalances = try environment.table(Self.ledgerBalancesName)
        ledgerTransfers = try environment.table(Self.ledgerTransfersName)
        ledgerResolutions = try environment.table(Self.ledgerResolutionsName)
        ledgerHistory = try environment.table(Self.ledgerHistoryName)
        incidents = try environment.table(Self.incidentsName)
        incidentsIndex = try environment.table(Self.indexName, prefix: IndexPrefix.incident.rawValue)
        incidentRefunds = try environment.table(Self.incidentRefundsName)
        cancelledCycles = try environment.table(Self.cancelledCyclesName)
        compensationProposals = try environment.table(Self.compensationProposalsName)
        compensationIndex = try environment.table(Self.indexName, prefix: IndexPrefix.compensation.rawValue)
        stockCounts = try environment.table(Self.stockCountsName)
        merkleNodes = try environment.table(Self.merkleNodesName)
    }
}

/// The first byte of every key of the `index` table: which index the entry belongs to
/// (docs/FORMAT.md section 5.1).
enum IndexPrefix: UInt8 {
    /// `str requestID ‖ u64 seq`.
    case request = 0x01
    /// `str kind ‖ str id ‖ u64 seq`.
    case ref = 0x02
    /// `i64 time ‖ u64 seq`, for the records before `meta.time_ordered_from` only.
    case time = 0x03
    /// `str dimension ‖ i64 created ‖ str incident id`.
    case incident = 0x04
    /// `str dimension ‖ i64 proposed ‖ str proposal id`.
    case compensation = 0x05
}

/// Keys of the meta table.
enum MetaKey {
    static let schemaVersion = "schema_version"
    static let formatVersion = "format_version"
    static let createdAt = "created_at"
    /// Schema 1 only: schema 2 derives the head from the last record; its migration deletes it.
    static let chainHead = "chain_head"
    /// Schema 2: the first seq from which record times never decrease (section 5.2).
    static let timeOrderedFrom = "time_ordered_from"
    /// Schema 2: the seq the next decisions purge starts its walk of the log at (section 6).
    static let decisionPurgeFrom = "decision_purge_from"
    static let policySHA256 = "policy_sha256"
    static let limits = "limits"
}

/// The limits that govern a store for every process that opens it: recorded in `meta.limits` by
/// the application that writes the store, used by every process to report map use.
public struct RecordedLimits: Sendable, Hashable {
    /// The map maximum the writer opened with (`Limits.mapSizeBytesMax`).
    public let mapSizeBytesMax: Int
    /// The reader slots the writer opened with (`Limits.readersMax`).
    public let readersMax: Int

    public init(mapSizeBytesMax: Int, readersMax: Int) {
        self.mapSizeBytesMax = mapSizeBytesMax
        self.readersMax = readersMax
    }

    /// What a store without `meta.limits` stands for: the default limits (8 GiB, 126 readers).
    /// Fixed by the format, whatever later defaults of `Limits` are.
    public static let implied = RecordedLimits(mapSizeBytesMax: 8 << 30, readersMax: 126)

    static let formatVersion: UInt8 = 1

    /// `u8 version (1) ‖ u64 mapSizeBytesMax ‖ u32 readersMax` (docs/FORMAT.md section 5.2).
    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 13)
        writer.write(Self.formatVersion)
        writer.write(UInt64(mapSizeBytesMax))
        writer.write(UInt32(readersMax))
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(LarderError) -> RecordedLimits {
        var reader = ByteReader(bytes)
        let version = try reader.readUInt8()
        guard version == formatVersion else { throw ByteReader.malformed("limits format version \(version)") }
        let map = try reader.readUInt64()
        let readers = try reader.readUInt32()
        try reader.expectEnd()
        guard map <= UInt64(Int.max) else { throw ByteReader.malformed("limits map size \(map)") }
        return RecordedLimits(mapSizeBytesMax: Int(map), readersMax: Int(readers))
    }
}
