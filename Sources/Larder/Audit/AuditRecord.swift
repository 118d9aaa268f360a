import LarderStorage
import Crypto
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The kind of an audited event. Open-ended (a struct, not an enum) so that new events do not
/// break clients; the events Larder itself writes (docs/FORMAT.md section 7) are predefined.
public struct AuditEvent: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let rawValue: String
    @inlinable public init(rawValue: String) { self.rawValue = rawValue }
    @inlinable public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { rawValue }

    // The predefined events are inlinable literals rather than stored constants: a scan that
    // compares every record's event with one (`record.isEvent(.ledgerTransferPosted)`) then
    // neither calls a global's accessor nor retains and releases its string per record.

    @inlinable public static var opFailureRecorded: AuditEvent { "OP_FAILURE_RECORDED" }
    @inlinable public static var opResponseApplied: AuditEvent { "OP_RESPONSE_APPLIED" }
    @inlinable public static var opCreditGranted: AuditEvent { "OP_CREDIT_GRANTED" }
    @inlinable public static var opRefundIssued: AuditEvent { "OP_REFUND_ISSUED" }
    @inlinable public static var opRefundOutcome: AuditEvent { "OP_REFUND_OUTCOME_RECORDED" }
    @inlinable public static var opOverrideUsed: AuditEvent { "OP_OVERRIDE_USED" }
    @inlinable public static var incidentStateChanged: AuditEvent { "INCIDENT_STATE_CHANGED" }
    @inlinable public static var ledgerAccountCreated: AuditEvent { "LEDGER_ACCOUNT_CREATED" }
    @inlinable public static var ledgerTransferPosted: AuditEvent { "LEDGER_TRANSFER_POSTED" }
    @inlinable public static var ledgerTransferReversed: AuditEvent { "LEDGER_TRANSFER_REVERSED" }
    @inlinable public static var ledgerTransferPending: AuditEvent { "LEDGER_TRANSFER_PENDING" }
    @inlinable public static var ledgerPendingPosted: AuditEvent { "LEDGER_PENDING_POSTED" }
    @inlinable public static var ledgerPendingVoided: AuditEvent { "LEDGER_PENDING_VOIDED" }
    @inlinable public static var schemaMigrated: AuditEvent { "SCHEMA_MIGRATED" }
    @inlinable public static var decisionsPurged: AuditEvent { "DECISIONS_PURGED" }
    @inlinable public static var policyChanged: AuditEvent { "POLICY_CHANGED" }
    @inlinable public static var limitsRecorded: AuditEvent { "LIMITS_RECORDED" }
    /// A checkpoint of the audit log's Merkle tree was signed (docs/FORMAT.md section 14.7).
    @inlinable public static var checkpointSigned: AuditEvent { "CHECKPOINT_SIGNED" }
    /// The stored nodes of the Merkle tree were computed for records written before the store kept them.
    @inlinable public static var merkleTreeBuilt: AuditEvent { "MERKLE_TREE_BUILT" }
}

