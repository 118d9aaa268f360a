import Foundation
import HTTPTypes
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import Prometheus
import Testing

/// `/metrics`: rendered by swift-prometheus from the store's counters (recorded through
/// swift-metrics into the server's registry) and the gauges the server sets before each scrape.
/// Checked here by a small parser of our own and, when it is installed, by the Prometheus
/// project's own parser (prometheus_client).
@Suite("Metrics")
struct MetricsTests {
    /// The metric families every `/metrics` page has, with their types.
    static let expectedFamilies: [String: String] = [
        "larder_process_info": "gauge",
        "larder_map_used_bytes": "gauge",
        "larder_map_size_bytes": "gauge",
        "larder_map_size_bytes_max": "gauge",
        "larder_readers_used": "gauge",
        "larder_readers_max": "gauge",
        "larder_audit_head_seq": "gauge",
        "larder_breaker_open": "gauge",
        "larder_restart_required": "gauge",
        "larder_writes_committed_total": "counter",
        "larder_replays_total": "counter",
        "larder_errors_total": "counter",
        "larder_write_latency_seconds": "histogram",
        "larder_commit_latency_seconds": "histogram",
        "larder_writer_commits_total": "counter",
        "larder_writer_requests_committed_total": "counter",
        "larder_writer_failed_commits_total": "counter",
        "larder_writer_breaker_refusals_total": "counter",
        "larder_shipping_configured": "gauge",
        "larder_shipping_state_unreadable": "gauge",
        "larder_shipping_shipped_seq": "gauge",
        "larder_shipping_records_unshipped": "gauge",
        "larder_shipping_oldest_unshipped_age_seconds": "gauge",
        "larder_shipping_ahead_of_store": "gauge",
        "larder_shipping_last_attempt_failed": "gauge",
    ]

    @Test func metricsExposeTheStoreInPrometheusText() async throws {
        let fixture = try AdminFixture()
        try fixture.seed(3)
        try fixture.seed(2)
        let response = try await fixture.request("/metrics")
        #expect(response.status == .ok)
        #expect(response.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
        let page = try PrometheusText(response.text)
        for (family, type) in Self.expectedFamilies {
            #expect(page.types[family] == type, "\(family)")
        }
        #expect(page.value("larder_audit_head_seq") == 7)
        // Four writes since open: the schema's, the policy's and two seeds.
        #expect(page.value("larder_writes_committed_total") == 4)
        #expect(page.value("larder_replays_total") == 0)
        #expect(page.value("larder_breaker_open") == 0)
        #expect(page.value("larder_restart_required") == 0)
        #expect(page.value("larder_map_size_bytes_max") == Double(8 << 30))
        #expect((page.value("larder_map_used_bytes") ?? 0) > 0)
        // Every code of the contract is present, at zero on a quiet store.
        for code in LarderError.Code.allCases {
            #expect(page.value("larder_errors_total", ["code": code.rawValue]) == 0, "\(code)")
        }
        #expect(page.value("larder_writer_commits_total") == 4)
        #expect(page.value("larder_writer_requests_committed_total") == 4)
        // Which process's counters these are.
        #expect(page.value("larder_process_info", ["pid": String(ProcessInfo.processInfo.processIdentifier), "access": "read_write"]) == 1)
        // The write latency histogram: Larder's buckets, cumulative, ending at the count.
        let buckets = page.samples.filter { $0.name == "larder_write_latency_seconds_bucket" }
        #expect(buckets.count == LatencyHistogram.boundsSeconds.count + 1)
        let bounds = buckets.compactMap { $0.labels["le"] }.filter { $0 != "+Inf" }.compactMap(Double.init)
        #expect(bounds == LatencyHistogram.boundsSeconds)
        let counts = buckets.map(\.value)
        #expect(counts == counts.sorted())
        #expect(page.value("larder_write_latency_seconds_bucket", ["le": "+Inf"]) == 4)
        #expect(page.value("larder_write_latency_seconds_count") == 4)
    }

