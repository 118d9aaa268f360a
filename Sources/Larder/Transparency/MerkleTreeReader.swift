import Crypto

/// Roots, inclusion proofs, consistency proofs and tlog tiles of an RFC 6962 Merkle tree, for any
/// tree size up to the size its ``MerkleTileStorage`` holds.
///
/// Every node a proof needs is either a stored hash (a complete subtree of 256^L leaves), or is
/// recomputed from at most 128 consecutive hashes of the nearest stored level below it. A root or
/// a proof therefore reads O(log n) ranges and hashes at most a few hundred times per 8 tree
/// levels, whatever the tree size.
///
/// ```swift
/// let reader = MerkleTreeReader(tiles, treeSize: head.seq)
/// let root = try reader.rootHash(treeSize: head.seq)
/// let proof = try reader.inclusionProof(leafIndex: seq - 1, treeSize: head.seq)
/// assert(MerkleProof.verifyInclusion(leafHash: leaf, leafIndex: seq - 1, treeSize: head.seq, proof: proof, rootHash: root))
/// ```
public struct MerkleTreeReader<Storage: MerkleTileStorage> {
    public let storage: Storage
    /// The number of leaves the storage holds (and the largest tree size it can answer for).
    public let treeSize: UInt64
    /// Tree levels per tile level (8).
    public let tileHeight: Int

    /// A reader over `storage`, which holds the leaves `0 ..< treeSize` and every subtree hash
    /// they complete.
    public init(_ storage: Storage, treeSize: UInt64) {
        self.init(storage, treeSize: treeSize, tileHeight: 8)
    }

    package init(_ storage: Storage, treeSize: UInt64, tileHeight: Int) {
        precondition((1...8).contains(tileHeight), "a tile height is 1 to 8 tree levels")
        self.storage = storage
        self.treeSize = treeSize
        self.tileHeight = tileHeight
    }

    /// The root hash of the tree of the first `treeSize` leaves; for 0, SHA-256 of nothing (RFC 6962).
    /// - throws: VALIDATION_FAILED when `treeSize` exceeds the storage's size; storage errors.
    public func rootHash(treeSize size: UInt64) throws(LarderError) -> MerkleHash {
        try check(size: size, "tree_size")
        guard size > 0 else { return MerkleHash(bytes: Array(SHA256.hash(data: [UInt8]())))! }
        return try hash(ofRange: 0..<size)
    }

    /// MTH(D[lo:hi]) of RFC 6962: the Merkle Tree Hash of the leaves in `range` taken as a tree of
    /// their own. Cheap for nodes of the tree (aligned ranges), proportional to the range otherwise.
    /// - throws: VALIDATION_FAILED for an empty range or one past the storage's size; storage errors.
    public func hash(ofRange range: Range<UInt64>) throws(LarderError) -> MerkleHash {
        guard !range.isEmpty else { throw LarderError(.validationFailed, "The Merkle tree hash of an empty range is not defined here.") }
        try check(size: range.upperBound, "range end")
        return try rangeHash(range.lowerBound, range.upperBound)
    }

    /// The audit path of RFC 6962 section 2.1.1 (RFC 9162 section 2.1.3.1) for the leaf at
    /// `leafIndex` in the tree of size `treeSize`: the sibling hashes from the leaf up.
    /// - throws: VALIDATION_FAILED unless `leafIndex < treeSize ≤` the storage's size; storage errors.
    public func inclusionProof(leafIndex: UInt64, treeSize size: UInt64) throws(LarderError) -> [MerkleHash] {
        try check(size: size, "tree_size")
        guard leafIndex < size else {
            throw LarderError(.validationFailed, "Leaf index \(leafIndex) is not in a tree of size \(size).")
        }
        var path: [MerkleHash] = []
        var lo: UInt64 = 0
        var hi = size
        while hi - lo > 1 {
            let split = lo + Self.largestPowerOfTwo(below: hi - lo)
            if leafIndex < split {
                path.append(try rangeHash(split, hi))
                hi = split
            } else {
                path.append(try rangeHash(lo, split))
                lo = split
            }
        }
        return path.reversed()
    }

    /// The consistency proof of RFC 6962 section 2.1.2 (RFC 9162 section 2.1.4.1) from the tree
    /// of size `oldSize` to the tree of size `newSize`. Empty when `oldSize` is 0 or equals
    /// `newSize` (nothing to prove; C2SP tlog-witness sends no lines then).
    /// - throws: VALIDATION_FAILED unless `oldSize ≤ newSize ≤` the storage's size; storage errors.
    public func consistencyProof(from oldSize: UInt64, to newSize: UInt64) throws(LarderError) -> [MerkleHash] {
        try check(size: newSize, "to_size")
        guard oldSize <= newSize else {
            throw LarderError(.validationFailed, "from_size \(oldSize) is larger than to_size \(newSize).")
        }
        guard oldSize > 0, oldSize < newSize else { return [] }
        var proof: [MerkleHash] = []
        var lo: UInt64 = 0
        var hi = newSize
        var known = oldSize     // leaves of the old tree inside [lo, hi), counted from lo
        var isWholeOldTree = true  // SUBPROOF's b: the node at [lo, lo+known) is the old root itself
        while true {
            if known == hi - lo {
                if !isWholeOldTree { proof.append(try rangeHash(lo, hi)) }
                break
            }
            let half = Self.largestPowerOfTwo(below: hi - lo)
            if known <= half {
                proof.append(try rangeHash(lo + half, hi))
                hi = lo + half
            } else {
                proof.append(try rangeHash(lo, lo + half))
                lo += half
                known -= half
                isWholeOldTree = false
            }
        }
        return proof.reversed()
    }