/// A correlation reference: what a record is about (`order:4411`, `pack:P-9`, `incident:…`).
///
/// `kind` is 1 to 32 bytes of lowercase letters, digits and `_`; `id` is an identifier (see
/// ``WriteContext/validateIdentifier(_:field:)``).
public struct CorrelationRef: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public var kind: String
    public var id: String

    public init(_ kind: String, _ id: String) {
        self.kind = kind
        self.id = id
    }

    public static func order(_ id: String) -> CorrelationRef { .init("order", id) }
    public static func pack(_ id: String) -> CorrelationRef { .init("pack", id) }
    public static func subscription(_ id: String) -> CorrelationRef { .init("subscription", id) }
    public static func incident(_ id: String) -> CorrelationRef { .init("incident", id) }
    public static func transfer(_ id: String) -> CorrelationRef { .init("transfer", id) }
    public static func account(_ id: String) -> CorrelationRef { .init("account", id) }
    public static func billing(_ id: String) -> CorrelationRef { .init("billing", id) }
    public static func route(_ id: String) -> CorrelationRef { .init("route", id) }
    public static func vendor(_ id: String) -> CorrelationRef { .init("vendor", id) }
    public static func request(_ id: String) -> CorrelationRef { .init("request", id) }
    public static func cycle(_ id: String) -> CorrelationRef { .init("cycle", id) }
    public static func customer(_ id: String) -> CorrelationRef { .init("customer", id) }

    /// `KIND:ID`.
    public var description: String { "\(kind):\(id)" }

    /// Parses `KIND:ID`; nil when there is no colon or either side is empty.
    public init?(parsing text: String) {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let kind = String(text[..<colon]), id = String(text[text.index(after: colon)...])
        guard !kind.isEmpty, !id.isEmpty else { return nil }
        self.init(kind, id)
    }

    public static let kindBytesMax = 32

    public func validate() throws(LarderError) {
        guard !kind.isEmpty, kind.utf8.count <= Self.kindBytesMax,
              kind.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }) else {
            throw LarderError(.validationFailed,
                              "Correlation kind \(JSONWriter.quoted(kind)) must be 1 to \(Self.kindBytesMax) bytes of a-z, 0-9 and _.")
        }
        // The label is built only for the message: most refs are valid, and building it was
        // most of this check's cost on the write path.
        if !WriteContext.isIdentifier(id) { try WriteContext.validateIdentifier(id, field: "correlation \(kind) id") }
    }

    /// By kind bytes, then id bytes (UTF-8, unsigned): the order refs are stored in.
    public static func < (lhs: CorrelationRef, rhs: CorrelationRef) -> Bool {
        let kinds = compareUTF8(lhs.kind, rhs.kind)
        if kinds != 0 { return kinds < 0 }
        return compareUTF8(lhs.id, rhs.id) < 0
    }

    /// Negative, zero or positive as `a`'s UTF-8 bytes sort before, equal or after `b`'s.
    static func compareUTF8(_ a: String, _ b: String) -> Int {
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                let common = Swift.min(x.count, y.count)
                if common > 0 {
                    let order = memcmp(x.baseAddress!, y.baseAddress!, common)
                    if order != 0 { return Int(order) }
                }
                return x.count - y.count
            }
        }
    }

    /// `refs` sorted by (kind bytes, id bytes) without repeats: the form every stored ref list
    /// takes (docs/FORMAT.md section 2.1). A list already in that form (the usual short one) is
    /// returned as it is, without sorting or hashing.
    static func canonical(_ refs: [CorrelationRef]) -> [CorrelationRef] {
        var index = 1
        while index < refs.count && refs[index - 1] < refs[index] { index += 1 }
        if index >= refs.count { return refs }
        var sorted = refs.sorted()
        var kept = 0
        for ref in sorted where kept == 0 || sorted[kept - 1] != ref {
            sorted[kept] = ref
            kept += 1
        }
        sorted.removeLast(sorted.count - kept)
        return sorted
    }
}

/// What a domain store asks the audit log to record; the log adds seq, time, actor, request,
/// trace and decision from the write.
public struct AuditDraft: Sendable, Hashable {
    public var event: AuditEvent
    public var refs: [CorrelationRef]
    public var failureCategory: String?
    public var responseType: String?
    public var reasonCode: String?
    /// A JSON object, as text: the event's details. Hashed as stored.
    public var payload: String

    public init(event: AuditEvent, refs: [CorrelationRef] = [], failureCategory: String? = nil,
                responseType: String? = nil, reasonCode: String? = nil, payload: String = "{}") {
        self.event = event
        self.refs = refs
        self.failureCategory = failureCategory
        self.responseType = responseType
        self.reasonCode = reasonCode
        self.payload = payload
    }

    /// Payloads above this are VALIDATION_FAILED.
    ///
    /// 48 KiB, so that every record fits a C2SP tlog-tiles entry bundle (at most 65,535 bytes per
    /// entry, ``AuditRecord/encodedBytesMax``): the other fields of a record take at most 11,792
    /// bytes (docs/FORMAT.md section 3). Stores written before this limit may hold larger records.
    public static let payloadBytesMax = 48 << 10
    public static let refsCountMax = 64
}

/// One record of the audit log, exactly as docs/FORMAT.md describes it.
public struct AuditRecord: Sendable, Hashable {
    /// The format version this code writes.
    public static let formatVersion: UInt8 = 1
    /// The largest encoded record Larder writes: what a C2SP tlog-tiles entry bundle's 16-bit
    /// length can carry. Every valid draft fits (``AuditDraft/payloadBytesMax``).
    public static let encodedBytesMax = 65_535

