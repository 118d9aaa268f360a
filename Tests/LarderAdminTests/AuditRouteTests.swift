import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderStorage
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

/// `/v1/audit…`: queries, one record, export and verify.
@Suite("Audit routes")
struct AuditRouteTests {
    typealias Object = [String: Any]

    func records(_ response: TestResponse) throws -> [Object] {
        try #require(try response.json()["records"] as? [Object])
    }

    @Test func pagesBySequenceForwardAndBackwardWithACursor() async throws {
        let fixture = try AdminFixture()
        try fixture.seed(5)   // seqs 3...7 after the schema and policy records
        let first = try await fixture.request("/v1/audit?from_seq=2&limit=3", secret: fixture.auditSecret)
        #expect(first.status == .ok)
        #expect(try records(first).map { $0["seq"] as? Int } == [2, 3, 4])
        let cursor = try #require(try first.json()["next_cursor"] as? String)
        let second = try await fixture.request("/v1/audit?from_seq=2&limit=3&cursor=\(cursor)", secret: fixture.auditSecret)
        #expect(try records(second).map { $0["seq"] as? Int } == [5, 6, 7])
        let backward = try await fixture.request("/v1/audit?from_seq=4&direction=backward&limit=10", secret: fixture.auditSecret)
        #expect(try records(backward).map { $0["seq"] as? Int } == [4, 3, 2, 1])
        #expect(try backward.json()["next_cursor"] is NSNull)
    }

    @Test func findsByRequestIDAndByRef() async throws {
        let fixture = try AdminFixture()
        try fixture.seed(3, requestID: "req-a")
        try fixture.seed(2, requestID: "req-b")
        let byRequest = try await fixture.request("/v1/audit?request_id=req-b", secret: fixture.auditSecret)
        #expect(try records(byRequest).map { $0["request_id"] as? String } == ["req-b", "req-b"])
        let byRef = try await fixture.request("/v1/audit?ref=order:o-1", secret: fixture.auditSecret)
        let found = try records(byRef)
        // o-1 is in both seeds (indexes restart per call).
        #expect(found.count == 2)
        #expect(found.allSatisfy { ($0["refs"] as? [Object])?.first?["id"] as? String == "o-1" })
    }

    @Test func findsByTimeRange() async throws {
        let fixture = try AdminFixture()
        let start = fixture.clock.now().unixMicros
        for _ in 0..<4 {
            fixture.clock.advance(seconds: 60)
            try fixture.seed(1)
        }
        // Records at start+60 s … start+240 s; [start+90 s, start+210 s) holds the 2nd and 3rd.
        let since = RFC3339.format(start + 90_000_000), until = RFC3339.format(start + 210_000_000)
        let response = try await fixture.request("/v1/audit?since=\(since)&until=\(until)", secret: fixture.auditSecret)
        #expect(response.status == .ok)
        #expect(try records(response).map { $0["seq"] as? Int } == [4, 5])
        let onlySince = try await fixture.request("/v1/audit?since=\(since)", secret: fixture.auditSecret)
        #expect(onlySince.status == .badRequest)
    }

