public import Larder

/// The RFC 6962 Merkle root of a log read once, leaf by leaf, in O(log n) memory: what
/// `fleet verify` needs to compare the rows of a box with the roots its signed checkpoints name,
/// without a tree stored anywhere.
///
/// ```swift
/// var tree = MerkleRootAccumulator()
/// for leaf in leafHashes { tree.append(leaf) }     // leaf = SHA-256(0x00 ‖ record bytes)
/// let root = tree.root                               // equals a checkpoint's root at tree.size
/// ```
///
/// It keeps the roots of the perfect subtrees the leaves so far split into (largest first, one
/// per set bit of the size); the root folds them from the right, which is exactly how RFC 6962
/// splits a tree at the largest power of two below its size.
public struct MerkleRootAccumulator: Sendable {
    /// Leaves appended so far.
    public private(set) var size: UInt64 = 0
    /// Perfect subtrees, largest first: (leaf count, root).
    private var subtrees: [(leaves: UInt64, hash: MerkleHash)] = []

    public init() {}

    /// Appends the next leaf hash (index `size`).
    public mutating func append(_ leafHash: MerkleHash) {
        var carry = (leaves: UInt64(1), hash: leafHash)
        while let last = subtrees.last, last.leaves == carry.leaves {
            subtrees.removeLast()
            carry = (last.leaves * 2, MerkleHash.node(last.hash, carry.hash))
        }
        subtrees.append(carry)
        size += 1
        assert(subtrees.count == size.nonzeroBitCount, "one perfect subtree per set bit of the size")
    }

    /// The root of the leaves so far; SHA-256 of nothing for an empty tree, as RFC 6962 says.
    public var root: MerkleHash {
        guard var hash = subtrees.last?.hash else { return Self.emptyRoot }
        for subtree in subtrees.dropLast().reversed() {
            hash = MerkleHash.node(subtree.hash, hash)
        }
        return hash
    }

    /// SHA-256 of the empty string.
    static let emptyRoot = MerkleHash(bytes: AuditChain.sha256([]))!
}
