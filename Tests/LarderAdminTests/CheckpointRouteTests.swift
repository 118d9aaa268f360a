import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

/// The transparency routes: checkpoint, proofs, tlog tiles; the `checkpoint:read` scope; which
/// reads are recorded.
@Suite("checkpoint routes")
struct CheckpointRouteTests {
    static let key = try! NoteSigningKey(parsing: "PRIVATE+KEY+larder.test/vectors+cd12f106+AXTpgPw1XUECJ5u4p5MDtx6dWmByotxvjNkzMJeFfE/e")

    /// A store of 600 records, a checkpoint, and a server whose checkpoint key is the test key,
    /// with a `witness` token (checkpoint:read only).
    struct Fixture {
        let admin: AdminFixture
        let server: AdminServer
        let witnessSecret: String
        let signed: SignedCheckpoint

        init(checkpointKey: Bool = true) throws {
            admin = try AdminFixture()
            try admin.seed(600)
            signed = try admin.store.signCheckpoint(with: CheckpointRouteTests.key)
            var tokens = admin.tokens
            var random = SeededGenerator(seed: 14)
            witnessSecret = try tokens.createToken(id: "witness", scopes: [.checkpointRead],
                                                   expiresAt: admin.clock.now().unixMicros + 86_400_000_000, using: &random).secret
            var configuration = AdminConfiguration()
            configuration.budgetUnitsPerWindowMax = 10_000
            if checkpointKey { configuration.checkpointKey = CheckpointRouteTests.key.verifierKey }
            server = try AdminServer(store: admin.store, tokens: tokens, configuration: configuration)
        }

        func get(_ uri: String, secret: String?) async throws -> TestResponse {
            var headers: HTTPFields = [:]
            if let secret { headers[.authorization] = "Bearer \(secret)" }
            let requestHeaders = headers
            return try await server.makeApplication().test(.router) { client in
                try await client.execute(uri: uri, method: .get, headers: requestHeaders)
            }
        }
    }

    @Test func theCheckpointIsTheLatestSignedNote() async throws {
        let fixture = try Fixture()
        let before = try fixture.admin.auditCount()
        for path in ["/v1/audit/checkpoint", "/tlog/checkpoint"] {
            let response = try await fixture.get(path, secret: fixture.witnessSecret)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/plain; charset=utf-8")
            #expect(response.text == fixture.signed.note)
        }
        // audit:read sees hashes too.
        #expect(try await fixture.get("/v1/audit/checkpoint", secret: fixture.admin.auditSecret).status == .ok)
        #expect(try await fixture.get("/v1/audit/checkpoint", secret: fixture.admin.opsSecret).status == .forbidden)
        #expect(try await fixture.get("/v1/audit/checkpoint", secret: nil).status == .unauthorized)
        // Hash-only reads are not recorded.
        #expect(try fixture.admin.auditCount() == before)
    }

    @Test func withoutAKeyTheCheckpointRouteSaysSo() async throws {
        let fixture = try Fixture(checkpointKey: false)
        let response = try await fixture.get("/v1/audit/checkpoint", secret: fixture.witnessSecret)
        #expect(response.status == .notFound)
        #expect(try response.errorCode() == "NOT_FOUND")
        #expect(response.text.contains("--signing-key"))
    }

