import LarderStorage

/// What ``Store/verify(progress:isCancelled:)`` found.
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
            /// The chain head kept in meta differs from the last record (schema 1 kept one;
            /// schema 2 derives the head from the last record).
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
            /// A value in meta (other than the chain head) differs from the audit record that set it.
            case metaMismatch
            /// A record's time is earlier than the time of the record before it, in the part of the
            /// log whose times never decrease (from `meta.time_ordered_from` on).
            case outOfTimeOrder
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
    /// Checks the whole store in one snapshot and reports what is wrong: the audit chain (gaps,
    /// undecodable records, hash mismatches, the head in meta), every index entry, and every
    /// state table against the audit records that made it — decisions, accounts, transfers,
    /// every balance and history entry, incidents, refund requests, cancelled cycles — and
    /// `meta.policy_sha256` against the last `POLICY_CHANGED` record (docs/FORMAT.md section 11).
    ///
    /// Runs on the calling thread in one read transaction, so writers go on meanwhile. Every
    /// table is walked once, in its own key order; memory stays bounded whatever the store's size.
    ///
    /// ```swift
    /// let report = try store.verify { progress in print(progress.phase, progress.done, "of", progress.total) }
    /// if !report.isIntact { print(report.problems) }
    /// ```
    ///
    /// - parameter progress: called every ``verifyProgressInterval`` rows and at the end of each phase.
    /// - parameter isCancelled: asked as often as `progress` is called; once it answers true,
    ///   verify stops and throws `CancellationError`.
    /// - throws: `CancellationError` when cancelled; PERSISTENCE_ERROR when LMDB fails to read.
    public func verify(progress: ((VerifyProgress) -> Void)? = nil, isCancelled: (() -> Bool)? = nil) throws -> VerifyReport {
        try readTables { txn in
            let verifier = Verifier(txn: txn, tables: tables, progress: progress, isCancelled: isCancelled)
            try verifier.run()
            if verifier.cancelled { throw CancellationError() }
            return verifier.report
        }
    }

    /// Checks the audit chain alone: seqs without gaps, each record's own seq, every leaf and
    /// chain hash (computed from the bytes where they lie in the map), and that meta keeps no
    /// chain head of its own (schema 2: the head is the last record).
    /// What an auditor's verifier does; ``verify(progress:isCancelled:)`` checks all of that and
    /// everything else.
    ///
    /// ```swift
    /// let chain = try store.verifyChain()
    /// print(chain.isIntact, chain.head.seq)
    /// ```
    ///
    /// - parameter progress: called every ``verifyProgressInterval`` records and at the end.
    /// - parameter isCancelled: asked as often as `progress` is called; once it answers true,
    ///   the walk stops and throws `CancellationError`.
    /// - throws: `CancellationError` when cancelled; PERSISTENCE_ERROR when LMDB fails to read.
    public func verifyChain(progress: ((VerifyProgress) -> Void)? = nil, isCancelled: (() -> Bool)? = nil) throws -> VerifyReport {
        try readTables { txn in
            let verifier = Verifier(txn: txn, tables: tables, progress: progress, isCancelled: isCancelled)
            try verifier.runChainOnly()
            if verifier.cancelled { throw CancellationError() }
            return verifier.report
        }
    }

    /// How often verify reports progress, in records.
    public static let verifyProgressInterval = 4_096
}

/// One verify run over one snapshot. Each table is walked once (the summing pass); each walk
/// checks what it can alone and feeds the facts of the relations it takes part in (``Relation``).
/// When a relation's sides differ, the walks that feed it run again to name the facts that
/// differ; those walks report nothing else (``muted``).
final class Verifier {
    let txn: TableReader
    let tables: StoreTables
    let progress: ((VerifyProgress) -> Void)?
    let isCancelled: (() -> Bool)?
    // The walks touch these for every row: no dynamic exclusivity checks (one thread, and no
    // walk reenters another's access).
    @exclusivity(unchecked) var report = VerifyReport()
    let facts = FactBook()
    /// Set while a walk runs again to name facts: its own checks were reported the first time.
    @exclusivity(unchecked) var muted = false
    @exclusivity(unchecked) private(set) var cancelled = false
    /// Set while the log is walked again to name a write whose decision is missing.
    @exclusivity(unchecked) var locatingDecisions = false
    let scratch = ScratchBytes()
    /// The refs a transfer's record adds, reused for every transfer.
    @exclusivity(unchecked) var extraRefs: [RefMerge.Ref] = []

