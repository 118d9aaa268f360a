import Crypto
import LarderStorage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Verifier {
    /// Walks the audit log once, in seq order, reading each record where it lies: the seqs, the
    /// leaf and chain hashes (when `hashing`), each record decoded once (``RecordFields``), and,
    /// with `relations`, the facts the log holds about the index entries and state rows it
    /// should have made, and what it says about decisions and the policy.
    func walkLog(hashing: Bool, relations: Bool) throws(LarderError) {
        let total = try txn.statistics(tables.audit).entries
        let table = StoreTables.auditName
        var previousSeq: UInt64 = 0
        var done = 0
        // 0x01 ‖ previous chainHash ‖ leafHash: the chain hash's input, reused for every record.
        var chainInput = [UInt8](repeating: 0, count: 65)
        chainInput[0] = 0x01
        let leafPrefix: [UInt8] = [0x00]
        var run = DecisionRun()
        // Record times never decrease from here on (meta.time_ordered_from); the records before
        // keep time entries in the index.
        let orderedFrom = relations ? try AuditLog(txn: txn, tables: tables).timeOrderedFrom() : 1
        var previousTime = Int64.min
        // The whole verify also checks the Merkle tree's first stored level from the leaf hashes
        // as they stream by: 256 leaves make one level-1 node (docs/FORMAT.md section 14.3).
        var tree = LevelOneCheck(active: hashing && relations)
        if relations && !muted {
            decisionWrites = 0
            decisionsPurged = 0
            purges = []
            lastPolicy = nil
        }
        try txn.withBytesCursor(tables.merkleNodes) { (nodes: BytesCursor) throws(LarderError) in
        if tree.active { _ = try nodes.seek(atOrAfter: [1], mapError: { LarderError($0) }) }
        try txn.forEachBytes(tables.audit) { key, value throws(LarderError) -> Bool in
            done += 1
            let seq = key.count == 8 ? UInt64(bigEndian: key.loadUnaligned(as: UInt64.self)) : 0
            if !muted { report.recordsChecked += 1 }
            if seq != previousSeq + 1 {
                problem(.gap, seq: seq, table: table, "expected seq \(previousSeq + 1), found \(seq)")
                tree.active = false
            }
            previousSeq = seq
            guard value.count > 64 else {
                problem(.malformed, seq: seq, table: table, "an audit value of \(value.count) bytes is too short")
                return tick("audit chain", done, total)
            }
            let recordEnd = value.count - 64
            let record = UnsafeRawBufferPointer(rebasing: value[..<recordEnd])
            let leaf = UnsafeRawBufferPointer(rebasing: value[recordEnd..<(recordEnd + 32)])
            let chain = UnsafeRawBufferPointer(rebasing: value[(recordEnd + 32)...])
            if hashing {
                var hasher = SHA256()
                leafPrefix.withUnsafeBytes { hasher.update(bufferPointer: $0) }
                hasher.update(bufferPointer: record)
                let computedLeaf = hasher.finalize()
                if !computedLeaf.withUnsafeBytes({ InPlace.equal($0, leaf) }) {
                    problem(.leafHashMismatch, seq: seq, table: table,
                            "the record's bytes hash to \(Array(computedLeaf).hexString), stored leafHash is \(Array(leaf).hexString)")
                }
                chainInput.withUnsafeMutableBytes { input in
                    input.baseAddress!.advanced(by: 33).copyMemory(from: leaf.baseAddress!, byteCount: 32)
                }
                var chainHasher = SHA256()
                chainInput.withUnsafeBytes { chainHasher.update(bufferPointer: $0) }
                let computedChain = chainHasher.finalize()
                if !computedChain.withUnsafeBytes({ InPlace.equal($0, chain) }) {
                    problem(.chainHashMismatch, seq: seq, table: table,
                            "expected chainHash \(Array(computedChain).hexString), stored \(Array(chain).hexString)")
                }
                // Continue from the stored hash so one damaged record is reported once, not at
                // every record after it.
                chainInput.withUnsafeMutableBytes { input in
                    input.baseAddress!.advanced(by: 1).copyMemory(from: chain.baseAddress!, byteCount: 32)
                }
                if tree.active, let node = try tree.add(leaf, nodes: nodes) {
                    problem(.merkleTreeMismatch, seq: nil, table: StoreTables.merkleNodesName,
                            "tile level 1 index \(node.index) (seqs \(node.index * 256 + 1)...\((node.index + 1) * 256)) is stored as \(node.stored.hexString); the hashes below it give \(node.expected.hexString)")
                }
            }
            if !relations {
                // The chain alone: the record's own seq is its bytes 1...8.
                if record.count >= 9, record[0] == AuditRecord.formatVersion {
                    let own = UInt64(bigEndian: record.loadUnaligned(fromByteOffset: 1, as: UInt64.self))
                    if own != seq { problem(.seqMismatch, seq: seq, table: table, "the record says seq \(own)") }
                } else {
                    problem(.malformed, seq: seq, table: table, "the record does not start with format version \(AuditRecord.formatVersion) and a seq")
                }
                return tick("audit chain", done, total)
            }
            let fields: RecordFields
            do throws(Malformed) {
                fields = try RecordFields(record)
            } catch {
                problem(.malformed, seq: seq, table: table, "A stored value could not be decoded: \(error.detail).")
                return tick("audit chain", done, total)
            }
            if fields.seq != seq {
                problem(.seqMismatch, seq: seq, table: table, "the record says seq \(fields.seq)")
            }
            if seq > orderedFrom, fields.timeMicros < previousTime {
                problem(.outOfTimeOrder, seq: seq, table: table,
                        "the record's time \(RFC3339.format(fields.timeMicros)) is before the record before it (\(RFC3339.format(previousTime)))")
            }
            previousTime = fields.timeMicros
            logFacts(fields, seq: seq, timeEntry: seq < orderedFrom, run: &run)
            return tick("audit chain", done, total)
        }
        }
        if relations { run.close(self) }
        guard !muted else { return }
        tick("audit chain", done, total, force: true)
        if let last = try txn.last(tables.audit), last.value.count > 64 {
            report.head = ChainHead(seq: last.key, chainHash: Array(last.value.suffix(32)))
        } else {
            report.head = ChainHead(seq: previousSeq, chainHash: previousSeq == 0 ? AuditChain.genesis : [])
        }
    }

    /// The level-1 nodes of the Merkle tree, recomputed from the leaf hashes as the chain walk
    /// reads them and compared with the stored ones in key order (a merge walk over
    /// `merkle_nodes`). Missing or extra nodes are counted by ``verifyMerkleTree()``.
    struct LevelOneCheck {
        var active: Bool
        var leaves: [MerkleHash] = []
        var index: UInt64 = 0

        init(active: Bool) {
            self.active = active
            if active { leaves.reserveCapacity(256) }
        }

        /// Adds a leaf; after every 256th, the node they make when it differs from the stored one.
        mutating func add(_ leaf: UnsafeRawBufferPointer, nodes: BytesCursor) throws(LarderError)
            -> (index: UInt64, stored: MerkleHash, expected: MerkleHash)? {
            leaves.append(MerkleHash(copying: leaf))
            guard leaves.count == 256 else { return nil }
            let expected = MerkleTreeBuilder.perfectRoot(&leaves)
            leaves.removeAll(keepingCapacity: true)
            defer { index += 1 }
            var key: [UInt8] = [1]
            withUnsafeBytes(of: index.bigEndian) { key.append(contentsOf: $0) }
            // Nodes missing or extra here are reported by the count of the level.
            while nodes.isPositioned, key.withUnsafeBytes({ InPlace.compare(nodes.key, $0) < 0 }) {
                _ = try nodes.next(mapError: { LarderError($0) })
            }
            guard nodes.isPositioned, InPlace.equal(nodes.key, key), let stored = MerkleHash(bytes: nodes.value) else {
                return nil
            }
            _ = try nodes.next(mapError: { LarderError($0) })
            return stored == expected ? nil : (index, stored, expected)
        }
    }

    /// A run of records of one write that made a decision: one decisionID, requestID and time.
    struct DecisionRun {
        var decisionID: [UInt8] = []
        var requestID: [UInt8] = []
        var timeMicros: Int64 = 0
        var lastSeq: UInt64 = 0
        var open = false

        /// Whether `fields` continues this run.
        func continues(_ fields: RecordFields) -> Bool {
            guard open, let decision = fields.decisionID else { return false }
            return fields.timeMicros == timeMicros && InPlace.equal(decision, decisionID) && InPlace.equal(fields.requestID, requestID)
        }

        mutating func start(_ fields: RecordFields, seq: UInt64) {
            decisionID = Array(fields.decisionID!)
            requestID = Array(fields.requestID)
            timeMicros = fields.timeMicros
            lastSeq = seq
            open = true
        }

        /// Ends the run: while naming a missing decision, checks the write's decision.
        mutating func close(_ verifier: Verifier) {
            guard open else { return }
            open = false
            verifier.decisionWriteEnded(decisionID: decisionID, lastSeq: lastSeq, timeMicros: timeMicros)
        }
    }

    /// The facts one record holds, and what it says about decisions and the policy.
    private func logFacts(_ fields: RecordFields, seq: UInt64, timeEntry: Bool, run: inout DecisionRun) {
        // Index entries the record should have.
        scratch.reset()
        scratch.keyString(fields.requestID)
        scratch.bigEndian(seq)
        var fact = facts.fact(.auditByRequest)
        fact.add(bytes: scratch.buffer)
        facts.add(.auditByRequest, .left, fact.finish()) {
            FactOrigin(seq: seq, what: "record \(seq) (request \(InPlace.text(fields.requestID)))")
        }
        fields.forEachRef { kind, id in
            scratch.reset()
            scratch.keyString(kind)
            scratch.keyString(id)
            scratch.bigEndian(seq)
            var fact = facts.fact(.auditByRef)
            fact.add(bytes: scratch.buffer)
            facts.add(.auditByRef, .left, fact.finish()) {
                FactOrigin(seq: seq, what: "record \(seq) (ref \(InPlace.text(kind)):\(InPlace.text(id)))")
            }
        }
        if timeEntry {
            scratch.reset()
            scratch.keyInt64(fields.timeMicros)
            scratch.bigEndian(seq)
            fact = facts.fact(.auditByTime)
            fact.add(bytes: scratch.buffer)
            facts.add(.auditByTime, .left, fact.finish()) {
                FactOrigin(seq: seq, what: "record \(seq) (time \(RFC3339.format(fields.timeMicros)))")
            }
        }

        // Decisions: one per write that made one, unless a purge removed it since.
        if run.continues(fields) {
            run.lastSeq = seq
        } else {
            run.close(self)
            if fields.decisionID != nil {
                run.start(fields, seq: seq)
                if !muted { decisionWrites += 1 }
            }
        }

        let event = fields.kind
        // Application code may append records under Larder's event names; only the records whose
        // payload starts as Larder writes it are held against state tables.
        switch event {
        case .accountCreated where !Self.payload(fields, startsWith: Self.accountPayloadStart),
             .transfer where !Self.payload(fields, startsWith: Self.transferPayloadStart),
             .failureRecorded where !Self.payload(fields, startsWith: Self.incidentPayloadStart),
             .stateChanged where !Self.payload(fields, startsWith: Self.incidentPayloadStart),
             .responseApplied where !Self.payload(fields, startsWith: Self.incidentPayloadStart),
             .creditGranted where !Self.payload(fields, startsWith: Self.incidentPayloadStart),
             .refundIssued where !Self.payload(fields, startsWith: Self.incidentPayloadStart),
             .overrideUsed where !Self.payload(fields, startsWith: Self.incidentPayloadStart),
             .refundOutcome where !Self.payload(fields, startsWith: Self.incidentPayloadStart):
            return
        default:
            break
        }
        switch event {
        case .other:
            return
        case .accountCreated:
            addLogFact(.accountRecords, fields, seq: seq, what: "LEDGER_ACCOUNT_CREATED record \(seq)")
        case .transfer:
            addLogFact(.transferRecords, fields, seq: seq, event: true, what: "\(InPlace.text(fields.event)) record \(seq)")
        case .failureRecorded:
            addLogFact(.incidentCreated, fields, seq: nil, actor: true, what: "OP_FAILURE_RECORDED record \(seq)", origin: seq)
        case .stateChanged:
            transitionFact(fields, seq: seq)
        case .responseApplied, .creditGranted, .refundIssued, .overrideUsed:
            let tag: UInt64, withSeq: Bool
            switch event {
            case .responseApplied: (tag, withSeq) = (1, true)
            case .creditGranted: (tag, withSeq) = (2, false)
            case .refundIssued: (tag, withSeq) = (3, true)
            default: (tag, withSeq) = (4, false)
            }
            var fact = facts.fact(.responseRecords)
            fact.add(tag)
            fact.add(withSeq ? seq : 0)
            fact.add(fields.timeMicros)
            fact.add(bytes: fields.actorID)
            fact.add(bytes: fields.role)
            fact.add(optional: fields.failureCategory)
            fact.add(optional: fields.responseType)
            fact.add(optional: fields.reasonCode)
            fields.addRefs(to: &fact)
            fact.add(bytes: fields.payload)
            facts.add(.responseRecords, .left, fact.finish()) {
                FactOrigin(seq: seq, what: "\(InPlace.text(fields.event)) record \(seq)")
            }
        case .refundOutcome:
            var fact = facts.fact(.refundOutcomes)
            fact.add(seq)
            fact.add(optional: fields.responseType)
            fields.addRefs(to: &fact)
            fact.add(bytes: fields.payload)
            facts.add(.refundOutcomes, .left, fact.finish()) {
                FactOrigin(seq: seq, what: "OP_REFUND_OUTCOME_RECORDED record \(seq)")
            }
        case .decisionsPurged:
            guard !muted else { return }
            let payload = FlatJSON(bytes: fields.payload)
            decisionsPurged &+= payload.unsigned("purged") ?? 0
            purges.append((seq, payload.value("cutoff").flatMap { RFC3339.parse(InPlace.text($0)) }))
        case .policyChanged:
            guard !muted else { return }
            let named = FlatJSON(bytes: fields.payload).value("policy_sha256").flatMap { [UInt8](hexString: InPlace.text($0)) }
            lastPolicy = (seq, named?.count == 32 ? named : nil)
        }
    }

    /// A record's fact as state rows render it: seq (or none), time, the event name (for
    /// transfers), the actor (for incidents), the three optional codes, refs and payload.
    private func addLogFact(_ relation: Relation, _ fields: RecordFields, seq: UInt64?, event: Bool = false, actor: Bool = false,
                            what: @autoclosure () -> String, origin: UInt64? = nil) {
        var fact = facts.fact(relation)
        fact.add(seq ?? 0)
        fact.add(fields.timeMicros)
        if event { fact.add(bytes: fields.event) }
        if actor {
            fact.add(bytes: fields.actorID)
            fact.add(bytes: fields.role)
        }
        fact.add(optional: fields.failureCategory)
        fact.add(optional: fields.responseType)
        fact.add(optional: fields.reasonCode)
        fields.addRefs(to: &fact)
        fact.add(bytes: fields.payload)
        facts.add(relation, .left, fact.finish()) { FactOrigin(seq: seq ?? origin, what: what()) }
    }

    /// An `INCIDENT_STATE_CHANGED` record as the incident's state path implies it: the incident,
    /// from and to, its category and refs; for an acknowledgement also its time and `overdue`.
    private func transitionFact(_ fields: RecordFields, seq: UInt64) {
        let payload = FlatJSON(bytes: fields.payload)
        var fact = facts.fact(.incidentTransitions)
        let to = payload.value("to")
        fact.add(optional: payload.value("incident_id"))
        fact.add(optional: payload.value("from"))
        fact.add(optional: to)
        fact.add(optional: fields.failureCategory)
        fields.addRefs(to: &fact)
        if let to, InPlace.equal(to, Self.acknowledged) {
            fact.add(fields.timeMicros)
            fact.add(optional: payload.value("overdue"))
        }
        facts.add(.incidentTransitions, .left, fact.finish()) {
            FactOrigin(seq: seq, what: "INCIDENT_STATE_CHANGED record \(seq)")
        }
    }

    static let acknowledged = Array(IncidentState.acknowledged.rawValue.utf8)
    static let accountPayloadStart = Array(#"{"account_id":"#.utf8)
    static let transferPayloadStart = Array(#"{"transfer_id":"#.utf8)
    static let incidentPayloadStart = Array(#"{"incident_id":"#.utf8)

    private static func payload(_ fields: RecordFields, startsWith prefix: [UInt8]) -> Bool {
        prefix.withUnsafeBytes { InPlace.hasPrefix(fields.payload, $0) }
    }
}
