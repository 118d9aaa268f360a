import Foundation

extension AuditEntry {
    /// The record as one JSON object, with everything an independent reader needs to recompute
    /// its hashes: `record_bytes` is the canonical encoding the hashes cover (docs/FORMAT.md),
    /// `leaf_hash` = SHA-256(0x00 ‖ record_bytes), `chain_hash` = SHA-256(0x01 ‖ previous ‖ leaf).
    ///
    /// The admin server and the `larder` tool both render records through this, so an export
    /// taken either way is byte for byte the same:
    /// ```swift
    /// let line = entry.jsonText   // {"seq":42,"time":"2026-11-23T03:17:00.123456Z",…}
    /// ```
    ///
    /// The readable fields are a convenience; only `record_bytes` and the hashes are evidence.
    /// `payload` is embedded as JSON when the stored text is a JSON object (what Larder writes),
    /// otherwise as a string, so a malformed payload can never make the line invalid JSON.
    public var jsonText: String {
        var json = JSONWriter()
        writeJSON(to: &json)
        return json.text
    }

    /// Writes the object of ``jsonText`` as the next value of `json` (for arrays and streams).
    public func writeJSON(to json: inout JSONWriter) {
        let record = self.record
        json.object { o in
            o.field("seq", record.seq)
            o.field("time", RFC3339.format(record.timeMicros))
            o.field("event", record.event.rawValue)
            o.object("actor") { actor in
                actor.field("id", record.actor.id)
                actor.field("role", record.actor.role.rawValue)
            }
            o.field("request_id", record.requestID)
            o.field("trace_id", record.traceID)
            o.field("decision_id", record.decisionID)
            o.array("refs") { refs in
                for ref in record.refs {
                    refs.object { r in
                        r.field("kind", ref.kind)
                        r.field("id", ref.id)
                    }
                }
            }
            o.field("failure_category", record.failureCategory)
            o.field("response_type", record.responseType)
            o.field("reason_code", record.reasonCode)
            if Self.isJSONObject(record.payload) {
                o.rawField("payload", json: record.payload)
            } else {
                o.field("payload", record.payload)
            }
            o.field("record_bytes", recordBytes.hexString)
            o.field("leaf_hash", leafHash.hexString)
            o.field("chain_hash", chainHash.hexString)
        }
    }

    /// Whether `text` is exactly one JSON object: only then may it be embedded unquoted.
    /// Appends refuse anything else, but a damaged store could hold anything, so it is checked
    /// here too (without building the object: this runs for every record rendered).
    static func isJSONObject(_ text: String) -> Bool {
        JSONValidator.isObject(text)
    }
}
