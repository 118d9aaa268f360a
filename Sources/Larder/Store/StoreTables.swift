/// Every named table of a Larder store, with its key and value types. docs/FORMAT.md describes
/// each one byte for byte; `mdb_stat -a` lists them.
struct StoreTables: Sendable {
    /// Audit records by sequence number.
    static let auditName = "audit"
    /// (requestID, seq) → empty.
    static let auditByRequestName = "audit_by_request"
    /// ((kind, id), seq) → empty.
    static let auditByRefName = "audit_by_ref"
    /// (time µs, seq) → empty.
    static let auditByTimeName = "audit_by_time"
    /// decisionID → decision record.
    static let decisionsName = "decisions"
    /// (time µs, decisionID) → empty: finds decisions to purge by age.
    static let decisionsByTimeName = "decisions_by_time"
    /// name → bytes: schema version, format version, creation time, chain head.
    static let metaName = "meta"

    static let allNames = [auditName, auditByRequestName, auditByRefName, auditByTimeName,
                           decisionsName, decisionsByTimeName, metaName]

    let audit: Table<UInt64, [UInt8]>
    let auditByRequest: Table<KeyPair<String, UInt64>, Empty>
    let auditByRef: Table<KeyPair<KeyPair<String, String>, UInt64>, Empty>
    let auditByTime: Table<KeyPair<Int64, UInt64>, Empty>
    let decisions: Table<String, [UInt8]>
    let decisionsByTime: Table<KeyPair<Int64, String>, Empty>
    let meta: Table<String, [UInt8]>

    init(_ environment: Environment) throws(LarderError) {
        audit = try environment.table(Self.auditName)
        auditByRequest = try environment.table(Self.auditByRequestName)
        auditByRef = try environment.table(Self.auditByRefName)
        auditByTime = try environment.table(Self.auditByTimeName)
        decisions = try environment.table(Self.decisionsName)
        decisionsByTime = try environment.table(Self.decisionsByTimeName)
        meta = try environment.table(Self.metaName)
    }
}

/// Keys of the meta table.
enum MetaKey {
    static let schemaVersion = "schema_version"
    static let formatVersion = "format_version"
    static let createdAt = "created_at"
    static let chainHead = "chain_head"
}
