import Larder
@testable import LarderFleet
import LarderTesting
import PostgresNIO
import Testing

/// How records become rows (COPY text, jsonb forms) and how rows are compared back, without a server.
@Suite("fleet columns")
struct FleetColumnsTests {
    @Test func copyTextEscapesWhatCOPYWouldReadOtherwise() {
        var writer = CopyTextWriter(capacity: 64)
        writer.text("a\tb\\c\nd\re")
        writer.text(nil)
        writer.text("nul\u{0}here")
        writer.integer(UInt64(42))
        writer.bytea([0x00, 0xAB, 0xFF])
        writer.endRow()
        #expect(String(decoding: writer.bytes, as: UTF8.self)
                == "a\\tb\\\\c\\nd\\re\t\\N\tnul\u{FFFD}here\t42\t\\\\x00abff\n")
    }

    @Test func aRowHasOneFieldPerColumn() throws {
        let temporary = try TemporaryStore()
        let context = WriteContext(actor: ActorIdentity(id: "am-1", role: .accountManager), requestID: "req-1", decisionID: nil)
        try temporary.store.write(context) { txn in
            _ = try txn.appendAudit(AuditDraft(event: "E", refs: [.order("1")], payload: #"{"a":"\t"}"#))
        }
        let entry = try #require(try temporary.store.read { view in try view.audit.record(seq: 1) })
        var writer = CopyTextWriter(capacity: 512)
        writer.row(boxID: "box", entry: entry)
        let line = String(decoding: writer.bytes, as: UTF8.self)
        #expect(line.hasSuffix("\n"))
        #expect(line.dropLast().split(separator: "\t", omittingEmptySubsequences: false).count == FleetColumns.auditColumns.count)
    }

    @Test func refsAreStoredAsJSONAndReadBackInJSONBForm() {
        let refs: [CorrelationRef] = [.order("4411"), .customer("c\"1")]
        #expect(FleetColumns.refsJSON(refs) == #"[{"kind":"order","id":"4411"},{"kind":"customer","id":"c\"1"}]"#)
        #expect(FleetColumns.refsJSONBText(refs) == #"[{"id": "4411", "kind": "order"}, {"id": "c\"1", "kind": "customer"}]"#)
        #expect(FleetColumns.refsJSONBText([]) == "[]")
    }

    @Test func theJSONBPredicateRefusesWhatJSONBCannotStore() {
        #expect(FleetColumns.isJSONBSafe(#"{"a":1}"#))
        #expect(FleetColumns.isJSONBSafe(#"{"e":"\ud83c\udf6e","x":"\u00e9"}"#))
        #expect(FleetColumns.isJSONBSafe(#"{"n":123456789012345678901234567890,"f":1.5E-7}"#))
        #expect(!FleetColumns.isJSONBSafe(#"{"a":"\u0000"}"#))
        #expect(!FleetColumns.isJSONBSafe(#"{"a":"\ud800"}"#))
        #expect(!FleetColumns.isJSONBSafe(#"{"a":"\udc00"}"#))
        #expect(!FleetColumns.isJSONBSafe(#"{"a":"\ud800x"}"#))
        #expect(FleetColumns.isJSONBSafe(#"{"a":1e5000,"b":1e-999}"#))
        #expect(!FleetColumns.isJSONBSafe(#"{"a":1e200000}"#))
        #expect(!FleetColumns.isJSONBSafe(#"{"a":1e-20000}"#))
        #expect(!FleetColumns.isJSONBSafe("[1]"))
        #expect(!FleetColumns.isJSONBSafe("{"))
    }

    @Test func jsonEqualityComparesMeaning() {
        #expect(JSONEquality.same(#"{"a":1,"b":[1.50,true]}"#, #"{"b": [1.5, true], "a": 1}"#))
        #expect(JSONEquality.same(#"{"m":1e2,"z":-0}"#, #"{"m": 100, "z": 0}"#))
        #expect(JSONEquality.same(#"{"a":1,"a":2}"#, #"{"a": 2}"#))
        #expect(JSONEquality.same(#"{"s":"\u00e9\ud83c\udf6e\n"}"#, "{\"s\": \"é🍮\\n\"}"))
        #expect(!JSONEquality.same(#"{"a":1}"#, #"{"a":2}"#))
        #expect(!JSONEquality.same(#"{"a":true}"#, #"{"a":1}"#))
        #expect(!JSONEquality.same(#"{"a":null}"#, #"{}"#))
        #expect(!JSONEquality.same(#"{"a":"1"}"#, #"{"a":1}"#))
        #expect(!JSONEquality.same(#"{"a":[1,2]}"#, #"{"a":[2,1]}"#))
        #expect(!JSONEquality.same("{", "{"+"}"))
    }

    @Test func aDecodedColumnThatDisagreesIsNamed() throws {
        let record = AuditRecord(seq: 1, timeMicros: 1_800_000_000_000_000, event: "E", actor: ActorIdentity(id: "a", role: .system),
                                 requestID: "r", traceID: nil, decisionID: "d", refs: [.order("1")], failureCategory: nil,
                                 responseType: nil, reasonCode: nil, payload: #"{"k":1}"#)
        let good = StoredColumns(time: record.timeMicros, event: "E", actorID: "a", actorRole: "system", requestID: "r", traceID: nil,
                                 decisionID: "d", refs: #"[{"id": "1", "kind": "order"}]"#, failureCategory: nil, responseType: nil,
                                 reasonCode: nil, payload: #"{"k": 1}"#)
        #expect(RowChain.mismatch(record, good) == nil)
        let badDecision = StoredColumns(time: good.time, event: "E", actorID: "a", actorRole: "system", requestID: "r", traceID: nil,
                                        decisionID: nil, refs: good.refs, failureCategory: nil, responseType: nil, reasonCode: nil,
                                        payload: good.payload)
        #expect(RowChain.mismatch(record, badDecision) == #"column decision_id is NULL but record_bytes say "d""#)
        let badTime = StoredColumns(time: good.time + 1, event: "E", actorID: "a", actorRole: "system", requestID: "r", traceID: nil,
                                    decisionID: "d", refs: good.refs, failureCategory: nil, responseType: nil, reasonCode: nil,
                                    payload: good.payload)
        #expect(RowChain.mismatch(record, badTime)?.hasPrefix("column time is") == true)
    }
}

/// Connection URLs, parsed as libpq reads them.
@Suite("fleet destination")
struct FleetDestinationTests {
    @Test func aFullURL() throws {
        let destination = try FleetDestination(url: "postgresql://box%207:s%40cret@db.example:6432/fleet?sslmode=verify-full&connect_timeout=5&application_name=k7",
                                               environment: [:])
        #expect(destination.user == "box 7")
        #expect(destination.password == "s@cret")
        #expect(destination.host == "db.example")
        #expect(destination.port == 6432)
        #expect(destination.database == "fleet")
        #expect(destination.tlsMode == .verifyFull)
        #expect(destination.connectTimeoutSeconds == 5)
        #expect(destination.redacted == "postgres://box%207@db.example:6432/fleet")
        #expect(!destination.redacted.contains("cret"))
    }

    @Test func defaultsAndTheEnvironmentPassword() throws {
        let destination = try FleetDestination(url: "postgres://larder@127.0.0.1", environment: ["PGPASSWORD": "from-env"])
        #expect(destination.port == 5432)
        #expect(destination.database == "larder")
        #expect(destination.password == "from-env")
        #expect(destination.tlsMode == .prefer)
        _ = try destination.configuration()
    }

    @Test func aUnixSocketDirectory() throws {
        let destination = try FleetDestination(url: "postgres://larder@/fleet?host=/run/postgresql", environment: [:])
        #expect(destination.host == nil)
        let configuration = try destination.configuration()
        #expect(configuration.unixSocketPath == "/run/postgresql/.s.PGSQL.5432")
    }

    @Test(arguments: ["http://x@y/z", "postgres://x@y/z?sslmode=maybe", "postgres://y/z", "postgres://x@/z",
                      "postgres://x@y/z?bogus=1", "postgres://x@y/z?connect_timeout=0", "postgres://x@y/a/b",
                      "postgres://x@y/z?sslcert=/a.pem"])
    func badURLsAreValidationErrors(_ url: String) {
        #expect(throws: LarderError.self) { try FleetDestination(url: url, environment: [:]) }
    }

    @Test func aMissingCertificateFileIsAnErrorBeforeConnecting() throws {
        let destination = try FleetDestination(url: "postgres://x@y/z?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem", environment: [:])
        #expect(throws: LarderError.self) { try destination.configuration() }
    }
}
