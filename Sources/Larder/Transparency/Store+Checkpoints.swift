import Foundation
import LarderStorage

/// A checkpoint the store signed and recorded as a `CHECKPOINT_SIGNED` audit record.
///
/// The record is appended after the signature, in the same transaction, so the checkpoint covers
/// the log just before its own record: `seq == checkpoint.treeSize + 1`.
public struct SignedCheckpoint: Sendable, Hashable {
    /// Origin (the key's name), tree size and root.
    public let checkpoint: Checkpoint
    /// The signed note, exactly as signed and published (C2SP signed-note text).
    public let note: String
    /// The seq of the `CHECKPOINT_SIGNED` record.
    public let seq: UInt64
    /// When it was signed (the record's time), microseconds since 1970, UTC.
    public let timeMicros: UnixMicros
    /// The signing key's ID, as 8 lowercase hex digits (the verifier key's middle field).
    public let keyIDHex: String

    /// The correlation ref kind of `CHECKPOINT_SIGNED` records; the id is the key ID in hex.
    public static let keyRefKind = "checkpoint_key"

    /// The ref that files a checkpoint under its key: `checkpoint_key:<8 hex key ID>`.
    public static func keyRef(_ keyIDHex: String) -> CorrelationRef { CorrelationRef(keyRefKind, keyIDHex) }

    /// The payload of a `CHECKPOINT_SIGNED` record (docs/FORMAT.md section 14.7).
    static func payload(_ checkpoint: Checkpoint, note: String, keyIDHex: String) -> String {
        var json = JSONWriter()
        json.object { o in
            o.field("origin", checkpoint.origin)
            o.field("tree_size", checkpoint.treeSize)
            o.field("root_hash", checkpoint.rootHash.hexString)
            o.field("key_name", checkpoint.origin)
            o.field("key_id", keyIDHex)
            o.field("note", note)
        }
        return json.text
    }

    private struct Payload: Decodable {
        let tree_size: UInt64
        let root_hash: String
        let key_id: String
        let note: String
    }

    /// The checkpoint a `CHECKPOINT_SIGNED` record holds; nil for a record of another event.
    /// - throws: PERSISTENCE_ERROR (data inconsistency) for a malformed payload or note.
    init?(_ entry: AuditEntry) throws(LarderError) {
        guard entry.record.event == .checkpointSigned else { return nil }
        let decoded: Payload
        do {
            decoded = try JSONDecoder().decode(Payload.self, from: Data(entry.record.payload.utf8))
        } catch {
            throw Self.damaged(entry.seq, "its payload is not a checkpoint payload")
        }
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint(body: try SignedNote(parsing: decoded.note).text)
        } catch {
            throw Self.damaged(entry.seq, error.message)
        }
        guard checkpoint.treeSize == decoded.tree_size, checkpoint.rootHash.hexString == decoded.root_hash,
              checkpoint.treeSize == entry.seq - 1 else {
            throw Self.damaged(entry.seq, "its note, payload and seq disagree on the tree")
        }
        self.checkpoint = checkpoint
        self.note = decoded.note
        self.seq = entry.seq
        self.timeMicros = entry.record.timeMicros
        self.keyIDHex = decoded.key_id
    }

    private static func damaged(_ seq: UInt64, _ detail: String) -> LarderError {
        LarderError(.persistenceError, "The CHECKPOINT_SIGNED record \(seq) is malformed: \(detail).",
                    failureClass: .dataInconsistency, failurePoint: .read)
    }
}

extension Store {
    /// Signs a checkpoint of the audit log now with `key` and records it (`CHECKPOINT_SIGNED`,
    /// payload: the note, tree size, root and key) in one write; returns the signed note.
    ///
    /// The key stays with the caller: the store never keeps it. Keep it outside the store's
    /// directory, so that whoever can rewrite the store cannot also sign for it.
    ///
    /// ```swift
    /// let key = try NoteSigningKey.load(from: "/etc/kitchen/checkpoint.key")
    /// let signed = try store.signCheckpoint(with: key)
    /// print(signed.note)     // what auditors fetch from GET /v1/audit/checkpoint
    /// ```
    ///
    /// - parameter key: the signing key; its name is the checkpoint's origin.
    /// - parameter context: who signs; default the store itself (`larder`, system), with the
    ///   requestID `larder.checkpoint.<micros>`.
    /// - throws: everything ``write(_:_:)-27jq4`` throws.
    @discardableResult
    public func signCheckpoint(with key: NoteSigningKey, context: WriteContext? = nil) throws -> SignedCheckpoint {
        try write(context ?? checkpointContext()) { txn in try txn.appendCheckpoint(signedBy: key) }.result
    }

