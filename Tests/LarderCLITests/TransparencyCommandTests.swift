import Foundation
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderCLI
import LarderTesting
import Testing

/// `larder witness` against live loopback servers, `larder checkpoint`, `larder audit prove`,
/// and `larder serve --signing-key` refusing a key inside the store.
@Suite("transparency commands")
struct TransparencyCommandTests {
    static let key = try! NoteSigningKey(parsing: "PRIVATE+KEY+larder.test/vectors+cd12f106+AXTpgPw1XUECJ5u4p5MDtx6dWmByotxvjNkzMJeFfE/e")
    static let writer = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: "w")

    /// A box: a store with `records` records of history `history`, a checkpoint signed by `key`,
    /// and a token with checkpoint:read.
    final class Box: Sendable {
        let temporary: TemporaryStore
        let server: AdminServer
        let secret: String

        init(records: Int, history: String, key: NoteSigningKey) throws {
            temporary = try TemporaryStore(options: Store.Options(durability: .fastUnsafe))
            try Box.append(temporary.store, records, history: history)
            try temporary.store.signCheckpoint(with: key)
            var tokens = try TokenFile()
            var random = SeededGenerator(seed: 21)
            secret = try tokens.createToken(id: "witness", scopes: [.checkpointRead],
                                            expiresAt: temporary.clock.now().unixMicros + 86_400_000_000, using: &random).secret
            var configuration = AdminConfiguration()
            configuration.port = 0
            configuration.checkpointKey = key.verifierKey
            server = try AdminServer(store: temporary.store, tokens: tokens, configuration: configuration)
        }

        static func append(_ store: Store, _ count: Int, history: String) throws {
            try store.write(TransparencyCommandTests.writer) { txn in
                for index in 0..<count {
                    try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", payload: "{\"history\":\"\(history)\",\"n\":\(index)}"))
                }
            }
        }

        /// Runs `larder witness` against this box, served live on a loopback port.
        func witness(state: String, vkey: String = TransparencyCommandTests.key.verifierKey.description) async throws
            -> (status: Int32, out: String, err: String) {
            let secret = self.secret
            return try await server.makeApplication().test(.live) { client in
                let port = try #require(client.port)
                return await larder("witness", "--url", "http://127.0.0.1:\(port)", "--token", secret, "--vkey", vkey,
                                    "--state", state)
            }
        }
    }

    @Test func theWitnessAcceptsGrowthAndCatchesAForkAShrinkingTreeAndABadSignature() async throws {
        let directory = try TemporaryDirectory(prefix: "larder-witness")
        let state = directory.path("witness.state")

        let box = try Box(records: 300, history: "real", key: Self.key)
        let first = try await box.witness(state: state)
        #expect(first.status == 0, "\(first.err)")
        #expect(first.out.contains("accepted the first checkpoint"), "\(first.out)")
        let unchanged = try await box.witness(state: state)
        #expect(unchanged.out.contains("unchanged"), "\(unchanged.out)")
        try Box.append(box.temporary.store, 40, history: "real")
        try await box.temporary.store.signCheckpoint(with: Self.key)
        let grew = try await box.witness(state: state)
        #expect(grew.status == 0, "\(grew.err)")
        #expect(grew.out.contains("grew consistently"), "\(grew.out)")
        let saved = try Data(contentsOf: URL(fileURLWithPath: state))
        let attributes = try FileManager.default.attributesOfItem(atPath: state)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)

        // The store replaced by another history, signed with the same key: a fork.
        let forked = try Box(records: 400, history: "rewritten", key: Self.key)
        let fork = try await forked.witness(state: state)
        #expect(fork.status == 1)
        #expect(fork.err.contains("REJECTED: fork"), "\(fork.err)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: state)) == saved)

        // Fewer records than the saved checkpoint: a shrinking tree.
        let shrunk = try Box(records: 10, history: "real", key: Self.key)
        let shrinking = try await shrunk.witness(state: state)
        #expect(shrinking.status == 1)
        #expect(shrinking.err.contains("REJECTED: shrinking tree"), "\(shrinking.err)")

        // Another key under the same name: a bad signature.
        let impostorKey = try NoteSigningKey.generate(name: Self.key.name)
        let impostor = try Box(records: 500, history: "real", key: impostorKey)
        let bad = try await impostor.witness(state: state)
        #expect(bad.status == 1)
        #expect(bad.err.contains("REJECTED: bad signature"), "\(bad.err)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: state)) == saved)

        // The genuine box still passes.
        #expect(try await box.witness(state: state).status == 0)
    }

    @Test func aBoxWithoutAKeyOrAWrongTokenIsAnErrorNotAVerdict() async throws {
        let directory = try TemporaryDirectory(prefix: "larder-witness")
        let box = try Box(records: 5, history: "real", key: Self.key)
        let secret = box.secret
        let noKey = try AdminServer(store: box.temporary.store, tokens: try TokenFile(), configuration: AdminConfiguration())
        let result = try await noKey.makeApplication().test(.live) { client in
            await larder("witness", "--url", "http://127.0.0.1:\(try #require(client.port))", "--token", secret,
                         "--vkey", Self.key.verifierKey.description, "--state", directory.path("state"))
        }
        #expect(result.status == 3, "\(result.err)")   // AUTH_REQUIRED: the token is not known there
        #expect(result.err.contains("AUTH_REQUIRED"))
        #expect(!FileManager.default.fileExists(atPath: directory.path("state")))
    }

    @Test func checkpointAndProveCommands() async throws {
        let directory = try TemporaryDirectory(prefix: "larder-checkpoint")
        let db = directory.path("db")
        do {
            let store = try Store.open(at: db, options: Store.Options(durability: .fastUnsafe))
            try Box.append(store, 300, history: "real")
            store.close()
        }
        let keyFile = directory.path("checkpoint.key")
        try Self.key.write(to: keyFile)
        let signed = await larder("checkpoint", "--db", db, "--signing-key", keyFile)
        #expect(signed.status == 0, "\(signed.err)")
        let (checkpoint, _) = try Checkpoint.open(signed.out, verifierKey: Self.key.verifierKey)
        #expect(checkpoint.treeSize >= 301)

        let proved = await larder("audit", "prove", "--db", db, "--seq", "42", "--tree-size", String(checkpoint.treeSize))
        #expect(proved.status == 0, "\(proved.err)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(proved.out.utf8)) as? [String: Any])
        #expect(document["seq"] as? Int == 42)
        #expect(document["root_hash"] as? String == checkpoint.rootHash.hexString)
        let leafHex = try #require(document["leaf_hash"] as? String)
        let leaf = try #require(MerkleHash(hex: leafHex))
        let path = try #require(document["proof"] as? [String]).compactMap(MerkleHash.init(hex:))
        #expect(MerkleProof.verifyInclusion(leafHash: leaf, leafIndex: 41, treeSize: checkpoint.treeSize, proof: path,
                                            rootHash: checkpoint.rootHash))
        // Without --tree-size: against the whole log.
        #expect(await larder("audit", "prove", "--db", db, "--seq", "1").status == 0)
        #expect(await larder("audit", "prove", "--db", db, "--seq", "999999").status == 4)   // NOT_FOUND: no such record
        // The plain query form of `audit` still works beside its subcommand.
        #expect(await larder("audit", "--db", db, "--limit", "2", "--format", "ndjson").status == 0)

        // A key file inside the store's directory is refused, by checkpoint and by serve.
        let inside = db + "/checkpoint.key"
        try Self.key.write(to: inside)
        let refused = await larder("checkpoint", "--db", db, "--signing-key", inside)
        #expect(refused.status == 2)
        #expect(refused.err.contains("inside the store's directory"), "\(refused.err)")
        let tokens = directory.path("tokens.json")
        #expect(await larder("token", "create", "--scopes", "checkpoint:read", "--expires", "1h", "--tokens", tokens).status == 0)
        let serve = await larder("serve", "--db", db, "--tokens", tokens, "--port", "0", "--signing-key", inside)
        #expect(serve.status == 2)
        #expect(serve.err.contains("inside the store's directory"), "\(serve.err)")
        let badPolicy = await larder("serve", "--db", db, "--tokens", tokens, "--signing-key", keyFile,
                                     "--checkpoint-every-records", "0", "--checkpoint-every-seconds", "0")
        #expect(badPolicy.status == 2)
    }
}
