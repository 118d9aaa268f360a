import LarderStorage

/// What ``Store/verify(progress:)`` found.
public struct VerifyReport: Sendable, Hashable {
    /// One thing that is wrong, located as precisely as possible.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        public enum Kind: String, Sendable, Hashable {
            /// A record cannot be decoded.
            case malformed
            /// Sequence numbers do not run 1, 2, 3, … without gaps.
            case gap
            /// A record's own seq differs from its key.
            case seqMismatch
            /// SHA-256(0x00 ‖ record) differs from the stored leafHash: the record changed.
            case leafHashMismatch
            /// SHA-256(0x01 ‖ previous ‖ leaf) differs from the stored chainHash.
            case chainHashMismatch
            /// The chain head kept in meta differs from the last record.
            case headMismatch
            /// A record has no entry in an index that should have one.
            case missingIndexEntry
            /// An index entry points to no record, or to a record that does not match it.
            case danglingIndexEntry
            /// A decision's record is inconsistent with the audit log.
            case decisionMismatch
            /// A ledger balance, transfer or reversal is inconsistent.
            case ledgerMismatch
            /// An incident or its index is inconsistent.
            case incidentMismatch
            /// A stored node of the audit log's Merkle tree is missing, extra, or differs from
            /// the hash of the 256 hashes below it.
            case merkleTreeMismatch
        }

        public let kind: Kind
        /// The audit seq concerned, when there is one.
        public let seq: UInt64?
        public let table: String
        public let detail: String

        public var description: String {
            let location = seq.map { "seq \($0)" } ?? table
            return "\(kind.rawValue) at \(location) (\(table)): \(detail)"
        }
    }

    /// Audit records walked.
    public var recordsChecked = 0
    /// Index entries checked.
    public var indexEntriesChecked = 0
    /// Other records checked (decisions, ledger, incidents).
    public var otherRecordsChecked = 0
    /// The head of the chain as verified.
    public var head = ChainHead.empty
    /// Problems, in the order found, at most ``problemsMax``.
    public var problems: [Problem] = []
    /// Problems found beyond ``problemsMax``.
    public var problemsOmitted = 0

    public static let problemsMax = 100

    public init() {}

    /// True when nothing is wrong.
    public var isIntact: Bool { problems.isEmpty }

    /// The smallest audit seq that has a problem.
    public var firstBrokenSeq: UInt64? { problems.compactMap(\.seq).min() }

    mutating func add(_ kind: Problem.Kind, seq: UInt64?, table: String, _ detail: String) {
        if problems.count < Self.problemsMax {
            problems.append(Problem(kind: kind, seq: seq, table: table, detail: detail))
        } else {
            problemsOmitted += 1
        }
    }
}

extension VerifyReport {
    /// Writes the report's fields into the current JSON object: the one rendering the admin
    /// server and the `larder` tool share.
    public func writeJSONFields(to o: inout JSONWriter) {
        o.field("intact", isIntact)
        o.field("records_checked", recordsChecked)
        o.field("index_entries_checked", indexEntriesChecked)
        o.field("other_records_checked", otherRecordsChecked)
        o.field("head_seq", head.seq)
        o.field("head_hash", head.chainHash.hexString)
        o.field("first_broken_seq", firstBrokenSeq)
        o.array("problems") { list in
            for problem in problems {
                list.object { p in
                    p.field("kind", problem.kind.rawValue)
                    p.field("seq", problem.seq)
                    p.field("table", problem.table)
                    p.field("detail", problem.detail)
                }
            }
        }
        o.field("problems_omitted", problemsOmitted)
    }
}

/// Progress of a verify run, reported every few thousand records.
public struct VerifyProgress: Sendable, Hashable {
    /// What is being checked: `audit chain`, `audit indexes`, `decisions`, …
    public let phase: String
    public let done: Int
    public let total: Int
}

