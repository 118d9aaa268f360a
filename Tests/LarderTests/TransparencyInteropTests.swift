import Foundation
import Larder
import LarderTesting
import Testing

/// Larder's tree, keys and notes against an independent implementation: Tools/verify_checkpoint.py
/// (Python standard library, Ed25519 written from RFC 8032). Both ways: vectors the Python made
/// (committed in Tests/Vectors/transparency.json) are checked by Swift, and what Swift produces
/// from a real store is checked by the Python script.
@Suite("Transparency against the independent verifier")
struct TransparencyInteropTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let script = repository.appendingPathComponent("Tools/verify_checkpoint.py").path
    static let vectorsPath = repository.appendingPathComponent("Tests/Vectors/transparency.json").path

    static var python: String? {
        ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    struct Vectors: Decodable {
        struct Key: Decodable {
            let name: String
            let seed: String
            let public_key: String
            let key_id: String
            let verifier_key: String
            let private_key: String
        }
        struct Root: Decodable {
            let size: UInt64
            let root: String
        }
        struct Inclusion: Decodable {
            let leaf_index: UInt64
            let tree_size: UInt64
            let proof: [String]
        }
        struct Consistency: Decodable {
            let from_size: UInt64
            let to_size: UInt64
            let proof: [String]
        }
        struct SignedCheckpoint: Decodable {
            let size: UInt64
            let note: String
        }
        let key: Key
        let other_verifier_key: String
        let records: [String]
        let roots: [Root]
        let inclusion: [Inclusion]
        let consistency: [Consistency]
        let checkpoints: [SignedCheckpoint]
        let note_with_unknown_signature: String
    }

    @Test func thePythonVectorsAgreeWithLarder() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.vectorsPath))
        let vectors = try JSONDecoder().decode(Vectors.self, from: data)

        // Keys: the same seed gives the same verifier key, key ID and private key text.
        let key = try NoteSigningKey(parsing: vectors.key.private_key)
        #expect(key.verifierKey.description == vectors.key.verifier_key)
        #expect(key.verifierKey.publicKey.hexString == vectors.key.public_key)
        #expect(key.verifierKey.keyIDHex == vectors.key.key_id)
        #expect(try NoteSigningKey(name: vectors.key.name, seed: try #require([UInt8](hexString: vectors.key.seed))).privateKeyText
                == vectors.key.private_key)
        let vkey = try NoteVerifierKey(parsing: vectors.key.verifier_key)

        // The tree: every root, the sampled inclusion and consistency proofs.
        var tree = InMemoryMerkleTileStorage()
        for record in vectors.records { try tree.appendLeaf(.leaf(try #require([UInt8](hexString: record)))) }
        let reader = tree.reader
        #expect(vectors.roots.count == vectors.records.count + 1)
        for root in vectors.roots { #expect(try reader.rootHash(treeSize: root.size).hexString == root.root, "root of \(root.size)") }
        for vector in vectors.inclusion {
            #expect(try reader.inclusionProof(leafIndex: vector.leaf_index, treeSize: vector.tree_size).map(\.hexString) == vector.proof,
                    "inclusion \(vector.leaf_index) in \(vector.tree_size)")
        }
        for vector in vectors.consistency {
            #expect(try reader.consistencyProof(from: vector.from_size, to: vector.to_size).map(\.hexString) == vector.proof,
                    "consistency \(vector.from_size) → \(vector.to_size)")
        }

        // Checkpoints signed by the Python: they open here, and Larder signs the same bytes.
        for vector in vectors.checkpoints {
            let (checkpoint, _) = try Checkpoint.open(vector.note, verifierKey: vkey)
            #expect(checkpoint.treeSize == vector.size)
            #expect(checkpoint.rootHash == (try reader.rootHash(treeSize: vector.size)))
            #if os(Linux)
            // swift-crypto on Linux signs deterministically (RFC 8032), as the Python does;
            // Apple's CryptoKit randomizes Ed25519 signatures.
            #expect(try checkpoint.signed(by: key) == vector.note)
            #endif
        }
        // A second signature by an unknown key (same name, other ID) is ignored, and verifies
        // for whoever knows that key.
        let note = try SignedNote(parsing: vectors.note_with_unknown_signature)
        guard case .verified(let signatures) = note.verify(with: [vkey]) else {
            Issue.record("the note with an unknown signature did not verify")
            return
        }
        #expect(signatures.count == 1)
        let other = try NoteVerifierKey(parsing: vectors.other_verifier_key)
        guard case .verified(let both) = note.verify(with: [vkey, other]) else {
            Issue.record("the note's second signature did not verify")
            return
        }
        #expect(both.count == 2)
    }

    /// A real store's records, a checkpoint signed by Larder, and the proofs in the JSON shapes of
    /// the admin routes: the Python verifier accepts them, and refuses each when tampered with.
    @Test(.enabled(if: python != nil, "python3 is not installed: the independent verifier cannot run"))
    func thePythonVerifierChecksWhatLarderProduces() throws {
        let python = try #require(Self.python)
        let directory = try TemporaryDirectory(prefix: "larder-interop")
        let temporary = try TemporaryStore()
        let store = temporary.store
        for index in 0..<40 {
            try store.write(.test("req-\(index)")) { txn in
                try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", refs: [.order("o\(index)")], payload: "{\"n\":\(index)}"))
            }
        }
        let entries = try store.read { try $0.audit.records(fromSeq: 1, limit: 1_000).records }
        let export = directory.path("export.ndjson")
        try Data(entries.map { $0.jsonText + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: export))

        var tree = InMemoryMerkleTileStorage()
        for entry in entries { try tree.appendLeaf(try #require(MerkleHash(bytes: entry.leafHash))) }
        let reader = tree.reader
        let key = try NoteSigningKey.generate(name: "kitchen.example/larder")
        let vkey = key.verifierKey.description
        func write(_ text: String, _ name: String) throws -> String {
            let path = directory.path(name)
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            return path
        }
        func verify(_ arguments: String...) throws -> (status: Int32, output: String, error: String) {
            try runProcess(python, [Self.script] + arguments)
        }
        let size = UInt64(entries.count)
        let old = try write(try Checkpoint(origin: key.name, treeSize: 17, rootHash: reader.rootHash(treeSize: 17)).signed(by: key), "old.note")
        let new = try write(try Checkpoint(origin: key.name, treeSize: size, rootHash: reader.rootHash(treeSize: size)).signed(by: key), "new.note")

        let checkpoint = try verify("checkpoint", new, "--vkey", vkey, "--records", export)
        #expect(checkpoint.status == 0, "\(checkpoint.output) \(checkpoint.error)")
        #expect(checkpoint.output.hasPrefix("OK checkpoint kitchen.example/larder size \(size)"))

        let seq: UInt64 = 23
        let record = try write(entries[Int(seq) - 1].jsonText, "record.json")
        let inclusion = MerkleInclusionProof(seq: seq, treeSize: size, leafHash: try #require(MerkleHash(bytes: entries[Int(seq) - 1].leafHash)),
                                             rootHash: try reader.rootHash(treeSize: size),
                                             proof: try reader.inclusionProof(leafIndex: seq - 1, treeSize: size))
        #expect(inclusion.isValid)
        let inclusionPath = try write(inclusion.jsonText, "inclusion.json")
        let included = try verify("inclusion", inclusionPath, "--checkpoint", new, "--vkey", vkey, "--record", record)
        #expect(included.status == 0, "\(included.output) \(included.error)")
        #expect(included.output.hasPrefix("OK seq 23 is in the tree of size \(size)"))

        let consistency = MerkleConsistencyProof(fromSize: 17, toSize: size, proof: try reader.consistencyProof(from: 17, to: size))
        let consistencyPath = try write(consistency.jsonText, "consistency.json")
        let consistent = try verify("consistency", consistencyPath, "--old", old, "--new", new, "--vkey", vkey)
        #expect(consistent.status == 0, "\(consistent.output) \(consistent.error)")

        // Tampered: another record's bytes, a proof hash changed, a checkpoint by another key,
        // a note whose size was edited, and the proofs against the wrong checkpoints.
        let otherRecord = try write(entries[5].jsonText, "other.json")
        #expect(try verify("inclusion", inclusionPath, "--checkpoint", new, "--vkey", vkey, "--record", otherRecord).status == 1)
        var badProof = inclusion.proof
        badProof[2] = .leaf([1])
        let badInclusion = try write(MerkleInclusionProof(seq: seq, treeSize: size, leafHash: inclusion.leafHash, rootHash: inclusion.rootHash,
                                                          proof: badProof).jsonText, "bad-inclusion.json")
        #expect(try verify("inclusion", badInclusion, "--checkpoint", new, "--vkey", vkey).status == 1)
        #expect(try verify("consistency", consistencyPath, "--old", new, "--new", old, "--vkey", vkey).status == 1)
        let impostor = try NoteSigningKey.generate(name: key.name)
        let forged = try write(try Checkpoint(origin: key.name, treeSize: size, rootHash: reader.rootHash(treeSize: size)).signed(by: impostor),
                               "forged.note")
        #expect(try verify("checkpoint", forged, "--vkey", vkey).output.hasPrefix("FAILED"))
        let edited = try write(try String(contentsOfFile: new, encoding: .utf8).replacingOccurrences(of: "\n\(size)\n", with: "\n\(size - 1)\n"),
                               "edited.note")
        #expect(try verify("checkpoint", edited, "--vkey", vkey).status == 1)
        // A record rewritten in the export with its leaf hash recomputed: the root no longer matches.
        var lines = try String(contentsOfFile: export, encoding: .utf8).split(separator: "\n").map(String.init)
        var rewritten = entries[9].recordBytes
        rewritten[rewritten.count - 3] ^= 0x01
        lines[9] = lines[9].replacingOccurrences(of: entries[9].recordBytes.hexString, with: rewritten.hexString)
            .replacingOccurrences(of: entries[9].leafHash.hexString, with: MerkleHash.leaf(rewritten).hexString)
        let badExport = try write(lines.joined(separator: "\n") + "\n", "bad-export.ndjson")
        let rewrittenCheck = try verify("checkpoint", new, "--vkey", vkey, "--records", badExport)
        #expect(rewrittenCheck.status == 1 && rewrittenCheck.output.contains("the root of the first \(size) records"),
                "\(rewrittenCheck.output) \(rewrittenCheck.error)")
        let selftest = try verify("selftest")
        #expect(selftest.status == 0, "\(selftest.output) \(selftest.error)")
    }
}
