import Foundation

/// What the store remembers of a decision: enough to answer a retry with the first result and to
/// recognise a different request reusing the id.
public struct DecisionRecord: Sendable, Hashable {
    static let formatVersion: UInt8 = 1

    public let decisionID: String
    /// The operation name of the request (``FingerprintedRequest/operationName``).
    public let operation: String
    /// SHA-256 of the request's canonical encoding.
    public let fingerprint: [UInt8]
    public let timeMicros: UnixMicros
    /// The last audit record of the write that made the decision (0 when it wrote none).
    public let auditSeq: UInt64
    /// The canonical JSON of the result returned the first time.
    public let result: [UInt8]

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + result.count)
        writer.write(Self.formatVersion)
        writer.write(raw: fingerprint)
        writer.write(timeMicros)
        writer.write(auditSeq)
        writer.write(string: operation)
        writer.write(blob: result)
        return writer.bytes
    }

    static func decode(id: String, _ bytes: [UInt8]) throws(LarderError) -> DecisionRecord {
        var reader = ByteReader(bytes)
        let version = try reader.readUInt8()
        guard version == formatVersion else { throw ByteReader.malformed("decision format version \(version)") }
        let fingerprint = try reader.readBytes(32)
        let time = try reader.readInt64()
        let seq = try reader.read(UInt64.self)
        let operation = try reader.readString()
        let result = try reader.readBlob()
        try reader.expectEnd()
        return DecisionRecord(decisionID: id, operation: operation, fingerprint: fingerprint, timeMicros: time,
                              auditSeq: seq, result: result)
    }
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

/// The canonical encoding of requests and results: JSON with sorted keys, no escaped slashes,
/// dates as seconds since 1970. Deterministic for the same value.
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

    /// The fingerprint of a request made by `actor`: SHA-256 of
    /// `{"actor":{"id":…,"role":…},"operation":…,"request":…}` in canonical JSON.
    static func fingerprint<Q: FingerprintedRequest>(actor: ActorIdentity, request: Q) throws(LarderError) -> [UInt8] {
        return AuditChain.sha256(try encode(FingerprintEnvelope(actor: actor, operation: Q.operationName, request: request)))
    }
}

/// What a request's fingerprint covers.
private struct FingerprintEnvelope<Body: Encodable>: Encodable {
    let actor: ActorIdentity
    let operation: String
    let request: Body
}
