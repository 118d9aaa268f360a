import Foundation
import Larder

/// The query string of a request, parsed strictly: percent-decoded (RFC 3986; `+` is a plus, so
/// RFC 3339 offsets survive), every name known to the route, none given twice.
///
/// Strict because a misspelt filter that is silently ignored returns the wrong records and, worse,
/// records the wrong range in the FORENSIC_ACCESS event.
struct QueryParameters {
    private(set) var values: [String: String] = [:]
    /// Names in the order given, for the forensic record.
    private(set) var names: [String] = []

    init(_ query: String?, allowed: Set<String>) throws(LarderError) {
        guard let query, !query.isEmpty else { return }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = String(parts[0]).removingPercentEncoding,
                  let value = (parts.count == 2 ? String(parts[1]) : "").removingPercentEncoding else {
                throw LarderError(.validationFailed, "The query parameter \(JSONWriter.quoted(String(pair))) is not percent-encoded correctly.")
            }
            guard allowed.contains(name) else {
                let known = allowed.sorted().joined(separator: ", ")
                throw LarderError(.validationFailed,
                                  "Unknown query parameter \(JSONWriter.quoted(name)); this route takes \(known.isEmpty ? "none" : known).")
            }
            guard values[name] == nil else {
                throw LarderError(.validationFailed, "The query parameter \(name) is given twice.")
            }
            values[name] = value
            names.append(name)
        }
    }

    subscript(name: String) -> String? { values[name] }

    func contains(_ name: String) -> Bool { values[name] != nil }

    /// A sequence number: digits only, `minimum`...int64 max (the document's `format: int64`).
    func seq(_ name: String, minimum: UInt64 = 0) throws(LarderError) -> UInt64? {
        guard let text = values[name] else { return nil }
        guard let value = StrictText.unsigned(text, max: StrictText.seqMax), value >= minimum else {
            throw LarderError(.validationFailed,
                              "\(name) \(JSONWriter.quoted(text)) is not a sequence number in \(minimum)...\(StrictText.seqMax) (digits only).")
        }
        return value
    }

    /// An RFC 3339 date-time that exists (see ``StrictText/dateTime(_:)``).
    func time(_ name: String) throws(LarderError) -> UnixMicros? {
        guard let text = values[name] else { return nil }
        guard let value = StrictText.dateTime(text) else {
            throw LarderError(.validationFailed, "\(name) \(JSONWriter.quoted(text)) is not an RFC 3339 date-time such as 2026-11-23T09:00:00Z.")
        }
        return value
    }

    /// A value of `type` spelt as its raw value; VALIDATION_FAILED naming the values it takes.
    func enumeration<Value: RawRepresentable & CaseIterable>(_ name: String, _ type: Value.Type) throws(LarderError) -> Value?
    where Value.RawValue == String {
        guard let text = values[name] else { return nil }
        guard let value = Value(rawValue: text) else {
            let known = Value.allCases.map(\.rawValue).joined(separator: ", ")
            throw LarderError(.validationFailed, "\(name) \(JSONWriter.quoted(text)) is not one of \(known).")
        }
        return value
    }

    /// The shapes of the cursors the routes hand out (docs/admin-openapi.yaml has the same
    /// patterns). A cursor is opaque, but checking its shape here means a mangled one is 400
    /// whichever store index it was meant for, rather than whatever that index's parser accepts.
    enum CursorShape {
        /// `^[0-9]{1,19}$`: a sequence number.
        case seq
        /// `^[0-9]{1,18}-[0-9]{1,19}$`: a time and a sequence number.
        case time
        /// `^[0-9]{1,18}/<identifier>$`: a creation time and an incident id.
        case incident
    }

    /// `cursor` when given, checked against `shape`.
    func cursor(_ shape: CursorShape) throws(LarderError) -> String? {
        guard let text = values["cursor"] else { return nil }
        func digits(_ part: Substring, max: Int) -> Bool {
            (1...max).contains(part.utf8.count) && part.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        }
        let valid: Bool
        switch shape {
        case .seq:
            valid = digits(text[...], max: 19)
        case .time:
            let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            valid = parts.count == 2 && digits(parts[0], max: 18) && digits(parts[1], max: 19)
        case .incident:
            let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            valid = parts.count == 2 && digits(parts[0], max: 18)
                && (try? WriteContext.validateIdentifier(String(parts[1]), field: "cursor")) != nil
        }
        guard valid else {
            throw LarderError(.validationFailed, "The cursor \(JSONWriter.quoted(text)) is not one this route handed out; pass back a next_cursor.")
        }
        return text
    }

    /// `limit`, defaulting to `defaultValue`; VALIDATION_FAILED outside 1...`max`.
    func limit(default defaultValue: Int, max: Int) throws(LarderError) -> Int {
        guard let text = values["limit"] else { return defaultValue }
        guard let value = StrictText.unsigned(text, max: UInt64(max)).map(Int.init), value >= 1 else {
            throw LarderError(.validationFailed, "limit \(JSONWriter.quoted(text)) is not in 1...\(max).")
        }
        return value
    }
}