    @Test(arguments: ["/v1/audit", "/v1/audit?from_seq=1&request_id=r", "/v1/audit?ref=nocolon",
                      "/v1/audit?request_id=r&direction=backward", "/v1/audit?from_seq=x", "/v1/audit?from_seq=1&colour=red",
                      "/v1/audit?from_seq=1&from_seq=2", "/v1/audit?since=yesterday&until=today", "/v1/audit/abc",
                      "/v1/audit?from_seq=1&direction=sideways"])
    func malformedQueriesAre400(uri: String) async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request(uri, secret: fixture.auditSecret)
        #expect(response.status == .badRequest)
        #expect(try response.errorCode() == "VALIDATION_FAILED")
        #expect(try fixture.auditCount() == initialRecords, "a refused query records nothing")
    }

    /// An independent reader recomputes both hashes from the served record alone.
    @Test func aRecordCarriesWhatAVerifierNeeds() async throws {
        let fixture = try AdminFixture()
        try fixture.seed(2)
        var previous = [UInt8](repeating: 0, count: 32)
        for seq in 1...3 {
            let response = try await fixture.request("/v1/audit/\(seq)", secret: fixture.auditSecret)
            #expect(response.status == .ok)
            let record = try response.json()
            let hex = try #require(record["record_bytes"] as? String)
            let bytes = try #require([UInt8](hexString: hex))
            let leaf = Array(SHA256.hash(data: [0x00] + bytes))
            #expect(leaf.hexString == record["leaf_hash"] as? String)
            let chain = Array(SHA256.hash(data: [0x01] + previous + leaf))
            #expect(chain.hexString == record["chain_hash"] as? String)
            previous = chain
            #expect(record["seq"] as? Int == seq)
            #expect(try AuditRecord.decode(bytes).seq == UInt64(seq))
        }
        let second = try await fixture.request("/v1/audit/3", secret: fixture.auditSecret).json()
        #expect(second["event"] as? String == "ORDER_NOTED")
        #expect((second["actor"] as? Object)?["role"] as? String == "accountManager")
        #expect((second["payload"] as? Object)?["n"] as? Int == 0, "an object payload is embedded as JSON")
        #expect((second["time"] as? String)?.hasSuffix("Z") == true)
        for key in ["trace_id", "decision_id", "failure_category", "response_type", "reason_code"] {
            #expect(second[key] is NSNull, "\(key) is present as null")
        }
    }

    @Test func aMissingRecordIs404AndRecordsNothing() async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request("/v1/audit/99", secret: fixture.auditSecret)
        #expect(response.status == .notFound)
        #expect(try response.errorCode() == "NOT_FOUND")
        #expect(try fixture.auditCount() == initialRecords)
    }

    /// 5,000 records in 1,000-record snapshots: every line, in order, nothing else.
    @Test func exportStreamsEveryRecordInOrder() async throws {
        var configuration = AdminConfiguration()
        configuration.exportPageRecords = 1_000
        let fixture = try AdminFixture(options: Store.Options(durability: .fastUnsafe), configuration: configuration)
        try fixture.seed(5_000)
        let response = try await fixture.request("/v1/audit/export", secret: fixture.auditSecret)
        #expect(response.status == .ok)
        #expect(response.headers[.contentType]?.hasPrefix("application/x-ndjson") == true)
        let lines = response.text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.last == "", "the export ends with a newline")
        let seqs = try lines.dropLast().map { line -> Int in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? Object)
            return try #require(object["seq"] as? Int)
        }
        #expect(seqs == Array(1...5_002), "the store's two records and 5,000 seeded, not the export's own record")
        let access = try #require(try fixture.lastRecord())
        #expect(access.event == .forensicAccess)
        #expect(access.payload.contains("\"result_count\":5002"))

        let range = try await fixture.request("/v1/audit/export?from_seq=10&until_seq=12", secret: fixture.auditSecret)
        #expect(range.text.split(separator: "\n").count == 3)
    }

    @Test func verifyReportsAnIntactChainAndItsHead() async throws {
        let fixture = try AdminFixture()
        try fixture.seed(10)
        let head = try fixture.store.read { view in try view.audit.head() }
        let response = try await fixture.request("/v1/audit/verify", secret: fixture.auditSecret)
        #expect(response.status == .ok)
        let body = try response.json()
        #expect(body["intact"] as? Bool == true)
        #expect(body["records_checked"] as? Int == 12)
        #expect(body["head_seq"] as? Int == 12)
        #expect(body["head_hash"] as? String == head.chainHash.hexString)
        #expect(body["first_broken_seq"] is NSNull)
        #expect((body["problems"] as? [Any])?.isEmpty == true)
    }

    @Test func verifyReportsADamagedRecord() async throws {
        let fixture = try AdminFixture()
        try fixture.seed(3)
        // Flip one byte of record 3's stored bytes: its leaf hash no longer matches.
        let key = withUnsafeBytes(of: UInt64(3).bigEndian) { Array($0) }
        var value = try #require(try fixture.store.environmentForTesting.rawGet(table: "audit", key: key))
        value[20] ^= 0xff
        try fixture.store.environmentForTesting.rawPut(table: "audit", key: key, value: value)
        let body = try await fixture.request("/v1/audit/verify", secret: fixture.auditSecret).json()
        #expect(body["intact"] as? Bool == false)
        #expect(body["first_broken_seq"] as? Int == 3)
        #expect(((body["problems"] as? [Object])?.first?["kind"] as? String) != nil)
    }
}
