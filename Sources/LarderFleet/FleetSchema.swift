public import Larder
public import Logging
public import PostgresNIO

/// The fleet database's tables, created and migrated by `larder ship` (and `larder fleet migrate`).
///
/// Versioned: `larder_schema` holds one row per applied version. Each migration runs in one
/// transaction under a transaction-scoped advisory lock, so two shippers starting at once on an
/// empty database neither fail nor apply anything twice: the second waits, then finds the work
/// done. A database with a newer version than this build knows is refused.
///
/// Version 1:
/// - `larder_boxes` — one row per box: its verifier key (for signed checkpoints), the last
///   shipped seq and chain hash, when it last shipped.
/// - `larder_audit` — one row per audit record: the record bytes and both hashes (the evidence)
///   and its decoded columns (for queries); primary key (box_id, seq); indexes on request_id,
///   refs (GIN) and time.
/// - `larder_checkpoints` — the box's signed checkpoints (tree size, root hash, the signed note).
public enum FleetSchema {
    /// The version this build creates and understands.
    public static let version = 1

    /// A constant key for `pg_advisory_xact_lock`: "larder" in ASCII.
    static let migrationLockKey: Int64 = 0x6C61_7264_6572

    /// Each migration, in order; index + 1 is its version. Never edit a released one: add another.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE larder_boxes (
                box_id text PRIMARY KEY,
                verifier_key text,
                last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
                last_chain_hash bytea NOT NULL DEFAULT '\\x0000000000000000000000000000000000000000000000000000000000000000'
                    CHECK (length(last_chain_hash) = 32),
                shipped_at timestamptz,
                registered_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE larder_audit (
                box_id text NOT NULL REFERENCES larder_boxes (box_id),
                seq bigint NOT NULL CHECK (seq >= 1),
                time timestamptz NOT NULL,
                event text NOT NULL,
                actor_id text NOT NULL,
                actor_role text NOT NULL,
                request_id text NOT NULL,
                trace_id text,
                decision_id text,
                refs jsonb NOT NULL,
                failure_category text,
                response_type text,
                reason_code text,
                payload jsonb,
                record_bytes bytea NOT NULL,
                leaf_hash bytea NOT NULL CHECK (length(leaf_hash) = 32),
                chain_hash bytea NOT NULL CHECK (length(chain_hash) = 32),
                PRIMARY KEY (box_id, seq)
            )
            """,
            "CREATE INDEX larder_audit_request_id ON larder_audit (request_id)",
            "CREATE INDEX larder_audit_refs ON larder_audit USING gin (refs jsonb_path_ops)",
            "CREATE INDEX larder_audit_time ON larder_audit (time)",
            """
            CREATE TABLE larder_checkpoints (
                box_id text NOT NULL REFERENCES larder_boxes (box_id),
                tree_size bigint NOT NULL CHECK (tree_size >= 1),
                root_hash bytea NOT NULL CHECK (length(root_hash) = 32),
                signed_note text NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (box_id, tree_size)
            )
            """,
        ],
    ]

    /// Brings the database to ``version``. Cheap when it is there already: one query, no lock and
    /// no DDL, so a box role without CREATE rights can run `larder ship` against a database an
    /// administrator migrated.
    ///
    /// - returns: The versions applied now (empty when none were needed).
    /// - throws: PERSISTENCE_ERROR for a database with a newer schema; the database's own errors.
    @discardableResult
    public static func migrate(_ connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        if try await currentVersion(connection, logger: logger) == version { return [] }
        try await connection.query("BEGIN", logger: logger)
        do {
            try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLockKey))", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS larder_schema (
                    version integer PRIMARY KEY,
                    migrated_at timestamptz NOT NULL DEFAULT now()
                )
                """, logger: logger)
            // Read again under the lock: another shipper may have migrated while this one waited.
            let found = try await currentVersion(connection, logger: logger) ?? 0
            guard found <= version else { throw newer(found) }
            var applied: [Int] = []
            for next in (found + 1)..<(version + 1) {
                for statement in migrations[next - 1] {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO larder_schema (version) VALUES (\(next))", logger: logger)
                applied.append(next)
            }
            try await connection.query("COMMIT", logger: logger)
            return applied
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// The database's schema version; nil before the first migration.
    ///
    /// - throws: PERSISTENCE_ERROR for a database with a newer schema than this build knows.
    public static func currentVersion(_ connection: PostgresConnection, logger: Logger) async throws -> Int? {
        let rows = try await connection.query(
            "SELECT to_regclass('larder_schema') IS NOT NULL", logger: logger)
        var exists = false
        for try await present in rows.decode(Bool.self) { exists = present }
        guard exists else { return nil }
        var found: Int?
        for try await value in try await connection.query("SELECT max(version) FROM larder_schema", logger: logger).decode(Int?.self) {
            found = value
        }
        if let found, found > version { throw newer(found) }
        return found
    }

    static func newer(_ found: Int) -> LarderError {
        LarderError(.persistenceError,
                    "The fleet database has schema version \(found); this larder knows up to \(version). Upgrade larder.",
                    failureClass: .externalDependency, failurePoint: "fleet.schema", retryable: false)
    }
}

extension FleetSchema {
    /// Connects to `destination` and brings its schema to ``version`` (`larder fleet migrate`).
    ///
    /// - returns: The versions applied now.
    /// - throws: STORAGE_UNAVAILABLE or PERSISTENCE_ERROR (external dependency).
    public static func migrate(destination: FleetDestination) async throws(LarderError) -> [Int] {
        let configuration = try destination.configuration()
        let logger = FleetLogging.silent
        do {
            return try await withFleetConnection(configuration) { connection in
                try await migrate(connection, logger: logger)
            }
        } catch {
            throw FleetFailure.larderError(error, doing: "Migrating the fleet schema in \(destination.redacted)")
        }
    }
}
