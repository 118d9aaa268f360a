/// Where the hashes of an append-only RFC 6962 Merkle tree are kept: the leaf hashes, plus the
/// hash of every complete subtree of 256^L leaves (L ≥ 1), written once when the subtree completes.
///
/// The levels are those of C2SP tlog-tiles: **tile level** L holds, at index i, the Merkle Tree
/// Hash of leaves `i·256^L ..< (i+1)·256^L`. Level 0 is the leaf hashes (which the audit log
/// already keeps in every record); levels 1, 2, … are the stored nodes (tree heights 8, 16, …).
/// Every other node of the tree is recomputed on demand from the nearest stored level, so the
/// storage grows by one hash per 256 leaves and a root or a proof reads O(log n) ranges.
///
/// A conformer answers reads; ``MutableMerkleTileStorage`` adds the write that
/// ``MerkleTreeBuilder`` asks for. The same tree code runs over ``InMemoryMerkleTileStorage``
/// and over a store's tables.
public protocol MerkleTileStorage {
    /// The hashes at `tileLevel` for the indices in `range`, in index order, exactly
    /// `range.count` of them.
    ///
    /// Callers only ask for hashes that exist: leaves below the tree size and complete subtrees.
    /// - throws: a ``LarderError`` when the storage cannot be read, or when a hash that should
    ///   exist is missing (a damaged store: `PERSISTENCE_ERROR`, data inconsistency).
    func hashes(tileLevel: Int, in range: Range<UInt64>) throws(LarderError) -> [MerkleHash]
}

/// A ``MerkleTileStorage`` that ``MerkleTreeBuilder`` can write completed subtree hashes into.
public protocol MutableMerkleTileStorage: MerkleTileStorage {
    /// Keeps `node`. Called once per node, in increasing index order per level, and always
    /// before the next leaf is appended; a later ``MerkleTileStorage/hashes(tileLevel:in:)`` must see it.
    /// - throws: a ``LarderError`` when the write fails.
    mutating func store(_ node: MerkleStoredNode) throws(LarderError)
}

/// One stored subtree hash: tile level `tileLevel` (≥ 1), index `index`.
public struct MerkleStoredNode: Hashable, Sendable, CustomStringConvertible {
    /// The tile level: the node covers 256^tileLevel leaves.
    public let tileLevel: Int
    /// The node's index within its level: it covers leaves `index·256^L ..< (index+1)·256^L`.
    public let index: UInt64
    public let hash: MerkleHash

    public init(tileLevel: Int, index: UInt64, hash: MerkleHash) {
        self.tileLevel = tileLevel
        self.index = index
        self.hash = hash
    }

    public var description: String { "level \(tileLevel) index \(index): \(hash.hexString)" }
}

/// A ``MutableMerkleTileStorage`` in memory: for tests, for tools that recompute a root from
/// exported records, and as the reference the store's tables are checked against.
///
/// ```swift
/// var tree = InMemoryMerkleTileStorage()
/// for record in records { try tree.appendLeaf(.leaf(record)) }
/// let root = try tree.reader.rootHash(treeSize: tree.treeSize)
/// ```
public struct InMemoryMerkleTileStorage: MutableMerkleTileStorage, Sendable {
    /// `levels[0]` are the leaf hashes, `levels[L]` the stored hashes of tile level L.
    public private(set) var levels: [[MerkleHash]] = [[]]
    let builder: MerkleTreeBuilder

    /// An empty tree.
    public init() { builder = MerkleTreeBuilder() }

    /// An empty tree with another tile height (tests use small ones to reach many levels with few leaves).
    package init(tileHeight: Int) { builder = MerkleTreeBuilder(tileHeight: tileHeight) }

    /// The number of leaves.
    public var treeSize: UInt64 { UInt64(levels[0].count) }

    /// A reader over this storage at its current size.
    public var reader: MerkleTreeReader<InMemoryMerkleTileStorage> {
        MerkleTreeReader(self, treeSize: treeSize, tileHeight: builder.tileHeight)
    }

    /// Appends a leaf hash and stores the subtree hashes it completes.
    /// - throws: never in memory; the signature matches the builder's.
    /// - returns: how many subtree hashes this append stored.
    @discardableResult
    public mutating func appendLeaf(_ leaf: MerkleHash) throws(LarderError) -> Int {
        let index = treeSize
        levels[0].append(leaf)
        return try builder.appendLeaf(index, to: &self)
    }

    public func hashes(tileLevel: Int, in range: Range<UInt64>) throws(LarderError) -> [MerkleHash] {
        guard tileLevel >= 0, tileLevel < levels.count, range.upperBound <= UInt64(levels[tileLevel].count) else {
            throw LarderError(.persistenceError,
                              "The Merkle tree has no hashes \(range.lowerBound)..<\(range.upperBound) at tile level \(tileLevel).",
                              failureClass: .dataInconsistency, failurePoint: .read)
        }
        return Array(levels[tileLevel][Int(range.lowerBound)..<Int(range.upperBound)])
    }

    public mutating func store(_ node: MerkleStoredNode) throws(LarderError) {
        precondition(node.tileLevel >= 1 && node.tileLevel <= levels.count, "a stored node skips a level")
        if node.tileLevel == levels.count { levels.append([]) }
        precondition(node.index == UInt64(levels[node.tileLevel].count),
                     "stored nodes are written once, in order: \(node) after \(levels[node.tileLevel].count)")
        levels[node.tileLevel].append(node.hash)
    }

    /// Appends a leaf hash without storing the subtrees it completes (to drive the builder by hand).
    package mutating func appendLeafWithoutBuildingForTesting(_ leaf: MerkleHash) {
        levels[0].append(leaf)
    }

    /// Replaces one stored hash, as a damaged store would hold it (tests of verification).
    package mutating func overwriteForTesting(tileLevel: Int, index: Int, with hash: MerkleHash) {
        levels[tileLevel][index] = hash
    }
}