    @Test func proofsVerifyAgainstTheCheckpoint() async throws {
        let fixture = try Fixture()
        let checkpoint = fixture.signed.checkpoint
        let size = checkpoint.treeSize
        let inclusion = try await fixture.get("/v1/audit/proof/inclusion?seq=300&tree_size=\(size)", secret: fixture.witnessSecret)
        #expect(inclusion.status == .ok)
        let document = try inclusion.json()
        #expect(Array(document.keys).sorted() == ["leaf_hash", "leaf_index", "proof", "root_hash", "seq", "tree_size"])
        #expect(document["seq"] as? Int == 300)
        #expect(document["leaf_index"] as? Int == 299)
        #expect(document["root_hash"] as? String == checkpoint.rootHash.hexString)
        let leafHex = try #require(document["leaf_hash"] as? String)
        let leaf = try #require(MerkleHash(hex: leafHex))
        let record = try #require(try fixture.admin.store.read { view in try view.audit.record(seq: 300) })
        #expect(leaf.bytes == record.leafHash)
        let path = try #require(document["proof"] as? [String]).compactMap(MerkleHash.init(hex:))
        #expect(MerkleProof.verifyInclusion(leafHash: leaf, leafIndex: 299, treeSize: size, proof: path, rootHash: checkpoint.rootHash))

        try fixture.admin.seed(50)
        let later = try await fixture.admin.store.signCheckpoint(with: Self.key)
        let consistency = try await fixture.get("/v1/audit/proof/consistency?from_size=\(size)&to_size=\(later.checkpoint.treeSize)",
                                                secret: fixture.witnessSecret)
        #expect(consistency.status == .ok)
        let proof = try consistency.json()
        #expect(Array(proof.keys).sorted() == ["from_size", "proof", "to_size"])
        let hashes = try #require(proof["proof"] as? [String]).compactMap(MerkleHash.init(hex:))
        #expect(MerkleProof.verifyConsistency(oldSize: size, newSize: later.checkpoint.treeSize, oldRoot: checkpoint.rootHash,
                                              newRoot: later.checkpoint.rootHash, proof: hashes))
    }

    @Test func proofParametersAreStrict() async throws {
        let fixture = try Fixture()
        for uri in ["/v1/audit/proof/inclusion?seq=1", "/v1/audit/proof/inclusion?seq=0&tree_size=5",
                    "/v1/audit/proof/inclusion?seq=1&tree_size=5&x=1", "/v1/audit/proof/inclusion?seq=1&seq=1&tree_size=5",
                    "/v1/audit/proof/inclusion?seq=01x&tree_size=5", "/v1/audit/proof/consistency?from_size=5",
                    "/v1/audit/proof/consistency?from_size=-1&to_size=5", "/v1/audit/checkpoint?x=1", "/tlog/tile/0/000?x=1",
                    "/v1/audit/proof/inclusion?seq=1&tree_size=0", "/v1/audit/proof/inclusion?seq=x&tree_size=5",
                    "/v1/audit/proof/consistency?from_size=1&to_size=99999999999999999999"] {
            let response = try await fixture.get(uri, secret: fixture.witnessSecret)
            #expect(response.status == .badRequest, "\(uri): \(response.text)")
            #expect(try response.errorCode() == "VALIDATION_FAILED", "\(uri)")
        }
        // Well-formed (the OpenAPI schema accepts them), but no such proof: a tree the log has not
        // reached (yet), a record beyond its tree, a shrinking pair.
        for uri in ["/v1/audit/proof/inclusion?seq=1&tree_size=999999", "/v1/audit/proof/inclusion?seq=999999&tree_size=999999",
                    "/v1/audit/proof/consistency?from_size=0&to_size=999999", "/v1/audit/proof/consistency?from_size=5&to_size=999999",
                    "/v1/audit/proof/consistency?from_size=999999&to_size=999999", "/v1/audit/proof/inclusion?seq=9&tree_size=5",
                    "/v1/audit/proof/consistency?from_size=9&to_size=5"] {
            let response = try await fixture.get(uri, secret: fixture.witnessSecret)
            #expect(response.status == .notFound, "\(uri): \(response.text)")
            #expect(try response.errorCode() == "NOT_FOUND", "\(uri)")
        }
    }

    @Test func hashTilesAreTheTreeAndEntryBundlesAreRecorded() async throws {
        let fixture = try Fixture()
        let store = fixture.admin.store
        let size = try store.read { view in try view.audit.head().seq }
        let (full, partial, level1) = try store.read { view in
            (try view.audit.tileData(TlogTile(level: 0, index: 0)),
             try view.audit.tileData(TlogTile(level: 0, index: 2, width: Int(size % 256))),
             try view.audit.tileData(TlogTile(level: 1, index: 0, width: 2)))
        }
        let before = try fixture.admin.auditCount()
        let tile0 = try await fixture.get("/tlog/tile/0/000", secret: fixture.witnessSecret)
        #expect(tile0.status == .ok)
        #expect(tile0.headers[.contentType] == "application/octet-stream")
        #expect(Array(tile0.body.readableBytesView) == full)
        let partialTile = try await fixture.get("/tlog/tile/0/002.p/\(size % 256)", secret: fixture.witnessSecret)
        #expect(Array(partialTile.body.readableBytesView) == partial)
        let upper = try await fixture.get("/tlog/tile/1/000.p/2", secret: fixture.witnessSecret)
        #expect(Array(upper.body.readableBytesView) == level1)
        #expect(try fixture.admin.auditCount() == before)
        // Not yet complete, not canonical, or not a tile: 404.
        for uri in ["/tlog/tile/0/003", "/tlog/tile/1/000", "/tlog/tile/0/0", "/tlog/tile/00/000", "/tlog/tile/0/x000/000",
                    "/tlog/tile/0/000.p/256", "/tlog/tile/0/000.p/0", "/tlog/tile/x"] {
            let response = try await fixture.get(uri, secret: fixture.witnessSecret)
            #expect(response.status == .notFound, "\(uri): \(response.text)")
        }

        // Entry bundles hold the records: audit:read only, and recorded.
        #expect(try await fixture.get("/tlog/tile/entries/000", secret: fixture.witnessSecret).status == .forbidden)
        let bundle = try await fixture.get("/tlog/tile/entries/001", secret: fixture.admin.auditSecret)
        #expect(bundle.status == .ok)
        let entries = try TlogEntryBundle.decode(Array(bundle.body.readableBytesView))
        #expect(entries.count == 256)
        let record = try #require(try store.read { view in try view.audit.record(seq: 257) })
        #expect(entries[0] == record.recordBytes)
        let recorded = try #require(try fixture.admin.lastRecord())
        #expect(recorded.event == .forensicAccess)
        #expect(recorded.payload.contains("\"route\":\"/tlog/tile/entries/{tile_path}\""), "\(recorded.payload)")
        #expect(recorded.payload.contains("tile/entries/001"), "\(recorded.payload)")
    }

    @Test func tokenCreateKnowsTheNewScope() throws {
        #expect(TokenScope.all.contains(.checkpointRead))
        #expect(TokenScope.checkpointRead.rawValue == "checkpoint:read")
    }
}
