import LarderStorage

/// A page of audit records and the cursor that continues after it.
public struct AuditPage: Sendable, Hashable {
    public let records: [AuditEntry]
    /// Pass back to get the next page; nil when this page is the last.
    public let nextCursor: String?
}

/// Reads the audit log in one snapshot: by sequence, by requestID, by correlation reference and
/// by time, each paged with a limit and a cursor. There is no API that changes or removes a record.
///
/// ```swift
/// let trail = try store.read { view in try view.audit.records(requestID: "req-8812", limit: 100) }
/// ```
public struct AuditLog {
    let txn: TableReader
    let tables: StoreTables

    /// Records per page at most.
    public static let recordsPerPageMax = 1_000

    /// The newest record's seq and chain hash (``ChainHead/empty`` for an empty log), read from
    /// the log itself.
    public func head() throws(LarderError) -> ChainHead {
        // Read in place (every write reads the head; copying the whole record was most of that).
        try headAndLastTime().head
    }

    /// How many records the log holds.
    public func count() throws(LarderError) -> Int { try txn.statistics(tables.audit).entries }

    /// One record, or nil.
    public func record(seq: UInt64) throws(LarderError) -> AuditEntry? {
        try txn.withValueBytes(tables.audit, seq) { value throws(LarderError) in try AuditEntry.decode(value) }
    }

    /// Records from `fromSeq` on (ascending), or — with `direction: .backward` — from `fromSeq`
    /// down. The cursor is the next seq to ask for.
    public func records(fromSeq: UInt64 = 1, limit: Int, direction: ScanDirection = .forward,
                        cursor: String? = nil) throws(LarderError) -> AuditPage {
        try Self.validate(limit: limit)
        let start = try cursor.map { text throws(LarderError) in try Self.parseSeqCursor(text) } ?? fromSeq
        let range: KeyRange<UInt64> = direction == .forward ? .from(start) : .between(0, through: start)
        // Each record decoded straight from the map: one copy of its bytes, not two.
        var records: [AuditEntry] = []
        records.reserveCapacity(min(limit, 64))
        var next: String?
        try txn.forEachBytes(tables.audit, in: range, direction: direction) { key, value throws(LarderError) -> Bool in
            guard records.count < limit else {
                next = String(try Self.seq(key: key))
                return false
            }
            records.append(try AuditEntry.decode(value))
            return true
        }
        return AuditPage(records: records, nextCursor: next)
    }

    /// Records of one request, oldest first.
    public func records(requestID: String, limit: Int, cursor: String? = nil) throws(LarderError) -> AuditPage {
        try Self.validate(limit: limit)
        try WriteContext.validateIdentifier(requestID, field: "requestID")
        var range = KeyRange<KeyPair<String, UInt64>>.prefix(requestID)
        if let cursor {
            range = range.intersected(with: .after(KeyPair(requestID, try Self.parseSeqCursor(cursor))))
        }
        return try page(index: tables.auditByRequest, range: range, limit: limit) { $0.second }
    }

    /// Records about one correlation reference (`order:4411`), oldest first.
    public func records(ref: CorrelationRef, limit: Int, cursor: String? = nil) throws(LarderError) -> AuditPage {
        try Self.validate(limit: limit)
        try ref.validate()
        let prefix = KeyPair(ref.kind, ref.id)
        var range = KeyRange<KeyPair<KeyPair<String, String>, UInt64>>.prefix(prefix)
        if let cursor {
            range = range.intersected(with: .after(KeyPair(prefix, try Self.parseSeqCursor(cursor))))
        }
        return try page(index: tables.auditByRef, range: range, limit: limit) { $0.second }
    }

