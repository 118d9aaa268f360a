import Foundation

/// The roles of the failure policy (Policy/POLICY.md, docs/ARCHITECTURE.md section 6).
public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
    case accountManager
    case admin
    case system
}

/// Who acts: an identifier (a person, a detector, a service) and the role it acts in.
///
/// Named `ActorIdentity` rather than `Actor` so it never shadows Swift's `Actor` protocol.
public struct ActorIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    public var id: String
    public var role: Role

    public init(id: String, role: Role) {
        self.id = id
        self.role = role
    }

    /// Larder itself (schema creation, the policy and limits it records at open).
    public static let larder = ActorIdentity(id: "larder", role: .system)

    public var description: String { "\(id) (\(role.rawValue))" }
}

/// What every write carries: who, which request, which trace, and optionally the decisionID that
/// makes a retry harmless.
///
/// ```swift
/// let context = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager),
///                            requestID: "req-8812", decisionID: "credit-order-4411")
/// ```
public struct WriteContext: Sendable, Hashable {
    public var actor: ActorIdentity
    public var requestID: String
    public var traceID: String?
    public var decisionID: String?

    public init(actor: ActorIdentity, requestID: String, traceID: String? = nil, decisionID: String? = nil) {
        self.actor = actor
        self.requestID = requestID
        self.traceID = traceID
        self.decisionID = decisionID
    }

    /// Identifiers: 1 to 128 bytes of letters, digits and `. _ : - / @ #`.
    public static let identifierBytesMax = 128

    /// Throws VALIDATION_FAILED naming the first field that is missing or malformed.
    public func validate() throws(LarderError) {
        try Self.validateIdentifier(requestID, field: "requestID")
        try Self.validateIdentifier(actor.id, field: "actor.id")
        if let traceID { try Self.validateIdentifier(traceID, field: "traceID") }
        if let decisionID { try Self.validateIdentifier(decisionID, field: "decisionID") }
    }

    /// Throws VALIDATION_FAILED unless `value` is a well-formed identifier.
    public static func validateIdentifier(_ value: String, field: String) throws(LarderError) {
        // The common case in one pass over the bytes; the checks below only name what is wrong.
        if isIdentifier(value) { return }
        guard !value.isEmpty else {
            throw LarderError(.validationFailed, "\(field) is required and must not be empty.")
        }
        guard value.utf8.count <= identifierBytesMax else {
            throw LarderError(.validationFailed, "\(field) is \(value.utf8.count) bytes; at most \(identifierBytesMax) are allowed.")
        }
        for byte in value.utf8 where !isIdentifierByte(byte) {
            throw LarderError(.validationFailed,
                              "\(field) \(JSONWriter.quoted(value)) contains \(JSONWriter.quoted(String(decoding: [byte], as: UTF8.self))); use letters, digits and . _ : - / @ #")
        }
    }

    /// The full id of a record a caller names inside a parent (a response or a compensation
    /// proposal inside its incident): `<parent>.<chosen>`. A chosen id shaped like the ones the
    /// store assigns there (`storeLetter` followed by digits, alone or after the last dot) is
    /// refused, so the two kinds can never collide.
    static func childID(chosen: String, parent: String, field: String, storeLetter: Character) throws(LarderError) -> String {
        try validateIdentifier(chosen, field: field)
        let last = chosen.split(separator: ".", omittingEmptySubsequences: false).last ?? ""
        if last.first == storeLetter, last.count > 1, last.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }) {
            throw LarderError(.validationFailed,
                              "\(field) \(JSONWriter.quoted(chosen)) has the form \(storeLetter)<n> of the ids the store assigns; choose another.")
        }
        let full = "\(parent).\(chosen)"
        try validateIdentifier(full, field: "\(field.dropLast(2)) id \(JSONWriter.quoted(full))")
        return full
    }

    /// Whether `value` passes ``validateIdentifier(_:field:)``, without building its message.
    static func isIdentifier(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { bytes in
            !bytes.isEmpty && bytes.count <= identifierBytesMax && bytes.allSatisfy(isIdentifierByte)
        }
    }

    static func isIdentifierByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-"), UInt8(ascii: "/"),
             UInt8(ascii: "@"), UInt8(ascii: "#"):
            true
        default:
            false
        }
    }
}

/// A request whose canonical encoding identifies it for idempotency.
///
/// The fingerprint of a write is SHA-256 over the canonical JSON (sorted keys) of
/// `{"actor":{…},"operation":operationName,"request":…}`. Two writes with the same decisionID are
/// the same decision only when their fingerprints are equal.
public protocol FingerprintedRequest: Encodable, Sendable {
    /// A stable name for this kind of request (e.g. `ledger.transfer`). Part of the fingerprint:
    /// renaming it makes old decisions conflict with new requests.
    static var operationName: String { get }
}

/// The outcome of a write: committed now, or the stored result of an earlier identical decision.
public struct WriteOutcome<Result> {
    public enum Kind: String, Sendable, Hashable {
        /// This call wrote, and its changes are durable.
        case committed
        /// An earlier write with the same decisionID and request did the work; nothing was written.
        case replayed
    }

    public let kind: Kind
    public let result: Result
    /// The sequence number of the last audit record the write appended (for a replay: of the
    /// original write; for an incident retry recognised by its report id, transition, responseID
    /// or refund outcome, the record of that change). Nil when the write changed nothing.
    public let auditSeq: UInt64?
    /// For writes with a decisionID: the canonical bytes of the result as stored with the
    /// decision. A replay returns exactly these bytes.
    public let storedResult: [UInt8]?

    public var isReplay: Bool { kind == .replayed }
}

extension WriteOutcome: Sendable where Result: Sendable {}
