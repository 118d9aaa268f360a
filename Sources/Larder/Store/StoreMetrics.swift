import Synchronization

/// Counters of one open store, for `/metrics` and `larder stats`.
public struct StoreMetricsSnapshot: Sendable {
    /// Writes that committed (a write with nothing to change counts too).
    public var writesCommitted = 0
    /// Writes answered from a stored decision, writing nothing.
    public var replays = 0
    /// Failed writes by error code.
    public var errorsByCode: [String: Int] = [:]
    /// End-to-end latency of committed writes, as their callers saw it.
    public var writeLatency = LatencyHistogram()
    /// The storage writer's own counters (commits, group-commit sizes, breaker refusals).
    public var writer = WriterStatistics()
}

final class StoreMetrics: Sendable {
    private let state = Mutex(StoreMetricsSnapshot())

    func committed(after duration: Duration) {
        state.withLock {
            $0.writesCommitted += 1
            $0.writeLatency.record(duration)
        }
    }

    func replayed() { state.withLock { $0.replays += 1 } }

    func failed(_ error: any Error) {
        let code = (error as? LarderError)?.code.rawValue ?? "UNCLASSIFIED"
        state.withLock { $0.errorsByCode[code, default: 0] += 1 }
    }

    var snapshot: StoreMetricsSnapshot { state.withLock { $0 } }
}