    /// Records with `since <= time < until`, in time order (time, then seq).
    ///
    /// From `meta.time_ordered_from` on, record times never decrease, so the records of a time
    /// range there are found by binary search on seq; the records before it (a store migrated
    /// from schema 1 whose wall clock once went back) by the time view of the index
    /// (docs/FORMAT.md section 5.1). The two are merged.
    public func records(since: UnixMicros, until: UnixMicros, limit: Int, cursor: String? = nil) throws(LarderError) -> AuditPage {
        try Self.validate(limit: limit)
        guard since <= until else {
            throw LarderError(.validationFailed, "since (\(RFC3339.format(since))) is after until (\(RFC3339.format(until))).")
        }
        var after: (time: Int64, seq: UInt64)?
        if let cursor {
            let parts = cursor.split(separator: "-", maxSplits: 1)
            guard parts.count == 2, let time = Int64(parts[0]), let seq = UInt64(parts[1]) else {
                throw LarderError(.validationFailed, "The cursor \(JSONWriter.quoted(cursor)) is not a time cursor.")
            }
            after = (time, seq)
        }
        // The records before the time-ordered part, through their time entries.
        var range = KeyRange<KeyPair<Int64, UInt64>>.between(KeyPair(since, 0), KeyPair(until, 0))
        if let after { range = range.intersected(with: .after(KeyPair(after.time, after.seq))) }
        let early = try txn.scan(tables.auditByTime, in: range, limit: limit + 1).map { (time: $0.key.first, seq: $0.key.second) }
        // The time-ordered part: the first seq at or after (since, after), then on in seq order.
        var ordered: [(time: Int64, seq: UInt64)] = []
        let first = try timeOrderedFrom(), last = try head().seq
        if first <= last {
            var low = first, high = last + 1
            while low < high {
                let middle = low + (high - low) / 2
                let time = try timeMicros(seq: middle)
                let reached = time >= since && after.map { (time, middle) > ($0.time, $0.seq) } ?? true
                if reached { high = middle } else { low = middle + 1 }
            }
            if low <= last {
                try txn.forEachBytes(tables.audit, in: .from(low)) { key, value throws(LarderError) -> Bool in
                    let time = try Self.time(value: value)
                    guard time < until, ordered.count <= limit else { return false }
                    ordered.append((time, try Self.seq(key: key)))
                    return true
                }
            }
        }
        // Merge by (time, seq).
        var merged: [(time: Int64, seq: UInt64)] = []
        merged.reserveCapacity(min(limit + 1, early.count + ordered.count))
        var i = 0, j = 0
        while merged.count <= limit, i < early.count || j < ordered.count {
            if j == ordered.count || (i < early.count && (early[i].time, early[i].seq) < (ordered[j].time, ordered[j].seq)) {
                merged.append(early[i])
                i += 1
            } else {
                merged.append(ordered[j])
                j += 1
            }
        }
        let records = try resolve(merged.prefix(limit).map(\.seq))
        let next = merged.count > limit ? "\(merged[limit - 1].time)-\(merged[limit - 1].seq)" : nil
        return AuditPage(records: records, nextCursor: next)
    }

    /// The first seq from which record times never decrease (`meta.time_ordered_from`; 1 when
    /// the store has no such key).
    func timeOrderedFrom() throws(LarderError) -> UInt64 { try metaSeq(MetaKey.timeOrderedFrom) }

    /// The seq a decisions purge starts walking the log at (`meta.decision_purge_from`; 1 when
    /// no purge removed anything yet).
    func decisionPurgeFrom() throws(LarderError) -> UInt64 { try metaSeq(MetaKey.decisionPurgeFrom) }

    /// A `u64` seq kept in meta under `name`, 1 when absent.
    private func metaSeq(_ name: String) throws(LarderError) -> UInt64 {
        guard let bytes = try txn.get(tables.meta, name) else { return 1 }
        var reader = ByteReader(bytes)
        let seq = try reader.readUInt64()
        try reader.expectEnd()
        return seq
    }

    /// The time of record `seq`, read in place.
    func timeMicros(seq: UInt64) throws(LarderError) -> Int64 {
        guard let time = try txn.withValueBytes(tables.audit, seq, { value throws(LarderError) in try Self.time(value: value) }) else {
            throw LarderError(.persistenceError, "Audit seq \(seq) is missing; run verify.", failureClass: .dataInconsistency,
                              failurePoint: .read)
        }
        return time
    }

