import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Synchronization
import Testing

/// Finding 1: requests are budgeted by what they cost, expensive ones are capped per server, and
/// a verify already running is shared.
@Suite("Request costs")
struct RequestCostTests {
    /// A verification pass that waits for the test to open `gate` before it runs, and counts runs.
    final class HeldVerify: Sendable {
        let runs = Mutex(0)
        private let gate = DispatchSemaphore(value: 0)

        var pass: @Sendable (Store) throws -> VerifyReport {
            { store in
                self.runs.withLock { $0 += 1 }
                self.gate.wait()
                return try store.verify()
            }
        }

        /// Lets `count` held passes run.
        func release(_ count: Int = 64) { for _ in 0..<count { gate.signal() } }
    }

    /// An admin fixture whose server uses `verifyPass`.
    static func fixture(_ configuration: AdminConfiguration, verifyPass: @escaping @Sendable (Store) throws -> VerifyReport)
        throws -> (AdminFixture, AdminServer) {
        let fixture = try AdminFixture(configuration: configuration)
        let server = try AdminServer(store: fixture.store, tokens: fixture.tokens, configuration: configuration, verifyPass: verifyPass)
        return (fixture, server)
    }

    static func request(_ server: AdminServer, _ uri: String, secret: String) async throws -> TestResponse {
        try await server.makeApplication().test(.router) { client in
            try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(secret)"])
        }
    }

