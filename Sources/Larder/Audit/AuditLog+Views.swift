import LarderStorage

extension AuditLog {
    /// The record `seq` as a view over the snapshot's bytes (nothing copied or decoded until a
    /// field is asked for), or nil. The view is valid only inside this `store.read` closure.
    ///
    /// ```swift
    /// let time = try store.read { view in try view.audit.recordView(seq: 42)?.timeMicros }
    /// ```
    ///
    /// - throws: PERSISTENCE_ERROR when the stored value is too short or of an unknown version.
    public func recordView(seq: UInt64) throws(LarderError) -> AuditRecordView? {
        let txn = self.txn
        return try txn.withValueBytes(tables.audit, seq) { (value: UnsafeRawBufferPointer) throws(LarderError) -> AuditRecordView in
            try AuditRecordView(validity: txn.viewValidity(), value: value)
        }
    }

    /// Calls `body` with up to `limit` records as views, from `fromSeq` on (ascending), or — with
    /// `direction: .backward` — from `fromSeq` down; returns the seq to continue from, or nil
    /// when no record is left. Nothing is copied: each view reads its record where it lies, and
    /// is valid only inside this `store.read` closure.
    ///
    /// ```swift
    /// let next = try store.read { view in
    ///     try view.audit.forEachRecord(fromSeq: 1, limit: 1_000) { record in
    ///         if record.isEvent(.ledgerTransferPosted) { posted += 1 }
    ///     }
    /// }
    /// ```
    ///
    /// - throws: VALIDATION_FAILED for a limit outside 1...``recordsPerPageMax``;
    ///   PERSISTENCE_ERROR for a malformed record; whatever `body` throws (the walk ends there).
    @discardableResult
    public func forEachRecord(fromSeq: UInt64 = 1, limit: Int, direction: ScanDirection = .forward,
                              _ body: (AuditRecordView) throws -> Void) throws -> UInt64? {
        try Self.validate(limit: limit)
        // Backward, every key at or below fromSeq: no lower bound to compare each key with.
        let range: KeyRange<UInt64> = direction == .forward ? .from(fromSeq)
            : KeyRange(lowerBytes: nil, upperBytes: fromSeq.encodedKey + [0])
        let txn = self.txn
        let cell = txn.raw.viewCell()
        var next: UInt64?
        var thrown: (any Error)?
        // The loop steps the walk itself: one call into the storage core per record, no closure
        // of its own per record, and each view a plain value (see ``ViewValidity``).
        try txn.withBytesWalk(tables.audit, in: range, direction: direction) { (walk: BytesWalk) throws(LarderError) in
            var visited = 0
            while try Self.step(walk) {
                guard visited < limit else {
                    next = try Self.seq(key: walk.key)
                    return
                }
                // Made per record: a write in `body` ends the views made before it, not later ones.
                let view = try AuditRecordView(validity: ViewValidity(cell: cell), value: walk.value)
                do {
                    try body(view)
                } catch {
                    thrown = error
                    return
                }
                visited += 1
            }
        }
        if let thrown { throw thrown }
        return next
    }

    /// One step of a walk, its failure in the contract's errors.
    @inline(__always)
    private static func step(_ walk: BytesWalk) throws(LarderError) -> Bool {
        do { return try walk.next() } catch { throw LarderError(error) }
    }
}
