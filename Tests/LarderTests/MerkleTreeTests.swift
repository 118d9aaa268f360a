import Crypto
import Foundation
import Larder
import LarderTesting
import Testing

/// RFC 6962 section 2.1, transcribed as directly as possible (memoized so that checking
/// every size and index stays fast): the reference the tile-based tree is checked against.
/// Shares no code with Larder's tree: only SHA-256 over byte arrays.
final class ReferenceMerkle {
    let leaves: [[UInt8]]
    private var memo: [Range<Int>: [UInt8]] = [:]

    init(leaves: [[UInt8]]) { self.leaves = leaves }

    static func leafHash(_ entry: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: [0] + entry)) }
    static func nodeHash(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: [1] + left + right)) }

    /// k: the largest power of two smaller than n.
    static func split(_ n: Int) -> Int {
        var k = 1
        while k * 2 < n { k *= 2 }
        return k
    }

    /// MTH(D[lo:hi]).
    func mth(_ range: Range<Int>) -> [UInt8] {
        if range.isEmpty { return Array(SHA256.hash(data: [UInt8]())) }
        if range.count == 1 { return leaves[range.lowerBound] }
        if let known = memo[range] { return known }
        let k = Self.split(range.count)
        let hash = Self.nodeHash(mth(range.lowerBound..<(range.lowerBound + k)), mth((range.lowerBound + k)..<range.upperBound))
        memo[range] = hash
        return hash
    }

    /// PATH(m, D[lo:hi]), m relative to lo.
    func path(_ m: Int, _ range: Range<Int>) -> [[UInt8]] {
        if range.count <= 1 { return [] }
        let k = Self.split(range.count), mid = range.lowerBound + k
        if m < k { return path(m, range.lowerBound..<mid) + [mth(mid..<range.upperBound)] }
        return path(m - k, mid..<range.upperBound) + [mth(range.lowerBound..<mid)]
    }

    /// PROOF(m, D[0:n]); empty for m = 0 or m = n.
    func proof(_ m: Int, _ n: Int) -> [[UInt8]] {
        if m == 0 || m == n { return [] }
        return subproof(m, 0..<n, true)
    }

    private func subproof(_ m: Int, _ range: Range<Int>, _ whole: Bool) -> [[UInt8]] {
        if m == range.count { return whole ? [] : [mth(range)] }
        let k = Self.split(range.count), mid = range.lowerBound + k
        if m <= k { return subproof(m, range.lowerBound..<mid, whole) + [mth(mid..<range.upperBound)] }
        return subproof(m - k, mid..<range.upperBound, false) + [mth(range.lowerBound..<mid)]
    }
}

/// Leaf i of the trees in these tests.
func testEntry(_ index: Int) -> [UInt8] { Array("entry \(index)".utf8) }

func buildTree(size: Int, tileHeight: Int = 8) throws -> (InMemoryMerkleTileStorage, ReferenceMerkle) {
    var tree = InMemoryMerkleTileStorage(tileHeight: tileHeight)
    var leaves: [[UInt8]] = []
    for index in 0..<size {
        let leaf = MerkleHash.leaf(testEntry(index))
        try tree.appendLeaf(leaf)
        leaves.append(leaf.bytes)
    }
    return (tree, ReferenceMerkle(leaves: leaves))
}

