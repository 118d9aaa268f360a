import CoreMetrics
import LarderStorage
import Synchronization

/// Counters of one open store since it opened, as ``Store/metrics`` returns them (`larder stats`).
///
/// The same figures go to swift-metrics through ``Store/Options/metricsFactory`` as they happen;
/// this snapshot is for a process that wants them without a metrics backend.
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

/// What the store's single writer has done since the store opened.
public struct WriterStatistics: Sendable, Hashable {
    /// LMDB transactions committed.
    public var commits = 0
    /// Write requests in those transactions (greater than `commits` when group commit batches).
    public var requestsCommitted = 0
    /// Transactions whose commit failed.
    public var failedCommits = 0
    /// Writes refused while the breaker was open.
    public var breakerRefusals = 0
    /// Time spent running and committing batches.
    public var commitLatencyTotal: Duration = .zero
    /// Commit latencies by bucket.
    public var commitLatencies = LatencyHistogram()

    public init() {}
}

/// A fixed-bucket latency histogram (Prometheus style: upper bounds in seconds).
public struct LatencyHistogram: Sendable, Hashable {
    /// Upper bounds in seconds.
    public static let boundsSeconds: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
    /// Count per bucket (non-cumulative); the last entry counts values above every bound.
    public private(set) var counts = [Int](repeating: 0, count: LatencyHistogram.boundsSeconds.count + 1)
    public private(set) var count = 0
    public private(set) var sumSeconds = 0.0

    public init() {}

    /// Counts one latency.
    public mutating func record(_ duration: Duration) {
        let seconds = duration.seconds
        let index = Self.boundsSeconds.firstIndex { seconds <= $0 } ?? Self.boundsSeconds.count
        counts[index] += 1
        count += 1
        sumSeconds += seconds
    }
}

extension Duration {
    /// This duration in seconds.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// This duration in whole nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        return whole.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}

/// The metric names the store emits through swift-metrics (docs/OPERATIONS.md lists them with
/// the figures an exporter adds). Timers are in nanoseconds for swift-metrics; a Prometheus
/// exporter renders them as histograms in seconds, hence the names.
public enum StoreMetricNames {
    /// Counter: writes that committed.
    public static let writesCommitted = "larder_writes_committed_total"
    /// Counter: writes answered from a stored decision.
    public static let replays = "larder_replays_total"
    /// Counter, dimension `code`: failed writes by error code.
    public static let errors = "larder_errors_total"
    /// Timer: end-to-end latency of committed writes.
    public static let writeLatency = "larder_write_latency_seconds"
    /// Timer: latency of the writer's LMDB transactions (run and commit).
    public static let commitLatency = "larder_commit_latency_seconds"
    /// Counter: LMDB transactions the writer committed.
    public static let writerCommits = "larder_writer_commits_total"
    /// Counter: write requests in those transactions.
    public static let writerRequestsCommitted = "larder_writer_requests_committed_total"
    /// Counter: transactions whose commit failed.
    public static let writerFailedCommits = "larder_writer_failed_commits_total"
    /// Counter: writes refused while the breaker was open.
    public static let writerBreakerRefusals = "larder_writer_breaker_refusals_total"
}

/// The store's counters: kept for ``Store/metrics`` and sent to swift-metrics as they change.
/// With swift-metrics' default (no backend bootstrapped) each update is a call into a no-op
/// handler.
final class StoreMetrics: Sendable {
    private let state = Mutex(StoreMetricsSnapshot())
    private let factory: any MetricsFactory
    private let writesCommitted: Counter
    private let replays: Counter
    private let writeLatency: CoreMetrics.Timer
    private let commitLatency: CoreMetrics.Timer
    private let writerCommits: Counter
    private let writerRequestsCommitted: Counter
    private let writerFailedCommits: Counter
    private let writerBreakerRefusals: Counter
    /// By error code; every contract code is made at open, so a backend shows zeros rather than
    /// "no data" on a quiet store.
    private let errors: Mutex<[String: Counter]>

    init(factory: any MetricsFactory) {
        self.factory = factory
        writesCommitted = Counter(label: StoreMetricNames.writesCommitted, factory: factory)
        replays = Counter(label: StoreMetricNames.replays, factory: factory)
        writeLatency = CoreMetrics.Timer(label: StoreMetricNames.writeLatency, factory: factory)
        commitLatency = CoreMetrics.Timer(label: StoreMetricNames.commitLatency, factory: factory)
        writerCommits = Counter(label: StoreMetricNames.writerCommits, factory: factory)
        writerRequestsCommitted = Counter(label: StoreMetricNames.writerRequestsCommitted, factory: factory)
        writerFailedCommits = Counter(label: StoreMetricNames.writerFailedCommits, factory: factory)
        writerBreakerRefusals = Counter(label: StoreMetricNames.writerBreakerRefusals, factory: factory)
        var errors: [String: Counter] = [:]
        for code in LarderError.Code.allCases {
            errors[code.rawValue] = Counter(label: StoreMetricNames.errors, dimensions: [("code", code.rawValue)], factory: factory)
        }
        self.errors = Mutex(errors)
    }

    func committed(after duration: Duration) {
        state.withLock {
            $0.writesCommitted += 1
            $0.writeLatency.record(duration)
        }
        writesCommitted.increment()
        writeLatency.recordNanoseconds(duration.nanoseconds)
    }

    func replayed() {
        state.withLock { $0.replays += 1 }
        replays.increment()
    }

    func failed(_ error: any Error) {
        let code = (error as? LarderError)?.code.rawValue ?? "UNCLASSIFIED"
        state.withLock { $0.errorsByCode[code, default: 0] += 1 }
        let factory = self.factory
        let counter = errors.withLock { counters in
            if let counter = counters[code] { return counter }
            let counter = Counter(label: StoreMetricNames.errors, dimensions: [("code", code)], factory: factory)
            counters[code] = counter
            return counter
        }
        counter.increment()
    }

    /// Counts what the storage writer reports.
    func record(_ event: StorageEvent) {
        switch event {
        case .committed(let requests, let duration):
            state.withLock {
                $0.writer.commitLatencies.record(duration)
            }
            writerCommits.increment()
            writerRequestsCommitted.increment(by: Int64(requests))
            commitLatency.recordNanoseconds(duration.nanoseconds)
        case .commitFailed:
            writerFailedCommits.increment()
        case .breakerRefused(let requests):
            writerBreakerRefusals.increment(by: Int64(requests))
        case .breakerOpened, .breakerProbe, .breakerClosed, .restartRequired, .writeQueueFull, .writeRefusedClosed:
            break
        }
    }

    /// The counters, with the writer's own statistics.
    func snapshot(writer: Environment.WriterStatistics) -> StoreMetricsSnapshot {
        var snapshot = state.withLock { $0 }
        snapshot.writer.commits = writer.commits
        snapshot.writer.requestsCommitted = writer.requestsCommitted
        snapshot.writer.failedCommits = writer.failedCommits
        snapshot.writer.breakerRefusals = writer.breakerRefusals
        snapshot.writer.commitLatencyTotal = writer.commitLatencyTotal
        return snapshot
    }
}
