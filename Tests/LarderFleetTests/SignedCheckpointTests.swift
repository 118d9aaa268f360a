import Foundation
import Larder
@testable import LarderFleet
import LarderTesting
import Testing

/// The checkpoints a box signs itself (`CHECKPOINT_SIGNED` records) in the fleet: shipped with
/// `larder ship --verifier-key`, checked by `fleet verify` from `larder_checkpoints` and from the
/// records themselves, and what they catch that the hash chain alone cannot: a history rewritten
/// in the database with every later chain hash recomputed.
extension FleetTests {
    /// A box whose log holds three checkpoints signed with `key`; their tree sizes.
    func boxWithSignedCheckpoints(_ key: NoteSigningKey, random: inout SeededGenerator) throws -> (TestBox, [UInt64]) {
        let box = try TestBox()
        var sizes: [UInt64] = []
        for count in [120, 80, 30] {
            try appendRecords(box.store, count: count, random: &random)
            sizes.append(try box.store.signCheckpoint(with: key).checkpoint.treeSize)
        }
        try appendRecords(box.store, count: 15, random: &random)
        box.close()
        return (box, sizes)
    }

    /// Replaces box `target`'s rows `range` with box `source`'s and recomputes every later chain
    /// hash and the box's head, as someone with write access to the database and knowledge of the
    /// format would: the chain in the database is intact afterwards.
    func rewriteHistory(_ target: String, _ range: ClosedRange<UInt64>, from source: String, database: String) async throws {
        let cluster = FleetDatabase.cluster
        let columns = "seq, time, event, actor_id, actor_role, request_id, trace_id, decision_id, refs, failure_category, "
            + "response_type, reason_code, payload, record_bytes, leaf_hash, chain_hash"
        try await cluster.execute("""
            DELETE FROM larder_audit WHERE box_id = '\(target)' AND seq BETWEEN \(range.lowerBound) AND \(range.upperBound);
            INSERT INTO larder_audit (box_id, \(columns)) SELECT '\(target)', \(columns) FROM larder_audit
                WHERE box_id = '\(source)' AND seq BETWEEN \(range.lowerBound) AND \(range.upperBound)
            """, database: database)
        let rows = try await cluster.strings("""
            SELECT seq || ' ' || encode(leaf_hash, 'hex') || ' ' || encode(chain_hash, 'hex') FROM larder_audit
            WHERE box_id = '\(target)' AND seq >= \(range.lowerBound - 1) ORDER BY seq
            """, database: database).compactMap { $0?.split(separator: " ").map(String.init) }
        var previous = try #require([UInt8](hexString: rows[0][2]))
        var values: [String] = []
        for row in rows.dropFirst() {
            previous = AuditChain.chainHash(previous: previous, leaf: try #require([UInt8](hexString: row[1])))
            values.append("(\(row[0]), '\\x\(previous.hexString)'::bytea)")
        }
        try await cluster.execute("""
            UPDATE larder_audit a SET chain_hash = v.chain FROM (VALUES \(values.joined(separator: ", "))) AS v(seq, chain)
            WHERE a.box_id = '\(target)' AND a.seq = v.seq
            """, database: database)
        try await cluster.execute("UPDATE larder_boxes SET last_chain_hash = '\\x\(previous.hexString)' WHERE box_id = '\(target)'",
                                  database: database)
    }

    @Test func aBoxsSignedCheckpointsShipAndCatchARewrittenHistory() async throws {
        var random = seeded(36)
        let database = try await FleetDatabase.cluster.createDatabase()
        let url = FleetDatabase.cluster.url(database: database)
        let key = try checkpointKey("kitchen-7")
        let (box, sizes) = try boxWithSignedCheckpoints(key, random: &random)
        // Another box, as long, whose records an attacker splices in.
        let other = try TestBox()
        try appendRecords(other.store, count: 260, random: &random)
        other.close()

        let ship = await larder(["ship", "--db", box.path, "--postgres", url, "--box-id", "k-signed", "--verifier-key", key.verifierKey.description])
        #expect(ship.status == 0, "\(ship.err)")
        #expect(try await FleetDatabase.cluster.strings("SELECT tree_size::text FROM larder_checkpoints ORDER BY tree_size", database: database)
                == sizes.map { String($0) })
        #expect(try await FleetDatabase.cluster.strings("SELECT verifier_key FROM larder_boxes", database: database) == [key.verifierKey.description])
        #expect(await larder(["ship", "--db", other.path, "--postgres", url, "--box-id", "k-other"]).status == 0)
        let intact = await larder(["fleet", "verify", "--postgres", url, "--box-id", "k-signed"])
        #expect(intact.status == 0)
        #expect(intact.out.contains("3 signed checkpoint(s) verified"), "\(intact.out)")

        // Rows 50…60 replaced, every later chain hash recomputed: the chain is intact, but the
        // first checkpoint the box signed after them names another root.
        try await rewriteHistory("k-signed", 50...60, from: "k-other", database: database)
        let rewritten = await larder(["fleet", "verify", "--postgres", url, "--box-id", "k-signed"])
        #expect(rewritten.status == 1)
        #expect(rewritten.out.contains("BROKEN: box k-signed: first bad row at seq \(sizes[0]): the Merkle root of seqs 1…\(sizes[0]) is"),
                "\(rewritten.out)")
        // larder_checkpoints emptied too: the CHECKPOINT_SIGNED record in the rows still says so.
        try await FleetDatabase.cluster.execute("DELETE FROM larder_checkpoints", database: database)
        let unlisted = await larder(["fleet", "verify", "--postgres", url, "--box-id", "k-signed"])
        #expect(unlisted.status == 1)
        #expect(unlisted.out.contains("first bad row at seq \(sizes[0] + 1): the checkpoint recorded at seq \(sizes[0] + 1): it names tree size \(sizes[0])"),
                "\(unlisted.out)")
    }

    /// A box shipped without its key: its CHECKPOINT_SIGNED records still ship as rows, and an
    /// auditor with the key verifies their signatures and roots from the rows alone.
    @Test func checkpointRecordsVerifyWithTheAuditorsKeyAlone() async throws {
        var random = seeded(37)
        let database = try await FleetDatabase.cluster.createDatabase()
        let url = FleetDatabase.cluster.url(database: database)
        let key = try checkpointKey("kitchen-8")
        let (box, _) = try boxWithSignedCheckpoints(key, random: &random)
        #expect(await larder(["ship", "--db", box.path, "--postgres", url, "--box-id", "k-plain"]).status == 0)
        #expect(try await FleetDatabase.cluster.integer("SELECT count(*) FROM larder_checkpoints", database: database) == 0)
        let unkeyed = await larder(["fleet", "verify", "--postgres", url])
        #expect(unkeyed.status == 0)
        #expect(unkeyed.out.contains("0 signed checkpoint(s) verified"), "\(unkeyed.out)")
        let keyed = await larder(["fleet", "verify", "--postgres", url, "--box-id", "k-plain", "--verifier-key", key.verifierKey.description])
        #expect(keyed.status == 0)
        #expect(keyed.out.contains("3 signed checkpoint(s) verified"), "\(keyed.out)")
        // A key of the same name that did not sign them verifies nothing, and breaks nothing.
        let stranger = try checkpointKey("kitchen-8", seedByte: 99).verifierKey.description
        let other = await larder(["fleet", "verify", "--postgres", url, "--box-id", "k-plain", "--verifier-key", stranger])
        #expect(other.status == 0)
        #expect(other.out.contains("0 signed checkpoint(s) verified"), "\(other.out)")
    }
}
