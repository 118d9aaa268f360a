public import Logging

/// When a ``CheckpointSigner`` signs: after enough records, or after enough time with at least one
/// new record, since the last checkpoint signed by its key. A store without a checkpoint by the
/// key gets one at once.
///
/// ```swift
/// let policy = CheckpointPolicy(everyRecords: 1_000, everySeconds: 300)   // whichever comes first
/// ```
public struct CheckpointPolicy: Sendable, Hashable {
    /// Sign once this many records were appended after the last checkpoint's own record; nil: never for this reason.
    public var everyRecords: UInt64?
    /// Sign once this many seconds passed since the last checkpoint, if any record was appended
    /// after it (an idle log is not signed again and again); nil: never for this reason.
    public var everySeconds: Int64?
    /// How often ``CheckpointSigner/run()`` checks whether a checkpoint is due.
    public var checkIntervalMilliseconds: Int

    public init(everyRecords: UInt64? = 1_000, everySeconds: Int64? = 300, checkIntervalMilliseconds: Int = 1_000) {
        self.everyRecords = everyRecords
        self.everySeconds = everySeconds
        self.checkIntervalMilliseconds = checkIntervalMilliseconds
    }

    /// Throws VALIDATION_FAILED naming the first setting out of range.
    public func validate() throws(LarderError) {
        guard everyRecords != nil || everySeconds != nil else {
            throw LarderError(.validationFailed, "A checkpoint policy needs everyRecords, everySeconds or both.")
        }
        if let everyRecords, !(1...100_000_000).contains(everyRecords) {
            throw LarderError(.validationFailed, "Checkpoint everyRecords \(everyRecords) is not in 1...100000000.")
        }
        if let everySeconds, !(1...2_592_000).contains(everySeconds) {
            throw LarderError(.validationFailed, "Checkpoint everySeconds \(everySeconds) is not in 1...2592000 (30 days).")
        }
        guard (10...3_600_000).contains(checkIntervalMilliseconds) else {
            throw LarderError(.validationFailed, "Checkpoint checkIntervalMilliseconds \(checkIntervalMilliseconds) is not in 10...3600000.")
        }
    }

    /// Whether a checkpoint is due, given the last one (nil: none), the log's head seq and the time.
    public func isDue(last: SignedCheckpoint?, headSeq: UInt64, nowMicros: UnixMicros) -> Bool {
        guard let last else { return true }
        // Records appended after the checkpoint's own record.
        let since = headSeq > last.seq ? headSeq - last.seq : 0
        if let everyRecords, since >= everyRecords { return true }
        if let everySeconds, since >= 1, nowMicros - last.timeMicros >= everySeconds * 1_000_000 { return true }
        return false
    }
}

/// Signs checkpoints of a store's audit log under a ``CheckpointPolicy``, in the process that
/// holds the signing key (`larder serve --signing-key`, or the application itself).
///
/// ```swift
/// let signer = try CheckpointSigner(store: store, key: key, policy: CheckpointPolicy(everyRecords: 1_000, everySeconds: 300))
/// let task = Task { try await signer.run() }      // until cancelled
/// // …
/// task.cancel()
/// ```
public struct CheckpointSigner: Sendable {
    public let store: Store
    public let key: NoteSigningKey
    public let policy: CheckpointPolicy

    /// - throws: VALIDATION_FAILED for a policy out of range.
    public init(store: Store, key: NoteSigningKey, policy: CheckpointPolicy) throws(LarderError) {
        try policy.validate()
        self.store = store
        self.key = key
        self.policy = policy
    }

    /// Signs a checkpoint when the policy says one is due; nil when none was.
    /// - throws: what ``Store/signCheckpoint(with:context:)-3pwsa`` and reading the store throw.
    @discardableResult
    public func signIfDue() async throws -> SignedCheckpoint? {
        let key = self.key
        let (last, head) = try store.read { view in
            (try view.audit.latestCheckpoint(signedBy: key.verifierKey), try view.audit.head().seq)
        }
        guard policy.isDue(last: last, headSeq: head, nowMicros: store.options.clock.now().unixMicros) else { return nil }
        return try await store.signCheckpoint(with: key)
    }

    /// Checks every ``CheckpointPolicy/checkIntervalMilliseconds`` until the task is cancelled,
    /// signing when due. A failed signature (a full disk, say) is logged through the store's
    /// logger and tried again at the next check: it never stops the loop.
    /// - throws: `CancellationError` when cancelled.
    public func run() async throws {
        let logger = store.options.logger
        while true {
            try Task.checkCancellation()
            do {
                if let signed = try await signIfDue() {
                    logger.info("Signed a checkpoint of the audit log (CHECKPOINT_SIGNED)", metadata: [
                        "larder.tree_size": "\(signed.checkpoint.treeSize)", "larder.audit_seq": "\(signed.seq)",
                        "larder.key_id": "\(signed.keyIDHex)",
                    ])
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.warning("Could not sign a checkpoint of the audit log; trying again at the next check",
                               metadata: ["larder.error": "\(error)"])
            }
            try await Task.sleep(for: .milliseconds(policy.checkIntervalMilliseconds))
        }
    }
}
