import Foundation
import Larder
import LarderTesting
import Testing

/// The write path's types write their RFC 8785 bytes by hand (`JCSDirect`); over random values
/// those bytes must be exactly what the generic encoder writes through `Encodable`, or
/// fingerprints and stored results would change with the speed-up.
@Suite("JCS direct writers")
struct JCSDirectTests {
    static let seed = SeededGenerator.seedFromEnvironment(default: 8785)

    /// Text with the characters RFC 8785 escapes or treats specially (quotes, backslashes,
    /// control characters, non-ASCII, a character above U+FFFF), or a plain identifier.
    static func text(_ random: inout SeededGenerator) -> String {
        let pieces = ["a", "Z", "9", ".", "-", "\"", "\\", "\u{0}", "\u{8}", "\u{c}", "\n", "\u{1f}", "é", "€", "😀", "\u{7f}", "/"]
        let count = Int.random(in: 0...10, using: &random)
        if Bool.random(using: &random) { return "id-\(UInt32.random(in: 0...UInt32.max, using: &random))" }
        return (0..<count).map { _ in pieces.randomElement(using: &random)! }.joined()
    }

    static func refs(_ random: inout SeededGenerator) -> [CorrelationRef] {
        (0..<Int.random(in: 0...3, using: &random)).map { _ in CorrelationRef(text(&random), text(&random)) }
    }

    static func optional<T>(_ random: inout SeededGenerator, _ make: (inout SeededGenerator) -> T) -> T? {
        Bool.random(using: &random) ? make(&random) : nil
    }

    static func amount(_ random: inout SeededGenerator) -> UInt64 {
        [0, 1, 9, 10, 1 << 53, (1 << 53) + 1, UInt64.max, UInt64.random(in: 0...UInt64.max, using: &random)].randomElement(using: &random)!
    }

    static func request(_ random: inout SeededGenerator) -> TransferRequest {
        var request = TransferRequest.transfer(id: text(&random), debit: "", credit: "", amount: 0)
        request.kind = [.single, .pending, .postPending, .voidPending, .reversal].randomElement(using: &random)!
        request.debitAccount = optional(&random, text)
        request.creditAccount = optional(&random, text)
        request.amount = optional(&random, amount)
        request.code = UInt16.random(in: 0...UInt16.max, using: &random)
        request.refs = refs(&random)
        request.target = optional(&random, text)
        return request
    }

    /// A stored transfer, decoded from JSON (its initializer is the store's).
    static func transfer(_ random: inout SeededGenerator) throws -> Transfer {
        var object: [String: Any] = [
            "id": text(&random), "kind": ["single", "pending", "postPending", "voidPending", "reversal"].randomElement(using: &random)!,
            "debitAccount": text(&random), "creditAccount": text(&random), "amount": amount(&random), "ledger": text(&random),
            "code": UInt16.random(in: 0...UInt16.max, using: &random),
            "refs": refs(&random).map { ["kind": $0.kind, "id": $0.id] },
            "timeMicros": Int64.random(in: Int64.min...Int64.max, using: &random),
            "auditSeq": UInt64.random(in: 0...UInt64.max, using: &random),
        ]
        if Bool.random(using: &random) { object["target"] = text(&random) }
        let data = try JSONSerialization.data(withJSONObject: object)
        return try JSONDecoder().decode(Transfer.self, from: data)
    }

    static func expectSame<T: Encodable>(_ value: T, _ label: String) throws {
        let direct = try JCS.encode(value)
        let reference = try JCS.encodeThroughEncodable(value)
        #expect(direct == reference,
                "seed \(seed), \(label):\n  direct:    \(String(decoding: direct, as: UTF8.self))\n  Encodable: \(String(decoding: reference, as: UTF8.self))")
    }

    @Test func directBytesAreTheEncodableBytes() throws {
        var random = SeededGenerator(seed: Self.seed)
        for index in 0..<300 {
            let request = Self.request(&random)
            try Self.expectSame(request, "request \(index)")
            let actor = ActorIdentity(id: Self.text(&random), role: [.accountManager, .admin, .system].randomElement(using: &random)!)
            try Self.expectSame(FingerprintEnvelope(actor: actor, operation: TransferRequest.operationName, request: request),
                                "envelope \(index)")
            let transfer = try Self.transfer(&random)
            try Self.expectSame(transfer, "transfer \(index)")
            try Self.expectSame(LedgerOutcome.created(transfer), "created \(index)")
            try Self.expectSame(LedgerOutcome.exists(transfer), "exists \(index)")
            try Self.expectSame(Self.refs(&random), "refs \(index)")
        }
    }

    /// The fingerprint of a known request is pinned: it must not move with the encoder.
    @Test func aKnownRequestKeepsItsCanonicalText() throws {
        let request = TransferRequest.transfer(id: "t-1", debit: "a", credit: "b", amount: 5, refs: [.order("4411")])
        let text = String(decoding: try JCS.encode(request), as: UTF8.self)
        #expect(text == #"{"amount":5,"code":0,"creditAccount":"b","debitAccount":"a","id":"t-1","kind":"single","refs":[{"id":"4411","kind":"order"}]}"#)
        let outcome = String(decoding: try JCS.encode(LedgerOutcome.created(try Self.transfer(from: #"{"id":"t","kind":"reversal","debitAccount":"d","creditAccount":"c","amount":3,"ledger":"l","code":1,"refs":[],"target":"o","timeMicros":-5,"auditSeq":9}"#))), as: UTF8.self)
        #expect(outcome == #"{"created":{"_0":{"amount":3,"auditSeq":9,"code":1,"creditAccount":"c","debitAccount":"d","id":"t","kind":"reversal","ledger":"l","refs":[],"target":"o","timeMicros":-5}}}"#)
    }

    static func transfer(from json: String) throws -> Transfer {
        try JSONDecoder().decode(Transfer.self, from: Data(json.utf8))
    }
}
