import CoreMetrics
import Foundation
import Larder
import LarderStorage
import LarderTesting
import MetricsTestKit
import Testing

/// What a store counts through `Store.Options.metricsFactory` (swift-metrics), checked with
/// swift-metrics' own test factory; and that `Store.metrics` says the same.
@Suite("Store metrics")
struct StoreMetricsTests {
    @Test func writesReplaysErrorsAndLatenciesAreCounted() throws {
        let metrics = TestMetrics()
        let temporary = try TemporaryStore(options: Store.Options(metricsFactory: metrics))
        let store = temporary.store
        // Every contract code has its counter from the start, at zero.
        for code in LarderError.Code.allCases {
            #expect(try metrics.expectCounter(StoreMetricNames.errors, [("code", code.rawValue)]).totalValue == 0)
        }
        let request = NoteRequest(order: "4411", amount: 1)
        try store.write(.test("req-1", decisionID: "d-1"), request: request) { txn in try txn.note(request) }
        try store.write(.test("req-2", decisionID: "d-1"), request: request) { txn in try txn.note(request) }
        #expect(throws: LarderError.self) {
            try store.write(.test("req-3", decisionID: "d-1"), request: NoteRequest(order: "4411", amount: 2)) { txn in
                try txn.note(NoteRequest(order: "4411", amount: 2))
            }
        }
        // The schema's and the policy's writes, then one of ours.
        #expect(try metrics.expectCounter(StoreMetricNames.writesCommitted).totalValue == 3)
        #expect(try metrics.expectCounter(StoreMetricNames.replays).totalValue == 1)
        #expect(try metrics.expectCounter(StoreMetricNames.errors, [("code", "CONFLICT")]).totalValue == 1)
        #expect(try metrics.expectTimer(StoreMetricNames.writeLatency).values.count == 3)
        #expect(try metrics.expectTimer(StoreMetricNames.commitLatency).values.count == 3)
        #expect(try metrics.expectCounter(StoreMetricNames.writerCommits).totalValue == 3)
        #expect(try metrics.expectCounter(StoreMetricNames.writerRequestsCommitted).totalValue == 3)
        #expect(try metrics.expectCounter(StoreMetricNames.writerFailedCommits).totalValue == 0)

        let snapshot = store.metrics
        #expect(snapshot.writesCommitted == 3)
        #expect(snapshot.replays == 1)
        #expect(snapshot.errorsByCode == ["CONFLICT": 1])
        #expect(snapshot.writeLatency.count == 3)
        #expect(snapshot.writer.commits == 3)
        #expect(snapshot.writer.commitLatencies.count == 3)
    }

    @Test func failedCommitsAndBreakerRefusalsAreCounted() throws {
        let metrics = TestMetrics()
        var options = Store.Options(breaker: BreakerPolicy(failuresToOpen: 1, probeIntervalSeconds: 3_600), metricsFactory: metrics)
        options.lmdbFaults = LMDBFaults { point, call in point == .commit && call.number == 3 ? EIO : nil }
        let temporary = try TemporaryStore(options: options)
        for attempt in 0..<3 {
            #expect(throws: LarderError.self) {
                try temporary.store.write(.test("req-\(attempt)")) { txn in try txn.appendAudit(AuditDraft(event: "NOTE")) }
            }
        }
        #expect(try metrics.expectCounter(StoreMetricNames.writerFailedCommits).totalValue == 1)
        #expect(try metrics.expectCounter(StoreMetricNames.writerBreakerRefusals).totalValue == 2)
        #expect(try metrics.expectCounter(StoreMetricNames.errors, [("code", "PERSISTENCE_ERROR")]).totalValue == 1)
        #expect(try metrics.expectCounter(StoreMetricNames.errors, [("code", "STORAGE_UNAVAILABLE")]).totalValue == 2)
        #expect(temporary.store.metrics.writer.breakerRefusals == 2)
    }

    /// Without a bootstrapped backend the store records into swift-metrics' no-op factory.
    @Test func theDefaultFactoryIsTheGlobalOne() {
        #expect(Store.Options().metricsFactory is NOOPMetricsHandler)
    }
}
