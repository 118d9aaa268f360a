/// Checks RFC 6962 inclusion and consistency proofs without the tree: what an auditor, a
/// witness or a client runs against a root it trusts (from a verified checkpoint).
///
/// The algorithms are those of RFC 9162 sections 2.1.3.2 and 2.1.4.2, which accept exactly the
/// proofs RFC 6962 defines (no shorter, longer or reordered path verifies).
///
/// ```swift
/// guard MerkleProof.verifyConsistency(oldSize: saved.size, newSize: fetched.size,
///                                     oldRoot: saved.rootHash, newRoot: fetched.rootHash, proof: proof) else {
///     // a fork: the log rewrote history that this verifier saw
/// }
/// ```
public enum MerkleProof {
    /// Hashes in a proof at most: one per tree level of a 2^64-leaf tree, plus one.
    public static let hashesMax = 65

    /// The root that `proof` leads to from `leafHash` at `leafIndex` in a tree of `treeSize`
    /// leaves, or nil when the proof cannot be an audit path for that position (wrong length).
    public static func rootFromInclusionProof(leafHash: MerkleHash, leafIndex: UInt64, treeSize: UInt64,
                                              proof: [MerkleHash]) -> MerkleHash? {
        guard leafIndex < treeSize, proof.count <= hashesMax else { return nil }
        var fn = leafIndex
        var sn = treeSize - 1
        var root = leafHash
        for sibling in proof {
            guard sn != 0 else { return nil }
            if fn & 1 == 1 || fn == sn {
                root = .node(sibling, root)
                // A right-edge node without a right sibling: climb until the path turns again.
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                root = .node(root, sibling)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 ? root : nil
    }

    /// Whether `proof` shows the leaf `leafHash` at `leafIndex` in the tree of `treeSize` leaves
    /// whose root is `rootHash` (RFC 9162 section 2.1.3.2).
    public static func verifyInclusion(leafHash: MerkleHash, leafIndex: UInt64, treeSize: UInt64,
                                       proof: [MerkleHash], rootHash: MerkleHash) -> Bool {
        rootFromInclusionProof(leafHash: leafHash, leafIndex: leafIndex, treeSize: treeSize, proof: proof) == rootHash
    }

    /// Whether `proof` shows that the tree of `newSize` leaves with root `newRoot` extends the
    /// tree of `oldSize` leaves with root `oldRoot` (RFC 9162 section 2.1.4.2).
    ///
    /// Edge cases, as C2SP tlog-witness has them: equal sizes need an empty proof and equal
    /// roots; an old size of 0 needs an empty proof (every tree extends the empty one); an old
    /// size larger than the new one never verifies.
    public static func verifyConsistency(oldSize: UInt64, newSize: UInt64, oldRoot: MerkleHash, newRoot: MerkleHash,
                                         proof: [MerkleHash]) -> Bool {
        guard oldSize <= newSize, proof.count <= hashesMax else { return false }
        if oldSize == newSize { return proof.isEmpty && oldRoot == newRoot }
        if oldSize == 0 { return proof.isEmpty }
        guard !proof.isEmpty else { return false }
        var path = proof[...]
        // When the old tree is a complete subtree, its root is the first node of the path and the
        // proof leaves it out.
        var seed: MerkleHash
        if oldSize & (oldSize - 1) == 0 {
            seed = oldRoot
        } else {
            seed = path.removeFirst()
        }
        var fn = oldSize - 1
        var sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var oldHash = seed
        var newHash = seed
        for node in path {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                oldHash = .node(node, oldHash)
                newHash = .node(node, newHash)
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                newHash = .node(newHash, node)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && oldHash == oldRoot && newHash == newRoot
    }
}

/// An inclusion proof as the admin server serves it (`GET /v1/audit/proof/inclusion`): the
/// record's seq and leaf index (seq − 1), the tree size, the leaf hash, the root and the path.
///
/// ```swift
/// let document = MerkleInclusionProof(seq: 42, treeSize: 100, leafHash: leaf, rootHash: root, proof: path)
/// document.jsonText   // {"seq":42,"leaf_index":41,"tree_size":100,"leaf_hash":"…","root_hash":"…","proof":["…",…]}
/// ```
public struct MerkleInclusionProof: Hashable, Sendable {
    /// The audit record's sequence number (≥ 1).
    public let seq: UInt64
    public let treeSize: UInt64
    public let leafHash: MerkleHash
    public let rootHash: MerkleHash
    public let proof: [MerkleHash]

    public init(seq: UInt64, treeSize: UInt64, leafHash: MerkleHash, rootHash: MerkleHash, proof: [MerkleHash]) {
        precondition(seq >= 1, "audit sequence numbers start at 1")
        self.seq = seq
        self.treeSize = treeSize
        self.leafHash = leafHash
        self.rootHash = rootHash
        self.proof = proof
    }

    /// The leaf index of the record: seq − 1.
    public var leafIndex: UInt64 { seq - 1 }

    /// Whether the proof leads from the leaf to the root.
    public var isValid: Bool {
        MerkleProof.verifyInclusion(leafHash: leafHash, leafIndex: leafIndex, treeSize: treeSize, proof: proof, rootHash: rootHash)
    }

    /// `{"seq","leaf_index","tree_size","leaf_hash","root_hash","proof":[hex…]}`, hashes in lowercase hex.
    public var jsonText: String {
        var json = JSONWriter()
        json.object { o in
            o.field("seq", seq)
            o.field("leaf_index", leafIndex)
            o.field("tree_size", treeSize)
            o.field("leaf_hash", leafHash.hexString)
            o.field("root_hash", rootHash.hexString)
            o.array("proof") { list in for hash in proof { list.value(hash.hexString) } }
        }
        return json.text
    }
}

/// A consistency proof as the admin server serves it (`GET /v1/audit/proof/consistency`).
///
/// ```swift
/// MerkleConsistencyProof(fromSize: 10, toSize: 20, proof: hashes).jsonText
/// // {"from_size":10,"to_size":20,"proof":["…",…]}
/// ```
public struct MerkleConsistencyProof: Hashable, Sendable {
    public let fromSize: UInt64
    public let toSize: UInt64
    public let proof: [MerkleHash]

    public init(fromSize: UInt64, toSize: UInt64, proof: [MerkleHash]) {
        self.fromSize = fromSize
        self.toSize = toSize
        self.proof = proof
    }

    /// `{"from_size","to_size","proof":[hex…]}`, hashes in lowercase hex.
    public var jsonText: String {
        var json = JSONWriter()
        json.object { o in
            o.field("from_size", fromSize)
            o.field("to_size", toSize)
            o.array("proof") { list in for hash in proof { list.value(hash.hexString) } }
        }
        return json.text
    }
}
