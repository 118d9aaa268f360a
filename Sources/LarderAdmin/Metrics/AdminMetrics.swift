import Foundation
import Larder
public import Prometheus

/// What `/metrics` renders: a Prometheus registry holding the store's counters and timers (when
/// the store records into it) and the gauges the server sets from the store right before each
/// scrape.
///
/// Two kinds of figures: the store's (map, readers, audit head), the same whichever process
/// serves them, and this process's own (writes, replays, errors, latencies, writer, breaker),
/// which say nothing about the application's writes when the server runs in another process.
/// `larder_process_info` names the process.
final class AdminMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    /// Whether the store records its counters into ``registry`` (otherwise only gauges show).
    let storeCountersIncluded: Bool
    private let mapUsed: Gauge
    private let mapSize: Gauge
    private let mapSizeMax: Gauge
    private let readersUsed: Gauge
    private let readersMax: Gauge
    private let auditHeadSeq: Gauge
    private let breakerOpen: Gauge
    private let restartRequired: Gauge

    init(store: Store, registry explicit: PrometheusCollectorRegistry?) {
        let storeRegistry = (store.options.metricsFactory as? PrometheusMetricsFactory)?.registry
        let registry = explicit ?? storeRegistry ?? PrometheusCollectorRegistry()
        self.registry = registry
        storeCountersIncluded = storeRegistry.map { $0 === registry } ?? false
        let info = store.info()
        registry.makeGauge(descriptor: Self.descriptor("larder_process_info",
                                                       "The process whose counters this page shows: writes, replays, errors, latencies, writer and breaker figures are this process's own, not the store's; access is how it opened the store."),
                           labels: [("pid", String(ProcessInfo.processInfo.processIdentifier)),
                                    ("access", info.readOnly ? "read_only" : "read_write")])
            .set(to: 1)
        mapUsed = registry.makeGauge(descriptor: Self.descriptor("larder_map_used_bytes", "Bytes of the LMDB map in use."))
        mapSize = registry.makeGauge(descriptor: Self.descriptor("larder_map_size_bytes", "Size of this process's LMDB map (opened at its maximum)."))
        mapSizeMax = registry.makeGauge(descriptor: Self.descriptor("larder_map_size_bytes_max",
                                        "Maximum map size: as recorded in the store by the application that writes it, else this process's own."))
        readersUsed = registry.makeGauge(descriptor: Self.descriptor("larder_readers_used", "LMDB reader slots taken now, across every process."))
        readersMax = registry.makeGauge(descriptor: Self.descriptor("larder_readers_max", "LMDB reader slots in all."))
        auditHeadSeq = registry.makeGauge(descriptor: Self.descriptor("larder_audit_head_seq", "Sequence number of the newest audit record."))
        breakerOpen = registry.makeGauge(descriptor: Self.descriptor("larder_breaker_open", "1 when the write breaker is open, else 0."))
        restartRequired = registry.makeGauge(descriptor: Self.descriptor("larder_restart_required",
                                             "1 when LMDB reported a fatal error and the store must be closed and opened again, else 0."))
    }

    /// A whole metric name and its help line.
    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// Sets the gauges from the store as it is now, then renders the registry in the Prometheus
    /// text exposition format 0.0.4.
    func render(info: EnvironmentInfo, auditHeadSeq head: UInt64) -> String {
        mapUsed.set(to: Double(info.mapUsedBytes))
        mapSize.set(to: Double(info.mapSizeBytes))
        mapSizeMax.set(to: Double(info.mapSizeBytesMax))
        readersUsed.set(to: Double(info.readersUsed))
        readersMax.set(to: Double(info.readersMax))
        auditHeadSeq.set(to: Double(head))
        breakerOpen.set(to: info.breaker == .open ? 1 : 0)
        restartRequired.set(to: info.restartRequired ? 1 : 0)
        return registry.emitToString()
    }
}

extension AdminServer {
    /// A swift-metrics factory that records into `registry`, with histogram buckets that fit
    /// Larder's write and commit latencies (100 µs to 1 s). Open the store with it, and the admin
    /// server serves the same registry on `/metrics`:
    ///
    /// ```swift
    /// var options = Store.Options()
    /// options.metricsFactory = AdminServer.metricsFactory()
    /// let store = try Store.open(at: "/var/lib/kitchen/larder", options: options)
    /// try await AdminServer(store: store, tokens: tokens).run()   // /metrics has the store's counters
    /// ```
    ///
    /// A store opened with another factory still gets its gauges (map, readers, audit head,
    /// breaker) on `/metrics`; its counters go wherever that factory sends them.
    public static func metricsFactory(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        let buckets = LatencyHistogram.boundsSeconds.map { Duration.nanoseconds(Int64(($0 * 1e9).rounded())) }
        factory.durationHistogramBuckets[StoreMetricNames.writeLatency] = buckets
        factory.durationHistogramBuckets[StoreMetricNames.commitLatency] = buckets
        return factory
    }
}
