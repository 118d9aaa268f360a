import LarderStorage

/// The request of a decisions purge: what its decision fingerprints.
public struct PurgeDecisionsRequest: FingerprintedRequest, Hashable {
    public static let operationName = "decisions.purge"
    /// Decisions older than this many days go.
    public let olderThanDays: Int

    public init(olderThanDays: Int) {
        self.olderThanDays = olderThanDays
    }
}

extension Store {
    /// Decisions removed by one purge at most; purge again for more.
    public static let decisionsPerPurgeMax = 100_000

    /// Removes decisions older than `days` days, in one write with a `DECISIONS_PURGED` audit
    /// record naming the cutoff and the count. Only admins and the system may purge. The oldest
    /// go first (in the order of the writes that made them), at most ``decisionsPerPurgeMax``.
    ///
    /// After a purge, a retry with a purged decisionID runs again: keep decisions longer than any
    /// client retries.
    ///
    /// ```swift
    /// let purged = try store.purgeDecisions(olderThanDays: 90, context: admin).result
    /// ```
    ///
    /// - returns: how many decisions were removed (0 writes nothing).
    /// - throws: VALIDATION_FAILED for `days` outside 1...36500; PERMISSION_DENIED for an
    ///   account manager.
    @discardableResult
    public func purgeDecisions(olderThanDays days: Int, context: WriteContext) throws -> WriteOutcome<Int> {
        try run(try purge(olderThanDays: days, context: context), context: context)
    }

    /// The async form of `purgeDecisions(olderThanDays:context:)`: suspends instead of
    /// blocking; a task cancelled before the write is queued gets `CancellationError` and nothing
    /// is written.
    @discardableResult
    public func purgeDecisions(olderThanDays days: Int, context: WriteContext) async throws -> WriteOutcome<Int> {
        try await run(try purge(olderThanDays: days, context: context), context: context)
    }

    /// The purge as an operation, after the checks that need no transaction.
    private func purge(olderThanDays days: Int, context: WriteContext) throws(LarderError) -> StoreOperation<PurgeDecisionsRequest, Int> {
        guard (1...36_500).contains(days) else {
            throw LarderError(.validationFailed, "olderThanDays \(days) is not in 1...36500.", requestID: context.requestID)
        }
        guard context.actor.role != .accountManager else {
            throw LarderError(.permissionDenied, "Only an admin or the system may purge decisions.",
                              failurePoint: .authorization, requestID: context.requestID)
        }
        let tables = self.tables
        return StoreOperation(request: PurgeDecisionsRequest(olderThanDays: days)) { txn in
            let cutoff = txn.timeMicros - Int64(days) * 86_400_000_000
            // The log says which writes made decisions: walked in seq order, it ends where record
            // times pass the cutoff (they never decrease from meta.time_ordered_from on). A decision
            // goes when the record walked is still its write's last (the decisionID was not used
            // again since a purge) and it is older than the cutoff. The walk starts where the last
            // purge left off (meta.decision_purge_from): every record before it was older than
            // that purge's cutoff, so its decision went then or was made again later, and a purge
            // reads only the log written since, not the whole history, inside the write.
            let log = AuditLog(txn: txn.txn, tables: tables)
            let orderedFrom = try log.timeOrderedFrom()
            let start = try log.decisionPurgeFrom()
            var expired: [String] = []
            // The first record not yet done with: a later purge starts there.
            var next = start
            var skipped: UInt64?
            let key = ScratchBytes(capacity: 256)
            try txn.txn.forEachBytes(tables.audit, in: .from(start)) { seqBytes, value throws(LarderError) -> Bool in
                let seq = try AuditLog.seq(key: seqBytes)
                next = seq
                guard value.count > 64, let fields = try? RecordFields(UnsafeRawBufferPointer(rebasing: value[..<(value.count - 64)])) else {
                    // Undecodable (verify names it): its decision, if any, cannot be found from here.
                    if skipped == nil { skipped = seq }
                    return true
                }
                if fields.timeMicros >= cutoff {
                    if seq >= orderedFrom { return false }
                    // Before time_ordered_from a later record may be older: walk on, but a later
                    // purge must come back to this one.
                    if skipped == nil { skipped = seq }
                    return true
                }
                next = seq + 1
                guard let decisionID = fields.decisionID else { return true }
                key.reset()
                key.keyString(decisionID)
                let made = try txn.txn.withValueBytes(tables.decisions, encodedKey: key.bytes) { row throws(LarderError) -> Bool in
                    var reader = InPlaceReader(row)
                    guard (try? reader.raw(1 + 32)) != nil, let time = try? reader.i64(), let auditSeq = try? reader.u64() else { return false }
                    return auditSeq == seq && time < cutoff
                }
                if made == true { expired.append(InPlace.text(decisionID)) }
                return expired.count < Self.decisionsPerPurgeMax
            }
            guard !expired.isEmpty else { return 0 }
            for id in expired { try txn.txn.delete(tables.decisions, id) }
            var from = ByteWriter(capacity: 8)
            from.write(min(next, skipped ?? next))
            try txn.txn.put(tables.meta, MetaKey.decisionPurgeFrom, from.bytes)
            var payload = JSONWriter()
            payload.object { o in
                o.field("older_than_days", days)
                o.field("cutoff", RFC3339.format(cutoff))
                o.field("purged", expired.count)
            }
            try txn.appendAudit(AuditDraft(event: .decisionsPurged, payload: payload.text))
            return expired.count
        }
    }
}