    /// The async form of ``signCheckpoint(with:context:)-3pwsa``.
    ///
    /// - throws: `CancellationError` before the write was queued; everything the blocking form throws.
    @discardableResult
    public func signCheckpoint(with key: NoteSigningKey, context: WriteContext? = nil) async throws -> SignedCheckpoint {
        try await write(context ?? checkpointContext()) { txn in try txn.appendCheckpoint(signedBy: key) }.result
    }

    private func checkpointContext() -> WriteContext {
        WriteContext(actor: .larder, requestID: "larder.checkpoint.\(options.clock.now().unixMicros)")
    }

    // MARK: Catch-up

    /// Computes the stored nodes of the Merkle tree for a store written before the store kept
    /// them (or whose nodes are incomplete), in one audited write (`MERKLE_TREE_BUILT`). Does
    /// nothing, and writes nothing, when the tree is complete.
    func buildMissingMerkleNodes() throws(LarderError) {
        let complete: Bool
        do {
            complete = try readTables { txn in
                try StoreMerkleTiles(txn: txn, tables: tables).isComplete(treeSize: try AuditLog(txn: txn, tables: tables).head().seq)
            }
        } catch let error as LarderError {
            throw error
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
        guard !complete else { return }
        let now = options.clock.now().unixMicros
        let context = WriteContext(actor: .larder, requestID: "larder.tree.\(now)")
        let outcome = try internalWrite(context) { txn -> (size: UInt64, stored: Int)? in
            let size = try txn.nextAuditSeq() - 1
            var tiles = StoreMerkleTiles(txn: txn.txn, tables: tables)
            // Another process may have built it since the snapshot looked.
            guard try !tiles.isComplete(treeSize: size) else { return nil }
            let builder = MerkleTreeBuilder()
            var stored = 0
            // Only every 256th leaf completes a subtree; the builder overwrites whatever an
            // incomplete tree held with the hashes the records give.
            var index: UInt64 = 255
            while index < size {
                stored += try builder.appendLeaf(index, to: &tiles)
                index += 256
            }
            var payload = JSONWriter()
            payload.object { o in
                o.field("tree_size", size)
                o.field("nodes_stored", stored)
            }
            try txn.appendAudit(AuditDraft(event: .merkleTreeBuilt, payload: payload.text))
            return (size, stored)
        }
        if let built = outcome.result {
            log.merkleTreeBuilt(treeSize: built.size, nodesStored: built.stored, context: context, seq: outcome.auditSeq)
        }
    }
}

extension StoreTransaction {
    /// Signs a checkpoint of the log as it stands in this transaction and appends its
    /// `CHECKPOINT_SIGNED` record; the checkpoint covers every record before that one.
    func appendCheckpoint(signedBy key: NoteSigningKey) throws(LarderError) -> SignedCheckpoint {
        let size = try nextAuditSeq() - 1
        let reader = MerkleTreeReader(StoreMerkleTiles(txn: txn, tables: tables), treeSize: size)
        let checkpoint = try Checkpoint(origin: key.name, treeSize: size, rootHash: try reader.rootHash(treeSize: size))
        let note = try checkpoint.signed(by: key)
        let keyID = key.verifierKey.keyIDHex
        let entry = try appendAudit(AuditDraft(event: .checkpointSigned, refs: [SignedCheckpoint.keyRef(keyID)],
                                               payload: SignedCheckpoint.payload(checkpoint, note: note, keyIDHex: keyID)))
        guard let signed = try SignedCheckpoint(entry) else { preconditionFailure("a CHECKPOINT_SIGNED record that is not one") }
        return signed
    }
}

extension AuditLog {
    /// The Merkle tree of this snapshot's log, as large as the log.
    func merkleTree() throws(LarderError) -> MerkleTreeReader<StoreMerkleTiles> {
        MerkleTreeReader(StoreMerkleTiles(txn: txn, tables: tables), treeSize: try head().seq)
    }

