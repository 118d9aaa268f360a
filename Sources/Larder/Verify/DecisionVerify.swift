import LarderStorage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Verifier {
    // MARK: Audit indexes

    /// Each audit index walked once, in its own order: every key is a fact the chain walk must
    /// have derived from a record (``Relation/auditByRequest`` and the others).
    func walkAuditIndexes() throws(LarderError) {
        guard !cancelled else { return }
        let total = try txn.sharedStatistics(tables.auditByRequest).entries
        var done = 0
        try walkIndex(tables.auditByRequest, .auditByRequest, total: total, done: &done)
        try walkIndex(tables.auditByRef, .auditByRef, total: total, done: &done)
        try walkIndex(tables.auditByTime, .auditByTime, total: total, done: &done)
        tick("audit indexes", done, total, force: true)
    }

    /// One index whose keys end with the seq of the record they point to.
    private func walkIndex<K: OrderedKey>(_ index: Table<K, Empty>, _ relation: Relation, total: Int,
                                          done: inout Int) throws(LarderError) {
        let name = relation.info.table
        var walked = done
        try txn.forEachBytes(index) { key, value throws(LarderError) -> Bool in
            walked += 1
            if !muted { report.indexEntriesChecked += 1 }
            var fact = facts.fact(relation)
            fact.add(bytes: key)
            facts.add(relation, .right, fact.finish()) {
                let seq = key.count >= 8 ? UInt64(bigEndian: key.loadUnaligned(fromByteOffset: key.count - 8, as: UInt64.self)) : nil
                let decoded = (try? K.decodeKey(Array(key))).map { "\($0)" } ?? Array(key).hexString
                return FactOrigin(seq: seq, what: "the entry \(decoded) (pointing to seq \(seq.map(String.init) ?? "?"))")
            }
            if !value.isEmpty {
                problem(.malformed, seq: nil, table: name, "an entry holds a \(value.count)-byte value; index values are empty")
            }
            return tick("audit indexes", walked, total)
        }
        done = walked
    }

    // MARK: Decisions

    /// Every decision against its audit record; and the decisions the log
    /// calls for against the decisions kept: each write that made a decision stored one, and
    /// only `DECISIONS_PURGED` records removed any, so the table holds exactly the log's decision
    /// writes less the purged counts. When it does not, the log is walked again to name the
    /// write whose decision is missing.
    func verifyDecisions() throws(LarderError) {
        guard !cancelled else { return }
        let table = StoreTables.decisionsName
        let total = try txn.statistics(tables.decisions).entries
        var done = 0
        var withRecords = 0
        var id: [UInt8] = []
        // Every record before meta.decision_purge_from was walked by a purge and was older than
        // its cutoff: a decision kept under one of them should have gone.
        let purgedBefore = (try? AuditLog(txn: txn, tables: tables).decisionPurgeFrom()) ?? 1
        try txn.forEachBytes(tables.decisions) { key, value throws(LarderError) -> Bool in
            done += 1
            if !muted { report.otherRecordsChecked += 1 }
            guard KeyText.read(key, into: &id) == key.count else {
                problem(.malformed, seq: nil, table: table, "a decision key is not a string key: \(Array(key).hexString)")
                return tick("decisions", done, total)
            }
            let name = InPlace.text(id.withUnsafeBytes { $0 })
            let time: Int64, seq: UInt64
            do throws(Malformed) {
                var reader = InPlaceReader(value)
                let version = try reader.u8()
                guard version == DecisionRecord.formatVersion else { throw Malformed(detail: "decision format version \(version)") }
                _ = try reader.raw(32)
                time = try reader.i64()
                seq = try reader.u64()
                _ = try reader.string()
                _ = try reader.blob()
                try reader.expectEnd()
            } catch {
                problem(.malformed, seq: nil, table: table, "decision \(name) cannot be decoded: \(error.detail)")
                return tick("decisions", done, total)
            }
            if seq != 0 { withRecords += 1 }
            if seq != 0, seq < purgedBefore {
                problem(.decisionMismatch, seq: seq, table: table,
                        "decision \(name) names audit seq \(seq), before meta.decision_purge_from (\(purgedBefore)): a purge walked past it and should have removed it")
            }
            if !muted { try checkDecisionRecord(id: id, name: name, seq: seq, timeMicros: time) }
            return tick("decisions", done, total)
        }
        guard !muted, !cancelled else { return }
        tick("decisions", done, total, force: true)
        let expected = Int64(decisionWrites) - Int64(truncatingIfNeeded: decisionsPurged)
        if Int64(withRecords) != expected {
            problem(.decisionMismatch, seq: nil, table: table,
                    "\(withRecords) decisions are kept, but the log has \(decisionWrites) writes that made one and DECISIONS_PURGED records removing \(decisionsPurged): \(expected) expected")
            try locateMissingDecisions()
        }
    }

    /// The record a decision names is a record of that decision (same decisionID and time), and
    /// the last record of its write.
    private func checkDecisionRecord(id: [UInt8], name: String, seq: UInt64, timeMicros: Int64) throws(LarderError) {
        let table = StoreTables.decisionsName
        guard seq != 0 else {
            problem(.decisionMismatch, seq: nil, table: table,
                    "decision \(name) names no audit record (seq 0); a decision is kept only by a write that appended records")
            return
        }
        let matches = try txn.withValueBytes(tables.audit, encodedKey: seq.encodedKey) { value throws(LarderError) -> Bool in
            guard value.count > 64, let fields = try? RecordFields(UnsafeRawBufferPointer(rebasing: value[..<(value.count - 64)])) else {
                return false
            }
            return fields.decisionID.map { decision in id.withUnsafeBytes { InPlace.equal(decision, $0) } } == true
                && fields.timeMicros == timeMicros
        }
        guard matches == true else {
            problem(.decisionMismatch, seq: seq, table: table,
                    "decision \(name) names audit seq \(seq), which is not a record of that decision made at \(RFC3339.format(timeMicros))")
            return
        }
        let continued = try txn.withValueBytes(tables.audit, encodedKey: (seq + 1).encodedKey) { value throws(LarderError) -> Bool in
            guard value.count > 64, let fields = try? RecordFields(UnsafeRawBufferPointer(rebasing: value[..<(value.count - 64)])),
                  let decision = fields.decisionID else { return false }
            return fields.timeMicros == timeMicros && id.withUnsafeBytes { InPlace.equal(decision, $0) }
        }
        if continued == true {
            problem(.decisionMismatch, seq: seq, table: table,
                    "decision \(name) names audit seq \(seq), but its write's last record is later")
        }
    }

    /// Walks the log again and, at the end of each write that made a decision, looks for that
    /// decision: kept under that write's last record, or removed by a later purge whose cutoff
    /// is after the decision's time. Names each write that has neither.
    private func locateMissingDecisions() throws(LarderError) {
        locatingDecisions = true
        facts.isPaused = true
        muted = true
        defer {
            locatingDecisions = false
            facts.isPaused = false
            muted = false
        }
        try walkLog(hashing: false, relations: true)
    }

    /// The end of a write that made a decision, seen by the chain walk.
    func decisionWriteEnded(decisionID: [UInt8], lastSeq: UInt64, timeMicros: Int64) {
        guard locatingDecisions else { return }
        scratch.reset()
        decisionID.withUnsafeBytes { scratch.keyString($0) }
        let keptSeq: UInt64?? = try? txn.withValueBytes(tables.decisions, encodedKey: scratch.bytes) { value throws(LarderError) -> UInt64? in
            var reader = InPlaceReader(value)
            guard (try? reader.raw(1 + 32 + 8)) != nil, let seq = try? reader.u64() else { return nil }
            return seq
        }
        if let kept = keptSeq ?? nil, kept == lastSeq { return }
        if purges.contains(where: { $0.seq > lastSeq && ($0.cutoffMicros.map { $0 > timeMicros } ?? true) }) { return }
        let name = InPlace.text(decisionID.withUnsafeBytes { $0 })
        report.add(.decisionMismatch, seq: lastSeq, table: StoreTables.decisionsName,
                   "the write ending at seq \(lastSeq) made decision \(name), which is not kept, and no DECISIONS_PURGED record after it removed it")
    }
}

