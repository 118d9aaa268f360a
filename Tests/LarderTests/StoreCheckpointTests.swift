import Foundation
import Larder
import LarderTesting
import Testing

/// Signed checkpoints recorded in the store: signing, reading them back, the policy.
@Suite("store checkpoints")
struct StoreCheckpointTests {
    /// The public test key of Tests/Vectors/transparency.json (never for anything real).
    static let key = try! NoteSigningKey(parsing: "PRIVATE+KEY+larder.test/vectors+cd12f106+AXTpgPw1XUECJ5u4p5MDtx6dWmByotxvjNkzMJeFfE/e")

    @Test func aSignedCheckpointCoversTheLogBeforeItsOwnRecord() throws {
        let temporary = try TemporaryStore(options: Store.Options(durability: .fastUnsafe))
        let store = temporary.store
        try StoreMerkleTreeTests.append(store, 300)
        let head = try store.read { view in try view.audit.head().seq }
        let signed = try store.signCheckpoint(with: Self.key)
        #expect(signed.checkpoint.treeSize == head)
        #expect(signed.seq == head + 1)
        #expect(signed.keyIDHex == "cd12f106")
        let (opened, _) = try Checkpoint.open(signed.note, verifierKey: Self.key.verifierKey)
        #expect(opened == signed.checkpoint)
        let reference = try StoreMerkleTreeTests.reference(store)
        #expect(opened.rootHash.bytes == reference.mth(0..<Int(head)))

        let record = try #require(try store.read { view in try view.audit.record(seq: signed.seq) })
        #expect(record.record.event == .checkpointSigned)
        #expect(record.record.refs == [CorrelationRef("checkpoint_key", "cd12f106")])
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(record.record.payload.utf8)) as? [String: Any])
        #expect(payload["note"] as? String == signed.note)
        #expect(payload["tree_size"] as? Int == Int(head))
        #expect(payload["root_hash"] as? String == opened.rootHash.hexString)
        #expect(payload["key_name"] as? String == "larder.test/vectors")
        #expect(payload["key_id"] as? String == "cd12f106")
        #expect(try store.verify().isIntact)
    }

    @Test func pastCheckpointsReadBackBySeqSizeAndKey() throws {
        let temporary = try TemporaryStore(options: Store.Options(durability: .fastUnsafe))
        let store = temporary.store
        let other = try NoteSigningKey.generate(name: "kitchen.example/other")
        let first = try store.signCheckpoint(with: Self.key)
        try StoreMerkleTreeTests.append(store, 10)
        let second = try store.signCheckpoint(with: Self.key)
        let third = try store.signCheckpoint(with: other)
        try store.read { view in
            #expect(try view.audit.checkpoint(treeSize: first.checkpoint.treeSize) == first)
            #expect(try view.audit.checkpoint(seq: second.seq) == second)
            #expect(try view.audit.checkpoint(treeSize: first.checkpoint.treeSize + 1) == nil)
            #expect(try view.audit.latestCheckpoint(signedBy: Self.key.verifierKey) == second)
            #expect(try view.audit.latestCheckpoint(signedBy: other.verifierKey) == third)
            let page = try view.audit.checkpoints(signedBy: Self.key.verifierKey, limit: 10)
            #expect(page.checkpoints == [first, second])
            #expect(page.nextCursor == nil)
            // Each checkpoint's root is the root of the tree of its size.
            #expect(try view.audit.rootHash(treeSize: second.checkpoint.treeSize) == second.checkpoint.rootHash)
        }
    }

    @Test func thePolicySignsAfterRecordsOrTimeButNotAnIdleLog() async throws {
        let temporary = try TemporaryStore(options: Store.Options(durability: .fastUnsafe))
        let store = temporary.store
        let signer = try CheckpointSigner(store: store, key: Self.key, policy: CheckpointPolicy(everyRecords: 5, everySeconds: 60))
        // None yet: sign at once.
        let first = try #require(try await signer.signIfDue())
        #expect(try await signer.signIfDue() == nil)
        // Time alone does not sign an idle log.
        temporary.clock.advance(seconds: 120)
        #expect(try await signer.signIfDue() == nil)
        // One record and the time: due.
        try StoreMerkleTreeTests.append(store, 1)
        let second = try #require(try await signer.signIfDue())
        #expect(second.checkpoint.treeSize == first.seq + 1)
        // Four records are not enough, five are.
        try StoreMerkleTreeTests.append(store, 4)
        #expect(try await signer.signIfDue() == nil)
        try StoreMerkleTreeTests.append(store, 1)
        #expect(try await signer.signIfDue() != nil)
        #expect(throws: LarderError.self) { try CheckpointPolicy(everyRecords: nil, everySeconds: nil).validate() }
        #expect(throws: LarderError.self) { try CheckpointPolicy(everyRecords: 0).validate() }
    }
}