    /// The bytes of a C2SP tlog-tiles hash tile: `tile.width` hashes of tile level `tile.level`,
    /// concatenated (32 bytes each).
    /// - throws: NOT_FOUND when the tile reaches past the storage's size (not yet complete);
    ///   storage errors.
    public func tileData(_ tile: TlogTile) throws(LarderError) -> [UInt8] {
        let available = tile.level * tileHeight >= 64 ? 0 : treeSize >> (tile.level * tileHeight)
        let first = tile.index &* UInt64(TlogTile.width)
        guard tile.index <= UInt64.max / UInt64(TlogTile.width), first + UInt64(tile.width) <= available else {
            throw LarderError(.notFound, "Tile \(tile.path) is beyond the tree of size \(treeSize).")
        }
        let hashes = try MerkleTreeBuilder.read(storage, tileLevel: tile.level, first..<(first + UInt64(tile.width)))
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hashes.count * MerkleHash.byteCount)
        for hash in hashes { bytes.append(contentsOf: hash.bytes) }
        return bytes
    }

    /// Recomputes every stored subtree hash of the tree of `treeSize` leaves from the level below
    /// and returns the first that differs (lowest level first, then lowest index), or nil when the
    /// stored tree matches the leaves. Reads every hash once: O(n).
    /// - throws: storage errors, including a stored hash that is missing.
    public func firstMismatchedNode() throws(LarderError) -> (stored: MerkleStoredNode, expected: MerkleHash)? {
        let width = UInt64(1) << tileHeight
        var level = 1
        while level * tileHeight < 64 {
            let count = treeSize >> (level * tileHeight)
            if count == 0 { break }
            var index: UInt64 = 0
            while index < count {
                let batch = min(count - index, 1024)
                let stored = try MerkleTreeBuilder.read(storage, tileLevel: level, index..<(index + batch))
                for offset in 0..<batch {
                    let node = index + offset
                    var children = try MerkleTreeBuilder.read(storage, tileLevel: level - 1, (node * width)..<((node + 1) * width))
                    let expected = MerkleTreeBuilder.perfectRoot(&children)
                    if stored[Int(offset)] != expected {
                        return (MerkleStoredNode(tileLevel: level, index: node, hash: stored[Int(offset)]), expected)
                    }
                }
                index += batch
            }
            level += 1
        }
        return nil
    }

    private func check(size: UInt64, _ name: String) throws(LarderError) {
        guard size <= treeSize else {
            throw LarderError(.validationFailed, "\(name) \(size) is larger than the tree (\(treeSize) leaves).")
        }
    }

    /// MTH(D[lo:hi]), hi > lo. A power-of-two range aligned on its size is a node of every tree
    /// containing it, computed from stored hashes; any other range splits as RFC 6962 defines.
    private func rangeHash(_ lo: UInt64, _ hi: UInt64) throws(LarderError) -> MerkleHash {
        let count = hi - lo
        if count & (count - 1) == 0, lo & (count - 1) == 0 {
            return try perfectHash(from: lo, height: count.trailingZeroBitCount)
        }
        let split = lo + Self.largestPowerOfTwo(below: count)
        return .node(try rangeHash(lo, split), try rangeHash(split, hi))
    }

    /// The hash of the complete subtree of 2^height leaves starting at leaf `lo` (a multiple of
    /// 2^height), from the highest stored level at or below it: at most 2^(tileHeight−1) reads.
    private func perfectHash(from lo: UInt64, height: Int) throws(LarderError) -> MerkleHash {
        let level = height / tileHeight
        let shift = level * tileHeight
        let count = UInt64(1) << (height - shift)
        let first = lo >> shift
        var hashes = try MerkleTreeBuilder.read(storage, tileLevel: level, first..<(first + count))
        return MerkleTreeBuilder.perfectRoot(&hashes)
    }

    /// The largest power of two strictly below `n` (n ≥ 2): RFC 6962's split point k.
    static func largestPowerOfTwo(below n: UInt64) -> UInt64 {
        precondition(n >= 2)
        return UInt64(1) << (63 - (n - 1).leadingZeroBitCount)
    }
}