/// `str` keys (docs/FORMAT.md section 2.2) read back from bytes in place.
enum KeyText {
    /// Reads the string key starting at `offset` into `text` (unescaped) and returns the offset
    /// after its terminator; nil when malformed.
    @discardableResult
    static func read(_ key: UnsafeRawBufferPointer, from offset: Int = 0, into text: inout [UInt8]) -> Int? {
        text.removeAll(keepingCapacity: true)
        var index = offset
        while index < key.count {
            let byte = key[index]
            if byte != 0 {
                text.append(byte)
                index += 1
                continue
            }
            guard index + 1 < key.count else { return nil }
            switch key[index + 1] {
            case 0: return index + 2
            case 0xFF:
                text.append(0)
                index += 2
            default: return nil
            }
        }
        return nil
    }

    /// Calls `body` with the text of a key that is one `str` key: in place when it holds no
    /// escape (the usual case), else unescaped into a copy. Nil when the key is not one `str` key.
    @inline(__always)
    static func withText<R>(_ key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        let count = key.count
        guard count >= 2, key[count - 1] == 0, key[count - 2] == 0 else { return nil }
        let text = UnsafeRawBufferPointer(rebasing: key[..<(count - 2)])
        if text.isEmpty || memchr(text.baseAddress!, 0, text.count) == nil { return body(text) }
        var copy: [UInt8] = []
        guard read(key, into: &copy) == count else { return nil }
        return copy.withUnsafeBytes { body($0) }
    }

    /// The offset after the string key starting at `offset`, without copying it; nil when malformed.
    static func end(_ key: UnsafeRawBufferPointer, from offset: Int = 0) -> Int? {
        var index = offset
        while index + 1 < key.count {
            if key[index] == 0 {
                if key[index + 1] == 0 { return index + 2 }
                guard key[index + 1] == 0xFF else { return nil }
                index += 2
            } else {
                index += 1
            }
        }
        return nil
    }
}
