extension AuditEntry {
    /// The record as one JSON object, with everything an independent reader needs to recompute
    /// its hashes: `record_bytes` is the canonical encoding the hashes cover (docs/FORMAT.md),
    /// `leaf_hash` = SHA-256(0x00 ‖ record_bytes), `chain_hash` = SHA-256(0x01 ‖ previous ‖ leaf).
    ///
    /// The admin server and the `larder` tool both render records through this (or through
    /// ``AuditRecordView/writeJSON(to:)``, which writes the same bytes), so an export taken either
    /// way is byte for byte the same:
    /// ```swift
    /// let line = entry.jsonText   // {"seq":42,"time":"2026-11-23T03:17:00.123456Z",…}
    /// ```
    ///
    /// The readable fields are a convenience; only `record_bytes` and the hashes are evidence.
    /// `payload` is embedded as JSON when the stored text is a JSON object (what Larder writes),
    /// otherwise as a string, so a malformed payload can never make the line invalid JSON.
    public var jsonText: String {
        var json = JSONWriter(capacity: 512 + recordBytes.count * 3)
        writeJSON(to: &json)
        return json.text
    }

    /// Writes the object of ``jsonText`` as the next value of `json` (for arrays and streams).
    public func writeJSON(to json: inout JSONWriter) {
        let rendered = recordBytes.withUnsafeBytes { record in
            leafHash.withUnsafeBytes { leaf in
                chainHash.withUnsafeBytes { chain in
                    (try? AuditJSON.write(record: record, leaf: leaf, chain: chain, to: &json)) != nil
                }
            }
        }
        // Every entry comes from decoded or freshly encoded bytes, so the bytes render; were they
        // ever not to, the decoded fields still do.
        if !rendered { writeJSONFromFields(to: &json) }
    }

    /// The same object from the decoded fields.
    package func writeJSONFromFields(to json: inout JSONWriter) {
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

extension AuditRecordView {
    /// Writes the record as ``AuditEntry/jsonText`` does, byte for byte, straight from the map:
    /// strings are escaped from their stored bytes and hashes written as hex, without building a
    /// `String` per field.
    ///
    /// ```swift
    /// var json = JSONWriter()
    /// try store.read { view in
    ///     try view.audit.forEachRecord(fromSeq: 1, limit: 100) { record in try record.writeJSON(to: &json) }
    /// }
    /// ```
    ///
    /// - throws: PERSISTENCE_ERROR when the stored record is malformed (nothing is written then).
    public func writeJSON(to json: inout JSONWriter) throws(LarderError) {
        validity.check()
        let recordCount = value.count - 64
        try AuditJSON.write(record: record, leaf: UnsafeRawBufferPointer(rebasing: value[recordCount..<(recordCount + 32)]),
                            chain: UnsafeRawBufferPointer(rebasing: value[(recordCount + 32)...]), to: &json)
    }
}

/// Renders canonical record bytes as the audit JSON object (docs/FORMAT.md, the export format).
enum AuditJSON {
    /// Writes the object for `record` (canonical bytes) and its hashes. Checks the record fully
    /// first (bounds, UTF-8, role, ref order), so a malformed one throws and writes nothing.
    static func write(record: UnsafeRawBufferPointer, leaf: UnsafeRawBufferPointer, chain: UnsafeRawBufferPointer,
                      to json: inout JSONWriter) throws(LarderError) {
        try AuditRecordView.checkHeader(record)
        let layout = try AuditRecordView.layout(of: record)
        func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: record[range]) }
        let event = AuditRecordView.eventBytes(of: record)
        // Validate everything rendered as text before writing anything.
        func check(_ text: UnsafeRawBufferPointer) throws(LarderError) {
            guard UTF8Text.isValid(text) else { throw ByteReader.malformed("a string is not valid UTF-8") }
        }
        func check(_ range: Range<Int>?) throws(LarderError) {
            if let range { try check(bytes(range)) }
        }
        try check(event)
        try check(layout.actorID)
        try check(layout.requestID)
        try check(layout.payload)
        try check(layout.traceID)
        try check(layout.decisionID)
        try check(layout.failureCategory)
        try check(layout.responseType)
        try check(layout.reasonCode)
        let role = try AuditRecord.role(bytes(layout.role))
        var refs = RawReader(record, offset: layout.refsStart - 4)
        _ = try AuditRecord.readRefs(&refs)

        let seq = UInt64(bigEndian: record.loadUnaligned(fromByteOffset: 1, as: UInt64.self))
        let time = Int64(bitPattern: UInt64(bigEndian: record.loadUnaligned(fromByteOffset: 9, as: UInt64.self)))
        json.object { o in
            func optionalField(_ name: String, _ range: Range<Int>?) {
                if let range { o.field(name, utf8: bytes(range)) } else { o.field(name, nil as String?) }
            }
            o.field("seq", seq)
            RFC3339.writeField("time", time, to: &o)
            o.field("event", utf8: event)
            o.object("actor") { actor in
                actor.field("id", utf8: bytes(layout.actorID))
                actor.field("role", role.rawValue)
            }
            o.field("request_id", utf8: bytes(layout.requestID))
            optionalField("trace_id", layout.traceID)
            optionalField("decision_id", layout.decisionID)
            o.array("refs") { list in
                var reader = RawReader(record, offset: layout.refsStart)
                for _ in 0..<layout.refCount {
                    // Bounds were checked by the layout: these reads cannot fail.
                    guard let kind = try? reader.readStringBytes(), let id = try? reader.readStringBytes() else { break }
                    list.object { r in
                        r.field("kind", utf8: kind)
                        r.field("id", utf8: id)
                    }
                }
            }
            optionalField("failure_category", layout.failureCategory)
            optionalField("response_type", layout.responseType)
            optionalField("reason_code", layout.reasonCode)
            let payload = bytes(layout.payload)
            if JSONValidator.isObject(utf8: payload) {
                o.rawField("payload", utf8: payload)
            } else {
                o.field("payload", utf8: payload)
            }
            o.hexField("record_bytes", record)
            o.hexField("leaf_hash", leaf)
            o.hexField("chain_hash", chain)
        }
    }
}

extension RFC3339 {
    /// Writes `"name":"<RFC 3339 time>"` as ``format(_:)-(UnixMicros)`` spells it, without
    /// building strings for years 0 to 9999 (every other year goes through ``format(_:)-(UnixMicros)``).
    static func writeField(_ name: String, _ micros: UnixMicros, to json: inout JSONWriter) {
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let fraction = micros - seconds * 1_000_000
        let (year, month, day, hour, minute, second) = civil(fromUnixSeconds: seconds)
        guard (0...9_999).contains(year) else {
            json.field(name, format(micros))
            return
        }
        json.asciiField(name, countMax: 27) { out in
            var index = 0
            func digits(_ value: Int64, _ width: Int) {
                var rest = value
                for position in stride(from: width - 1, through: 0, by: -1) {
                    out[index + position] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                index += width
            }
            func mark(_ byte: Unicode.Scalar) {
                out[index] = UInt8(ascii: byte)
                index += 1
            }
            digits(year, 4); mark("-"); digits(month, 2); mark("-"); digits(day, 2); mark("T")
            digits(hour, 2); mark(":"); digits(minute, 2); mark(":"); digits(second, 2); mark(".")
            digits(fraction, 6); mark("Z")
            return index
        }
    }
}