@Suite("Merkle tree")
struct MerkleTreeTests {
    @Test func leafAndNodeHashesAreRFC6962s() throws {
        let record: [UInt8] = [1, 2, 3]
        #expect(MerkleHash.leaf(record).bytes == ReferenceMerkle.leafHash(record))
        // Larder's audit leaf hash is the RFC 6962 leaf hash of the record bytes.
        #expect(MerkleHash.leaf(record).bytes == AuditChain.leafHash(record))
        let a = MerkleHash.leaf([1]), b = MerkleHash.leaf([2])
        #expect(MerkleHash.node(a, b).bytes == ReferenceMerkle.nodeHash(a.bytes, b.bytes))
        #expect(MerkleHash(hex: a.hexString) == a)
        #expect(MerkleHash(base64: a.base64) == a)
        #expect(MerkleHash(bytes: [UInt8](repeating: 0, count: 31)) == nil)
        #expect(MerkleHash(base64: String(a.base64.dropLast())) == nil)
        // The empty tree's root is SHA-256 of nothing.
        let empty = InMemoryMerkleTileStorage()
        #expect(try empty.reader.rootHash(treeSize: 0).hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    /// Every size 1–300, every index, and every pair of sizes up to 100 (plus every old size for
    /// the sizes around the first stored node), against the reference.
    @Test(arguments: [8, 3, 1])
    func rootsAndProofsMatchTheReference(tileHeight: Int) throws {
        let (tree, reference) = try buildTree(size: 300, tileHeight: tileHeight)
        let reader = tree.reader
        for size in 1...300 {
            let root = try reader.rootHash(treeSize: UInt64(size))
            #expect(root.bytes == reference.mth(0..<size), "root of size \(size), tile height \(tileHeight)")
            for index in 0..<size {
                let proof = try reader.inclusionProof(leafIndex: UInt64(index), treeSize: UInt64(size))
                #expect(proof.map(\.bytes) == reference.path(index, 0..<size), "path of \(index) in \(size)")
                #expect(MerkleProof.verifyInclusion(leafHash: MerkleHash(bytes: reference.leaves[index])!, leafIndex: UInt64(index),
                                                    treeSize: UInt64(size), proof: proof, rootHash: root))
            }
        }
        let wholePairs = (1...100).flatMap { n in (0...n).map { ($0, n) } }
        let boundaryPairs = [255, 256, 257, 300].flatMap { n in (0...n).map { ($0, n) } }
        for (m, n) in wholePairs + boundaryPairs {
            let proof = try reader.consistencyProof(from: UInt64(m), to: UInt64(n))
            #expect(proof.map(\.bytes) == reference.proof(m, n), "consistency \(m) → \(n), tile height \(tileHeight)")
            #expect(MerkleProof.verifyConsistency(oldSize: UInt64(m), newSize: UInt64(n), oldRoot: MerkleHash(bytes: reference.mth(0..<m))!,
                                                  newRoot: MerkleHash(bytes: reference.mth(0..<n))!, proof: proof),
                    "consistency \(m) → \(n) does not verify")
        }
    }

    /// RFC 6962 section 2.1.3's example tree of 7 leaves: the proofs have the sizes it lists.
    @Test func theRFCExampleTree() throws {
        let (tree, reference) = try buildTree(size: 7)
        let reader = tree.reader
        #expect(try reader.inclusionProof(leafIndex: 0, treeSize: 7).count == 3)      // [b, h, l]
        #expect(try reader.inclusionProof(leafIndex: 6, treeSize: 7).count == 2)      // [i, k]
        #expect(try reader.consistencyProof(from: 3, to: 7).map(\.bytes)
                == [reference.leaves[2], reference.leaves[3], reference.mth(0..<2), reference.mth(4..<7)])  // [c, d, g, l]
        #expect(try reader.consistencyProof(from: 4, to: 7).map(\.bytes) == [reference.mth(4..<7)])         // [l]
        #expect(try reader.consistencyProof(from: 6, to: 7).map(\.bytes)
                == [reference.mth(4..<6), reference.leaves[6], reference.mth(0..<4)])                       // [i, j, k]
    }

    /// Wrong proofs do not verify: every hash changed, one hash too few or too many, another
    /// index, another size, another root, swapped sizes.
    @Test func alteredProofsDoNotVerify() throws {
        let (tree, _) = try buildTree(size: 300)
        let reader = tree.reader
        func flipped(_ hash: MerkleHash) -> MerkleHash {
            var bytes = hash.bytes
            bytes[7] ^= 0x20
            return MerkleHash(bytes: bytes)!
        }
        for (index, size) in [(0, 1), (0, 2), (5, 7), (255, 256), (256, 257), (100, 300), (299, 300)] as [(UInt64, UInt64)] {
            let root = try reader.rootHash(treeSize: size)
            let leaf = try tree.hashes(tileLevel: 0, in: index..<(index + 1))[0]
            let proof = try reader.inclusionProof(leafIndex: index, treeSize: size)
            #expect(MerkleProof.verifyInclusion(leafHash: leaf, leafIndex: index, treeSize: size, proof: proof, rootHash: root))
            for position in proof.indices {
                var bad = proof
                bad[position] = flipped(bad[position])
                #expect(!MerkleProof.verifyInclusion(leafHash: leaf, leafIndex: index, treeSize: size, proof: bad, rootHash: root))
            }
            #expect(!MerkleProof.verifyInclusion(leafHash: flipped(leaf), leafIndex: index, treeSize: size, proof: proof, rootHash: root))
            #expect(!MerkleProof.verifyInclusion(leafHash: leaf, leafIndex: index, treeSize: size, proof: proof + [leaf], rootHash: root))
            if !proof.isEmpty {
                #expect(!MerkleProof.verifyInclusion(leafHash: leaf, leafIndex: index, treeSize: size, proof: proof.dropLast(), rootHash: root))
            }
            #expect(!MerkleProof.verifyInclusion(leafHash: leaf, leafIndex: index ^ 1, treeSize: size, proof: proof, rootHash: root)
                    || index ^ 1 >= size)
            // (Another tree size can accept the same path when its shape is the same: the root
            // is bound to its size by the signed checkpoint, not by the path.)
            #expect(!MerkleProof.verifyInclusion(leafHash: leaf, leafIndex: size, treeSize: size, proof: proof, rootHash: root))
        }
        for (old, new) in [(1, 2), (3, 7), (4, 7), (7, 8), (255, 256), (256, 300), (127, 300)] as [(UInt64, UInt64)] {
            let oldRoot = try reader.rootHash(treeSize: old), newRoot = try reader.rootHash(treeSize: new)
            let proof = try reader.consistencyProof(from: old, to: new)
            #expect(MerkleProof.verifyConsistency(oldSize: old, newSize: new, oldRoot: oldRoot, newRoot: newRoot, proof: proof))
            for position in proof.indices {
                var bad = proof
                bad[position] = flipped(bad[position])
                #expect(!MerkleProof.verifyConsistency(oldSize: old, newSize: new, oldRoot: oldRoot, newRoot: newRoot, proof: bad))
            }
            #expect(!MerkleProof.verifyConsistency(oldSize: old, newSize: new, oldRoot: flipped(oldRoot), newRoot: newRoot, proof: proof))
            #expect(!MerkleProof.verifyConsistency(oldSize: old, newSize: new, oldRoot: oldRoot, newRoot: flipped(newRoot), proof: proof))
            #expect(!MerkleProof.verifyConsistency(oldSize: old, newSize: new, oldRoot: oldRoot, newRoot: newRoot, proof: proof.dropLast()))
            #expect(!MerkleProof.verifyConsistency(oldSize: old, newSize: new, oldRoot: oldRoot, newRoot: newRoot, proof: proof + [oldRoot]))
            #expect(!MerkleProof.verifyConsistency(oldSize: new, newSize: old, oldRoot: newRoot, newRoot: oldRoot, proof: proof))
            #expect(!MerkleProof.verifyConsistency(oldSize: old + 1, newSize: new, oldRoot: oldRoot, newRoot: newRoot, proof: proof))
        }
        // Equal sizes: only an empty proof and equal roots; from 0: only an empty proof.
        let root = try reader.rootHash(treeSize: 5)
        #expect(MerkleProof.verifyConsistency(oldSize: 5, newSize: 5, oldRoot: root, newRoot: root, proof: []))
        #expect(!MerkleProof.verifyConsistency(oldSize: 5, newSize: 5, oldRoot: root, newRoot: flipped(root), proof: []))
        #expect(!MerkleProof.verifyConsistency(oldSize: 5, newSize: 5, oldRoot: root, newRoot: root, proof: [root]))
        #expect(MerkleProof.verifyConsistency(oldSize: 0, newSize: 5, oldRoot: .zero, newRoot: root, proof: []))
        #expect(!MerkleProof.verifyConsistency(oldSize: 0, newSize: 5, oldRoot: .zero, newRoot: root, proof: [root]))
    }

    /// One stored hash per 256 appends at level 1, one per 65,536 at level 2; the builder
    /// stores exactly the complete subtrees, written once, and nothing for the other appends.
    @Test func theBuilderStoresEachCompleteSubtreeOnce() throws {
        var tree = InMemoryMerkleTileStorage()
        var stored = 0
        for index in 0..<(256 * 3 + 5) {
            let count = try tree.appendLeaf(.leaf(testEntry(index)))
            #expect(count == ((index + 1) % 256 == 0 ? 1 : 0), "append \(index) stored \(count)")
            stored += count
        }
        #expect(stored == 3)
        #expect(tree.levels.count == 2 && tree.levels[1].count == 3)
        let reference = ReferenceMerkle(leaves: tree.levels[0].map(\.bytes))
        for node in 0..<3 { #expect(tree.levels[1][node].bytes == reference.mth((node * 256)..<((node + 1) * 256))) }

        // nodesCompleted only reads, and returns what appendLeaf stores.
        var manual = tree
        for index in (256 * 3 + 5)..<(256 * 4 - 1) { try manual.appendLeaf(.leaf(testEntry(index))) }
        var automatic = manual
        try automatic.appendLeaf(.leaf(testEntry(256 * 4 - 1)))
        manual.appendLeafWithoutBuildingForTesting(.leaf(testEntry(256 * 4 - 1)))
        let nodes = try MerkleTreeBuilder().nodesCompleted(byAppendingLeaf: UInt64(256 * 4 - 1), from: manual)
        #expect(nodes == [MerkleStoredNode(tileLevel: 1, index: 3, hash: automatic.levels[1][3])])
        #expect(manual.levels[1].count == 3)
    }

    /// Small tiles reach many stored levels with few leaves: level L completes every 2^L appends
    /// with a tile height of 1, and a cascade stores one node per level in one append.
    @Test func cascadesStoreOneNodePerLevel() throws {
        var tree = InMemoryMerkleTileStorage(tileHeight: 1)
        for index in 0..<63 { try tree.appendLeaf(.leaf(testEntry(index))) }
        #expect(try tree.appendLeaf(.leaf(testEntry(63))) == 6)     // 64 = 2^6: levels 1 to 6 complete at once
        let reference = ReferenceMerkle(leaves: tree.levels[0].map(\.bytes))
        #expect(tree.levels[6] == [MerkleHash(bytes: reference.mth(0..<64))!])
    }

    /// A damaged stored hash, or a changed leaf, is found by recomputing the stored tree.
    @Test func verificationFindsADamagedStoredHash() throws {
        var (tree, _) = try buildTree(size: 600, tileHeight: 2)
        #expect(try tree.reader.firstMismatchedNode() == nil)
        var damaged = tree
        damaged.overwriteForTesting(tileLevel: 2, index: 5, with: .leaf([9]))
        let found = try #require(try damaged.reader.firstMismatchedNode())
        #expect(found.stored.tileLevel == 2 && found.stored.index == 5)
        #expect(found.expected == tree.levels[2][5])
        // A leaf rewritten after the fact: the level-1 node above it no longer matches.
        tree.overwriteForTesting(tileLevel: 0, index: 21, with: .leaf([9]))
        let leafFound = try #require(try tree.reader.firstMismatchedNode())
        #expect(leafFound.stored.tileLevel == 1 && leafFound.stored.index == 5)
    }

    @Test func requestsBeyondTheTreeAreRefused() throws {
        let (tree, _) = try buildTree(size: 10)
        let reader = tree.reader
        expectError(.validationFailed) { try reader.rootHash(treeSize: 11) }
        expectError(.validationFailed) { try reader.inclusionProof(leafIndex: 10, treeSize: 10) }
        expectError(.validationFailed) { try reader.inclusionProof(leafIndex: 0, treeSize: 11) }
        expectError(.validationFailed) { try reader.consistencyProof(from: 5, to: 11) }
        expectError(.validationFailed) { try reader.consistencyProof(from: 6, to: 5) }
        expectError(.validationFailed) { try reader.hash(ofRange: 3..<3) }
        #expect(try reader.consistencyProof(from: 0, to: 10).isEmpty)
        #expect(try reader.consistencyProof(from: 10, to: 10).isEmpty)
        // Unaligned ranges are MTH of the sublist, as RFC 6962 defines it.
        let reference = ReferenceMerkle(leaves: tree.levels[0].map(\.bytes))
        #expect(try reader.hash(ofRange: 3..<9).bytes == ReferenceMerkle(leaves: Array(reference.leaves[3..<9])).mth(0..<6))
    }

    /// Past 65,536 leaves the second stored level is used: roots and proofs around it, at sampled
    /// indices and sizes, match the reference. LARDER_TEST_SEED replays the sample;
    /// LARDER_MERKLE_TEST_LEAVES sets a larger tree (e.g. 1048575: every bit of the size set).
    @Test func aTreeWithTwoStoredLevels() throws {
        let seed = SeededGenerator.seedFromEnvironment(default: 0x7A11_7E55)
        var random = SeededGenerator(seed: seed)
        let size = ProcessInfo.processInfo.environment["LARDER_MERKLE_TEST_LEAVES"].flatMap { Int($0) }.map { max($0, 70_000) } ?? 70_000
        let (tree, reference) = try buildTree(size: size)
        #expect(tree.levels[1].count == size / 256 && tree.levels[2].count == size / 65_536)
        let reader = tree.reader
        let sizes = [65_535, 65_536, 65_537, 69_999, 70_000] + (0..<5).map { _ in Int.random(in: 1...size, using: &random) }
        for n in sizes {
            let root = try reader.rootHash(treeSize: UInt64(n))
            #expect(root.bytes == reference.mth(0..<n), "seed \(seed): root of \(n)")
            for m in [0, n / 2, n - 1, Int.random(in: 0..<n, using: &random)] {
                #expect(try reader.inclusionProof(leafIndex: UInt64(m), treeSize: UInt64(n)).map(\.bytes) == reference.path(m, 0..<n),
                        "seed \(seed): path of \(m) in \(n)")
            }
            for m in [1, 256, 65_536, n - 1, Int.random(in: 1...n, using: &random)] where m <= n {
                #expect(try reader.consistencyProof(from: UInt64(m), to: UInt64(n)).map(\.bytes) == reference.proof(m, n),
                        "seed \(seed): consistency \(m) → \(n)")
            }
        }
    }
}
