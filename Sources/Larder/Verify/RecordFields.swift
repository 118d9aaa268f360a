/// One audit record read where it lies, field by field, checked exactly as
/// ``AuditRecord/decode(_:)`` checks it (version 1, valid UTF-8, a known role, at most 64 refs
/// sorted and unique, no trailing bytes), without building Strings: verify reads every record
/// once this way. Valid only while the bytes it points into are.
struct RecordFields {
    let bytes: UnsafeRawBufferPointer
    let seq: UInt64
    let timeMicros: Int64
    let event: UnsafeRawBufferPointer
    let actorID: UnsafeRawBufferPointer
    let role: UnsafeRawBufferPointer
    let requestID: UnsafeRawBufferPointer
    let traceID: UnsafeRawBufferPointer?
    let decisionID: UnsafeRawBufferPointer?
    let refCount: Int
    /// Offset of the first ref's kind.
    let refsOffset: Int
    let failureCategory: UnsafeRawBufferPointer?
    let responseType: UnsafeRawBufferPointer?
    let reasonCode: UnsafeRawBufferPointer?
    let payload: UnsafeRawBufferPointer

    init(_ bytes: UnsafeRawBufferPointer) throws(Malformed) {
        self.bytes = bytes
        var reader = InPlaceReader(bytes)
        let version = try reader.u8()
        guard version == AuditRecord.formatVersion else {
            throw Malformed(detail: "audit record format version \(version) is not supported (expected \(AuditRecord.formatVersion))")
        }
        seq = try reader.u64()
        timeMicros = try reader.i64()
        event = try reader.string()
        actorID = try reader.string()
        let role = try reader.string()
        guard RecordFields.roles.contains(where: { InPlace.equal(role, $0) }) else {
            throw Malformed(detail: "unknown role \(InPlace.text(role))")
        }
        self.role = role
        requestID = try reader.string()
        traceID = try reader.optionalString()
        decisionID = try reader.optionalString()
        let count = try reader.u32()
        guard count <= UInt32(AuditDraft.refsCountMax) else { throw Malformed(detail: "\(count) correlation refs") }
        refCount = Int(count)
        refsOffset = reader.offset
        var previous: (kind: UnsafeRawBufferPointer, id: UnsafeRawBufferPointer)?
        for _ in 0..<refCount {
            let kind = try reader.string()
            let id = try reader.string()
            if let previous {
                // Stored refs are sorted and unique by construction; a record that is not was changed.
                let order = InPlace.compare(previous.kind, kind)
                guard order < 0 || (order == 0 && InPlace.compare(previous.id, id) < 0) else {
                    throw Malformed(detail: "correlation refs are not sorted and unique")
                }
            }
            previous = (kind, id)
        }
        failureCategory = try reader.optionalString()
        responseType = try reader.optionalString()
        reasonCode = try reader.optionalString()
        payload = try reader.string()
        try reader.expectEnd()
    }

    static let roles: [[UInt8]] = Role.allCases.map { Array($0.rawValue.utf8) }

    /// Calls `body` with each ref's kind and id, in stored order.
    @inline(__always) func forEachRef(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        var offset = refsOffset
        for _ in 0..<refCount {
            let kindCount = Int(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            let kind = UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + 4 + kindCount)])
            offset += 4 + kindCount
            let idCount = Int(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            let id = UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + 4 + idCount)])
            offset += 4 + idCount
            body(kind, id)
        }
    }

    /// Adds the refs to a fact as ``Fact/add(refs:)`` adds a `[CorrelationRef]`.
    @inline(__always) func addRefs(to fact: inout Fact) {
        fact.add(UInt64(refCount))
        forEachRef { kind, id in
            fact.add(bytes: kind)
            fact.add(bytes: id)
        }
    }

    /// Whether the record holds the ref `kind:id`.
    func hasRef(kind: [UInt8], id: UnsafeRawBufferPointer) -> Bool {
        var found = false
        kind.withUnsafeBytes { kind in
            forEachRef { k, i in if !found, InPlace.equal(k, kind), InPlace.equal(i, id) { found = true } }
        }
        return found
    }

    /// The events whose records verify holds against state tables.
    enum Event {
        case accountCreated
        case transfer(TransferKind)
        case failureRecorded, stateChanged, responseApplied, creditGranted, refundIssued, overrideUsed, refundOutcome
        case decisionsPurged, policyChanged
        case other
    }

    private static let events: [(name: [UInt8], event: Event)] = [
        (AuditEvent.ledgerAccountCreated, Event.accountCreated),
        (.ledgerTransferPosted, .transfer(.single)), (.ledgerTransferPending, .transfer(.pending)),
        (.ledgerPendingPosted, .transfer(.postPending)), (.ledgerPendingVoided, .transfer(.voidPending)),
        (.ledgerTransferReversed, .transfer(.reversal)),
        (.opFailureRecorded, .failureRecorded), (.incidentStateChanged, .stateChanged), (.opResponseApplied, .responseApplied),
        (.opCreditGranted, .creditGranted), (.opRefundIssued, .refundIssued), (.opOverrideUsed, .overrideUsed),
        (.opRefundOutcome, .refundOutcome), (.decisionsPurged, .decisionsPurged), (.policyChanged, .policyChanged),
    ].map { (Array($0.0.rawValue.utf8), $0.1) }

    /// What the record's event is, among those verify follows.
    var kind: Event {
        for candidate in Self.events where candidate.name.count == event.count && InPlace.equal(event, candidate.name) {
            return candidate.event
        }
        return .other
    }
}

