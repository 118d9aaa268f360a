import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

/// `/healthz`, `/readyz`, `/metrics`: open, unbudgeted, never audited.
@Suite("Health, readiness and metrics")
struct HealthRouteTests {
    @Test func healthzAnswersWithoutAToken() async throws {
        let fixture = try AdminFixture()
        let response = try await fixture.request("/healthz")
        #expect(response.status == .ok)
        #expect(try response.json()["status"] as? String == "ok")
        #expect(response.headers[.contentType] == "application/json; charset=utf-8")
        #expect(try fixture.auditCount() == initialRecords, "probes are not forensic reads")
    }

    @Test func readyzIsReadyOnAFreshStore() async throws {
        // A tmp file system more than 80 % full would make this fail for a true reason; the
        // disk_free test below proves the check itself.
        var configuration = AdminConfiguration()
        configuration.readinessDiskFreeFractionMin = 0
        let fixture = try AdminFixture(configuration: configuration)
        let response = try await fixture.request("/readyz")
        #expect(response.status == .ok)
        #expect(try response.json()["ready"] as? Bool == true)
    }

    @Test func readyzIs503ForAReadOnlyStore() async throws {
        let temporary = try TemporaryStore()
        temporary.store.close()
        let readOnly = try Store.open(at: temporary.path, options: Store.Options(readOnly: true))
        defer { readOnly.close() }
        let server = try AdminServer(store: readOnly, tokens: try TokenFile())
        let response = try await server.makeApplication().test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get)
        }
        #expect(response.status == .serviceUnavailable)
        let reasons = try #require(try response.json()["reasons"] as? [[String: Any]])
        #expect(reasons.contains { $0["check"] as? String == "writable" })
    }

    @Test func readyzIs503WhenTheMapIsNearlyFull() async throws {
        var options = Store.Options(durability: .fastUnsafe)
        options.limits.mapSizeBytesInitial = 256 << 10
        options.limits.mapSizeBytesMax = 256 << 10
        let fixture = try AdminFixture(options: options)
        let payload = "{\"pad\":\"" + String(repeating: "x", count: 2_000) + "\"}"
        var batches = 0
        while fixture.store.info().mapUseFraction <= 0.9 && batches < 200 {
            batches += 1
            do {
                try await fixture.store.write(WriteContext(actor: .larder, requestID: "fill-\(batches)")) { txn in
                    for _ in 0..<4 { try txn.appendAudit(AuditDraft(event: "FILL", payload: payload)) }
                }
            } catch LarderError.Code.storageUnavailable {
                break
            }
        }
        #expect(fixture.store.info().mapUseFraction > 0.9)
        let response = try await fixture.request("/readyz")
        #expect(response.status == .serviceUnavailable)
        let reasons = try #require(try response.json()["reasons"] as? [[String: Any]])
        #expect(reasons.contains { $0["check"] as? String == "map_use" })
    }

    /// The thresholds are the checks' only inputs we control here: at 100 % required free disk
    /// and 0 % allowed reader use, the real statvfs and reader numbers must fail them.
    @Test func readyzReportsDiskAndReaderPressure() async throws {
        var configuration = AdminConfiguration()
        configuration.readinessDiskFreeFractionMin = 1
        configuration.readinessReaderUseFractionMax = 0
        let fixture = try AdminFixture(configuration: configuration)
        let response = try await fixture.request("/readyz")
        #expect(response.status == .serviceUnavailable)
        let checks = try #require(try response.json()["reasons"] as? [[String: Any]]).compactMap { $0["check"] as? String }
        #expect(checks.contains("disk_free"))
        #expect(checks.contains("readers"))
        #expect(!checks.contains("writable"))
    }

    @Test func metricsExposeTheStoreInPrometheusText() async throws {
        let fixture = try AdminFixture()
        try fixture.seed(3)
        try fixture.seed(2)
        let response = try await fixture.request("/metrics")
        #expect(response.status == .ok)
        #expect(response.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
        let lines = Set(response.text.split(separator: "\n").map(String.init))
        #expect(lines.contains("larder_audit_head_seq 7"))
        // Four writes since open: the schema's, the policy's and two seeds.
        #expect(lines.contains("larder_writes_committed_total 4"))
        #expect(lines.contains("larder_replays_total 0"))
        #expect(lines.contains("larder_breaker_open 0"))
        #expect(lines.contains("larder_errors_total{code=\"STORAGE_UNAVAILABLE\"} 0"))
        #expect(lines.contains("larder_write_latency_seconds_bucket{le=\"+Inf\"} 4"))
        #expect(lines.contains("larder_write_latency_seconds_count 4"))
        #expect(lines.contains("# TYPE larder_write_latency_seconds histogram"))
        #expect(lines.contains { $0.hasPrefix("larder_map_used_bytes ") })
        #expect(lines.contains("larder_map_size_bytes_max \(8 << 30)"))
        #expect(lines.contains { $0.hasPrefix("larder_writer_commits_total ") })
        #expect(lines.contains { $0.hasPrefix("larder_writer_requests_committed_total ") })
        // Buckets are cumulative: never decreasing, ending at the count.
        let buckets = lines.filter { $0.hasPrefix("larder_write_latency_seconds_bucket{le=\"0") || $0.hasPrefix("larder_write_latency_seconds_bucket{le=\"1") }
        #expect(buckets.count == LatencyHistogram.boundsSeconds.count)
        let counts = LatencyHistogram.boundsSeconds.map { bound in
            lines.first { $0.hasPrefix("larder_write_latency_seconds_bucket{le=\"\(bound)\"}") }.flatMap { Int($0.split(separator: " ").last!) } ?? -1
        }
        #expect(counts == counts.sorted())
        #expect(counts.allSatisfy { $0 >= 0 && $0 <= 4 })
    }

    @Test func metricsCountErrorsByCode() async throws {
        let fixture = try AdminFixture()
        _ = try? await fixture.store.write(WriteContext(actor: .larder, requestID: "bad id")) { _ in 0 }
        let text = try await fixture.request("/metrics").text
        #expect(text.contains("larder_errors_total{code=\"VALIDATION_FAILED\"} 1\n"))
    }
}
