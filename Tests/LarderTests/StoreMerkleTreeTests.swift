import Foundation
import Larder
import LarderStorage
import LarderTesting
import Testing

/// The store keeps the audit log's Merkle tree in the write transaction of the records: roots
/// and proofs match the RFC 6962 reference, verify checks the stored nodes, a rolled-back write
/// leaves nothing, and an older store gets its tree at its next writable open.
@Suite("store Merkle tree")
struct StoreMerkleTreeTests {
    static let writer = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: "tree")

    /// Appends `count` records in writes of at most `batch`.
    static func append(_ store: Store, _ count: Int, batch: Int = 500) throws {
        var written = 0
        while written < count {
            let size = min(batch, count - written)
            let first = written
            try store.write(writer) { txn in
                for index in first..<(first + size) {
                    try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", refs: [.order("o-\(index)")], payload: "{\"n\":\(index)}"))
                }
            }
            written += size
        }
    }

    /// The reference tree of every record of the store (leaf = record bytes).
    static func reference(_ store: Store) throws -> ReferenceMerkle {
        let records = try store.read { view in
            try view.audit.records(fromSeq: 1, limit: AuditLog.recordsPerPageMax).records.map(\.recordBytes)
        }
        return ReferenceMerkle(leaves: records.map(ReferenceMerkle.leafHash))
    }

    static func nodeKey(level: UInt8, index: UInt64) -> [UInt8] {
        [level] + withUnsafeBytes(of: index.bigEndian) { Array($0) }
    }

    @Test func rootsAndProofsMatchTheReferenceAcrossStoredLevels() throws {
        let temporary = try TemporaryStore(options: Store.Options(durability: .fastUnsafe))
        let store = temporary.store
        try Self.append(store, 700, batch: 97)   // crosses 256 and 512 inside writes and at their edges
        let reference = try Self.reference(store)
        let size = try store.read { view in try view.audit.head().seq }
        #expect(size == UInt64(reference.leaves.count))
        try store.read { view in
            for treeSize in [1, 2, 255, 256, 257, 511, 512, 513, Int(size)] {
                let root = try view.audit.rootHash(treeSize: UInt64(treeSize))
                #expect(root.bytes == reference.mth(0..<treeSize), "size \(treeSize)")
            }
            for seq in stride(from: 1, through: Int(size), by: 37) {
                let proof = try view.audit.inclusionProof(seq: UInt64(seq), treeSize: size)
                #expect(proof.proof.map(\.bytes) == reference.path(seq - 1, 0..<Int(size)), "seq \(seq)")
                #expect(proof.isValid)
            }
            for from in [0, 1, 200, 256, 300, 512] {
                let proof = try view.audit.consistencyProof(fromSize: UInt64(from), toSize: size)
                #expect(proof.proof.map(\.bytes) == reference.proof(from, Int(size)), "from \(from)")
            }
            // Level 1 holds ⌊size/256⌋ nodes, each the root of its 256 records.
            let tile = try view.audit.tileData(TlogTile(level: 1, index: 0, width: Int(size / 256)))
            #expect(Array(tile[0..<32]) == reference.mth(0..<256))
            #expect(Array(tile[32..<64]) == reference.mth(256..<512))
        }
        #expect(try store.verify().isIntact)
    }

    /// The tree the store keeps (level 0 from the records, level 1 from merkle_nodes) against the
    /// reference: the root of every size 1–300, every index of the sizes around the stored level
    /// (and of a few small ones), and every consistency proof ending at 300. (MerkleTreeTests checks
    /// every index of every size, on the same builder and reader over in-memory tiles; here each
    /// proof reads up to 256 records from LMDB, too slow to do 45,150 times in a debug build.)
    @Test func everySizeUpTo300MatchesTheReference() throws {
        let temporary = try TemporaryStore(options: Store.Options(durability: .fastUnsafe))
        let store = temporary.store
        let before = try store.read { view in try view.audit.head().seq }
        try Self.append(store, 300 - Int(before), batch: 41)
        let reference = try Self.reference(store)
        #expect(reference.leaves.count == 300)
        try store.read { view in
            for size in 1...300 {
                let root = try view.audit.rootHash(treeSize: UInt64(size))
                #expect(root.bytes == reference.mth(0..<size), "root of size \(size)")
                guard [1, 2, 3, 5, 8, 255, 256, 257, 300].contains(size) else { continue }
                for seq in 1...size {
                    let proof = try view.audit.inclusionProof(seq: UInt64(seq), treeSize: UInt64(size))
                    #expect(proof.leafHash.bytes == reference.leaves[seq - 1] && proof.rootHash == root, "seq \(seq) in \(size)")
                    #expect(proof.proof.map(\.bytes) == reference.path(seq - 1, 0..<size), "path of seq \(seq) in \(size)")
                }
            }
            for from in 0...300 {
                let proof = try view.audit.consistencyProof(fromSize: UInt64(from), toSize: 300)
                #expect(proof.proof.map(\.bytes) == reference.proof(from, 300), "consistency \(from) → 300")
            }
        }
    }

    /// The benchmark-only switch (`Options.keepsMerkleTree`, what larder-compare's
    /// `larder-no-tree` measures against) stores no node, and the next open that keeps the tree
    /// builds them.
    @Test func aStoreWrittenWithoutTheTreeGetsItWhenReopenedWithIt() throws {
        let directory = try TemporaryDirectory(prefix: "larder-no-tree")
        let path = directory.path("store")
        var options = Store.Options(durability: .fastUnsafe)
        options.keepsMerkleTree = false
        do {
            let store = try Store.open(at: path, options: options)
            try Self.append(store, 600)
            #expect(try store.environmentForTesting.rawGet(table: "merkle_nodes", key: Self.nodeKey(level: 1, index: 0)) == nil)
            store.close()
        }
        options.keepsMerkleTree = true
        let store = try Store.open(at: path, options: options)
        defer { store.close() }
        let last = try #require(try store.read { view in try view.audit.records(fromSeq: UInt64.max, limit: 1, direction: .backward) }.records.first)
        #expect(last.record.event == .merkleTreeBuilt)
        #expect(try store.verify().isIntact)
    }

    @Test func aRolledBackWriteLeavesNoStoredNode() throws {
        let temporary = try TemporaryStore(options: Store.Options(durability: .fastUnsafe))
        let store = temporary.store
        try Self.append(store, 250)
        struct Refused: Error {}
        // 300 records cross the 256 boundary, then the write fails: nothing of it stays.
        #expect(throws: Refused.self) {
            try store.write(Self.writer) { txn in
                for index in 0..<300 { try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", payload: "{\"n\":\(index)}")) }
                throw Refused()
            }
        }
        #expect(try store.environmentForTesting.rawGet(table: "merkle_nodes", key: Self.nodeKey(level: 1, index: 0)) == nil)
        try Self.append(store, 300)
        #expect(try store.verify().isIntact)
        let reference = try Self.reference(store)
        let root = try store.read { view in try view.audit.rootHash(treeSize: UInt64(reference.leaves.count)) }
        #expect(root.bytes == reference.mth(0..<reference.leaves.count))
    }

    @Test func verifyNamesATamperedStoredNode() throws {
        let temporary = try TemporaryStore(options: Store.Options(durability: .fastUnsafe))
        let store = temporary.store
        try Self.append(store, 600)
        #expect(try store.verify().isIntact)
        try store.environmentForTesting.rawPut(table: "merkle_nodes", key: Self.nodeKey(level: 1, index: 1),
                                               value: [UInt8](repeating: 0xAB, count: 32))
        let report = try store.verify()
        #expect(!report.isIntact)
        let problem = try #require(report.problems.first { $0.kind == .merkleTreeMismatch })
        #expect(problem.table == "merkle_nodes")
        #expect(problem.detail.contains("tile level 1 index 1"), "\(problem.detail)")
        #expect(problem.detail.contains("seqs 257...512"), "\(problem.detail)")
        // A proof through the damaged node no longer leads to the records' root.
        let reference = try Self.reference(store)
        let root = try store.read { view in try view.audit.rootHash(treeSize: 600) }
        #expect(root.bytes != reference.mth(0..<600))
    }

    @Test func verifyReportsMissingAndExtraNodes() throws {
        let temporary = try TemporaryStore(options: Store.Options(durability: .fastUnsafe))
        let store = temporary.store
        try Self.append(store, 600)
        try store.environmentForTesting.rawDelete(table: "merkle_nodes", key: Self.nodeKey(level: 1, index: 0))
        var report = try store.verify()
        #expect(report.problems.contains { $0.kind == .merkleTreeMismatch && $0.detail.contains("tile level 1 holds 1 nodes") },
                "\(report.problems)")
        try store.environmentForTesting.rawPut(table: "merkle_nodes", key: Self.nodeKey(level: 1, index: 0),
                                               value: [UInt8](repeating: 1, count: 32))
        try store.environmentForTesting.rawPut(table: "merkle_nodes", key: Self.nodeKey(level: 2, index: 0),
                                               value: [UInt8](repeating: 1, count: 32))
        report = try store.verify()
        #expect(report.problems.contains { $0.kind == .merkleTreeMismatch && $0.detail.contains("tile level 2 holds 1 nodes") },
                "\(report.problems)")
    }

    @Test func aStoreWithoutItsTreeGetsItAtItsNextWritableOpen() throws {
        let directory = try TemporaryDirectory(prefix: "larder-tree")
        let path = directory.path("store")
        var options = Store.Options(durability: .fastUnsafe)
        options.clock = ManualClock()
        do {
            let store = try Store.open(at: path, options: options)
            try Self.append(store, 700)
            // As a store written before the tree was kept: no stored node at all.
            for index in 0..<2 {
                try store.environmentForTesting.rawDelete(table: "merkle_nodes", key: Self.nodeKey(level: 1, index: UInt64(index)))
            }
            #expect(try !store.verify().isIntact)
            store.close()
        }
        var readOnly = options
        readOnly.readOnly = true
        do {
            // A read-only open changes nothing: the proofs that need the missing nodes fail.
            let store = try Store.open(at: path, options: readOnly)
            #expect(throws: LarderError.self) { try store.read { view in try view.audit.rootHash(treeSize: 600) } }
            store.close()
        }
        let store = try Store.open(at: path, options: options)
        defer { store.close() }
        let last = try #require(try store.read { view in try view.audit.records(fromSeq: UInt64.max, limit: 1, direction: .backward) }.records.first)
        #expect(last.record.event == .merkleTreeBuilt)
        #expect(last.record.payload == "{\"tree_size\":\(last.seq - 1),\"nodes_stored\":2}")
        #expect(try store.verify().isIntact)
        // The open after that one writes nothing more.
        store.close()
        let again = try Store.open(at: path, options: options)
        #expect(try again.read { view in try view.audit.head().seq } == last.seq)
        again.close()
    }

    @Test func everyValidRecordFitsAnEntryBundle() throws {
        let temporary = try TemporaryStore(options: Store.Options(durability: .fastUnsafe))
        let store = temporary.store
        // The largest record a caller can make: every field at its maximum.
        let identifier = String(repeating: "i", count: 128)
        let refs = (0..<AuditDraft.refsCountMax).map { index in
            CorrelationRef(String(repeating: "k", count: CorrelationRef.kindBytesMax),
                           String(repeating: "i", count: 125) + String(1000 + index).dropFirst())
        }
        let payload = "{\"x\":\"" + String(repeating: "y", count: AuditDraft.payloadBytesMax - 8) + "\"}"
        let context = WriteContext(actor: ActorIdentity(id: identifier, role: .accountManager), requestID: identifier,
                                   traceID: identifier)
        let entry = try store.write(context) { txn in
            try txn.appendAudit(AuditDraft(event: AuditEvent(rawValue: String(repeating: "E", count: 64)), refs: refs,
                                           failureCategory: identifier, responseType: identifier, reasonCode: identifier,
                                           payload: payload))
        }.result
        #expect(entry.recordBytes.count <= AuditRecord.encodedBytesMax)
        #expect(entry.recordBytes.count <= TlogEntryBundle.entryBytesMax)
        #expect(throws: LarderError.self) {
            try store.write(Self.writer) { txn in
                try txn.appendAudit(AuditDraft(event: "BIG", payload: "{\"x\":\"" + String(repeating: "y", count: AuditDraft.payloadBytesMax) + "\"}"))
            }
        }
    }
}