/// Reads the flat JSON objects Larder writes as payloads (`{"key":value,…}`, values strings,
/// integers, booleans or null): enough for verify to take an id or a count out of a record it
/// follows. Anything else (nesting, escapes in a string it is asked for) reads as absent, and
/// the record then matches no row, which verify reports.
struct FlatJSON {
    let bytes: UnsafeRawBufferPointer

    /// The raw value of `key` at the top level: a string's bytes without quotes (nil when it
    /// holds an escape), or a number's, `true`'s, `false`'s or `null`'s text.
    func value(_ key: String) -> UnsafeRawBufferPointer? {
        var result: UnsafeRawBufferPointer?
        var key = key
        key.withUTF8 { wanted in
            result = find(UnsafeRawBufferPointer(wanted))
        }
        return result
    }

    private func find(_ wanted: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        var index = 0
        let count = bytes.count
        func skipSpace() { while index < count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 } }
        /// A string from the quote at `index`: its inner bytes, and whether it held an escape.
        func string() -> (UnsafeRawBufferPointer, Bool)? {
            guard index < count, bytes[index] == 0x22 else { return nil }
            index += 1
            let start = index
            var escaped = false
            while index < count, bytes[index] != 0x22 {
                if bytes[index] == 0x5C {
                    escaped = true
                    index += 1
                }
                index += 1
            }
            guard index < count else { return nil }
            defer { index += 1 }
            return (UnsafeRawBufferPointer(rebasing: bytes[start..<index]), escaped)
        }
        skipSpace()
        guard index < count, bytes[index] == 0x7B else { return nil }
        index += 1
        while true {
            skipSpace()
            guard let (name, _) = string() else { return nil }
            skipSpace()
            guard index < count, bytes[index] == 0x3A else { return nil }
            index += 1
            skipSpace()
            guard index < count else { return nil }
            let value: UnsafeRawBufferPointer?
            if bytes[index] == 0x22 {
                guard let (text, escaped) = string() else { return nil }
                value = escaped ? nil : text
            } else if bytes[index] == 0x7B || bytes[index] == 0x5B {
                // A nested value: skip it, counting brackets outside strings.
                var depth = 0
                repeat {
                    switch bytes[index] {
                    case 0x7B, 0x5B: depth += 1; index += 1
                    case 0x7D, 0x5D: depth -= 1; index += 1
                    case 0x22: guard string() != nil else { return nil }
                    default: index += 1
                    }
                } while depth > 0 && index < count
                value = nil
            } else {
                let start = index
                while index < count, ![0x2C, 0x7D, 0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 }
                value = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
            }
            if InPlace.equal(name, wanted) { return value }
            skipSpace()
            guard index < count else { return nil }
            if bytes[index] == 0x7D { return nil }
            guard bytes[index] == 0x2C else { return nil }
            index += 1
        }
    }

    /// An unsigned decimal value of `key`.
    func unsigned(_ key: String) -> UInt64? {
        guard let text = value(key), !text.isEmpty, text.count <= 20 else { return nil }
        var result: UInt64 = 0
        for byte in text {
            guard (0x30...0x39).contains(byte) else { return nil }
            let (times, overflow1) = result.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(UInt64(byte - 0x30))
            guard !overflow1, !overflow2 else { return nil }
            result = sum
        }
        return result
    }
}