extension Store {
    /// Walks the whole audit chain and every index in one snapshot and reports what is wrong:
    /// gaps, undecodable records, hash mismatches, index entries missing or pointing nowhere,
    /// decisions inconsistent with the log.
    ///
    /// Runs on the calling thread in a read transaction: writers go on meanwhile.
    ///
    /// - parameter progress: called every ``verifyProgressInterval`` records and at the end of each phase.
    public func verify(progress: ((VerifyProgress) -> Void)? = nil) throws -> VerifyReport {
        try readTables { txn in
            var verifier = Verifier(txn: txn, tables: tables, progress: progress)
            try verifier.run()
            return verifier.report
        }
    }

    /// How often verify reports progress, in records.
    public static let verifyProgressInterval = 4_096
}

struct Verifier {
    let txn: TableReader
    let tables: StoreTables
    let progress: ((VerifyProgress) -> Void)?
    var report = VerifyReport()

    mutating func run() throws(LarderError) {
        let expected = try verifyChain()
        try verifyMerkleTree()
        try verifyIndexes(expected)
        try verifyDecisions()
        try verifyLedger()
        try verifyIncidents()
        try verifyCompensation()
        try verifyStock()
    }

    func tick(_ phase: String, _ done: Int, _ total: Int, force: Bool = false) {
        guard let progress, force || done % Store.verifyProgressInterval == 0 else { return }
        progress(VerifyProgress(phase: phase, done: done, total: total))
    }

    /// Expected index entry counts, gathered while walking the chain.
    struct ExpectedIndexes {
        var requestEntries = 0
        var refEntries = 0
        var timeEntries = 0
    }

    private mutating func verifyChain() throws(LarderError) -> ExpectedIndexes {
        let total = try txn.statistics(tables.audit).entries
        var expected = ExpectedIndexes()
        var previousSeq: UInt64 = 0
        var previousChain = AuditChain.genesis
        let table = StoreTables.auditName
        try txn.forEach(tables.audit) { (entry: Entry<UInt64, [UInt8]>) throws(LarderError) -> Bool in
            let seq = entry.key
            report.recordsChecked += 1
            if seq != previousSeq + 1 {
                report.add(.gap, seq: seq, table: table, "expected seq \(previousSeq + 1), found \(seq)")
            }
            previousSeq = seq
            let parts: (record: [UInt8], leaf: [UInt8], chain: [UInt8])
            do throws(LarderError) {
                parts = try AuditEntry.split(entry.value)
            } catch {
                report.add(.malformed, seq: seq, table: table, error.message)
                return true
            }
            if AuditChain.leafHash(parts.record) != parts.leaf {
                report.add(.leafHashMismatch, seq: seq, table: table,
                           "the record's bytes hash to \(AuditChain.leafHash(parts.record).hexString), stored leafHash is \(parts.leaf.hexString)")
            }
            let chain = AuditChain.chainHash(previous: previousChain, leaf: parts.leaf)
            if chain != parts.chain {
                report.add(.chainHashMismatch, seq: seq, table: table,
                           "expected chainHash \(chain.hexString), stored \(parts.chain.hexString)")
            }
            // Continue from the stored hash so one damaged record is reported once, not at every
            // record after it.
            previousChain = parts.chain
            do throws(LarderError) {
                let record = try AuditRecord.decode(parts.record)
                if record.seq != seq {
                    report.add(.seqMismatch, seq: seq, table: table, "the record says seq \(record.seq)")
                }
                try checkIndexEntries(of: record, seq: seq, expected: &expected)
            } catch {
                report.add(.malformed, seq: seq, table: table, error.message)
            }
            tick("audit chain", report.recordsChecked, total)
            return true
        }
        tick("audit chain", report.recordsChecked, total, force: true)
        report.head = ChainHead(seq: previousSeq, chainHash: previousChain)
        try verifyHead()
        return expected
    }