    /// Polls `condition` (a bounded wait for other tasks to reach a point, not a timing check).
    static func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<2_000 where !condition() { try await Task.sleep(for: .milliseconds(5)) }
    }

    @Test func verifyAndExportCostMoreThanAPage() async throws {
        var configuration = AdminConfiguration()
        configuration.budgetUnitsPerWindowMax = 30
        let fixture = try AdminFixture(configuration: configuration)
        #expect(try await fixture.request("/v1/audit/verify", secret: fixture.auditSecret).status == .ok)
        #expect(fixture.server.budgetSpentForTesting(tokenID: "auditor") == 20)
        for _ in 0..<5 {
            #expect(try await fixture.request("/v1/audit/1", secret: fixture.auditSecret).status == .ok)
        }
        #expect(fixture.server.budgetSpentForTesting(tokenID: "auditor") == 25)
        fixture.clock.advance(seconds: 15)
        let refused = try await fixture.request("/v1/audit/export", secret: fixture.auditSecret)
        #expect(refused.status == .tooManyRequests)
        #expect(try refused.errorCode() == "RATE_LIMITED")
        #expect(refused.headers[.retryAfter] == "45")
        #expect(try await fixture.request("/v1/audit/verify", secret: fixture.auditSecret).status == .tooManyRequests)
        // Five more pages still fit.
        for _ in 0..<5 {
            #expect(try await fixture.request("/v1/audit/1", secret: fixture.auditSecret).status == .ok)
        }
        #expect(try await fixture.request("/v1/audit/1", secret: fixture.auditSecret).status == .tooManyRequests)
        fixture.clock.advance(seconds: 45)
        #expect(try await fixture.request("/v1/audit/export", secret: fixture.auditSecret).status == .ok)
    }

    /// 102 records in pages of 10: 11 pages, the first covered by the admission cost.
    @Test func anExportIsChargedForEachPageItStreams() async throws {
        var configuration = AdminConfiguration()
        configuration.budgetUnitsPerWindowMax = 15
        configuration.costs.verifyUnits = 15
        configuration.exportPageRecords = 10
        configuration.costs.exportPageUnits = 1
        let fixture = try AdminFixture(configuration: configuration)
        try fixture.seed(100)
        let export = try await fixture.request("/v1/audit/export", secret: fixture.auditSecret)
        #expect(export.status == .ok)
        #expect(export.text.split(separator: "\n").count == 102, "the stream is not cut when the budget runs out")
        #expect(fixture.server.budgetSpentForTesting(tokenID: "auditor") == 20)
        // 5 units over budget: the next request waits for the window to end ...
        let refused = try await fixture.request("/v1/audit/1", secret: fixture.auditSecret)
        #expect(refused.status == .tooManyRequests)
        #expect(refused.headers[.retryAfter] == "60")
        // ... and the excess is carried into the next window.
        fixture.clock.advance(seconds: 60)
        #expect(fixture.server.budgetSpentForTesting(tokenID: "auditor") == 5)
        #expect(try await fixture.request("/v1/audit/1", secret: fixture.auditSecret).status == .ok)
    }

    /// A debt larger than a window takes as many windows as it needs.
    @Test func aLargeDebtTakesSeveralWindows() async throws {
        var configuration = AdminConfiguration()
        configuration.budgetUnitsPerWindowMax = 10
        configuration.costs.verifyUnits = 10
        configuration.exportPageRecords = 1
        configuration.costs.exportPageUnits = 2
        let fixture = try AdminFixture(configuration: configuration)
        try fixture.seed(8)
        // 10 records: 10 admission + 9 × 2 = 28 units.
        #expect(try await fixture.request("/v1/audit/export", secret: fixture.auditSecret).status == .ok)
        #expect(fixture.server.budgetSpentForTesting(tokenID: "auditor") == 28)
        let refused = try await fixture.request("/v1/audit/1", secret: fixture.auditSecret)
        #expect(refused.headers[.retryAfter] == "120", "28 + 1 - 10 units to shed: two windows")
        fixture.clock.advance(seconds: 120)
        #expect(try await fixture.request("/v1/audit/1", secret: fixture.auditSecret).status == .ok)
    }

    @Test func concurrentVerifiesShareOnePass() async throws {
        let held = HeldVerify()
        let (fixture, server) = try Self.fixture(AdminConfiguration(), verifyPass: held.pass)
        try fixture.seed(3)
        let secret = fixture.auditSecret
        let responses = try await withThrowingTaskGroup(of: TestResponse.self) { group in
            for _ in 0..<3 { group.addTask { try await Self.request(server, "/v1/audit/verify", secret: secret) } }
            try await Self.waitUntil { server.verifyCallersForTesting == 3 }
            #expect(server.verifyCallersForTesting == 3, "three callers wait on one pass")
            held.release()
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(held.runs.withLock { $0 } == 1, "one pass for three callers")
        #expect(responses.allSatisfy { $0.status == .ok })
        #expect(Set(try responses.map { try $0.json()["head_seq"] as? Int }) == [initialRecords + 3])
        #expect(try fixture.auditCount() == initialRecords + 3 + 3, "each caller's read is recorded")
        #expect(server.verifyCallersForTesting == 0)
        // The next verify is a new pass.
        #expect(try await Self.request(server, "/v1/audit/verify", secret: secret).status == .ok)
        #expect(held.runs.withLock { $0 } == 2)
    }

    @Test func expensiveRequestsAreCappedPerServer() async throws {
        var configuration = AdminConfiguration()
        configuration.expensiveRequestsConcurrentMax = 1
        let held = HeldVerify()
        let (fixture, server) = try Self.fixture(configuration, verifyPass: held.pass)
        let secret = fixture.auditSecret
        let verify = Task { try await Self.request(server, "/v1/audit/verify", secret: secret) }
        try await Self.waitUntil { server.verifyCallersForTesting == 1 }
        let before = server.budgetSpentForTesting(tokenID: "auditor")
        let busy = try await Self.request(server, "/v1/audit/export", secret: secret)
        #expect(busy.status == .tooManyRequests)
        #expect(try busy.errorCode() == "RATE_LIMITED")
        #expect(busy.headers[.retryAfter] == "1")
        #expect(server.budgetSpentForTesting(tokenID: "auditor") == before, "a request that did not run is not charged")
        // Cheap reads are not capped.
        #expect(try await Self.request(server, "/v1/audit/1", secret: secret).status == .ok)
        held.release()
        #expect(try await verify.value.status == .ok)
        #expect(try await Self.request(server, "/v1/audit/export", secret: secret).status == .ok)
        #expect(try fixture.auditCount() == initialRecords + 3, "verify, the page and the export; not the refused export")
    }

    /// A HEAD on the export takes a slot and gives it back although its body never streams.
    @Test func aHeadOnTheExportGivesItsSlotBack() async throws {
        var configuration = AdminConfiguration()
        configuration.expensiveRequestsConcurrentMax = 1
        let fixture = try AdminFixture(configuration: configuration)
        for _ in 0..<3 {
            #expect(try await fixture.request("/v1/audit/export", method: .head, secret: fixture.auditSecret).status == .ok)
        }
        #expect(try await fixture.request("/v1/audit/export", secret: fixture.auditSecret).status == .ok)
    }

    @Test func costsAreValidatedAgainstTheBudget() throws {
        var configuration = AdminConfiguration()
        configuration.budgetUnitsPerWindowMax = 10
        #expect(throws: LarderError.self, "a verify of 20 could never run in a budget of 10") { try configuration.validate() }
        configuration.costs.verifyUnits = 10
        try configuration.validate()
        for broken in [{ (c: inout AdminConfiguration) in c.costs.pageUnits = 0 },
                       { (c: inout AdminConfiguration) in c.costs.exportPageUnits = -1 },
                       { (c: inout AdminConfiguration) in c.expensiveRequestsConcurrentMax = 0 },
                       { (c: inout AdminConfiguration) in c.headerFieldsMax = 2_000 }] {
            var copy = configuration
            broken(&copy)
            #expect(throws: LarderError.self) { try copy.validate() }
        }
    }
}
