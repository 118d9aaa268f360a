import Larder
import LarderFleet
import LarderTesting
import Testing

/// The streaming Merkle root `fleet verify` computes over a box's rows agrees with the store's
/// own tree code (RFC 6962) at every size, across the powers of two where the shape changes.
@Suite("Merkle root accumulator")
struct MerkleRootAccumulatorTests {
    @Test func theRootAgreesWithTheTreeAtEverySize() throws {
        let seed = SeededGenerator.seedFromEnvironment(default: 61)
        var random = SeededGenerator(seed: seed)
        var accumulator = MerkleRootAccumulator()
        var tree = InMemoryMerkleTileStorage()
        #expect(accumulator.root == MerkleHash(bytes: AuditChain.sha256([])), "the empty tree")
        for size in 1...600 {
            let leaf = MerkleHash.leaf((0..<Int(random.next() % 40)).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            accumulator.append(leaf)
            try tree.appendLeaf(leaf)
            #expect(accumulator.size == UInt64(size))
            #expect(accumulator.root == (try tree.reader.rootHash(treeSize: UInt64(size))), "size \(size), seed \(seed)")
        }
    }
}