    // What the chain walk learned about decisions and meta.
    /// Writes that made a decision (runs of records with one decisionID, requestID and time).
    @exclusivity(unchecked) var decisionWrites = 0
    /// Decisions removed, by the `purged` counts of `DECISIONS_PURGED` records.
    @exclusivity(unchecked) var decisionsPurged: UInt64 = 0
    /// `DECISIONS_PURGED` records: seq and cutoff. Purges are rare administrative writes.
    @exclusivity(unchecked) var purges: [(seq: UInt64, cutoffMicros: Int64?)] = []
    /// The `policy_sha256` of the last `POLICY_CHANGED` record, and its seq.
    @exclusivity(unchecked) var lastPolicy: (seq: UInt64, sha256: [UInt8]?)?

    init(txn: TableReader, tables: StoreTables, progress: ((VerifyProgress) -> Void)?, isCancelled: (() -> Bool)?) {
        self.txn = txn
        self.tables = tables
        self.progress = progress
        self.isCancelled = isCancelled
    }

    func run() throws(LarderError) {
        try walkLog(hashing: true, relations: true)
        try verifyHead()
        try verifyMerkleTree()
        try verifyPolicy()
        try walkAuditIndexes()
        try verifyDecisions()
        try verifyLedger()
        try verifyIncidents()
        try verifyCompensation()
        try verifyStock()
        guard !cancelled else { return }
        try locateMismatches()
    }

    func runChainOnly() throws(LarderError) {
        try walkLog(hashing: true, relations: false)
        try verifyHead()
    }

    /// Reports `detail` unless a locating walk repeats a check already reported.
    func problem(_ kind: VerifyReport.Problem.Kind, seq: UInt64?, table: String, _ detail: @autoclosure () -> String) {
        guard !muted else { return }
        report.add(kind, seq: seq, table: table, detail())
    }

    /// Reports progress every ``Store/verifyProgressInterval`` items (and when `force`), and
    /// asks whether to stop. Returns false once cancelled.
    @discardableResult
    func tick(_ phase: String, _ done: Int, _ total: Int, force: Bool = false) -> Bool {
        guard !cancelled else { return false }
        guard force || done % Store.verifyProgressInterval == 0 else { return !cancelled }
        if !muted { progress?(VerifyProgress(phase: phase, done: done, total: total)) }
        if isCancelled?() == true { cancelled = true }
        return !cancelled
    }

    // MARK: Head and meta

    /// Schema 2 keeps no chain head in meta (the head is the last record) and says in
    /// `meta.time_ordered_from` where record times stop decreasing: at most one past the head.
    private func verifyHead() throws(LarderError) {
        guard !cancelled else { return }
        let table = StoreTables.metaName
        if let bytes = try txn.get(tables.meta, MetaKey.chainHead) {
            problem(.metaMismatch, seq: nil, table: table,
                    "meta holds a chain_head (\(bytes.hexString)), which schema 2 does not keep: the head is the last record")
        }
        guard try checkMetaSeq(MetaKey.timeOrderedFrom, required: true) else { return }
        try checkMetaSeq(MetaKey.decisionPurgeFrom, required: false)
    }

    /// A seq kept in meta under `name` is a `u64` from 1 to one past the head; false when it is
    /// not (or is absent though `required`), with the problem reported.
    @discardableResult
    private func checkMetaSeq(_ name: String, required: Bool) throws(LarderError) -> Bool {
        let table = StoreTables.metaName
        guard let bytes = try txn.get(tables.meta, name) else {
            if required { problem(.metaMismatch, seq: nil, table: table, "meta has no \(name)") }
            return !required
        }
        var reader = ByteReader(bytes)
        guard let seq = try? reader.readUInt64(), reader.isAtEnd, seq >= 1, seq <= report.head.seq + 1 else {
            problem(.metaMismatch, seq: nil, table: table,
                    "meta.\(name) (\(bytes.hexString)) is not a seq from 1 to one past the head (\(report.head.seq))")
            return false
        }
        return true
    }

