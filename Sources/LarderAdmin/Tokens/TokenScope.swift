import Larder

/// What a token may read. Unknown scopes in a token file are refused at load, so a typo cannot
/// silently grant or withhold access.
public struct TokenScope: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// The audit log: queries, single records, export, verification.
    public static let auditRead = TokenScope(rawValue: "audit:read")
    /// Operational records: decisions (later incidents and ledger accounts).
    public static let opsRead = TokenScope(rawValue: "ops:read")

    /// The audit log's Merkle tree: signed checkpoints, inclusion and consistency proofs, hash
    /// tiles. Hashes only, never a record's contents; for auditors and witnesses. A token with
    /// ``auditRead`` may read these routes too (it sees every hash with the records).
    public static let checkpointRead = TokenScope(rawValue: "checkpoint:read")

    /// Every scope this server knows.
    public static let all: [TokenScope] = [.auditRead, .checkpointRead, .opsRead]

    public static func < (lhs: TokenScope, rhs: TokenScope) -> Bool { lhs.rawValue < rhs.rawValue }
}