    @Test func metricsCountErrorsByCode() async throws {
        let fixture = try AdminFixture()
        _ = try? await fixture.store.write(WriteContext(actor: .larder, requestID: "bad id")) { _ in 0 }
        let page = try PrometheusText(try await fixture.request("/metrics").text)
        #expect(page.value("larder_errors_total", ["code": "VALIDATION_FAILED"]) == 1)
        #expect(page.value("larder_errors_total", ["code": "CONFLICT"]) == 0)
    }

    /// The shipping lag, read from the ship-state.json `larder ship` keeps beside the store at
    /// every scrape: never shipped, behind (with the age of the oldest record not yet shipped),
    /// failing, restored from an older copy, and a damaged file (a reading, not a failed scrape).
    @Test func metricsShowTheShippingLag() async throws {
        let fixture = try AdminFixture()
        func page() async throws -> PrometheusText { try PrometheusText(try await fixture.request("/metrics").text) }
        var scraped = try await page()
        #expect(scraped.value("larder_shipping_configured") == 0)
        #expect(scraped.value("larder_shipping_records_unshipped") == 0)

        // Ten records one second apart; the fleet holds up to the fourth of them.
        for index in 0..<10 { try fixture.seed(1, requestID: "seed-\(index)", step: 1) }
        let shippedSeq = UInt64(initialRecords + 4)
        let shipped = try #require(try fixture.store.read { view in try view.audit.record(seq: shippedSeq) })
        var state = ShipState(boxID: "kitchen_7", destination: "postgres://kitchen_7@fleet-db:5432/larder", shippedSeq: shippedSeq,
                              shippedChainHash: shipped.chainHash, shippedAtMicros: fixture.clock.now().unixMicros,
                              lastAttemptAtMicros: fixture.clock.now().unixMicros)
        try state.save(storePath: fixture.store.path)
        scraped = try await page()
        #expect(scraped.value("larder_shipping_configured") == 1)
        #expect(scraped.value("larder_shipping_state_unreadable") == 0)
        #expect(scraped.value("larder_shipping_shipped_seq") == Double(shippedSeq))
        #expect(scraped.value("larder_shipping_records_unshipped") == 6)
        // The fifth record was written 4 s after the first; the clock is now 10 s past the first: 6 s.
        #expect(scraped.value("larder_shipping_oldest_unshipped_age_seconds") == 6)
        #expect(scraped.value("larder_shipping_last_attempt_failed") == 0)
        #expect(scraped.value("larder_shipping_ahead_of_store") == 0)

        state.lastError = "PostgreSQL is unreachable"
        state.shippedSeq = UInt64(initialRecords + 20)
        try state.save(storePath: fixture.store.path)
        scraped = try await page()
        #expect(scraped.value("larder_shipping_last_attempt_failed") == 1)
        #expect(scraped.value("larder_shipping_ahead_of_store") == 1)
        #expect(scraped.value("larder_shipping_records_unshipped") == 0)

        try "not json".write(toFile: ShipState.path(storePath: fixture.store.path), atomically: true, encoding: .utf8)
        scraped = try await page()
        #expect(scraped.value("larder_shipping_configured") == 1)
        #expect(scraped.value("larder_shipping_state_unreadable") == 1)
        #expect(scraped.value("larder_audit_head_seq") == Double(initialRecords + 10))
    }