    public var seq: UInt64
    public var timeMicros: UnixMicros
    public var event: AuditEvent
    public var actor: ActorIdentity
    public var requestID: String
    public var traceID: String?
    public var decisionID: String?
    /// Sorted by (kind, id) bytes, without duplicates.
    public var refs: [CorrelationRef]
    public var failureCategory: String?
    public var responseType: String?
    public var reasonCode: String?
    public var payload: String

    public init(seq: UInt64, timeMicros: UnixMicros, event: AuditEvent, actor: ActorIdentity, requestID: String,
                traceID: String?, decisionID: String?, refs: [CorrelationRef], failureCategory: String?,
                responseType: String?, reasonCode: String?, payload: String) {
        self.seq = seq
        self.timeMicros = timeMicros
        self.event = event
        self.actor = actor
        self.requestID = requestID
        self.traceID = traceID
        self.decisionID = decisionID
        self.refs = CorrelationRef.canonical(refs)
        self.failureCategory = failureCategory
        self.responseType = responseType
        self.reasonCode = reasonCode
        self.payload = payload
    }

    /// The record's canonical bytes (docs/FORMAT.md, "Audit record, version 1").
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 160 + payload.utf8.count)
        writer.write(Self.formatVersion)
        writer.write(seq)
        writer.write(timeMicros)
        writer.write(string: event.rawValue)
        writer.write(string: actor.id)
        writer.write(string: actor.role.rawValue)
        writer.write(string: requestID)
        writer.write(optional: traceID)
        writer.write(optional: decisionID)
        writer.write(UInt32(refs.count))
        for ref in refs {
            writer.write(string: ref.kind)
            writer.write(string: ref.id)
        }
        writer.write(optional: failureCategory)
        writer.write(optional: responseType)
        writer.write(optional: reasonCode)
        writer.write(string: payload)
        return writer.bytes
    }

    /// Decodes canonical bytes; throws on anything that is not exactly one version-1 record.
    public static func decode(_ bytes: [UInt8]) throws(LarderError) -> AuditRecord {
        try bytes.withBytes { (raw: UnsafeRawBufferPointer) throws(LarderError) -> AuditRecord in try decode(raw) }
    }

    /// Decodes canonical bytes where they lie (in LMDB's map, say): each string is copied once,
    /// into the record.
    static func decode(_ bytes: UnsafeRawBufferPointer) throws(LarderError) -> AuditRecord {
        var reader = RawReader(bytes)
        let version = try reader.readUInt8()
        guard version == formatVersion else {
            throw ByteReader.malformed("audit record format version \(version) is not supported (expected \(formatVersion))")
        }
        let seq = try reader.readUInt64()
        let time = try reader.readInt64()
        let event = AuditEvent(rawValue: try reader.readString())
        let actorID = try reader.readString()
        let role = try Self.role(try reader.readStringBytes())
        let requestID = try reader.readString()
        let traceID = try reader.readOptionalString()
        let decisionID = try reader.readOptionalString()
        let refs = try Self.readRefs(&reader)
        let failureCategory = try reader.readOptionalString()
        let responseType = try reader.readOptionalString()
        let reasonCode = try reader.readOptionalString()
        let payload = try reader.readString()
        try reader.expectEnd()
        var record = AuditRecord(seq: seq, timeMicros: time, event: event, actor: ActorIdentity(id: actorID, role: role),
                                 requestID: requestID, traceID: traceID, decisionID: decisionID, refs: [],
                                 failureCategory: failureCategory, responseType: responseType, reasonCode: reasonCode,
                                 payload: payload)
        record.refs = refs
        return record
    }

    /// A role from its stored name, compared as bytes (no string built).
    static func role(_ bytes: UnsafeRawBufferPointer) throws(LarderError) -> Role {
        for role in Role.allCases where UTF8Text.equals(bytes, role.rawValue) { return role }
        throw ByteReader.malformed("unknown role \(String(decoding: bytes.assumingMemoryBound(to: UInt8.self), as: UTF8.self))")
    }

    /// A stored ref list (count, then kind and id of each), checked to be sorted and unique:
    /// stored refs are in that form by construction, so it is checked instead of sorted again.
    static func readRefs(_ reader: inout RawReader) throws(LarderError) -> [CorrelationRef] {
        let count = try reader.readUInt32()
        guard count <= UInt32(AuditDraft.refsCountMax) else { throw ByteReader.malformed("\(count) correlation refs") }
        var refs: [CorrelationRef] = []
        refs.reserveCapacity(Int(count))
        for _ in 0..<count {
            let kind = try reader.readString()
            let ref = CorrelationRef(kind, try reader.readString())
            if let previous = refs.last, !(previous < ref) {
                throw ByteReader.malformed("correlation refs are not sorted and unique")
            }
            refs.append(ref)
        }
        return refs
    }
}

