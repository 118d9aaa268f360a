import Larder
import NIOCore
import PostgresNIO

/// How an audit record becomes a `larder_audit` row, shared by the shipper (which writes rows)
/// and the verifier (which checks that each row's columns are what its record bytes say).
///
/// The record bytes and hashes are the evidence and are stored exactly. The decoded columns are
/// for queries, and follow two rules where PostgreSQL cannot hold a value as it is:
/// - text cannot hold U+0000: a NUL in a text column (or inside `refs`) is stored as U+FFFD;
/// - `payload` is NULL when the payload is not something `jsonb` accepts (not one JSON object,
///   `\u0000`, an unpaired surrogate escape, or a number beyond `numeric`'s range).
enum FleetColumns {
    /// The columns of `larder_audit`, in COPY order.
    static let auditColumns = ["box_id", "seq", "time", "event", "actor_id", "actor_role", "request_id", "trace_id",
                               "decision_id", "refs", "failure_category", "response_type", "reason_code", "payload",
                               "record_bytes", "leaf_hash", "chain_hash"]

    /// A text value as its column holds it.
    static func text(_ value: String) -> String {
        guard value.utf8.contains(0) else { return value }
        return String(value.unicodeScalars.map { $0 == "\u{0}" ? "\u{FFFD}" : Character($0) })
    }

    /// `refs` as the JSON array stored in the `refs` column: `[{"kind":"order","id":"4411"}]`.
    /// Queries match it with `refs @> '[{"kind":"order","id":"4411"}]'`.
    static func refsJSON(_ refs: [CorrelationRef]) -> String {
        var json = JSONWriter()
        json.array { array in
            for ref in refs {
                array.object { o in
                    o.field("kind", text(ref.kind))
                    o.field("id", text(ref.id))
                }
            }
        }
        return json.text
    }

    /// `refs` as PostgreSQL prints the stored `jsonb` (`refs::text`): keys ordered by length then
    /// bytes, `": "` and `", "` separators. The verifier compares against this.
    static func refsJSONBText(_ refs: [CorrelationRef]) -> String {
        var out = "["
        for (index, ref) in refs.enumerated() {
            if index > 0 { out += ", " }
            out += "{\"id\": "
            appendJSONBString(text(ref.id), to: &out)
            out += ", \"kind\": "
            appendJSONBString(text(ref.kind), to: &out)
            out += "}"
        }
        return out + "]"
    }

    /// A string the way `jsonb` output escapes it: `"` `\` and control characters only.
    static func appendJSONBString(_ value: String, to out: inout String) {
        out += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{8}": out += "\\b"
            case "\u{C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// Whether `payload` can be stored in a `jsonb` column as it is.
    static func isJSONBSafe(_ payload: String) -> Bool {
        guard JSONValidator.isObject(payload) else { return false }
        let bytes = Array(payload.utf8)
        var index = 0
        var inString = false
        // The high half of a surrogate pair waiting for its low half.
        var pendingHigh = false
        while index < bytes.count {
            let byte = bytes[index]
            if inString {
                if byte == UInt8(ascii: "\\") {
                    let escaped = index + 1 < bytes.count ? bytes[index + 1] : 0
                    if escaped == UInt8(ascii: "u"), index + 6 <= bytes.count,
                       let code = UInt16(String(decoding: bytes[(index + 2)..<(index + 6)], as: UTF8.self), radix: 16) {
                        switch code {
                        case 0: return false
                        case 0xD800...0xDBFF:
                            if pendingHigh { return false }
                            pendingHigh = true
                        case 0xDC00...0xDFFF:
                            if !pendingHigh { return false }
                            pendingHigh = false
                        default:
                            if pendingHigh { return false }
                        }
                        index += 6
                        continue
                    }
                    if pendingHigh { return false }
                    index += 2
                    continue
                }
                if pendingHigh { return false }
                if byte == UInt8(ascii: "\"") { inString = false }
                index += 1
                continue
            }
            if byte == UInt8(ascii: "\"") {
                inString = true
                index += 1
                continue
            }
            if byte == UInt8(ascii: "-") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) {
                let start = index
                while index < bytes.count, Self.isNumberByte(bytes[index]) { index += 1 }
                guard Self.fitsNumeric(bytes[start..<index]) else { return false }
                continue
            }
            index += 1
        }
        return !pendingHigh
    }