    /// A store opened without the server's factory: `/metrics` still has the gauges (and says
    /// so in the log), and the store's counters went to the factory it was given.
    @Test func aStoreWithAnotherFactoryStillHasItsGauges() async throws {
        let temporary = try TemporaryStore()
        let server = try AdminServer(store: temporary.store, tokens: try TokenFile())
        let text = try await server.makeApplication().test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get)
        }.text
        let page = try PrometheusText(text)
        #expect(page.value("larder_audit_head_seq") == Double(initialRecords))
        #expect(page.types["larder_writes_committed_total"] == nil)
    }

    /// The page as the Prometheus project's own parser reads it: every line parses, and the
    /// families, types and values agree with ours.
    @Test func thePrometheusParserReadsThePage() async throws {
        guard let python = Self.python else {
            print("prometheus_client: skipped — \(Self.pythonMissing)")
            return
        }
        let fixture = try AdminFixture()
        try fixture.seed(3)
        _ = try? await fixture.store.write(WriteContext(actor: .larder, requestID: "bad id")) { _ in 0 }
        let text = try await fixture.request("/metrics").text
        let directory = try TemporaryDirectory()
        let input = directory.path("metrics.txt")
        try text.write(toFile: input, atomically: true, encoding: .utf8)
        let script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            families = []
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                families.append({"name": family.name, "type": family.type,
                                 "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples]})
            print(json.dumps(families))
            """
        let result = try await runProcess(python, ["-c", script, input])
        #expect(result.status == 0, "the parser refused the page: \(result.error)")
        let families = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]])
        var types: [String: String] = [:]
        var values: [String: Double] = [:]
        for family in families {
            // The parser names a counter family without its `_total` suffix.
            let name = family["name"] as? String ?? ""
            let type = family["type"] as? String ?? ""
            types[type == "counter" ? name + "_total" : name] = type
            for sample in family["samples"] as? [[String: Any]] ?? [] {
                let labels = (sample["labels"] as? [String: String] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                values["\(sample["name"] as? String ?? "")\(labels)"] = (sample["value"] as? NSNumber)?.doubleValue
            }
        }
        for (family, type) in Self.expectedFamilies {
            #expect(types[family] == type, "\(family) as prometheus_client reads it")
        }
        #expect(values["larder_writes_committed_total[]"] == 3)
        #expect(values["larder_errors_total[\"code=VALIDATION_FAILED\"]"] == 1)
        #expect(values["larder_audit_head_seq[]"] == Double(initialRecords + 3))
        #expect(values["larder_write_latency_seconds_count[]"] == 3)
    }

    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let pythonMissing = "no .build/test-tools/bin/python with prometheus_client (run Tools/setup.sh --tests, or Tools/install-test-tools.sh)"

    /// The Python of the test tools' virtual environment, when prometheus_client imports there.
    static let python: String? = {
        let candidate = packageRoot.appendingPathComponent(".build/test-tools/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: candidate),
              (try? runProcess(candidate, ["-c", "import prometheus_client.parser"]))?.status == 0 else { return nil }
        return candidate
    }()
}

/// A reader of the Prometheus text exposition format (0.0.4), enough to check our own page:
/// `# TYPE` lines and samples with labels; it throws on a line it cannot read.
struct PrometheusText {
    struct Sample {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    struct Unreadable: Error, CustomStringConvertible {
        let line: String
        var description: String { "not a Prometheus text line: \(line)" }
    }

    private(set) var types: [String: String] = [:]
    private(set) var samples: [Sample] = []

    init(_ text: String) throws {
        for line in text.split(separator: "\n").map(String.init) where !line.isEmpty {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4 else { throw Unreadable(line: line) }
                types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("# HELP ") { continue }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                throw Unreadable(line: line)
            }
            let series = String(line[..<space])
            var labels: [String: String] = [:]
            var name = series
            if let open = series.firstIndex(of: "{") {
                guard series.hasSuffix("}") else { throw Unreadable(line: line) }
                name = String(series[..<open])
                let body = series[series.index(after: open)..<series.index(before: series.endIndex)]
                for pair in body.split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2, parts[1].hasPrefix("\""), parts[1].hasSuffix("\"") else { throw Unreadable(line: line) }
                    labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
                }
            }
            samples.append(Sample(name: name, labels: labels, value: value))
        }
    }

    /// The value of the sample `name` with exactly `labels`, or nil.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }
}
