import LarderStorage
import Foundation

/// What the store remembers of a decision: enough to answer a retry with the first result and to
/// recognise a different request reusing the id.
public struct DecisionRecord: Sendable, Hashable {
    /// The record version this code writes: 2, the fingerprint over RFC 8785 canonical JSON.
    /// Version 1 records (written before) hold a fingerprint over Foundation's `JSONEncoder`
    /// output, and are still read and compared as such (docs/FORMAT.md section 6).
    static let formatVersion: UInt8 = FingerprintForm.jcs.rawValue

    public let decisionID: String
    /// The operation name of the request (``FingerprintedRequest/operationName``).
    public let operation: String
    /// SHA-256 of the request's canonical encoding (which one: ``fingerprintForm``).
    public let fingerprint: [UInt8]
    public let timeMicros: UnixMicros
    /// The last audit record of the write that made the decision (0 when it wrote none).
    public let auditSeq: UInt64
    /// The canonical JSON of the result returned the first time.
    public let result: [UInt8]
    /// The canonical encoding ``fingerprint`` was computed over.
    public let fingerprintForm: FingerprintForm

    init(decisionID: String, operation: String, fingerprint: [UInt8], timeMicros: UnixMicros, auditSeq: UInt64,
         result: [UInt8], fingerprintForm: FingerprintForm = .jcs) {
        self.decisionID = decisionID
        self.operation = operation
        self.fingerprint = fingerprint
        self.timeMicros = timeMicros
        self.auditSeq = auditSeq
        self.result = result
        self.fingerprintForm = fingerprintForm
    }

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + result.count)
        writer.write(fingerprintForm.rawValue)
        writer.write(raw: fingerprint)
        writer.write(timeMicros)
        writer.write(auditSeq)
        writer.write(string: operation)
        writer.write(blob: result)
        return writer.bytes
    }

    static func decode(id: String, _ bytes: [UInt8]) throws(LarderError) -> DecisionRecord {
        try bytes.withBytes { (raw: UnsafeRawBufferPointer) throws(LarderError) -> DecisionRecord in
            try decode(id: id, raw)
        }
    }

    static func decode(id: String, _ bytes: UnsafeRawBufferPointer) throws(LarderError) -> DecisionRecord {
        var reader = RawReader(bytes)
        let version = try reader.readUInt8()
        guard let form = FingerprintForm(rawValue: version) else {
            throw ByteReader.malformed("decision format version \(version)")
        }
        let fingerprint = try reader.readBytes(32)
        let time = try reader.readInt64()
        let seq = try reader.readUInt64()
        let operation = try reader.readString()
        let result = try reader.readBlob()
        try reader.expectEnd()
        return DecisionRecord(decisionID: id, operation: operation, fingerprint: fingerprint, timeMicros: time,
                              auditSeq: seq, result: result, fingerprintForm: form)
    }
}

/// The canonical encoding a decision's fingerprint was computed over (docs/FORMAT.md section 6).
/// Stored as the decision record's version byte.
public enum FingerprintForm: UInt8, Sendable, Hashable, CaseIterable {
    /// Foundation's `JSONEncoder` with sorted keys (decisions recorded before RFC 8785): kept so
    /// that those decisions still replay.
    case foundationJSON = 1
    /// RFC 8785, the JSON Canonicalization Scheme: what Larder writes now.
    case jcs = 2
}

/// Reads decisions in a snapshot.
public struct DecisionLog {
    let txn: TableReader
    let tables: StoreTables

    /// The decision stored under `id`, or nil.
    public func decision(id: String) throws(LarderError) -> DecisionRecord? {
        try WriteContext.validateIdentifier(id, field: "decisionID")
        guard let bytes = try txn.get(tables.decisions, id) else { return nil }
        return try DecisionRecord.decode(id: id, bytes)
    }

    /// How many decisions are kept.
    public func count() throws(LarderError) -> Int { try txn.statistics(tables.decisions).entries }
}

/// The canonical JSON Larder wrote with Foundation's `JSONEncoder` before RFC 8785: sorted
/// keys, no escaped slashes, dates as seconds since 1970. Still the encoding of the failure
/// policy (whose hash is recorded) and of stored incidents, and the one version 1 decision
/// fingerprints were computed over; new fingerprints and stored results use ``JCS``.
enum CanonicalJSON {
    static func encode<T: Encodable>(_ value: T) throws(LarderError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .secondsSince1970
        do {
            return Array(try encoder.encode(value))
        } catch {
            throw LarderError(.validationFailed, "The value cannot be encoded canonically: \(error).")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws(LarderError) -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        do {
            return try decoder.decode(type, from: Data(bytes))
        } catch {
            throw LarderError(.persistenceError, "A stored result cannot be decoded as \(T.self): \(error).",
                              failureClass: .dataInconsistency, failurePoint: .read)
        }
    }
}

/// Decision fingerprints: SHA-256 of the canonical JSON of
/// `{"actor":{"id":…,"role":…},"operation":…,"request":…}`.
package enum Fingerprint {
    /// The fingerprint of a request made by `actor`, in `form`.
    package static func of<Q: FingerprintedRequest>(actor: ActorIdentity, request: Q, form: FingerprintForm) throws(LarderError) -> [UInt8] {
        let envelope = FingerprintEnvelope(actor: actor, operation: Q.operationName, request: request)
        switch form {
        case .jcs: return AuditChain.sha256(try JCS.encode(envelope))
        case .foundationJSON: return AuditChain.sha256(try CanonicalJSON.encode(envelope))
        }
    }
}

/// What a request's fingerprint covers.
package struct FingerprintEnvelope<Body: Encodable>: Encodable {
    let actor: ActorIdentity
    let operation: String
    let request: Body

    package init(actor: ActorIdentity, operation: String, request: Body) {
        self.actor = actor
        self.operation = operation
        self.request = request
    }
}

extension FingerprintEnvelope: JCSDirect where Body: JCSDirect {
    package func writeJCS(to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        JCSWrite.name("actor", first: true, to: &out)
        actor.writeJCS(to: &out)
        JCSWrite.name("operation", to: &out)
        JCSWrite.string(operation, to: &out)
        JCSWrite.name("request", to: &out)
        request.writeJCS(to: &out)
        out.append(UInt8(ascii: "}"))
    }
}