    /// The stored Merkle nodes against the records: each level L holds exactly ⌊head / 256^L⌋
    /// nodes, and each equals the hash of the 256 below it (the leaf hashes were checked against
    /// the record bytes by the chain walk, which also checked level 1 from them as it went). O(n)
    /// hashes.
    private func verifyMerkleTree() throws(LarderError) {
        guard !cancelled else { return }
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
            // Level 1 was checked against the leaves by the chain walk.
            if let (node, expected) = try MerkleTreeReader(tiles, treeSize: size).firstMismatchedNode(fromLevel: 2) {
                let span = UInt64(1) << (8 * node.tileLevel)
                report.add(.merkleTreeMismatch, seq: nil, table: table,
                           "tile level \(node.tileLevel) index \(node.index) (seqs \(node.index * span + 1)...\((node.index + 1) * span)) is stored as \(node.hash.hexString); the hashes below it give \(expected.hexString)")
            }
        } catch {
            report.add(.merkleTreeMismatch, seq: nil, table: table, error.message)
        }
        tick("merkle tree", 1, 1, force: true)
    }

    /// `meta.policy_sha256` is the digest the last `POLICY_CHANGED` record names (both absent
    /// when the store records no policy).
    private func verifyPolicy() throws(LarderError) {
        guard !cancelled else { return }
        let stored = try txn.get(tables.meta, MetaKey.policySHA256)
        let table = StoreTables.metaName
        switch (stored, lastPolicy) {
        case (nil, nil):
            return
        case (let stored?, nil):
            problem(.metaMismatch, seq: nil, table: table,
                    "meta.policy_sha256 is \(stored.hexString), but no POLICY_CHANGED record exists")
        case (nil, let last?):
            problem(.metaMismatch, seq: last.seq, table: table,
                    "POLICY_CHANGED record \(last.seq) recorded a policy, but meta has no policy_sha256")
        case (let stored?, let last?):
            guard let named = last.sha256 else {
                problem(.metaMismatch, seq: last.seq, table: table,
                        "POLICY_CHANGED record \(last.seq) names no policy_sha256 that can be read")
                return
            }
            if stored != named {
                problem(.metaMismatch, seq: last.seq, table: table,
                        "meta.policy_sha256 is \(stored.hexString), but the last POLICY_CHANGED record (\(last.seq)) names \(named.hexString)")
            }
        }
    }

    // MARK: Naming the facts that differ

    /// For every relation whose sides differ, walks again (twice: buckets, then the facts of the
    /// differing buckets) what feeds it, and names each fact found on one side only.
    private func locateMismatches() throws(LarderError) {
        let mismatched = facts.mismatched
        guard !mismatched.isEmpty else { return }
        muted = true
        defer { muted = false }
        facts.startBucketing(mismatched)
        try rewalk(mismatched)
        let leftOut = facts.startDetailing()
        try rewalk(mismatched)
        muted = false
        guard !cancelled else { return }
        for relation in mismatched {
            let info = relation.info
            let unmatched = facts.unmatched(relation)
            for fact in unmatched {
                let times = fact.surplus > 1 ? " (\(fact.surplus) times)" : ""
                switch fact.side {
                case .left:
                    problem(info.leftOnly, seq: fact.origin?.seq, table: info.table,
                            "\(fact.origin?.what ?? "a fact")\(times) has no match in \(info.right)")
                case .right:
                    problem(info.rightOnly, seq: fact.origin?.seq, table: info.table,
                            "\(fact.origin?.what ?? "a fact")\(times) has no match in \(info.left)")
                }
            }
            if unmatched.isEmpty {
                let surplus = facts.surplus(relation)
                problem(info.leftOnly, seq: nil, table: info.table,
                        "\(info.left) and \(info.right) disagree (\(abs(surplus)) \(surplus >= 0 ? "more" : "fewer") on the first side)\(leftOut ? "; too many differences to name them all" : "")")
            }
        }
        if leftOut {
            problem(.malformed, seq: nil, table: "verify", "more differences exist than verify names; fix these and verify again")
        }
    }

    /// The walks that feed `relations`, again.
    private func rewalk(_ relations: [Relation]) throws(LarderError) {
        let wanted = Set(relations)
        let fromLog: Set<Relation> = [.auditByRequest, .auditByRef, .auditByTime, .accountRecords, .transferRecords,
                                      .incidentCreated, .incidentTransitions, .responseRecords, .refundOutcomes]
        if !wanted.isDisjoint(with: fromLog) { try walkLog(hashing: false, relations: true) }
        if !wanted.isDisjoint(with: [.auditByRequest, .auditByRef, .auditByTime]) { try walkAuditIndexes() }
        if !wanted.isDisjoint(with: [.accountRecords, .transferRecords, .historyEntries, .releases, .resolutions, .resolutionShapes]) {
            try verifyLedger()
        }
        if !wanted.isDisjoint(with: [.incidentCreated, .incidentTransitions, .responseRecords, .refundOutcomes,
                                     .refundRequests, .cancelledCycles, .incidentIndex]) {
            try verifyIncidents()
        }
    }
}