    private mutating func checkIndexEntries(of record: AuditRecord, seq: UInt64, expected: inout ExpectedIndexes) throws(LarderError) {
        expected.requestEntries += 1
        if try !txn.contains(tables.auditByRequest, KeyPair(record.requestID, seq)) {
            report.add(.missingIndexEntry, seq: seq, table: StoreTables.auditByRequestName, "no entry for request \(record.requestID)")
        }
        for ref in record.refs {
            expected.refEntries += 1
            if try !txn.contains(tables.auditByRef, KeyPair(KeyPair(ref.kind, ref.id), seq)) {
                report.add(.missingIndexEntry, seq: seq, table: StoreTables.auditByRefName, "no entry for \(ref)")
            }
        }
        expected.timeEntries += 1
        if try !txn.contains(tables.auditByTime, KeyPair(record.timeMicros, seq)) {
            report.add(.missingIndexEntry, seq: seq, table: StoreTables.auditByTimeName,
                       "no entry for time \(RFC3339.format(record.timeMicros))")
        }
        report.indexEntriesChecked += 2 + record.refs.count
    }

    private mutating func verifyHead() throws(LarderError) {
        guard let bytes = try txn.get(tables.meta, MetaKey.chainHead) else {
            if report.head.seq != 0 {
                report.add(.headMismatch, seq: report.head.seq, table: StoreTables.metaName, "meta has no chain head")
            }
            return
        }
        var reader = ByteReader(bytes)
        guard let seq = try? reader.readUInt64(), let hash = try? reader.readBytes(32), reader.isAtEnd else {
            report.add(.headMismatch, seq: nil, table: StoreTables.metaName, "the chain head in meta is malformed")
            return
        }
        if seq != report.head.seq || hash != report.head.chainHash {
            report.add(.headMismatch, seq: max(seq, report.head.seq), table: StoreTables.metaName,
                       "meta says head seq \(seq) hash \(hash.hexString); the log ends at seq \(report.head.seq) hash \(report.head.chainHash.hexString) (records missing at the end?)")
        }
    }

    /// The stored Merkle nodes against the records: each level L holds exactly ⌊head / 256^L⌋
    /// nodes, and each equals the hash of the 256 below it (the leaf hashes were checked against
    /// the record bytes by the chain walk). O(n) hashes.
    private mutating func verifyMerkleTree() throws(LarderError) {
        let table = StoreTables.merkleNodesName
        let size = UInt64(report.recordsChecked)
        guard report.head.seq == size else {
            // A log with gaps has no tree to check: the gap is the problem reported.
            return
        }
        let tiles = StoreMerkleTiles(txn: txn, tables: tables)
        var stored = try tiles.storedCounts()
        var complete = true
        for (level, count) in StoreMerkleTiles.expectedCounts(treeSize: size) {
            let found = stored.removeValue(forKey: level) ?? 0
            if found != count {
                complete = false
                report.add(.merkleTreeMismatch, seq: nil, table: table,
                           "tile level \(level) holds \(found) nodes; a log of \(size) records calls for \(count)")
            }
        }
        for (level, found) in stored.sorted(by: { $0.key < $1.key }) {
            complete = false
            report.add(.merkleTreeMismatch, seq: nil, table: table,
                       "tile level \(level) holds \(found) nodes; a log of \(size) records calls for none")
        }
        tick("merkle tree", 0, 1)
        guard complete else { return }
        do throws(LarderError) {
            if let (node, expected) = try MerkleTreeReader(tiles, treeSize: size).firstMismatchedNode() {
                let span = UInt64(1) << (8 * node.tileLevel)
                report.add(.merkleTreeMismatch, seq: nil, table: table,
                           "tile level \(node.tileLevel) index \(node.index) (seqs \(node.index * span + 1)...\((node.index + 1) * span)) is stored as \(node.hash.hexString); the hashes below it give \(expected.hexString)")
            }
        } catch {
            report.add(.merkleTreeMismatch, seq: nil, table: table, error.message)
        }
        tick("merkle tree", 1, 1, force: true)
    }