/// A stored record with its hashes: what the audit table holds under the record's seq.
public struct AuditEntry: Sendable, Hashable {
    public let record: AuditRecord
    /// The canonical bytes the hashes cover.
    public let recordBytes: [UInt8]
    /// SHA-256(0x00 ‖ recordBytes).
    public let leafHash: [UInt8]
    /// SHA-256(0x01 ‖ previous chainHash ‖ leafHash); the previous of seq 1 is 32 zero bytes.
    public let chainHash: [UInt8]

    public var seq: UInt64 { record.seq }

    /// The LMDB value: recordBytes ‖ leafHash ‖ chainHash.
    var storedValue: [UInt8] {
        var value: [UInt8] = []
        value.reserveCapacity(recordBytes.count + 64)
        value.append(contentsOf: recordBytes)
        value.append(contentsOf: leafHash)
        value.append(contentsOf: chainHash)
        return value
    }

    /// Splits a stored value without judging it; ``AuditChain`` checks the hashes.
    static func split(_ value: [UInt8]) throws(LarderError) -> (record: [UInt8], leaf: [UInt8], chain: [UInt8]) {
        guard value.count > 64 else { throw ByteReader.malformed("an audit value of \(value.count) bytes is too short") }
        let recordEnd = value.count - 64
        return (Array(value[..<recordEnd]), Array(value[recordEnd..<(recordEnd + 32)]), Array(value[(recordEnd + 32)...]))
    }

    static func decode(_ value: [UInt8]) throws(LarderError) -> AuditEntry {
        try value.withBytes { (raw: UnsafeRawBufferPointer) throws(LarderError) -> AuditEntry in try decode(raw) }
    }

    /// Decodes a stored value where it lies: the record's bytes and hashes are copied once each,
    /// and its fields straight from the value into the record.
    static func decode(_ value: UnsafeRawBufferPointer) throws(LarderError) -> AuditEntry {
        guard value.count > 64 else { throw ByteReader.malformed("an audit value of \(value.count) bytes is too short") }
        let recordEnd = value.count - 64
        let record = UnsafeRawBufferPointer(rebasing: value[..<recordEnd])
        return AuditEntry(record: try AuditRecord.decode(record), recordBytes: Array(record),
                          leafHash: Array(value[recordEnd..<(recordEnd + 32)]), chainHash: Array(value[(recordEnd + 32)...]))
    }
}

/// The hash chain of docs/FORMAT.md section 4.
public enum AuditChain {
    /// chainHash(0): 32 zero bytes.
    public static let genesis = [UInt8](repeating: 0, count: 32)

    public static func leafHash(_ recordBytes: [UInt8]) -> [UInt8] {
        recordBytes.withUnsafeBytes { leafHash($0) }
    }

    /// The leaf hash of record bytes where they lie.
    static func leafHash(_ recordBytes: UnsafeRawBufferPointer) -> [UInt8] {
        var hasher = SHA256()
        withUnsafeBytes(of: UInt8(0x00)) { hasher.update(bufferPointer: $0) }
        hasher.update(bufferPointer: recordBytes)
        return Array(hasher.finalize())
    }

    public static func chainHash(previous: [UInt8], leaf: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        withUnsafeBytes(of: UInt8(0x01)) { hasher.update(bufferPointer: $0) }
        previous.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        leaf.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return Array(hasher.finalize())
    }

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }
}

/// The newest record of the chain: what a verifier compares against an external anchor.
public struct ChainHead: Sendable, Hashable {
    /// 0 for an empty log.
    public let seq: UInt64
    public let chainHash: [UInt8]

    public init(seq: UInt64, chainHash: [UInt8]) {
        self.seq = seq
        self.chainHash = chainHash
    }

    public static let empty = ChainHead(seq: 0, chainHash: AuditChain.genesis)
}
