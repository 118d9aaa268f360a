/// Keeps a ``MutableMerkleTileStorage`` up to date as leaves are appended: after leaf n, it
/// computes the hash of every subtree of 256^L leaves that leaf n completes (L ≥ 1), from the
/// 256 hashes one level below, and asks the storage to keep it.
///
/// Cost: one 256-leaf subtree (255 node hashes, 256 hash reads) every 256 appends, one
/// 256²-leaf subtree every 65,536, … — about one SHA-256 and one hash read per append,
/// amortized, and one stored hash per 256 appends.
///
/// The builder holds no state: the storage is the state, so the builder can run inside the
/// same write transaction as the leaves it covers, and a rolled-back transaction leaves nothing
/// to repair.
///
/// ```swift
/// // In the transaction that appended audit record `seq` (leaf index seq − 1):
/// try MerkleTreeBuilder().appendLeaf(seq - 1, to: &tiles)
/// ```
public struct MerkleTreeBuilder: Sendable {
    /// Tree levels per tile level: 8 (256-wide tiles, as C2SP tlog-tiles). Tests use smaller values.
    public let tileHeight: Int

    public init() { tileHeight = 8 }

    package init(tileHeight: Int) {
        precondition((1...8).contains(tileHeight), "a tile height is 1 to 8 tree levels")
        self.tileHeight = tileHeight
    }

    /// The subtree hashes that appending leaf `index` completes, lowest tile level first; empty
    /// for 255 appends out of 256.
    ///
    /// `storage` must already hold leaf `index` and every node completed by earlier leaves. The
    /// caller stores the result (in order) before appending the next leaf.
    /// - throws: what `storage` throws when it cannot read a hash.
    public func nodesCompleted(byAppendingLeaf index: UInt64,
                               from storage: some MerkleTileStorage) throws(LarderError) -> [MerkleStoredNode] {
        precondition(index < UInt64.max, "the tree is full")
        let size = index + 1
        let width = UInt64(1) << tileHeight
        var completed: [MerkleStoredNode] = []
        var level = 1
        // A subtree of tile level L completes exactly when the size becomes a multiple of 256^L.
        while tileHeight * level < 64, size & ((UInt64(1) << (tileHeight * level)) - 1) == 0 {
            let nodeIndex = (size >> (tileHeight * level)) - 1
            let first = nodeIndex * width
            var children: [MerkleHash]
            if let fresh = completed.last {
                // The last child is the node completed one level below by this same append:
                // the storage does not hold it yet.
                children = try Self.read(storage, tileLevel: level - 1, first..<(first + width - 1))
                children.append(fresh.hash)
            } else {
                children = try Self.read(storage, tileLevel: level - 1, first..<(first + width))
            }
            completed.append(MerkleStoredNode(tileLevel: level, index: nodeIndex, hash: Self.perfectRoot(&children)))
            level += 1
        }
        return completed
    }

    /// Computes the subtree hashes that appending leaf `index` completes and stores them.
    /// - throws: what `storage` throws.
    /// - returns: how many hashes were stored (0 for 255 appends out of 256).
    @discardableResult
    public func appendLeaf<Storage: MutableMerkleTileStorage>(_ index: UInt64, to storage: inout Storage) throws(LarderError) -> Int {
        let nodes = try nodesCompleted(byAppendingLeaf: index, from: storage)
        for node in nodes { try storage.store(node) }
        return nodes.count
    }

    /// Reads `range` at `tileLevel` and checks the storage kept its promise of one hash per index.
    static func read(_ storage: some MerkleTileStorage, tileLevel: Int, _ range: Range<UInt64>) throws(LarderError) -> [MerkleHash] {
        let hashes = try storage.hashes(tileLevel: tileLevel, in: range)
        guard hashes.count == range.count else {
            throw LarderError(.persistenceError,
                              "The Merkle tree storage returned \(hashes.count) hashes for \(range.count) at tile level \(tileLevel), from index \(range.lowerBound).",
                              failureClass: .dataInconsistency, failurePoint: .read)
        }
        return hashes
    }

    /// The root of a perfect subtree whose 2^k bottom hashes are `hashes` (reduced in place).
    static func perfectRoot(_ hashes: inout [MerkleHash]) -> MerkleHash {
        precondition(!hashes.isEmpty && hashes.count & (hashes.count - 1) == 0, "a perfect subtree has 2^k bottom hashes")
        var count = hashes.count
        while count > 1 {
            for pair in 0..<(count / 2) { hashes[pair] = .node(hashes[2 * pair], hashes[2 * pair + 1]) }
            count /= 2
        }
        return hashes[0]
    }
}