    /// Every record's index entries were looked up while walking the chain; when an index holds
    /// exactly as many entries as expected, it can hold no dangling one. Otherwise walk it.
    private mutating func verifyIndexes(_ expected: ExpectedIndexes) throws(LarderError) {
        try walkIfMiscounted(tables.auditByRequest, name: StoreTables.auditByRequestName, expected: expected.requestEntries,
                             seq: \.second) { key, record in record.requestID == key.first }
        try walkIfMiscounted(tables.auditByRef, name: StoreTables.auditByRefName, expected: expected.refEntries,
                             seq: \.second) { key, record in record.refs.contains(CorrelationRef(key.first.first, key.first.second)) }
        try walkIfMiscounted(tables.auditByTime, name: StoreTables.auditByTimeName, expected: expected.timeEntries,
                             seq: \.second) { key, record in record.timeMicros == key.first }
    }

    /// Walks an audit index whose entry count differs from the expected one, checking that each
    /// entry points to a record that matches it.
    private mutating func walkIfMiscounted<K: OrderedKey>(
        _ index: Table<K, Empty>, name: String, expected: Int, seq: KeyPath<K, UInt64>,
        matches: (K, AuditRecord) -> Bool
    ) throws(LarderError) {
        let count = try txn.statistics(index).entries
        guard count != expected else { return }
        var done = 0
        try txn.forEach(index) { (entry: Entry<K, Empty>) throws(LarderError) -> Bool in
            done += 1
            try checkPointer(seq: entry.key[keyPath: seq], table: name) { matches(entry.key, $0) }
            tick(name, done, count)
            return true
        }
    }

    private mutating func checkPointer(seq: UInt64, table: String, matches: (AuditRecord) -> Bool) throws(LarderError) {
        report.indexEntriesChecked += 1
        guard let value = try txn.get(tables.audit, seq) else {
            report.add(.danglingIndexEntry, seq: seq, table: table, "points to seq \(seq), which does not exist")
            return
        }
        guard let record = try? AuditEntry.decode(value).record else { return } // reported by the chain walk
        if !matches(record) {
            report.add(.danglingIndexEntry, seq: seq, table: table, "points to seq \(seq), whose record does not match the entry")
        }
    }

    private mutating func verifyDecisions() throws(LarderError) {
        let total = try txn.statistics(tables.decisions).entries
        var done = 0
        try txn.forEach(tables.decisions) { (entry: Entry<String, [UInt8]>) throws(LarderError) -> Bool in
            done += 1
            report.otherRecordsChecked += 1
            let table = StoreTables.decisionsName
            guard let decision = try? DecisionRecord.decode(id: entry.key, entry.value) else {
                report.add(.malformed, seq: nil, table: table, "decision \(entry.key) cannot be decoded")
                return true
            }
            if try !txn.contains(tables.decisionsByTime, KeyPair(decision.timeMicros, decision.decisionID)) {
                report.add(.missingIndexEntry, seq: nil, table: StoreTables.decisionsByTimeName, "no entry for decision \(entry.key)")
            }
            if decision.auditSeq != 0 {
                let record = try txn.get(tables.audit, decision.auditSeq).flatMap { try? AuditEntry.decode($0).record }
                if record?.decisionID != decision.decisionID {
                    report.add(.decisionMismatch, seq: decision.auditSeq, table: table,
                               "decision \(entry.key) names audit seq \(decision.auditSeq), which is not a record of that decision")
                }
            }
            tick("decisions", done, total)
            return true
        }
        let indexCount = try txn.statistics(tables.decisionsByTime).entries
        if indexCount != total {
            report.add(.danglingIndexEntry, seq: nil, table: StoreTables.decisionsByTimeName,
                       "\(indexCount) entries for \(total) decisions")
        }
    }
}
