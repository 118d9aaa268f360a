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
    /// record naming the cutoff and the count. Only admins and the system may purge.
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
            var expired: [KeyPair<Int64, String>] = []
            try txn.txn.forEach(tables.decisionsByTime, in: .before(KeyPair(cutoff, ""))) { (entry: Entry<KeyPair<Int64, String>, Empty>) throws(LarderError) -> Bool in
                expired.append(entry.key)
                return expired.count < Self.decisionsPerPurgeMax
            }
            guard !expired.isEmpty else { return 0 }
            for key in expired {
                try txn.txn.delete(tables.decisions, key.second)
                try txn.txn.delete(tables.decisionsByTime, key)
            }
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
