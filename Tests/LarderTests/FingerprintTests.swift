import Crypto
import Foundation
import Larder
import LarderStorage
import LarderTesting
import Testing

/// Decision fingerprints over RFC 8785 canonical JSON (docs/FORMAT.md section 6): the encoder
/// against the RFC's own examples and against V8 (whose `JSON.stringify` RFC 8785 is defined by),
/// and decisions fingerprinted the earlier way (Foundation's `JSONEncoder`) still replaying.
@Suite("Fingerprints")
struct FingerprintTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Any JSON value, decoded from text and encoded again through `Encodable`.
    enum JSONValue: Codable, Equatable {
        case null
        case bool(Bool)
        case number(Double)
        case string(String)
        case array([JSONValue])
        case object([String: JSONValue])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() { self = .null }
            else if let value = try? container.decode(Bool.self) { self = .bool(value) }
            else if let value = try? container.decode(Double.self) { self = .number(value) }
            else if let value = try? container.decode(String.self) { self = .string(value) }
            else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
            else { self = .object(try container.decode([String: JSONValue].self)) }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .null: try container.encodeNil()
            case .bool(let value): try container.encode(value)
            case .number(let value): try container.encode(value)
            case .string(let value): try container.encode(value)
            case .array(let value): try container.encode(value)
            case .object(let value): try container.encode(value)
            }
        }
    }

    static func canonical<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try JCS.encode(value), as: UTF8.self)
    }

    /// RFC 8785 appendix B: IEEE 754 doubles (as bit patterns) and their canonical text.
    @Test(arguments: [
        (0x0000_0000_0000_0000, "0"), (0x8000_0000_0000_0000, "0"), (0x0000_0000_0000_0001, "5e-324"),
        (0x8000_0000_0000_0001, "-5e-324"), (0x7FEF_FFFF_FFFF_FFFF, "1.7976931348623157e+308"),
        (0xFFEF_FFFF_FFFF_FFFF, "-1.7976931348623157e+308"), (0x4340_0000_0000_0000, "9007199254740992"),
        (0xC340_0000_0000_0000, "-9007199254740992"), (0x4430_0000_0000_0000, "295147905179352830000"),
        (0x44B5_2D02_C7E1_4AF5, "9.999999999999997e+22"), (0x44B5_2D02_C7E1_4AF6, "1e+23"),
        (0x44B5_2D02_C7E1_4AF7, "1.0000000000000001e+23"), (0x444B_1AE4_D6E2_EF4E, "999999999999999700000"),
        (0x444B_1AE4_D6E2_EF4F, "999999999999999900000"), (0x444B_1AE4_D6E2_EF50, "1e+21"),
        (0x3EB0_C6F7_A0B5_ED8C, "9.999999999999997e-7"), (0x3EB0_C6F7_A0B5_ED8D, "0.000001"),
        (0x41B3_DE43_5555_5553, "333333333.3333332"), (0x41B3_DE43_5555_5554, "333333333.33333325"),
        (0x41B3_DE43_5555_5555, "333333333.3333333"), (0x41B3_DE43_5555_5556, "333333333.3333334"),
        (0x41B3_DE43_5555_5557, "333333333.33333343"), (0xBECB_F647_612F_3696, "-0.0000033333333333333333"),
        (0x4314_3FF3_C1CB_0959, "1424953923781206.2"),
    ] as [(UInt64, String)])
    func numbersAreWrittenAsRFC8785Says(bits: UInt64, expected: String) throws {
        #expect(try Self.canonical(Double(bitPattern: bits)) == expected)
    }

    @Test func namesAreSortedByUTF16CodeUnits() throws {
        // RFC 8785 section 3.2.3's example.
        let object: [String: Int] = ["\u{20AC}": 1, "\r": 2, "\u{FB33}": 3, "1": 4, "\u{1F600}": 5, "\u{80}": 6, "\u{F6}": 7]
        #expect(try Self.canonical(object) == "{\"\\r\":2,\"1\":4,\"\u{80}\":6,\"\u{F6}\":7,\"\u{20AC}\":1,\"\u{1F600}\":5,\"\u{FB33}\":3}")
        #expect(JCS.precedes("\u{1F600}", "\u{E000}"))   // a surrogate pair sorts before U+E000…
        #expect(!JCS.precedes("\u{E000}", "\u{1F600}"))
        #expect(JCS.precedes("\u{D7FF}", "\u{1F600}"))   // …and after what lies below the surrogates
    }

    @Test func stringsAndLiteralsAreWrittenAsRFC8785Says() throws {
        #expect(try Self.canonical("\u{8}\u{C}\n\r\t\u{0}\u{1F}\u{7F}\"\\/€😀") == "\"\\b\\f\\n\\r\\t\\u0000\\u001f\u{7F}\\\"\\\\/€😀\"")
        #expect(try Self.canonical([true, false]) == "[true,false]")
        #expect(try Self.canonical([Int?.none, 1]) == "[null,1]")
        // Integers are exact (the one documented deviation from RFC 8785, beyond 2^53).
        #expect(try Self.canonical(UInt64.max) == "18446744073709551615")
        #expect(try Self.canonical(Int64.min) == "-9223372036854775808")
        #expect(throws: LarderError.self) { try JCS.encode(Double.nan) }
        #expect(throws: LarderError.self) { try JCS.encode([Double.infinity]) }
    }

    struct Vectors: Decodable {
        struct Case: Decodable {
            let input: String
            let canonical: String
        }

        let cases: [Case]
    }

    /// Random values written by Tools/jcs_vectors.js and canonicalized by V8 (JSON.stringify for
    /// strings and numbers, names sorted by UTF-16 code units): nested objects, names with
    /// controls, quotes and characters beyond U+FFFF, doubles from random bit patterns.
    @Test func randomValuesMatchV8() throws {
        let data = try Data(contentsOf: Self.repository.appendingPathComponent("Tests/Vectors/jcs.json"))
        let vectors = try JSONDecoder().decode(Vectors.self, from: data)
        #expect(vectors.cases.count >= 300)
        for (index, vector) in vectors.cases.enumerated() {
            let value = try JSONDecoder().decode(JSONValue.self, from: Data(vector.input.utf8))
            let canonical = try Self.canonical(value)
            #expect(canonical == vector.canonical, "vector \(index): \(vector.input)")
        }
    }

    // MARK: Fingerprints

    /// The documented envelope, spelled out here rather than taken from Larder.
    struct Envelope<Body: Encodable>: Encodable {
        let actor: ActorIdentity
        let operation: String
        let request: Body
    }

    @Test func aFingerprintIsTheSHA256OfTheCanonicalEnvelope() throws {
        let actor = ActorIdentity(id: "am-17", role: .accountManager)
        let request = NoteRequest(order: "4411", amount: 500)
        let text = "{\"actor\":{\"id\":\"am-17\",\"role\":\"accountManager\"},\"operation\":\"test.note\",\"request\":{\"amount\":500,\"order\":\"4411\"}}"
        #expect(try Self.canonical(Envelope(actor: actor, operation: NoteRequest.operationName, request: request)) == text)
        #expect(try Fingerprint.of(actor: actor, request: request, form: .jcs) == Array(SHA256.hash(data: Array(text.utf8))))
    }

    /// How decisions were fingerprinted before RFC 8785: Foundation's JSONEncoder, sorted keys,
    /// slashes unescaped, dates as seconds since 1970 (docs/FORMAT.md section 6).
    static func legacyFingerprint<Q: FingerprintedRequest>(actor: ActorIdentity, request: Q) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .secondsSince1970
        let json = try encoder.encode(Envelope(actor: actor, operation: Q.operationName, request: request))
        return Array(SHA256.hash(data: json))
    }

    /// A decision record of version 1 as the code before RFC 8785 wrote it (docs/FORMAT.md).
    static func versionOneRecord(fingerprint: [UInt8], timeMicros: Int64, auditSeq: UInt64, operation: String,
                                 result: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [1] + fingerprint
        bytes += withUnsafeBytes(of: UInt64(bitPattern: timeMicros).bigEndian, Array.init)
        bytes += withUnsafeBytes(of: auditSeq.bigEndian, Array.init)
        bytes += withUnsafeBytes(of: UInt32(operation.utf8.count).bigEndian, Array.init) + Array(operation.utf8)
        bytes += withUnsafeBytes(of: UInt32(result.count).bigEndian, Array.init) + result
        return bytes
    }

    /// A request whose two encodings differ: Foundation writes 1e-07 where RFC 8785 writes 1e-7,
    /// and sorts names by code point where RFC 8785 sorts by UTF-16 code units.
    struct ScaleRequest: FingerprintedRequest {
        static let operationName = "test.scale"
        var order: String
        var factor: Double
        var tags: [String: Int]
    }

    @Test func aDecisionFingerprintedTheOldWayStillReplays() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        let request = ScaleRequest(order: "4411", factor: 1e-7, tags: ["\u{E000}": 1, "\u{1F600}": 2])
        let actor = ActorIdentity(id: "am-17", role: .accountManager)
        let legacy = try Self.legacyFingerprint(actor: actor, request: request)
        #expect(legacy != (try Fingerprint.of(actor: actor, request: request, form: .jcs)))
        #expect(legacy == (try Fingerprint.of(actor: actor, request: request, form: .foundationJSON)))

        let note = NoteRequest(order: "4411", amount: 500)
        let first = try store.write(.test("req-1", decisionID: "d-old"), request: request) { txn in try txn.note(note) }
        let stored = try #require(try store.read { view in try view.decisions.decision(id: "d-old") })
        #expect(stored.fingerprintForm == .jcs)
        // Rewrite it as the earlier code stored it: version 1, the Foundation fingerprint, and
        // the result as JSONEncoder wrote it.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let oldResult = Array(try encoder.encode(first.result))
        let old = Self.versionOneRecord(fingerprint: legacy, timeMicros: stored.timeMicros, auditSeq: stored.auditSeq,
                                        operation: stored.operation, result: oldResult)
        try store.write(.test("req-rewrite")) { txn in
            try txn.rawPutForTesting(table: "decisions", key: "d-old".encodedKey, value: old)
            try txn.appendAudit(AuditDraft(event: "TEST_DECISION_REWRITTEN", refs: [], payload: "{}"))
        }
        let rewritten = try #require(try store.read { view in try view.decisions.decision(id: "d-old") })
        #expect(rewritten.fingerprintForm == .foundationJSON)
        #expect(rewritten.fingerprint == legacy)

        let count = try store.auditCount()
        let replay = try store.write(.test("req-2", decisionID: "d-old"), request: request) { txn in
            try txn.note(NoteRequest(order: "other", amount: 1))
        }
        #expect(replay.kind == .replayed)
        #expect(replay.result == first.result)
        #expect(replay.storedResult == oldResult)
        #expect(try store.auditCount() == count)

        // A different request under the old decision is still a conflict.
        var other = request
        other.factor = 2e-7
        let error = try #require(throws: LarderError.self) {
            try store.write(.test("req-3", decisionID: "d-old"), request: other) { txn in try txn.note(note) }
        }
        #expect(error.code == .conflict)
        #expect(try store.auditCount() == count)
    }
}