    /// The head and the time of the newest record (nil for an empty log), read in place in one
    /// step: every write needs both before it runs.
    func headAndLastTime() throws(LarderError) -> (head: ChainHead, timeMicros: Int64?) {
        var found: (ChainHead, Int64?) = (.empty, nil)
        try txn.forEachBytes(tables.audit, direction: .backward) { key, value throws(LarderError) -> Bool in
            guard value.count > 64 else { throw ByteReader.malformed("an audit value of \(value.count) bytes is too short") }
            found = (ChainHead(seq: try Self.seq(key: key), chainHash: Array(UnsafeRawBufferPointer(rebasing: value[(value.count - 32)...]))),
                     try Self.time(value: value))
            return false
        }
        return found
    }

    /// A record's time from its stored value: bytes 9..<17 (version, seq, time; section 3).
    static func time(value: UnsafeRawBufferPointer) throws(LarderError) -> Int64 {
        guard value.count >= 17 + 64 else { throw ByteReader.malformed("an audit value of \(value.count) bytes is too short") }
        return Int64(bitPattern: UInt64(bigEndian: value.loadUnaligned(fromByteOffset: 9, as: UInt64.self)))
    }

    private func page<K>(index: Table<K, Empty>, range: KeyRange<K>, limit: Int,
                         seq: (K) -> UInt64) throws(LarderError) -> AuditPage {
        let keys = try txn.scan(index, in: range, limit: limit + 1).map(\.key)
        let records = try resolve(keys.prefix(limit).map(seq))
        let next = keys.count > limit ? String(seq(keys[limit - 1])) : nil
        return AuditPage(records: records, nextCursor: next)
    }

    private func resolve(_ seqs: [UInt64]) throws(LarderError) -> [AuditEntry] {
        var records: [AuditEntry] = []
        records.reserveCapacity(seqs.count)
        for seq in seqs {
            guard let entry = try record(seq: seq) else {
                throw LarderError(.persistenceError, "An audit index points to seq \(seq), which does not exist; run verify.",
                                  failureClass: .dataInconsistency, failurePoint: .read)
            }
            records.append(entry)
        }
        return records
    }

    static func validate(limit: Int) throws(LarderError) {
        guard (1...recordsPerPageMax).contains(limit) else {
            throw LarderError(.validationFailed, "limit \(limit) is not in 1...\(recordsPerPageMax).")
        }
    }

    static func parseSeqCursor(_ text: String) throws(LarderError) -> UInt64 {
        guard let seq = UInt64(text) else {
            throw LarderError(.validationFailed, "The cursor \(JSONWriter.quoted(text)) is not a sequence number.")
        }
        return seq
    }
}

/// Appends audit records inside a write: reads the head from the log itself (never from a cache
/// kept across transactions, so two processes writing one store keep one chain).
struct AuditAppender {
    let txn: TableWriter
    let tables: StoreTables
    var keepsMerkleTree = true

