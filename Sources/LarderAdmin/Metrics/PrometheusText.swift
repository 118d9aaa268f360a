import Foundation
import Larder

/// Renders the store's state in the Prometheus text exposition format 0.0.4.
///
/// Every series is always present (errors with a zero for each contract code), so dashboards and
/// alerts see 0 rather than "no data" on a quiet store.
///
/// Two kinds of figures: the store's (map, readers, audit head), the same whichever process
/// serves them, and this process's own counters (writes, replays, errors, latencies, writer,
/// breaker), which say nothing about the application's writes when the server runs in another
/// process. `larder_process_info` names the process.
struct PrometheusText {
    private(set) var text = ""

    static func render(info: EnvironmentInfo, metrics: StoreMetricsSnapshot, auditHeadSeq: UInt64,
                       processID: Int32 = ProcessInfo.processInfo.processIdentifier) -> String {
        var out = PrometheusText()
        out.header("larder_process_info",
                   "The process whose counters this page shows: writes, replays, errors, latencies, writer and breaker figures are this process's own, not the store's; access is how it opened the store.",
                   type: "gauge")
        out.sample("larder_process_info",
                   labels: "pid=\"\(processID)\",access=\"\(info.readOnly ? "read_only" : "read_write")\"", "1")
        out.gauge("larder_map_used_bytes", "Bytes of the LMDB map in use.", info.mapUsedBytes)
        out.gauge("larder_map_size_bytes", "Size of this process's LMDB map (opened at its maximum).", info.mapSizeBytes)
        out.gauge("larder_map_size_bytes_max",
                  info.limitsRecordedInStore
                      ? "Maximum map size, as recorded in the store by the application that writes it."
                      : "Maximum map size, this process's own (the store records none).",
                  info.mapSizeBytesMax)
        out.gauge("larder_readers_used", "LMDB reader slots taken now, across every process.", info.readersUsed)
        out.gauge("larder_readers_max", "LMDB reader slots in all.", info.readersMax)
        out.gauge("larder_audit_head_seq", "Sequence number of the newest audit record.", auditHeadSeq)
        out.gauge("larder_breaker_open", "1 when the write breaker is open, else 0.", info.breaker == .open ? 1 : 0)
        out.gauge("larder_restart_required", "1 when LMDB reported a fatal error and the store must be closed and opened again, else 0.",
                  info.restartRequired ? 1 : 0)
        out.counter("larder_writes_committed_total", "Writes committed since open.", metrics.writesCommitted)
        out.counter("larder_replays_total", "Writes answered from a stored decision since open.", metrics.replays)

        out.header("larder_errors_total", "Failed writes by error code since open.", type: "counter")
        var codes = LarderError.Code.allCases.map(\.rawValue)
        codes += metrics.errorsByCode.keys.filter { !codes.contains($0) }.sorted()
        for code in codes {
            out.sample("larder_errors_total", labels: "code=\"\(escape(code))\"", String(metrics.errorsByCode[code] ?? 0))
        }

        out.histogram("larder_write_latency_seconds", "End-to-end latency of committed writes.", metrics.writeLatency)
        out.histogram("larder_commit_latency_seconds", "Latency of the writer's LMDB commits.", metrics.writer.commitLatencies)

        out.counter("larder_writer_commits_total", "LMDB transactions committed by the writer.", metrics.writer.commits)
        out.counter("larder_writer_requests_committed_total",
                    "Write requests in those transactions (more than commits when group commit batches).",
                    metrics.writer.requestsCommitted)
        out.counter("larder_writer_failed_commits_total", "Batches whose commit failed.", metrics.writer.failedCommits)
        out.counter("larder_writer_breaker_refusals_total", "Writes refused while the breaker was open.", metrics.writer.breakerRefusals)
        return out.text
    }

    private mutating func header(_ name: String, _ help: String, type: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    private mutating func sample(_ name: String, labels: String? = nil, _ value: String) {
        text += labels.map { "\(name){\($0)} \(value)\n" } ?? "\(name) \(value)\n"
    }

    private mutating func gauge<I: BinaryInteger>(_ name: String, _ help: String, _ value: I) {
        header(name, help, type: "gauge")
        sample(name, String(value))
    }

    private mutating func counter(_ name: String, _ help: String, _ value: Int) {
        header(name, help, type: "counter")
        sample(name, String(value))
    }

    /// Prometheus buckets are cumulative; ``LatencyHistogram`` counts per bucket, so sum as we go.
    private mutating func histogram(_ name: String, _ help: String, _ histogram: LatencyHistogram) {
        header(name, help, type: "histogram")
        var cumulative = 0
        for (index, bound) in LatencyHistogram.boundsSeconds.enumerated() {
            cumulative += histogram.counts[index]
            sample("\(name)_bucket", labels: "le=\"\(bound)\"", String(cumulative))
        }
        cumulative += histogram.counts[LatencyHistogram.boundsSeconds.count]
        assert(cumulative == histogram.count, "histogram buckets do not add up to its count")
        sample("\(name)_bucket", labels: "le=\"+Inf\"", String(histogram.count))
        sample("\(name)_sum", String(histogram.sumSeconds))
        sample("\(name)_count", String(histogram.count))
    }

    /// Label values escape `\`, `"` and newlines (exposition format 0.0.4).
    private static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
