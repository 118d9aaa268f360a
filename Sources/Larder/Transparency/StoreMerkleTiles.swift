import LarderStorage

/// The audit log's Merkle tree as the store keeps it, for ``MerkleTreeBuilder`` and
/// ``MerkleTreeReader``: tile level 0 (the leaf hashes) is read from the audit records
/// themselves (bytes `count − 64 ..< count − 32` of each value, docs/FORMAT.md section 4), and
/// levels 1, 2, … from the `merkle_nodes` table, keyed `u8 level ‖ u64 index`.
///
/// Valid inside the transaction it was made in, like the transaction itself. Only a
/// ``TableWriter`` can store nodes.
struct StoreMerkleTiles: MutableMerkleTileStorage {
    let txn: TableReader
    let tables: StoreTables

    func hashes(tileLevel: Int, in range: Range<UInt64>) throws(LarderError) -> [MerkleHash] {
        guard !range.isEmpty else { return [] }
        var hashes: [MerkleHash] = []
        hashes.reserveCapacity(range.count)
        if tileLevel == 0 {
            // Leaf index i is audit seq i + 1.
            guard range.upperBound < UInt64.max else { throw missing(tileLevel, range, found: 0) }
            var expected = range.lowerBound + 1
            try txn.forEach(tables.audit, in: .between(range.lowerBound + 1, range.upperBound + 1)) {
                (entry: Entry<UInt64, [UInt8]>) throws(LarderError) -> Bool in
                let value = entry.value
                guard entry.key == expected, value.count > 64,
                      let leaf = MerkleHash(bytes: value[(value.count - 64)..<(value.count - 32)]) else {
                    throw missing(tileLevel, range, found: hashes.count)
                }
                hashes.append(leaf)
                expected += 1
                return true
            }
        } else {
            guard tileLevel <= Int(UInt8.max) else { throw missing(tileLevel, range, found: 0) }
            let level = UInt8(tileLevel)
            var expected = range.lowerBound
            try txn.forEach(tables.merkleNodes, in: .between(KeyPair(level, range.lowerBound), KeyPair(level, range.upperBound))) {
                (entry: Entry<KeyPair<UInt8, UInt64>, [UInt8]>) throws(LarderError) -> Bool in
                guard entry.key.second == expected, let node = MerkleHash(bytes: entry.value), entry.value.count == 32 else {
                    throw missing(tileLevel, range, found: hashes.count)
                }
                hashes.append(node)
                expected += 1
                return true
            }
        }
        guard hashes.count == range.count else { throw missing(tileLevel, range, found: hashes.count) }
        return hashes
    }

    mutating func store(_ node: MerkleStoredNode) throws(LarderError) {
        guard let writer = txn as? TableWriter else { preconditionFailure("Merkle nodes are stored in a write transaction") }
        precondition((1...Int(UInt8.max)).contains(node.tileLevel), "a stored node has tile level 1...255")
        // A plain put: nodes of several levels interleave in key order, so MDB_APPEND would refuse.
        try writer.put(tables.merkleNodes, KeyPair(UInt8(node.tileLevel), node.index), node.hash.bytes)
    }

    private func missing(_ level: Int, _ range: Range<UInt64>, found: Int) -> LarderError {
        let what = level == 0 ? "the leaf hashes of audit seqs \(range.lowerBound + 1)...\(range.upperBound)"
            : "the stored Merkle nodes \(range.lowerBound)..<\(range.upperBound) of tile level \(level)"
        return LarderError(.persistenceError,
                           "The store lacks or holds malformed \(what) (\(found) of \(range.count) read in order); run verify.",
                           failureClass: .dataInconsistency, failurePoint: .read)
    }
}

extension StoreMerkleTiles {
    /// How many stored nodes each tile level must hold in a log of `treeSize` records: ⌊treeSize / 256^L⌋.
    static func expectedCounts(treeSize: UInt64) -> [(level: Int, count: UInt64)] {
        var counts: [(Int, UInt64)] = []
        var level = 1
        while 8 * level < 64, treeSize >> (8 * level) > 0 {
            counts.append((level, treeSize >> (8 * level)))
            level += 1
        }
        return counts
    }

    /// How many nodes each tile level holds (levels with none are absent), reading every key once.
    func storedCounts() throws(LarderError) -> [Int: UInt64] {
        var counts: [Int: UInt64] = [:]
        try txn.forEach(tables.merkleNodes) { (entry: Entry<KeyPair<UInt8, UInt64>, [UInt8]>) throws(LarderError) -> Bool in
            counts[Int(entry.key.first), default: 0] += 1
            return true
        }
        return counts
    }

    /// Whether every level holds exactly the nodes a log of `treeSize` records calls for, judged
    /// by the last key of each level (cheap: one cursor move per level).
    func isComplete(treeSize: UInt64) throws(LarderError) -> Bool {
        let expected = Self.expectedCounts(treeSize: treeSize)
        for (level, count) in expected {
            let last = try txn.last(tables.merkleNodes, in: .prefix(bytes: [UInt8(level)]))
            guard let last, last.key.second == count - 1 else { return false }
        }
        // Nothing stored above the highest level that should exist.
        let above = UInt8(expected.count + 1)
        return try txn.last(tables.merkleNodes, in: KeyRange(lowerBytes: [above], upperBytes: nil)) == nil
    }
}
