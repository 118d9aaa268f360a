public import Larder
import Logging
import NIOCore
import PostgresNIO

/// One row of `larder_audit`, as `larder fleet audit` prints it.
public struct FleetAuditRow: Sendable, Hashable {
    public let boxID: String
    public let seq: UInt64
    public let timeMicros: UnixMicros
    public let event: String
    public let actorID: String
    public let actorRole: String
    public let requestID: String
    public let traceID: String?
    public let decisionID: String?
    /// The `refs` column as JSON text.
    public let refsJSON: String
    public let failureCategory: String?
    public let responseType: String?
    public let reasonCode: String?
    /// The `payload` column as JSON text; nil when it is NULL.
    public let payloadJSON: String?
    public let recordBytes: [UInt8]
    public let leafHash: [UInt8]
    public let chainHash: [UInt8]

    /// The refs as `KIND:ID` (parsed from the column).
    public var refs: [String] {
        guard case .array(let items)? = JSONEquality.parse(refsJSON) else { return [] }
        return items.compactMap { item in
            guard case .object(let fields) = item, case .string(let kind)? = fields["kind"],
                  case .string(let id)? = fields["id"] else { return nil }
            return "\(kind):\(id)"
        }
    }

    /// One JSON object: `box_id`, then the fields of a box's own audit JSON (`seq`, `time`,
    /// `event`, `actor`, …, `record_bytes`, `leaf_hash`, `chain_hash`). The readable fields are
    /// the database's columns; only `record_bytes` and the hashes are evidence (`larder fleet
    /// verify` checks that the columns agree with them).
    public var jsonText: String {
        var json = JSONWriter()
        json.object { o in
            o.field("box_id", boxID)
            o.field("seq", seq)
            o.field("time", RFC3339.format(timeMicros))
            o.field("event", event)
            o.object("actor") { actor in
                actor.field("id", actorID)
                actor.field("role", actorRole)
            }
            o.field("request_id", requestID)
            o.field("trace_id", traceID)
            o.field("decision_id", decisionID)
            o.rawField("refs", json: refsJSON)
            o.field("failure_category", failureCategory)
            o.field("response_type", responseType)
            o.field("reason_code", reasonCode)
            if let payloadJSON { o.rawField("payload", json: payloadJSON) } else { o.rawField("payload", json: "null") }
            o.field("record_bytes", recordBytes.hexString)
            o.field("leaf_hash", leafHash.hexString)
            o.field("chain_hash", chainHash.hexString)
        }
        return json.text
    }
}

/// What `larder fleet audit` looks for.
public enum FleetAuditQuery: Sendable, Hashable {
    /// Every record of one request, on any box.
    case requestID(String)
    /// Every record about one correlation reference (`order:4411`).
    case ref(CorrelationRef)
    /// Records with `since <= time < until`.
    case time(since: UnixMicros, until: UnixMicros)
}

/// Queries the fleet's audit rows across boxes.
///
/// ```swift
/// try await FleetAudit.query(destination, .requestID("req-8812"), limit: 100) { row in print(row.jsonText) }
/// ```
public enum FleetAudit {
    /// Rows one query may return at most.
    public static let rowsMax = 10_000_000

    /// Streams the matching rows, ordered by box and seq (by time for a time range), to `body`.
    ///
    /// - returns: How many rows were delivered.
    /// - throws: VALIDATION_FAILED for a bad query or limit; NOT_FOUND when the database has no
    ///   fleet tables; STORAGE_UNAVAILABLE or PERSISTENCE_ERROR (external dependency) otherwise.
    @discardableResult
    public static func query(_ destination: FleetDestination, _ query: FleetAuditQuery, boxID: String? = nil, limit: Int,
                             _ body: (FleetAuditRow) throws -> Void) async throws(LarderError) -> Int {
        guard (1...rowsMax).contains(limit) else {
            throw LarderError(.validationFailed, "--limit \(limit) is not in 1...\(rowsMax).")
        }
        var sql: PostgresQuery
        let columns = """
            SELECT box_id, seq, (extract(epoch FROM time) * 1000000)::bigint, event, actor_id, actor_role, request_id, trace_id,
                   decision_id, refs::text, failure_category, response_type, reason_code, payload::text,
                   record_bytes, leaf_hash, chain_hash FROM larder_audit
            """
        let box = boxID ?? ""
        let anyBox = boxID == nil
        switch query {
        case .requestID(let requestID):
            try WriteContext.validateIdentifier(requestID, field: "--request-id")
            sql = "\(unescaped: columns) WHERE request_id = \(requestID) AND (\(anyBox) OR box_id = \(box)) ORDER BY box_id, seq LIMIT \(limit)"
        case .ref(let ref):
            try ref.validate()
            let match = FleetColumns.refsJSON([ref])
            sql = "\(unescaped: columns) WHERE refs @> \(match)::jsonb AND (\(anyBox) OR box_id = \(box)) ORDER BY box_id, seq LIMIT \(limit)"
        case .time(let since, let until):
            guard since <= until else {
                throw LarderError(.validationFailed, "--since \(RFC3339.format(since)) is after --until \(RFC3339.format(until)).")
            }
            sql = """
                \(unescaped: columns) WHERE time >= 'epoch'::timestamptz + \(since) * interval '1 microsecond'
                AND time < 'epoch'::timestamptz + \(until) * interval '1 microsecond'
                AND (\(anyBox) OR box_id = \(box)) ORDER BY time, box_id, seq LIMIT \(limit)
                """
        }
        let configuration = try destination.configuration()
        let logger = FleetLogging.silent
        do {
            return try await withFleetConnection(configuration) { connection in
                guard try await FleetSchema.currentVersion(connection, logger: logger) != nil else {
                    throw LarderError(.notFound, "\(destination.redacted) holds no Larder fleet tables (nothing was shipped there).")
                }
                var delivered = 0
                for try await row in try await connection.query(sql, logger: logger) {
                    let (boxID, seq, time, event, actorID, actorRole, requestID, traceID, decisionID, refs, failureCategory,
                         responseType, reasonCode, payload, recordBytes, leafHash, chainHash) = try row.decode(
                            (String, Int64, Int64, String, String, String, String, String?, String?, String, String?, String?,
                             String?, String?, ByteBuffer, ByteBuffer, ByteBuffer).self)
                    try body(FleetAuditRow(boxID: boxID, seq: UInt64(seq), timeMicros: time, event: event, actorID: actorID,
                                           actorRole: actorRole, requestID: requestID, traceID: traceID, decisionID: decisionID,
                                           refsJSON: refs, failureCategory: failureCategory, responseType: responseType,
                                           reasonCode: reasonCode, payloadJSON: payload, recordBytes: Array(buffer: recordBytes),
                                           leafHash: Array(buffer: leafHash), chainHash: Array(buffer: chainHash)))
                    delivered += 1
                }
                return delivered
            }
        } catch {
            throw FleetFailure.larderError(error, doing: "Querying the fleet in \(destination.redacted)")
        }
    }
}
