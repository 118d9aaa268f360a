import Foundation
import Larder
@testable import LarderFleet
import LarderTesting
import PostgresNIO
import Testing

/// `larder ship`: two boxes, re-shipping, incremental shipping, refusals, racing shippers.
extension FleetTests {
    @Test func twoBoxesShipIntoOneDatabaseAndTheFleetIsQueriedAcrossThem() async throws {
        var random = seeded(15)
        let cluster = FleetDatabase.cluster
        let database = try await cluster.createDatabase()
        let url = cluster.url(database: database)
        let kitchen1 = try TestBox(), kitchen2 = try TestBox()
        try appendRecords(kitchen1.store, count: 420, random: &random, requestPrefix: "k1", awkward: true)
        try appendRecords(kitchen2.store, count: 180, random: &random, requestPrefix: "k2")
        // One request seen by both boxes.
        for box in [kitchen1, kitchen2] {
            try await box.store.write(WriteContext(actor: ActorIdentity(id: "dispatch", role: .system), requestID: "req-shared")) { txn in
                _ = try txn.appendAudit(AuditDraft(event: "ORDER_ROUTED", refs: [.order("4411")], payload: #"{"van":"R4"}"#))
            }
        }

        let head1 = try kitchen1.head, head2 = try kitchen2.head
        let heads = ["kitchen-1": try kitchen1.store.read { view in try view.audit.head() },
                     "kitchen-2": try kitchen2.store.read { view in try view.audit.head() }]
        kitchen1.close()
        kitchen2.close()
        let first = await larder(["ship", "--db", kitchen1.path, "--postgres", url, "--box-id", "kitchen-1", "--batch", "100"])
        #expect(first.status == 0, "\(first.err)")
        #expect(first.out.contains("shipped box kitchen-1"), "\(first.out)")
        #expect(first.out.contains("\(head1) record(s), seq 1…\(head1)"), "\(first.out)")
        #expect(first.err.contains("fleet schema migrated to version 1"), "\(first.err)")
        let second = await larder(["ship", "--db", kitchen2.path, "--postgres", url, "--box-id", "kitchen-2"])
        #expect(second.status == 0, "\(second.err)")

        #expect(try await shippedRows(database, box: "kitchen-1") == (Int64(head1), 1, Int64(head1)))
        #expect(try await shippedRows(database, box: "kitchen-2") == (Int64(head2), 1, Int64(head2)))
        let boxes = try await cluster.strings("SELECT box_id || ':' || last_seq FROM larder_boxes ORDER BY box_id", database: database)
        #expect(boxes == ["kitchen-1:\(head1)", "kitchen-2:\(head2)"])
        // Every box's newest row carries the box's own chain head.
        for (id, head) in heads {
            let stored = try await cluster.strings(
                "SELECT encode(chain_hash, 'hex') FROM larder_audit WHERE box_id = '\(id)' AND seq = \(head.seq)", database: database)
            #expect(stored == [head.chainHash.hexString])
        }
        // Columns PostgreSQL cannot hold as they are: NUL in text, payloads jsonb refuses.
        let nulEvents = try await cluster.integer("SELECT count(*) FROM larder_audit WHERE event = 'EVT_NUL' || chr(65533) || 'X'", database: database)
        #expect(nulEvents > 0)
        let nullPayloads = try await cluster.integer("SELECT count(*) FROM larder_audit WHERE payload IS NULL", database: database)
        #expect(nullPayloads > 0)
        let tabs = try await cluster.integer("SELECT count(*) FROM larder_audit WHERE event = 'EVT_TAB' || chr(9) || 'IN_NAME'", database: database)
        #expect(tabs > 0)

        let verify = await larder(["fleet", "verify", "--postgres", url])
        #expect(verify.status == 0, "\(verify.out)\(verify.err)")
        #expect(verify.out.contains("intact: box kitchen-1: \(head1) rows"))
        #expect(verify.out.contains("intact: box kitchen-2: \(head2) rows"))
        #expect(verify.out.contains("2 box(es), \(head1 + head2) rows checked"))

        let byRequest = await larder(["fleet", "audit", "--postgres", url, "--request-id", "req-shared", "--format", "ndjson"])
        #expect(byRequest.status == 0, "\(byRequest.err)")
        let lines = byRequest.out.split(separator: "\n")
        let objects = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objects.map { $0["box_id"] as? String } == ["kitchen-1", "kitchen-2"])
        #expect(objects.map { ($0["payload"] as? [String: Any])?["van"] as? String } == ["R4", "R4"])
        // The evidence travels with every row: its hashes recompute from its bytes.
        for object in objects {
            let hex = try #require(object["record_bytes"] as? String)
            let bytes = try #require([UInt8](hexString: hex))
            #expect(AuditChain.leafHash(bytes).hexString == object["leaf_hash"] as? String)
        }

        let byRef = await larder(["fleet", "audit", "--postgres", url, "--ref", "order:4411", "--box-id", "kitchen-2", "--format", "json"])
        #expect(byRef.status == 0, "\(byRef.err)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(byRef.out.utf8)) as? [String: Any])
        let records = try #require(object["records"] as? [[String: Any]])
        #expect(!records.isEmpty)
        #expect(records.allSatisfy { $0["box_id"] as? String == "kitchen-2" })
        #expect(records.contains { $0["event"] as? String == "ORDER_ROUTED" })

        let window = await larder(["fleet", "audit", "--postgres", url, "--since", "2000-01-01T00:00:00Z",
                                   "--until", "2100-01-01T00:00:00Z", "--limit", "5"])
        #expect(window.status == 0, "\(window.err)")
        #expect(window.out.hasPrefix("BOX"))
        #expect(window.out.contains("5 record(s)"))
        let empty = await larder(["fleet", "audit", "--postgres", url, "--since", "1990-01-01T00:00:00Z",
                                  "--until", "1991-01-01T00:00:00Z", "--format", "json"])
        #expect(empty.out.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"records":[]}"#)
    }

    @Test func reshippingIsIdempotentAndAnIncrementalShipSendsOnlyTheNewRecords() async throws {
        var random = seeded(16)
        let database = try await FleetDatabase.cluster.createDatabase()
        let box = try TestBox()
        try appendRecords(box.store, count: 300, random: &random)
        let head = try box.head
        let first = try await shipper(box, database: database, boxID: "k-7").run()
        #expect(first.recordsShipped == head)
        #expect(first.batches == Int((head + 99) / 100))
        #expect(first.startSeq == 0 && first.shippedSeq == head)

        let again = try await shipper(box, database: database, boxID: "k-7").run()
        #expect(again.recordsShipped == 0)
        #expect(again.batches == 0)
        #expect(again.startSeq == head && again.shippedSeq == head)
        #expect(try await shippedRows(database, box: "k-7") == (Int64(head), 1, Int64(head)))

        try appendRecords(box.store, count: 250, random: &random)
        let more = try await shipper(box, database: database, boxID: "k-7").run()
        #expect(more.startSeq == head)
        #expect(more.recordsShipped == 250)
        #expect(more.shippedSeq == head + 250 && more.headSeq == head + 250)
        #expect(try await shippedRows(database, box: "k-7") == (Int64(head + 250), 1, Int64(head + 250)))

        // The tool says the same, and the state file beside the store records it.
        box.close()
        let cli = await larder(["ship", "--db", box.path, "--postgres", FleetDatabase.cluster.url(database: database), "--box-id", "k-7"])
        #expect(cli.status == 0, "\(cli.err)")
        #expect(cli.out.contains("box k-7 is up to date"), "\(cli.out)")
        let state = try #require(try ShipState.load(storePath: box.path))
        #expect(state.shippedSeq == head + 250)
        #expect(state.boxID == "k-7")
        #expect(state.lastError == nil)
        #expect(!state.destination.contains("sslmode"))
    }

    @Test func aForkedBoxIsRefusedAndNothingIsInserted() async throws {
        var random = seeded(17)
        let database = try await FleetDatabase.cluster.createDatabase()
        let url = FleetDatabase.cluster.url(database: database)
        let original = try TestBox()
        try appendRecords(original.store, count: 200, random: &random)
        // The fork: a copy of the store that goes on writing a history of its own.
        let forkDirectory = try TemporaryDirectory(prefix: "larder-fork")
        try original.store.copy(to: forkDirectory.path("store"))
        try appendRecords(original.store, count: 50, random: &random, requestPrefix: "main")
        let fork = try Store.open(at: forkDirectory.path("store"))
        try appendRecords(fork, count: 60, random: &random, requestPrefix: "fork")
        fork.close()
        let head = try original.head
        original.close()

        #expect(await larder(["ship", "--db", original.path, "--postgres", url, "--box-id", "k-9"]).status == 0)
        let before = try await shippedRows(database, box: "k-9")
        #expect(before == (Int64(head), 1, Int64(head)))
        let refused = await larder(["ship", "--db", forkDirectory.path("store"), "--postgres", url, "--box-id", "k-9"])
        #expect(refused.status == 5, "\(refused.out)\(refused.err)")
        #expect(refused.err.contains("CONFLICT"))
        #expect(refused.err.contains("history differs from what was shipped"), "\(refused.err)")
        #expect(refused.err.contains("nothing was inserted"))
        #expect(try await shippedRows(database, box: "k-9") == before)
        let boxRow = try await FleetDatabase.cluster.strings("SELECT last_seq::text FROM larder_boxes WHERE box_id = 'k-9'", database: database)
        #expect(boxRow == ["\(head)"])
        // The original box still ships.
        try appendRecords(original.store, count: 10, random: &random, requestPrefix: "main2")
        original.close()
        #expect(await larder(["ship", "--db", original.path, "--postgres", url, "--box-id", "k-9"]).status == 0)
        #expect(try await shippedRows(database, box: "k-9") == (Int64(head + 10), 1, Int64(head + 10)))
    }

    @Test func aRestoredOlderBackupIsRefused() async throws {
        var random = seeded(18)
        let database = try await FleetDatabase.cluster.createDatabase()
        let url = FleetDatabase.cluster.url(database: database)
        let box = try TestBox()
        try appendRecords(box.store, count: 100, random: &random)
        let backup = try TemporaryDirectory(prefix: "larder-backup")
        try box.store.copy(to: backup.path("store"))
        try appendRecords(box.store, count: 100, random: &random)
        let head = try box.head
        box.close()
        #expect(await larder(["ship", "--db", box.path, "--postgres", url, "--box-id", "k-3"]).status == 0)

        let refused = await larder(["ship", "--db", backup.path("store"), "--postgres", url, "--box-id", "k-3"])
        #expect(refused.status == 5)
        #expect(refused.err.contains("behind what was shipped"), "\(refused.err)")
        #expect(try await shippedRows(database, box: "k-3") == (Int64(head), 1, Int64(head)))
    }

    @Test func anotherBoxsStoreUnderAShippedIDIsRefused() async throws {
        var random = seeded(19)
        let database = try await FleetDatabase.cluster.createDatabase()
        let one = try TestBox(), other = try TestBox()
        try appendRecords(one.store, count: 50, random: &random)
        try appendRecords(other.store, count: 80, random: &random)
        _ = try await shipper(one, database: database, boxID: "k-1").run()
        await #expect(throws: LarderError.self) { try await shipper(other, database: database, boxID: "k-1").run() }
        let head = try one.head
        #expect(try await shippedRows(database, box: "k-1") == (Int64(head), 1, Int64(head)))
    }

    @Test func rowsChangedBehindTheShipperStopIt() async throws {
        var random = seeded(20)
        let cluster = FleetDatabase.cluster
        let database = try await cluster.createDatabase()
        let box = try TestBox()
        try appendRecords(box.store, count: 40, random: &random)
        _ = try await shipper(box, database: database, boxID: "k-5").run()
        let head = try box.head
        try await cluster.execute("DELETE FROM larder_audit WHERE box_id = 'k-5' AND seq = \(head)", database: database)
        try appendRecords(box.store, count: 5, random: &random)
        do {
            _ = try await shipper(box, database: database, boxID: "k-5").run()
            Issue.record("shipping on top of a changed database must be refused")
        } catch let error as LarderError {
            #expect(error.code == .conflict)
            #expect(error.message.contains("changed outside larder ship"), "\(error.message)")
        }
        #expect(try await shippedRows(database, box: "k-5") == (Int64(head - 1), 1, Int64(head - 1)))
    }

    @Test func twoShippersOfOneBoxTakeTurns() async throws {
        var random = seeded(21)
        let database = try await FleetDatabase.cluster.createDatabase()
        let box = try TestBox()
        try appendRecords(box.store, count: 1_000, random: &random)
        let head = try box.head
        let a = try shipper(box, database: database, boxID: "k-2", batch: 50)
        let b = try shipper(box, database: database, boxID: "k-2", batch: 70)
        async let first = a.run()
        async let second = b.run()
        let (x, y) = try await (first, second)
        #expect(x.recordsShipped + y.recordsShipped == head)
        #expect(try await shippedRows(database, box: "k-2") == (Int64(head), 1, Int64(head)))
        #expect(await larder(["fleet", "verify", "--postgres", FleetDatabase.cluster.url(database: database)]).status == 0)
    }

    @Test func shippersRacingOnAnEmptyDatabaseMigrateItOnce() async throws {
        var random = seeded(22)
        let database = try await FleetDatabase.cluster.createDatabase()
        var boxes: [TestBox] = []
        for _ in 0..<4 {
            let box = try TestBox()
            try appendRecords(box.store, count: 30, random: &random)
            boxes.append(box)
        }
        try await withThrowingTaskGroup(of: ShipSummary.self) { group in
            for (index, box) in boxes.enumerated() {
                let shipper = try shipper(box, database: database, boxID: "race-\(index)")
                group.addTask { try await shipper.run() }
            }
            for try await summary in group { #expect(summary.recordsShipped == summary.headSeq) }
        }
        let versions = try await FleetDatabase.cluster.strings("SELECT version::text FROM larder_schema", database: database)
        #expect(versions == ["1"])
    }

    @Test func aNewerFleetSchemaIsRefused() async throws {
        var random = seeded(23)
        let cluster = FleetDatabase.cluster
        let database = try await cluster.createDatabase()
        let url = cluster.url(database: database)
        #expect(await larder(["fleet", "migrate", "--postgres", url]).status == 0)
        try await cluster.execute("INSERT INTO larder_schema (version) VALUES (2)", database: database)
        let box = try TestBox()
        try appendRecords(box.store, count: 3, random: &random)
        box.close()
        let refused = await larder(["ship", "--db", box.path, "--postgres", url, "--box-id", "k-1"])
        #expect(refused.status == 9, "\(refused.err)")
        #expect(refused.err.contains("schema version 2"), "\(refused.err)")
    }

    @Test func boxRolesWithInsertOnlyRightsShipTheirOwnBoxAndCannotRewriteHistory() async throws {
        var random = seeded(24)
        let cluster = FleetDatabase.cluster
        let database = try await cluster.createDatabase()
        // The roles of docs/OPERATIONS.md ("Running a fleet"), with names unique to this database
        // (roles are shared by the whole cluster).
        #expect(await larder(["fleet", "migrate", "--postgres", cluster.url(database: database)]).status == 0)
        let suffix = String(database.suffix(8))
        let boxes = "larder_box_\(suffix)", auditors = "larder_auditor_\(suffix)"
        let kitchen = "kitchen_\(suffix)", other = "other_\(suffix)", auditor = "auditor_\(suffix)"
        try await cluster.execute("""
            CREATE ROLE \(boxes) NOLOGIN;
            GRANT SELECT ON larder_schema TO \(boxes);
            GRANT SELECT, INSERT ON larder_boxes TO \(boxes);
            GRANT UPDATE (last_seq, last_chain_hash, shipped_at, verifier_key) ON larder_boxes TO \(boxes);
            GRANT SELECT, INSERT ON larder_audit, larder_checkpoints TO \(boxes);
            ALTER TABLE larder_boxes ENABLE ROW LEVEL SECURITY;
            ALTER TABLE larder_audit ENABLE ROW LEVEL SECURITY;
            ALTER TABLE larder_checkpoints ENABLE ROW LEVEL SECURITY;
            CREATE POLICY own_box ON larder_boxes TO \(boxes) USING (box_id = current_user) WITH CHECK (box_id = current_user);
            CREATE POLICY own_box ON larder_audit TO \(boxes) USING (box_id = current_user) WITH CHECK (box_id = current_user);
            CREATE POLICY own_box ON larder_checkpoints TO \(boxes) USING (box_id = current_user) WITH CHECK (box_id = current_user);
            CREATE ROLE \(auditors) NOLOGIN;
            GRANT SELECT ON larder_schema, larder_boxes, larder_audit, larder_checkpoints TO \(auditors);
            CREATE POLICY auditors_read ON larder_boxes FOR SELECT TO \(auditors) USING (true);
            CREATE POLICY auditors_read ON larder_audit FOR SELECT TO \(auditors) USING (true);
            CREATE POLICY auditors_read ON larder_checkpoints FOR SELECT TO \(auditors) USING (true);
            CREATE ROLE \(kitchen) LOGIN IN ROLE \(boxes);
            CREATE ROLE \(other) LOGIN IN ROLE \(boxes);
            CREATE ROLE \(auditor) LOGIN IN ROLE \(auditors)
            """, database: database)
        let box = try TestBox()
        try appendRecords(box.store, count: 120, random: &random)
        let head = try box.head
        box.close()
        let shipped = await larder(["ship", "--db", box.path, "--postgres", cluster.url(database: database, user: kitchen),
                                    "--box-id", kitchen])
        #expect(shipped.status == 0, "\(shipped.err)")
        #expect(try await shippedRows(database, box: kitchen) == (Int64(head), 1, Int64(head)))
        // A box cannot rewrite what it shipped, nor ship under another box's id.
        await #expect(throws: (any Error).self) {
            try await cluster.execute("UPDATE larder_audit SET event = 'X' WHERE seq = 1", database: database, user: kitchen)
        }
        await #expect(throws: (any Error).self) {
            try await cluster.execute("DELETE FROM larder_audit WHERE seq = 1", database: database, user: kitchen)
        }
        let impostor = await larder(["ship", "--db", box.path, "--postgres", cluster.url(database: database, user: other),
                                     "--box-id", kitchen])
        #expect(shipped.err.contains("COPY refused"), "\(shipped.err)")
        #expect(impostor.status == 9, "\(impostor.err)")
        #expect(impostor.err.contains("row-level security"), "\(impostor.err)")
        // The auditor reads and verifies everything, and can change nothing.
        let verify = await larder(["fleet", "verify", "--postgres", cluster.url(database: database, user: auditor)])
        #expect(verify.status == 0, "\(verify.out)\(verify.err)")
        #expect(verify.out.contains("intact: box \(kitchen): \(head) rows"))
        await #expect(throws: (any Error).self) {
            try await cluster.execute("INSERT INTO larder_boxes (box_id) VALUES ('x')", database: database, user: auditor)
        }
    }

    @Test func copyAndInsertStoreTheSameRows() async throws {
        var random = seeded(27)
        let cluster = FleetDatabase.cluster
        let box = try TestBox()
        try appendRecords(box.store, count: 400, random: &random, awkward: true)
        var digests: [String?] = []
        for method in ShipOptions.BulkInsert.allCases {
            let database = try await cluster.createDatabase()
            var options = ShipOptions(boxID: "k-same")
            options.batchRecords = 150
            options.clock = .instant
            options.bulkInsert = method
            let destination = try FleetDestination(url: cluster.url(database: database))
            let summary = try await Shipper(store: try box.store, destination: destination, options: options).run()
            #expect(summary.recordsShipped == (try box.head), "\(method)")
            #expect(try await FleetVerifier.verify(destination: destination).isIntact, "\(method)")
            digests += try await cluster.strings("""
                SELECT md5(string_agg(concat_ws('|', seq, time, event, actor_id, actor_role, request_id, trace_id, decision_id,
                    refs::text, failure_category, response_type, reason_code, coalesce(payload::text, 'NULL'),
                    encode(record_bytes, 'hex'), encode(leaf_hash, 'hex'), encode(chain_hash, 'hex')), '/' ORDER BY seq))
                FROM larder_audit
                """, database: database)
        }
        #expect(digests.count == 2 && digests[0] != nil && digests[0] == digests[1])
    }

    @Test func checkpointsShipWithTheRecordsTheyCover() async throws {
        var random = seeded(25)
        let cluster = FleetDatabase.cluster
        let database = try await cluster.createDatabase()
        let box = try TestBox()
        try appendRecords(box.store, count: 250, random: &random)
        // The box signs a checkpoint every 100 records.
        let key = try checkpointKey()
        var options = ShipOptions(boxID: "k-cp")
        options.batchRecords = 60
        options.clock = .instant
        options.checkpoints = signedCheckpoints(key: key, every: 100)
        let destination = try FleetDestination(url: cluster.url(database: database))
        _ = try await Shipper(store: box.store, destination: destination, options: options).run()
        #expect(try await cluster.strings("SELECT tree_size::text FROM larder_checkpoints ORDER BY tree_size", database: database) == ["100", "200"])
        #expect(try await cluster.strings("SELECT verifier_key FROM larder_boxes", database: database) == [key.verifierKey.description])
        try appendRecords(box.store, count: 60, random: &random)
        _ = try await Shipper(store: box.store, destination: destination, options: options).run()
        #expect(try await cluster.strings("SELECT tree_size::text FROM larder_checkpoints ORDER BY tree_size", database: database) == ["100", "200", "300"])

        // A box that presents another verifier key is refused.
        try appendRecords(box.store, count: 5, random: &random)
        let head = try box.head
        var impostor = options
        impostor.checkpoints = signedCheckpoints(key: try checkpointKey("kitchen-cp", seedByte: 8), every: 100)
        await #expect(throws: LarderError.self) { try await Shipper(store: box.store, destination: destination, options: impostor).run() }
        #expect(try await shippedRows(database, box: "k-cp") == (Int64(head - 5), 1, Int64(head - 5)))

        // fleet verify checks each signature and recomputes each root from the rows.
        let verify = await larder(["fleet", "verify", "--postgres", cluster.url(database: database)])
        #expect(verify.status == 0, "\(verify.out)")
        let root = try #require(try merkleRoots(box.store, sizes: [head - 5])[head - 5])
        #expect(verify.out.contains("Merkle root \(root), 3 signed checkpoint(s) verified"), "\(verify.out)")
        // The auditor's own copy of the key agrees; another key does not.
        let trusted = await larder(["fleet", "verify", "--postgres", cluster.url(database: database), "--box-id", "k-cp",
                                    "--verifier-key", key.verifierKey.description])
        #expect(trusted.status == 0, "\(trusted.out)")
        let other = try checkpointKey("kitchen-cp", seedByte: 9).verifierKey.description
        let distrusted = await larder(["fleet", "verify", "--postgres", cluster.url(database: database), "--box-id", "k-cp",
                                       "--verifier-key", other])
        #expect(distrusted.status == 1)
        #expect(distrusted.out.contains("larder_boxes registers the verifier key \(key.verifierKey), not the one given"), "\(distrusted.out)")
    }

    @Test func statsShowsTheShippingLag() async throws {
        var random = seeded(26)
        let database = try await FleetDatabase.cluster.createDatabase()
        let box = try TestBox()
        box.close()
        let never = await larder(["stats", "--db", box.path])
        #expect(never.out.contains("shipping: never shipped"), "\(never.out)")
        try appendRecords(box.store, count: 90, random: &random)
        let head = try box.head
        _ = try await shipper(box, database: database, boxID: "k-lag").run()
        box.close()
        let upToDate = await larder(["stats", "--db", box.path])
        #expect(upToDate.out.contains("box k-lag to postgres://larder@127.0.0.1:"), "\(upToDate.out)")
        #expect(upToDate.out.contains("shipped seq \(head) of \(head), up to date"), "\(upToDate.out)")
        try appendRecords(box.store, count: 12, random: &random)
        box.close()
        let behind = await larder(["stats", "--db", box.path])
        #expect(behind.out.contains("12 record(s) not yet shipped, the oldest"), "\(behind.out)")
    }

    @Test func theJSONBPredicateAgreesWithPostgreSQL() async throws {
        let cluster = FleetDatabase.cluster
        let candidates = awkwardPayloads + [#"{"x":1e999}"#, #"{"x":1e-999}"#, #"{"x":1e140000}"#, #"{"x":1.5e-16500}"#, #"{"x":"\udc00"}"#, #"{"x":"\ud83c"}"#,
                                           #"{"x":"\ud83c\u0041"}"#, #"{"x":123e997}"#, "[1]", "{", #"{"x":"\u0001"}"#]
        try await cluster.withConnection(database: "postgres") { connection in
            for payload in candidates {
                var accepted = true
                do {
                    try await connection.query("SELECT \(payload)::jsonb", logger: PostgresCluster.logger)
                } catch {
                    accepted = false
                }
                // Not an object is refused by the predicate even where jsonb would take it.
                let object = JSONValidator.isObject(payload)
                #expect(FleetColumns.isJSONBSafe(payload) == (accepted && object), "\(payload): jsonb accepts: \(accepted)")
            }
        }
    }
}