    /// The Merkle tree of the log, checked to hold at least `treeSize` records.
    private func merkleTree(holding treeSize: UInt64) throws(LarderError) -> MerkleTreeReader<StoreMerkleTiles> {
        let tree = try merkleTree()
        guard treeSize <= tree.treeSize else {
            throw LarderError(.notFound, "The audit log has \(tree.treeSize) records; there is no tree of \(treeSize).")
        }
        return tree
    }

    /// The RFC 6962 root of the first `treeSize` records (docs/FORMAT.md section 14.2).
    /// - throws: NOT_FOUND when `treeSize` exceeds the log; PERSISTENCE_ERROR for a damaged tree.
    public func rootHash(treeSize: UInt64) throws(LarderError) -> MerkleHash {
        try merkleTree(holding: treeSize).rootHash(treeSize: treeSize)
    }

    /// The inclusion proof of record `seq` (leaf index seq − 1) in the tree of the first
    /// `treeSize` records, with its leaf hash and that tree's root.
    ///
    /// ```swift
    /// let proof = try store.read { view in try view.audit.inclusionProof(seq: 42, treeSize: checkpoint.treeSize) }
    /// proof.jsonText   // {"seq":42,"leaf_index":41,"tree_size":…,"leaf_hash":"…","root_hash":"…","proof":[…]}
    /// ```
    /// - throws: VALIDATION_FAILED for seq 0; NOT_FOUND unless seq ≤ treeSize ≤ the log's size
    ///   (no such record in that tree, or no such tree yet); PERSISTENCE_ERROR for a damaged tree.
    public func inclusionProof(seq: UInt64, treeSize: UInt64) throws(LarderError) -> MerkleInclusionProof {
        guard seq >= 1 else { throw LarderError(.validationFailed, "Audit sequence numbers start at 1.") }
        guard seq <= treeSize else {
            throw LarderError(.notFound, "Record \(seq) is not in the tree of the first \(treeSize) records.")
        }
        let tree = try merkleTree(holding: treeSize)
        let path = try tree.inclusionProof(leafIndex: seq - 1, treeSize: treeSize)
        let leaf = try tree.storage.hashes(tileLevel: 0, in: (seq - 1)..<seq)[0]
        return MerkleInclusionProof(seq: seq, treeSize: treeSize, leafHash: leaf, rootHash: try tree.rootHash(treeSize: treeSize),
                                    proof: path)
    }

    /// The consistency proof from the tree of the first `fromSize` records to the tree of the
    /// first `toSize` (empty when `fromSize` is 0 or equals `toSize`).
    /// - throws: NOT_FOUND unless fromSize ≤ toSize ≤ the log's size (a log never shrinks, so
    ///   there is no proof from a larger tree); PERSISTENCE_ERROR for a damaged tree.
    public func consistencyProof(fromSize: UInt64, toSize: UInt64) throws(LarderError) -> MerkleConsistencyProof {
        guard fromSize <= toSize else {
            throw LarderError(.notFound, "There is no consistency proof from \(fromSize) records to fewer (\(toSize)).")
        }
        return MerkleConsistencyProof(fromSize: fromSize, toSize: toSize,
                                      proof: try merkleTree(holding: toSize).consistencyProof(from: fromSize, to: toSize))
    }

    /// The bytes of a C2SP tlog-tiles hash tile of the log as it stands (32 bytes per hash).
    /// - throws: NOT_FOUND when the log has not reached the tile yet; PERSISTENCE_ERROR for a damaged tree.
    public func tileData(_ tile: TlogTile) throws(LarderError) -> [UInt8] {
        try merkleTree().tileData(tile)
    }

