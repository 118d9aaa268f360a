import LarderStorage
import Logging

/// What a store logs: each change in what it can do, once, when it happens, with the ids that
/// tie it to a request. A successful write logs nothing.
///
/// | event | level |
/// |---|---|
/// | opened, closed | info |
/// | a store that failed to open | error |
/// | schema created, policy recorded, limits recorded | notice |
/// | a write that failed in the storage (disk or map full, an I/O error) | error |
/// | the write breaker opened, or a probe failed | error |
/// | a probe let through | info |
/// | the breaker closed | notice |
/// | LMDB's fatal error: restart required | critical |
/// | the write queue full | warning |
/// | a write refused because the store is closed | warning |
///
/// docs/OPERATIONS.md lists the same, for operators.
struct StoreLog: Sendable {
    private let logger: Logger

    static let storeKey = "larder.store"
    static let requestIDKey = "larder.request_id"
    static let decisionIDKey = "larder.decision_id"

    init(logger: Logger, path: String) {
        var logger = logger
        logger[metadataKey: Self.storeKey] = "\(path)"
        self.logger = logger
    }

    private static func ids(_ context: WriteContext) -> Logger.Metadata {
        var metadata: Logger.Metadata = [requestIDKey: "\(context.requestID)"]
        if let decisionID = context.decisionID { metadata[decisionIDKey] = "\(decisionID)" }
        return metadata
    }

    func opened(_ info: EnvironmentInfo, options: Store.Options) {
        logger.info("Opened the store", metadata: [
            "larder.access": "\(options.readOnly ? "read_only" : "read_write")",
            "larder.durability": "\(options.durability.rawValue)",
            "larder.map_used_bytes": "\(info.mapUsedBytes)",
            "larder.map_size_bytes_max": "\(info.mapSizeBytesMax)",
            "larder.readers_max": "\(info.readersMax)",
        ])
    }

    func openFailed(_ error: LarderError) {
        logger.error("The store could not be opened: \(error.message)", metadata: [
            "larder.error_code": "\(error.code.rawValue)",
            "larder.storage_code": "\(error.storageCode.map(String.init) ?? "none")",
        ])
    }

    func closed() {
        logger.info("Closed the store")
    }

    func schemaCreated(version: UInt32, context: WriteContext, seq: UInt64?) {
        var metadata = Self.ids(context)
        metadata["larder.schema_version"] = "\(version)"
        metadata["larder.audit_seq"] = "\(seq.map(String.init) ?? "none")"
        logger.notice("Created the store's schema (SCHEMA_MIGRATED)", metadata: metadata)
    }

    func schemaMigrated(from: UInt32, to: UInt32, records: Int, context: WriteContext, seq: UInt64?) {
        var metadata = Self.ids(context)
        metadata["larder.schema_version"] = "\(to)"
        metadata["larder.previous_schema_version"] = "\(from)"
        metadata["larder.records"] = "\(records)"
        metadata["larder.audit_seq"] = "\(seq.map(String.init) ?? "none")"
        logger.notice("Migrated the store's schema (SCHEMA_MIGRATED)", metadata: metadata)
    }

    func policyRecorded(sha256: String, previous: String?, context: WriteContext, seq: UInt64?) {
        var metadata = Self.ids(context)
        metadata["larder.policy_sha256"] = "\(sha256)"
        metadata["larder.previous_sha256"] = "\(previous ?? "none")"
        metadata["larder.audit_seq"] = "\(seq.map(String.init) ?? "none")"
        logger.notice("Recorded the failure policy in force (POLICY_CHANGED)", metadata: metadata)
    }

    func merkleTreeBuilt(treeSize: UInt64, nodesStored: Int, context: WriteContext, seq: UInt64?) {
        var metadata = Self.ids(context)
        metadata["larder.tree_size"] = "\(treeSize)"
        metadata["larder.nodes_stored"] = "\(nodesStored)"
        metadata["larder.audit_seq"] = "\(seq.map(String.init) ?? "none")"
        logger.notice("Built the stored nodes of the audit log's Merkle tree (MERKLE_TREE_BUILT)", metadata: metadata)
    }

    func limitsRecorded(_ limits: RecordedLimits, previous: RecordedLimits?, context: WriteContext, seq: UInt64?) {
        var metadata = Self.ids(context)
        metadata["larder.map_size_bytes_max"] = "\(limits.mapSizeBytesMax)"
        metadata["larder.readers_max"] = "\(limits.readersMax)"
        metadata["larder.previous_map_size_bytes_max"] = "\(previous.map { String($0.mapSizeBytesMax) } ?? "none")"
        metadata["larder.audit_seq"] = "\(seq.map(String.init) ?? "none")"
        logger.notice("Recorded the store's limits (LIMITS_RECORDED)", metadata: metadata)
    }

    /// A write that failed because the storage did. Refusals that are state changes of their own
    /// (the breaker, a full queue, a closed store, restart required) are logged once when the
    /// state changes, not for every write they refuse.
    func writeFailed(_ storage: StorageError, error: LarderError, context: WriteContext) {
        switch storage.kind {
        case .paused, .closed, .restartRequired: return
        case .exhausted where storage.code == nil: return   // the write queue: logged when it filled
        case .invalidArgument, .notFound, .readOnly: return  // the caller's mistake, answered to the caller
        case .exhausted, .damaged, .failed: break
        }
        var metadata = Self.ids(context)
        metadata["larder.error_code"] = "\(error.code.rawValue)"
        metadata["larder.storage_code"] = "\(storage.code.map(String.init) ?? "none")"
        metadata["larder.failure_point"] = "\(error.failurePoint.rawValue)"
        logger.error("A write failed in the storage and was rolled back: \(storage.message)", metadata: metadata)
    }

    /// What the storage core reports.
    func record(_ event: StorageEvent) {
        switch event {
        case .committed, .commitFailed, .breakerRefused:
            // Counted, not logged: a failed commit is logged by the write it failed, with its ids.
            return
        case .breakerOpened(let failures, let probeAfter, let reopened):
            logger.error(reopened
                         ? "The breaker's probe failed: writes stay paused"
                         : "Writes paused: the write breaker opened after \(failures) consecutive storage failures",
                         metadata: ["larder.consecutive_failures": "\(failures)", "larder.probe_after_seconds": "\(probeAfter)"])
        case .breakerProbe:
            logger.info("The write breaker lets one batch through as a probe")
        case .breakerClosed:
            logger.notice("Writes resumed: the write breaker closed after a probe committed")
        case .restartRequired(let error):
            logger.critical("Restart required: LMDB reported a fatal error (MDB_PANIC); close the store and open it again",
                            metadata: ["larder.storage_code": "\(error.code.map(String.init) ?? "none")"])
        case .writeQueueFull(let depth):
            logger.warning("The write queue is full: writes are refused until it drains", metadata: ["larder.write_queue_depth_max": "\(depth)"])
        case .writeRefusedClosed:
            logger.warning("A write was refused because the store is closed")
        }
    }
}
