/// What the storage core reports to the layer above as it happens, for logs and metrics: commits
/// and their latency, and each change in what the environment can do (breaker, restart
/// required, a full write queue, writes refused after close).
///
/// The storage core depends on no logging or metrics library; the layer that opens the
/// environment passes an observer (``Environment/Options/observer``) and turns events into log
/// lines and metric updates. State changes are reported once, when they happen, not per write.
///
/// The observer runs on the thread that caused the event (the writer thread for most), outside
/// every lock of the storage core. It must be quick and must not start a transaction.
package enum StorageEvent: Sendable {
    /// One LMDB write transaction committed, holding `requests` write requests (more than one
    /// when group commit batched them); `duration` covers running them and the commit.
    case committed(requests: Int, duration: Duration)
    /// A write transaction's commit (or its beginning) failed: nothing of it was written.
    case commitFailed(StorageError, requests: Int)
    /// Writes are refused from now on, after `consecutiveFailures` storage failures in a row;
    /// the next probe is let through in `probeAfterSeconds`. `reopened` is true when a probe
    /// failed (the breaker was already open).
    case breakerOpened(consecutiveFailures: Int, probeAfterSeconds: Double, reopened: Bool)
    /// The breaker lets one batch through to see whether the storage recovered.
    case breakerProbe
    /// A commit succeeded while the breaker was open: writes are taken again.
    case breakerClosed
    /// A batch of `requests` writes was refused because the breaker is open.
    case breakerRefused(requests: Int)
    /// LMDB reported a fatal error (`MDB_PANIC`); nothing more works until the environment is
    /// closed and opened again. Reported once.
    case restartRequired(StorageError)
    /// A write was refused because `depth` writes were already waiting (the queue's limit).
    /// Reported once until the queue drains below its limit again.
    case writeQueueFull(depth: Int)
    /// A write was refused because the environment is closed or closing. Reported once.
    case writeRefusedClosed
}