    private static func isNumberByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
    }

    /// `numeric`'s range: 131072 digits before the decimal point, 16383 after. A little is kept
    /// in reserve so that the check never has to agree with PostgreSQL to the last digit.
    static let integerDigitsMax = 131_000
    static let fractionDigitsMax = 16_000

    private static func fitsNumeric(_ token: ArraySlice<UInt8>) -> Bool {
        let isDigit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        let e = token.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") })
        var exponent = 0
        if let e {
            let text = String(decoding: token[(e + 1)...].filter { $0 != UInt8(ascii: "+") }, as: UTF8.self)
            guard let value = Int(text), abs(value) < 1_000_000 else { return false }
            exponent = value
        }
        let mantissa = token[..<(e ?? token.endIndex)]
        let point = mantissa.firstIndex(of: UInt8(ascii: "."))
        let integerDigits = mantissa[..<(point ?? mantissa.endIndex)].filter(isDigit).count
        let fractionDigits = point.map { mantissa[($0 + 1)...].filter(isDigit).count } ?? 0
        return integerDigits + exponent <= integerDigitsMax && fractionDigits - exponent <= fractionDigitsMax
    }
}

extension FleetColumns {
    /// Rows per INSERT statement: 17 parameters each, well under the protocol's 65,535.
    static let rowsPerInsertMax = 1_000

    /// One multi-row `INSERT INTO larder_audit` with every value bound, the same values COPY sends.
    static func insert(_ entries: ArraySlice<AuditEntry>, boxID: String) throws -> PostgresQuery {
        precondition(!entries.isEmpty && entries.count <= rowsPerInsertMax, "an INSERT takes 1...\(rowsPerInsertMax) rows")
        var sql = "INSERT INTO larder_audit (\(auditColumns.joined(separator: ", "))) VALUES "
        var binds = PostgresBindings(capacity: entries.count * auditColumns.count)
        for (index, entry) in entries.enumerated() {
            let record = entry.record
            let p = index * auditColumns.count
            if index > 0 { sql += ", " }
            sql += "($\(p + 1), $\(p + 2), $\(p + 3)::timestamptz, $\(p + 4), $\(p + 5), $\(p + 6), $\(p + 7), $\(p + 8), $\(p + 9), "
                + "$\(p + 10)::jsonb, $\(p + 11), $\(p + 12), $\(p + 13), $\(p + 14)::jsonb, $\(p + 15), $\(p + 16), $\(p + 17))"
            binds.append(text(boxID))
            binds.append(Int64(record.seq))
            binds.append(RFC3339.format(record.timeMicros))
            binds.append(text(record.event.rawValue))
            binds.append(text(record.actor.id))
            binds.append(text(record.actor.role.rawValue))
            binds.append(text(record.requestID))
            binds.append(record.traceID.map(text))
            binds.append(record.decisionID.map(text))
            binds.append(refsJSON(record.refs))
            binds.append(record.failureCategory.map(text))
            binds.append(record.responseType.map(text))
            binds.append(record.reasonCode.map(text))
            binds.append(isJSONBSafe(record.payload) ? text(record.payload) : nil)
            binds.append(ByteBuffer(bytes: entry.recordBytes))
            binds.append(ByteBuffer(bytes: entry.leafHash))
            binds.append(ByteBuffer(bytes: entry.chainHash))
        }
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }
}

/// Builds the data of `COPY larder_audit FROM STDIN` (text format): tab-separated, one line per
/// row, `\N` for NULL, backslash escapes for `\`, tab, newline and carriage return, and bytea
/// in hex (`\\x…`, the backslash itself escaped).
struct CopyTextWriter {
    private(set) var bytes: [UInt8] = []
    private var columnsInRow = 0

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func text(_ value: String?) {
        separate()
        guard let value else { return appendNull() }
        for byte in FleetColumns.text(value).utf8 {
            switch byte {
            case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\t"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case UInt8(ascii: "\n"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            default: bytes.append(byte)
            }
        }
    }

    mutating func integer<I: BinaryInteger>(_ value: I) {
        separate()
        bytes += Array(String(value).utf8)
    }

    mutating func bytea(_ value: [UInt8]) {
        separate()
        bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\"), UInt8(ascii: "x")]
        let digits = Array("0123456789abcdef".utf8)
        for byte in value {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0F)])
        }
    }

    mutating func endRow() {
        bytes.append(UInt8(ascii: "\n"))
        columnsInRow = 0
    }

    private mutating func separate() {
        if columnsInRow > 0 { bytes.append(UInt8(ascii: "\t")) }
        columnsInRow += 1
    }

    private mutating func appendNull() {
        bytes += [UInt8(ascii: "\\"), UInt8(ascii: "N")]
    }

    /// One `larder_audit` row.
    mutating func row(boxID: String, entry: AuditEntry) {
        let record = entry.record
        text(boxID)
        integer(record.seq)
        text(RFC3339.format(record.timeMicros))
        text(record.event.rawValue)
        text(record.actor.id)
        text(record.actor.role.rawValue)
        text(record.requestID)
        text(record.traceID)
        text(record.decisionID)
        text(FleetColumns.refsJSON(record.refs))
        text(record.failureCategory)
        text(record.responseType)
        text(record.reasonCode)
        text(FleetColumns.isJSONBSafe(record.payload) ? record.payload : nil)
        bytea(entry.recordBytes)
        bytea(entry.leafHash)
        bytea(entry.chainHash)
        endRow()
    }
}