    func append(_ draft: AuditDraft, context: WriteContext, timeMicros: UnixMicros, after head: ChainHead,
                fault: AuditFaultInjection?) throws(LarderError) -> AuditEntry {
        try Self.validate(draft)
        let seq = head.seq + 1
        let record = AuditRecord(seq: seq, timeMicros: timeMicros, event: draft.event, actor: context.actor,
                                 requestID: context.requestID, traceID: context.traceID, decisionID: context.decisionID,
                                 refs: draft.refs, failureCategory: draft.failureCategory, responseType: draft.responseType,
                                 reasonCode: draft.reasonCode, payload: draft.payload)
        let bytes = record.encoded()
        // validate(_:) bounds every field so that this holds (docs/FORMAT.md section 3).
        precondition(bytes.count <= AuditRecord.encodedBytesMax, "an audit record of \(bytes.count) bytes passed validation")
        // Assert before writing: what we store must decode to what we meant.
        assert((try? AuditRecord.decode(bytes)) == record, "audit record encoding does not round-trip")
        let leaf = AuditChain.leafHash(bytes)
        let chain = AuditChain.chainHash(previous: head.chainHash, leaf: leaf)
        let entry = AuditEntry(record: record, recordBytes: bytes, leafHash: leaf, chainHash: chain)
        do throws(LarderError) {
            if let fault { try fault.beforeAppend(seq) }
            guard try txn.put(tables.audit, seq, entry.storedValue, mode: .append) else {
                throw LarderError(.auditFailed, "Audit seq \(seq) is not after the head; the log changed under the write.",
                                  failurePoint: .auditWrite)
            }
            try txn.put(tables.auditByRequest, KeyPair(context.requestID, seq), Empty())
            for ref in record.refs { try txn.put(tables.auditByRef, KeyPair(KeyPair(ref.kind, ref.id), seq), Empty()) }
            // Schema 2 keeps no time entry (times never decrease: a range is found by seq) and no
            // chain head in meta (the head is the last record): one B-tree for the indexes, none
            // for meta.
            // The Merkle tree in the same transaction: the builder is stateless, so a nested
            // transaction that rolls back leaves nothing to repair.
            if keepsMerkleTree {
                var tiles = StoreMerkleTiles(txn: txn, tables: tables)
                try MerkleTreeBuilder().appendLeaf(seq - 1, to: &tiles)
            }
        } catch let error where error.code == .storageUnavailable {
            throw error
        } catch {
            throw LarderError(.auditFailed, "The audit record \(seq) could not be written: \(error.message)",
                              failurePoint: .auditWrite, transactionRolledBack: true)
        }
        return entry
    }

    static func validate(_ draft: AuditDraft) throws(LarderError) {
        guard !draft.event.rawValue.isEmpty, draft.event.rawValue.utf8.count <= 64 else {
            throw LarderError(.validationFailed, "An audit event name must be 1 to 64 bytes.")
        }
        guard draft.refs.count <= AuditDraft.refsCountMax else {
            throw LarderError(.validationFailed, "\(draft.refs.count) correlation refs; at most \(AuditDraft.refsCountMax).")
        }
        for ref in draft.refs { try ref.validate() }
        guard draft.payload.utf8.count <= AuditDraft.payloadBytesMax else {
            throw LarderError(.validationFailed, "An audit payload of \(draft.payload.utf8.count) bytes exceeds \(AuditDraft.payloadBytesMax).")
        }
        guard JSONValidator.isObject(draft.payload) else {
            throw LarderError(.validationFailed, "An audit payload must be one JSON object (event \(draft.event.rawValue)).")
        }
        for (name, value) in [("failureCategory", draft.failureCategory), ("responseType", draft.responseType),
                              ("reasonCode", draft.reasonCode)] {
            if let value { try WriteContext.validateIdentifier(value, field: name) }
        }
    }
}

/// A test-only fault injected into the audit append, to prove that a failed append rolls back
/// everything. Set through `Store.Options.auditFaultInjection` (package access: tests only).
package struct AuditFaultInjection: Sendable {
    let beforeAppend: @Sendable (UInt64) throws(LarderError) -> Void

    /// `beforeAppend` runs just before the record with the given seq is written; throwing there
    /// makes the append fail.
    package init(beforeAppend: @escaping @Sendable (UInt64) throws(LarderError) -> Void) {
        self.beforeAppend = beforeAppend
    }
}

extension AuditLog {
    /// The seq of an audit key (a `u64`: 8 bytes, big-endian) where it lies.
    static func seq(key: UnsafeRawBufferPointer) throws(LarderError) -> UInt64 {
        guard key.count == 8 else { throw ByteReader.malformed("a sequence key of \(key.count) bytes") }
        return UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
    }
}
