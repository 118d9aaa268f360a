import Foundation
import Larder
@testable import LarderFleet
import LarderTesting
import Testing

/// `larder fleet verify`: whatever is changed in PostgreSQL, the first bad row is named.
extension FleetTests {
    /// A database with two shipped boxes; `damage` then changes it behind the shipper's back.
    func verifyAfter(_ damage: String, seed: UInt64) async throws -> (status: Int32, out: String, head: UInt64) {
        var random = seeded(seed)
        let cluster = FleetDatabase.cluster
        let database = try await cluster.createDatabase()
        let url = cluster.url(database: database)
        let damaged = try TestBox(), healthy = try TestBox()
        try appendRecords(damaged.store, count: 300, random: &random, awkward: true)
        try appendRecords(healthy.store, count: 50, random: &random)
        let head = try damaged.head, healthyHead = try healthy.head
        _ = try await shipper(damaged, database: database, boxID: "k-damaged").run()
        _ = try await shipper(healthy, database: database, boxID: "k-healthy").run()
        #expect(await larder(["fleet", "verify", "--postgres", url]).status == 0)
        try await cluster.execute(damage, database: database)
        let result = await larder(["fleet", "verify", "--postgres", url])
        #expect(result.out.contains("intact: box k-healthy: \(healthyHead) rows"), "\(result.out)")
        #expect(result.out.contains("1 broken"), "\(result.out)")
        return (result.status, result.out, head)
    }

    @Test func anAlteredColumnIsCaughtNamingTheFirstBadRow() async throws {
        let result = try await verifyAfter("UPDATE larder_audit SET event = 'OP_REFUND_ISSUED' WHERE box_id = 'k-damaged' AND seq IN (57, 90)", seed: 30)
        #expect(result.status == 1)
        #expect(result.out.contains("BROKEN: box k-damaged: first bad row at seq 57: column event is \"OP_REFUND_ISSUED\""), "\(result.out)")
    }

    @Test func alteredRecordBytesBreakTheLeafHash() async throws {
        let result = try await verifyAfter(
            "UPDATE larder_audit SET record_bytes = set_byte(record_bytes, 20, 65) WHERE box_id = 'k-damaged' AND seq = 10", seed: 31)
        #expect(result.status == 1)
        #expect(result.out.contains("first bad row at seq 10: leaf_hash does not match record_bytes"), "\(result.out)")
    }

    @Test func aRecomputedLeafStillBreaksTheChain() async throws {
        // Someone who knows the format rewrites the bytes and the leaf hash, but not every later chain hash.
        let result = try await verifyAfter("""
            UPDATE larder_audit SET record_bytes = set_byte(record_bytes, 20, 65),
                leaf_hash = sha256('\\x00'::bytea || set_byte(record_bytes, 20, 65))
            WHERE box_id = 'k-damaged' AND seq = 11
            """, seed: 32)
        #expect(result.status == 1)
        #expect(result.out.contains("first bad row at seq 11: chain_hash does not follow"), "\(result.out)")
    }

    @Test func aDeletedRowIsAGap() async throws {
        let result = try await verifyAfter("DELETE FROM larder_audit WHERE box_id = 'k-damaged' AND seq = 120", seed: 33)
        #expect(result.status == 1)
        #expect(result.out.contains("first bad row at seq 120: row missing: the rows jump from seq 119 to seq 121"), "\(result.out)")
    }

    @Test func anAlteredPayloadIsCaught() async throws {
        // The first plain payload from seq 200 on (amounts are never negative).
        let result = try await verifyAfter("""
            UPDATE larder_audit SET payload = jsonb_set(payload, '{amount}', '-1') WHERE box_id = 'k-damaged' AND seq =
                (SELECT min(seq) FROM larder_audit WHERE box_id = 'k-damaged' AND seq >= 200 AND payload ? 'amount')
            """, seed: 34)
        #expect(result.status == 1)
        #expect(result.out.contains(": column payload is {"), "\(result.out)")
        #expect(result.out.contains("\"amount\": -1"), "\(result.out)")
    }

    @Test func aTruncatedTailDisagreesWithLarderBoxes() async throws {
        let result = try await verifyAfter("DELETE FROM larder_audit WHERE box_id = 'k-damaged' AND seq > 290", seed: 35)
        #expect(result.status == 1)
        #expect(result.out.contains("the rows end at seq 290"), "\(result.out)")
        #expect(result.out.contains("larder_boxes records seq \(result.head)"), "\(result.out)")
    }

    @Test func verifyNamesAnUnknownBoxAndReportsJSON() async throws {
        var random = seeded(36)
        let cluster = FleetDatabase.cluster
        let database = try await cluster.createDatabase()
        let url = cluster.url(database: database)
        let box = try TestBox()
        try appendRecords(box.store, count: 20, random: &random)
        let head = try box.head
        _ = try await shipper(box, database: database, boxID: "k-json").run()
        let unknown = await larder(["fleet", "verify", "--postgres", url, "--box-id", "k-nope"])
        #expect(unknown.status == 4, "\(unknown.err)")
        let json = await larder(["fleet", "verify", "--postgres", url, "--box-id", "k-json", "--json"])
        #expect(json.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        #expect(object["intact"] as? Bool == true)
        #expect(object["rows_checked"] as? Int == Int(head))
        let empty = try await cluster.createDatabase()
        #expect(await larder(["fleet", "verify", "--postgres", cluster.url(database: empty)]).status == 4)
    }
}
