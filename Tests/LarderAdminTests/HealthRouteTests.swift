import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderStorage
import LarderAdmin
import LarderTesting
import NIOCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

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

    /// Readers are the slots taken now: two readers held make /readyz 503 at a 50 % limit of 4
    /// slots, and once they finish it is ready again (LMDB's high-water mark never goes down).
    @Test func readyzRecoversAfterAReaderBurst() async throws {
        var options = Store.Options()
        options.limits.readersMax = 4
        var configuration = AdminConfiguration()
        configuration.readinessDiskFreeFractionMin = 0
        configuration.readinessReaderUseFractionMax = 0.5
        let fixture = try AdminFixture(options: options, configuration: configuration)
        #expect(try await fixture.request("/readyz").status == .ok)
        let store = fixture.store
        let readers = ReaderBurst(store: store, count: 2)
        await readers.start()
        let busy = try await fixture.request("/readyz")
        #expect(busy.status == .serviceUnavailable)
        let checks = try #require(try busy.json()["reasons"] as? [[String: Any]]).compactMap { $0["check"] as? String }
        #expect(checks == ["readers"])
        await readers.finish()
        #expect(try await fixture.request("/readyz").status == .ok)
    }

    /// The disk check compares the real free fraction with its threshold: just above what is free
    /// fails it, just below passes it.
    @Test func readyzComparesFreeDiskWithItsThreshold() async throws {
        let probe = try AdminFixture()
        var stats = statvfs()
        #expect(statvfs(probe.store.path, &stats) == 0)
        let free = Double(stats.f_bavail) / Double(stats.f_blocks)
        for (threshold, expectFailure) in [(free + 0.05, true), (max(0, free - 0.05), false)] where threshold <= 1 {
            var configuration = AdminConfiguration()
            configuration.readinessDiskFreeFractionMin = threshold
            let fixture = try AdminFixture(configuration: configuration)
            let reasons = try #require(try await fixture.request("/readyz").json()["reasons"] as? [[String: Any]])
            #expect(reasons.contains { $0["check"] as? String == "disk_free" } == expectFailure,
                    "free \(free), threshold \(threshold)")
        }
    }

    /// After LMDB's fatal error (MDB_PANIC, injected), /readyz says the store needs a restart.
    @Test func readyzReportsRestartRequired() async throws {
        var options = Store.Options()
        // Commits 1 and 2 are the schema's and the policy's.
        options.lmdbFaults = LMDBFaults { point, call in point == .commit && call.number == 3 ? LMDBFaults.Code.panic : nil }
        var configuration = AdminConfiguration()
        configuration.readinessDiskFreeFractionMin = 0
        let fixture = try AdminFixture(options: options, configuration: configuration)
        #expect(throws: LarderError.self) { try fixture.seed(1) }
        let response = try await fixture.request("/readyz")
        #expect(response.status == .serviceUnavailable)
        let reasons = try #require(try response.json()["reasons"] as? [[String: Any]])
        #expect(reasons.contains { $0["check"] as? String == "restart_required" })
    }

    /// A server that opened the store with its own default maximum (8 GiB) reports map use
    /// against the maximum the application recorded (256 KiB): nearly full, not ready.
    @Test func readyzUsesTheLimitsTheWriterRecorded() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("store")
        var appOptions = Store.Options(durability: .fastUnsafe)
        appOptions.limits.mapSizeBytesMax = 256 << 10
        let app = try Store.open(at: path, options: appOptions)
        let payload = "{\"pad\":\"" + String(repeating: "x", count: 2_000) + "\"}"
        for batch in 0..<200 where app.info().mapUseFraction <= 0.9 {
            _ = try? await app.write(WriteContext(actor: .larder, requestID: "fill-\(batch)")) { txn in
                for _ in 0..<4 { try txn.appendAudit(AuditDraft(event: "FILL", payload: payload)) }
            }
        }
        app.close()
        var serverOptions = Store.Options()
        serverOptions.recordsPolicy = false
        serverOptions.recordsLimits = false
        let served = try Store.open(at: path, options: serverOptions)
        defer { served.close() }
        var configuration = AdminConfiguration()
        configuration.readinessDiskFreeFractionMin = 0
        let server = try AdminServer(store: served, tokens: try TokenFile(), configuration: configuration)
        let application = server.makeApplication()
        let ready = try await application.test(.router) { client in try await client.execute(uri: "/readyz", method: .get) }
        #expect(ready.status == .serviceUnavailable)
        let reasons = try #require(try ready.json()["reasons"] as? [[String: Any]])
        #expect(reasons.contains { $0["check"] as? String == "map_use" })
        let metrics = try await application.test(.router) { client in try await client.execute(uri: "/metrics", method: .get) }
        #expect(try PrometheusText(metrics.text).value("larder_map_size_bytes_max") == Double(256 << 10))
    }
}

/// Readers held open on other threads until `finish()`.
final class ReaderBurst: Sendable {
    let store: Store
    let count: Int
    private let leave = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init(store: Store, count: Int) {
        self.store = store
        self.count = count
    }

    /// Returns once every reader is inside its read.
    func start() async {
        for _ in 0..<count {
            await withCheckedContinuation { (inside: CheckedContinuation<Void, Never>) in
                let store = self.store, leave = self.leave, finished = self.finished
                Thread {
                    _ = try? store.read { _ in
                        inside.resume()
                        leave.wait()
                    }
                    finished.signal()
                }.start()
            }
        }
    }

    /// Returns once every reader has left.
    func finish() async {
        for _ in 0..<count { leave.signal() }
        let count = self.count, finished = self.finished
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread {
                for _ in 0..<count { finished.wait() }
                done.resume()
            }.start()
        }
    }
}
