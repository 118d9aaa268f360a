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
    private let shippingConfigured: Gauge
    private let shippingStateUnreadable: Gauge
    private let shippingShippedSeq: Gauge
    private let shippingRecordsUnshipped: Gauge
    private let shippingOldestUnshippedAge: Gauge
    private let shippingAheadOfStore: Gauge
    private let shippingLastAttemptFailed: Gauge

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
        // The shipping lag comes from ship-state.json beside the store (written by `larder ship`),
        // so it is the same whichever process serves the page.
        shippingConfigured = registry.makeGauge(descriptor: Self.descriptor("larder_shipping_configured",
                                                "1 when the store has a ship-state.json (larder ship has run against it), else 0; the other larder_shipping_ gauges are 0 while it is 0."))
        shippingStateUnreadable = registry.makeGauge(descriptor: Self.descriptor("larder_shipping_state_unreadable",
                                                     "1 when ship-state.json exists but cannot be read, else 0."))
        shippingShippedSeq = registry.makeGauge(descriptor: Self.descriptor("larder_shipping_shipped_seq",
                                                "Newest audit seq the fleet database holds for this box, as the shipper last recorded it."))
        shippingRecordsUnshipped = registry.makeGauge(descriptor: Self.descriptor("larder_shipping_records_unshipped",
                                                      "Audit records the box holds that the fleet database does not yet."))
        shippingOldestUnshippedAge = registry.makeGauge(descriptor: Self.descriptor("larder_shipping_oldest_unshipped_age_seconds",
                                                        "Age of the oldest audit record not yet shipped, by the store's clock; 0 when everything is shipped."))
        shippingAheadOfStore = registry.makeGauge(descriptor: Self.descriptor("larder_shipping_ahead_of_store",
                                                  "1 when more was shipped than the store holds (it was replaced by an older copy; larder ship will refuse it), else 0."))
        shippingLastAttemptFailed = registry.makeGauge(descriptor: Self.descriptor("larder_shipping_last_attempt_failed",
                                                       "1 when the shipper's last attempt failed, else 0."))
    }

    /// A whole metric name and its help line.
    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// Sets the gauges from the store as it is now, then renders the registry in the Prometheus
    /// text exposition format 0.0.4.
    func render(info: EnvironmentInfo, auditHeadSeq head: UInt64, shipping: ShippingReading) -> String {
        mapUsed.set(to: Double(info.mapUsedBytes))
        mapSize.set(to: Double(info.mapSizeBytes))
        mapSizeMax.set(to: Double(info.mapSizeBytesMax))
        readersUsed.set(to: Double(info.readersUsed))
        readersMax.set(to: Double(info.readersMax))
        auditHeadSeq.set(to: Double(head))
        breakerOpen.set(to: info.breaker == .open ? 1 : 0)
        restartRequired.set(to: info.restartRequired ? 1 : 0)
        var lag: ShippingLag?
        switch shipping {
        case .neverShipped:
            shippingConfigured.set(to: 0)
            shippingStateUnreadable.set(to: 0)
        case .unreadable:
            shippingConfigured.set(to: 1)
            shippingStateUnreadable.set(to: 1)
        case .lag(let value):
            shippingConfigured.set(to: 1)
            shippingStateUnreadable.set(to: 0)
            lag = value
        }
        shippingShippedSeq.set(to: Double(lag?.state.shippedSeq ?? 0))
        shippingRecordsUnshipped.set(to: Double(lag?.recordsUnshipped ?? 0))
        shippingOldestUnshippedAge.set(to: lag?.oldestUnshippedAgeSeconds ?? 0)
        shippingAheadOfStore.set(to: lag?.isAheadOfStore == true ? 1 : 0)
        shippingLastAttemptFailed.set(to: lag?.state.lastError != nil ? 1 : 0)
        return registry.emitToString()
    }

    /// What the scrape found beside the store about shipping.
    enum ShippingReading: Sendable {
        case neverShipped
        case unreadable
        case lag(ShippingLag)

        /// Reads the store's shipping lag; a damaged state file is a reading, not a failed scrape.
        init(store: Store) {
            do {
                self = try store.shippingLag().map(ShippingReading.lag) ?? .neverShipped
            } catch {
                self = .unreadable
            }
        }
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