    /// The C2SP tlog-tiles entry bundle of level-0 tile `tile`: the record bytes of seqs
    /// `256·N + 1 … 256·N + W`, each after its `u16` byte count.
    /// - throws: NOT_FOUND when the log has not reached the tile; COMPUTE_ERROR when a record
    ///   (written before records were capped at 65,535 bytes) does not fit a bundle.
    public func entryBundle(_ tile: TlogTile) throws(LarderError) -> [UInt8] {
        precondition(tile.level == 0, "entry bundles are level-0 tiles")
        let head = try head().seq
        guard tile.index <= (UInt64.max - 256) / 256, tile.index * 256 + UInt64(tile.width) <= head else {
            throw LarderError(.notFound, "Entry bundle \(tile.entriesPath) is beyond the log of \(head) records.")
        }
        let first = tile.index * 256 + 1
        var entries: [[UInt8]] = []
        entries.reserveCapacity(tile.width)
        try txn.forEach(tables.audit, in: .between(first, first + UInt64(tile.width))) {
            (entry: Entry<UInt64, [UInt8]>) throws(LarderError) -> Bool in
            let parts = try AuditEntry.split(entry.value)
            guard parts.record.count <= TlogEntryBundle.entryBytesMax else {
                throw LarderError(.computeError,
                                  "Audit record \(entry.key) has \(parts.record.count) bytes, more than an entry bundle carries (\(TlogEntryBundle.entryBytesMax)); read it from /v1/audit/\(entry.key).")
            }
            entries.append(parts.record)
            return true
        }
        guard entries.count == tile.width else {
            throw LarderError(.persistenceError, "The audit log has a gap in seqs \(first)..<\(first + UInt64(tile.width)); run verify.",
                              failureClass: .dataInconsistency, failurePoint: .read)
        }
        return try TlogEntryBundle.encode(entries)
    }

    // MARK: Checkpoints

    /// The checkpoint recorded at `seq`, or nil when that record is not a `CHECKPOINT_SIGNED` one.
    /// - throws: PERSISTENCE_ERROR for a malformed checkpoint record.
    public func checkpoint(seq: UInt64) throws(LarderError) -> SignedCheckpoint? {
        guard let entry = try record(seq: seq) else { return nil }
        return try SignedCheckpoint(entry)
    }

    /// The checkpoint of the tree of `treeSize` records, or nil when none was signed at that
    /// size. A checkpoint's record directly follows the records it covers, so it is record
    /// `treeSize + 1`.
    /// - throws: PERSISTENCE_ERROR for a malformed checkpoint record.
    public func checkpoint(treeSize: UInt64) throws(LarderError) -> SignedCheckpoint? {
        guard treeSize < UInt64.max else { return nil }
        return try checkpoint(seq: treeSize + 1)
    }

    /// The newest checkpoint signed by `key` (its name and key ID), or nil when there is none.
    ///
    /// ```swift
    /// let latest = try store.read { view in try view.audit.latestCheckpoint(signedBy: key.verifierKey) }
    /// ```
    /// - throws: PERSISTENCE_ERROR for a malformed checkpoint record.
    public func latestCheckpoint(signedBy key: NoteVerifierKey) throws(LarderError) -> SignedCheckpoint? {
        let prefix = KeyPair(SignedCheckpoint.keyRefKind, key.keyIDHex)
        var found: SignedCheckpoint?
        // Newest first; a key of another name with the same ID (a 32-bit collision) is skipped.
        try txn.forEach(tables.auditByRef, in: .prefix(prefix), direction: .backward) {
            (entry: Entry<KeyPair<KeyPair<String, String>, UInt64>, Empty>) throws(LarderError) -> Bool in
            guard let signed = try checkpoint(seq: entry.key.second) else { return true }
            guard signed.checkpoint.origin.utf8.elementsEqual(key.name.utf8) else { return true }
            found = signed
            return false
        }
        return found
    }

    /// Checkpoints signed by `key`, oldest first, paged like the other queries (`limit` 1 to 1,000).
    /// - throws: VALIDATION_FAILED for a bad limit or cursor; PERSISTENCE_ERROR for a malformed record.
    public func checkpoints(signedBy key: NoteVerifierKey, limit: Int,
                            cursor: String? = nil) throws(LarderError) -> (checkpoints: [SignedCheckpoint], nextCursor: String?) {
        let page = try records(ref: SignedCheckpoint.keyRef(key.keyIDHex), limit: limit, cursor: cursor)
        var found: [SignedCheckpoint] = []
        for entry in page.records {
            if let signed = try SignedCheckpoint(entry), signed.checkpoint.origin.utf8.elementsEqual(key.name.utf8) {
                found.append(signed)
            }
        }
        return (found, page.nextCursor)
    }
}
