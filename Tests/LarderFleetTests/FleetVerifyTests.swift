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

    /// Signed checkpoints against the rows: a root changed in larder_checkpoints, a note whose
    /// signature no longer verifies, a checkpoint the box signed over another history (a fork
    /// its chain alone would not show, since the rows are intact), and one beyond the rows.
    @Test func checkpointsAreCheckedAgainstTheRowsAndTheBoxsKey() async throws {
        var random = seeded(35)
        let cluster = FleetDatabase.cluster
        let database = try await cluster.createDatabase()
        let url = cluster.url(database: database)
        let box = try TestBox()
        try appendRecords(box.store, count: 320, random: &random)
        let key = try checkpointKey()
        var options = ShipOptions(boxID: "k-sig")
        options.clock = .instant
        options.checkpoints = signedCheckpoints(key: key, every: 100)
        _ = try await Shipper(store: box.store, destination: try FleetDestination(url: url), options: options).run()
        #expect(await larder(["fleet", "verify", "--postgres", url]).status == 0)

        func verifyWith(_ statement: String, undo: String) async throws -> String {
            try await cluster.execute(statement, database: database)
            let result = await larder(["fleet", "verify", "--postgres", url])
            #expect(result.status == 1, "\(statement): \(result.out)")
            try await cluster.execute(undo, database: database)
            return result.out
        }
        let roots = try merkleRoots(box.store, sizes: [200, 250, 320])

        // The root column no longer says what the signed note says.
        let column = try await verifyWith("UPDATE larder_checkpoints SET root_hash = sha256(root_hash) WHERE tree_size = 200",
                                          undo: "UPDATE larder_checkpoints SET root_hash = '\\x\(roots[200]!.hexString)' WHERE tree_size = 200")
        #expect(column.contains("the checkpoint stored at tree size 200: its signed note says tree size 200 and root \(roots[200]!)"), "\(column)")

        // The note's root line rewritten: the signature no longer verifies.
        let note = try await cluster.strings("SELECT signed_note FROM larder_checkpoints WHERE tree_size = 100", database: database)[0] ?? ""
        let forged = note.replacingOccurrences(of: roots[200]!.base64, with: "")
            .replacingOccurrences(of: try #require(try merkleRoots(box.store, sizes: [100])[100]).base64, with: roots[200]!.base64)
        let signature = try await verifyWith("UPDATE larder_checkpoints SET signed_note = '\(forged)' WHERE tree_size = 100",
                                             undo: "UPDATE larder_checkpoints SET signed_note = '\(note)' WHERE tree_size = 100")
        #expect(signature.contains("the checkpoint stored at tree size 100: bad signature"), "\(signature)")

        // Signed by the box's key, but over another log of 250 records: the rows are not what it signed.
        var other = MerkleRootAccumulator()
        for index in 0..<250 { other.append(MerkleHash.leaf(Array("another history \(index)".utf8))) }
        let fork = try Checkpoint(origin: key.name, treeSize: 250, rootHash: other.root).signed(by: key)
        let forked = try await verifyWith("""
            INSERT INTO larder_checkpoints (box_id, tree_size, root_hash, signed_note)
            VALUES ('k-sig', 250, '\\x\(other.root.hexString)', '\(fork)')
            """, undo: "DELETE FROM larder_checkpoints WHERE tree_size = 250")
        #expect(forked.contains("BROKEN: box k-sig: first bad row at seq 250: the Merkle root of seqs 1…250 is \(roots[250]!), but the box signed a checkpoint of that tree with root \(other.root)"),
                "\(forked)")

        // A checkpoint of more records than the database holds (its tail was lost).
        let head = try box.head
        let ahead = try Checkpoint(origin: key.name, treeSize: head + 10, rootHash: other.root).signed(by: key)
        let beyond = try await verifyWith("""
            INSERT INTO larder_checkpoints (box_id, tree_size, root_hash, signed_note)
            VALUES ('k-sig', \(head + 10), '\\x\(other.root.hexString)', '\(ahead)')
            """, undo: "DELETE FROM larder_checkpoints WHERE tree_size = \(head + 10)")
        #expect(beyond.contains("first bad row at seq \(head + 1): the box signed a checkpoint of \(head + 10) records, but the rows end at seq \(head)"),
                "\(beyond)")
        #expect(await larder(["fleet", "verify", "--postgres", url]).status == 0)
    }
}
