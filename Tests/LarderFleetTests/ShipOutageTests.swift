import Foundation
import InMemoryLogging
import Larder
@testable import LarderFleet
import LarderTesting
import Logging
import Synchronization
import Testing

/// The fleet database as an external dependency that goes away: retries with backoff, the
/// breaker, a clear error, and a resume with no gap and no duplicate. Each test stops its own
/// server, so each starts its own cluster.
extension FleetTests {
    @Test func theServerStoppedMidShipIsRetriedThenAClearErrorAndTheResumeHasNoGapOrDuplicate() async throws {
        var random = seeded(40)
        try await withOwnCluster { cluster in
            let database = try await cluster.createDatabase()
            let box = try TestBox()
            try appendRecords(box.store, count: 1_000, random: &random)
            let head = try box.head

            let clock = ManualFleetClock()
            let events = Mutex<[ShipEvent]>([])
            var options = ShipOptions(boxID: "k-out")
            // A batch stuck on a server going down is abandoned well within the test's time limit.
            options.batchTimeout = .seconds(20)
            options.batchRecords = 100
            options.clock = clock.clock
            var handler = InMemoryLogHandler()
            handler.logLevel = .trace
            let captured = handler
            options.logger = Logger(label: "test") { _ in captured }
            let destination = try FleetDestination(url: cluster.url(database: database))
            let shipper = Shipper(store: try box.store, destination: destination, options: options,
                                  onEvent: { event in events.withLock { $0.append(event) } },
                                  afterCommit: { progress in
                                      if progress.shippedSeq == 300 { try? await cluster.stopServer() }
                                  })
            do {
                _ = try await shipper.run()
                Issue.record("shipping to a stopped server must fail")
            } catch let error as LarderError {
                #expect(error.code == .storageUnavailable)
                #expect(error.failureClass == .externalDependency)
                #expect(error.retryable)
                #expect(error.message.contains("failed 5 time(s) in 15 s and its breaker is open"), "\(error.message)")
                #expect(error.message.contains("Shipped this run: 300 record(s), seq 1…300."), "\(error.message)")
                #expect(error.message.contains("holds box k-out up to seq 300; the box is at seq \(head) (\(head - 300) not yet shipped)"),
                        "\(error.message)")
            }
            // Backoff 1 s, 2 s, 4 s, 8 s between the five attempts; then the breaker opened.
            #expect(clock.waits == [.seconds(1), .seconds(2), .seconds(4), .seconds(8)])
            let seen = events.withLock { $0 }
            #expect(seen.filter { if case .retrying = $0 { true } else { false } }.count == 4)
            #expect(seen.contains { if case .breaker(.open) = $0 { true } else { false } })
            // Logged once each, at the level an operator alerts on.
            let logged = handler.entries
            #expect(logged.filter { $0.level == .warning && $0.message.description.contains("retrying") }.count == 4)
            #expect(logged.filter { $0.level == .error && $0.message.description == "fleet database breaker open" }.count == 1)
            #expect(logged.filter { $0.level == .error && $0.message.description.hasPrefix("shipping stopped:") }.count == 1)
            #expect(logged.filter { $0.level == .debug && $0.message.description == "batch committed" }.count == 3)
            let state = try #require(try ShipState.load(storePath: box.path))
            #expect(state.shippedSeq == 300)
            #expect(state.lastError?.contains("breaker is open") == true)
            let lag = try #require(try box.store.shippingLag())
            #expect(lag.recordsUnshipped == head - 300)

            // The server comes back: the next run resumes after seq 300.
            try await cluster.startServer()
            let resumed = try await Shipper(store: box.store, destination: destination, options: options).run()
            #expect(resumed.startSeq == 300)
            #expect(resumed.recordsShipped == head - 300)
            #expect(try await shippedRows(database, box: "k-out", cluster: cluster) == (Int64(head), 1, Int64(head)))
            let distinct = try await cluster.integer("SELECT count(DISTINCT seq) FROM larder_audit WHERE box_id = 'k-out'", database: database)
            #expect(distinct == Int64(head))
            let report = try await FleetVerifier.verify(destination: destination)
            #expect(report.isIntact)
            #expect(try ShipState.load(storePath: box.path)?.lastError == nil)
        }
    }

    @Test func aFollowerWaitsOutAnOutageBehindItsBreakerAndCatchesUp() async throws {
        var random = seeded(41)
        try await withOwnCluster { cluster in
            let database = try await cluster.createDatabase()
            let box = try TestBox()
            try appendRecords(box.store, count: 200, random: &random)
            let head = try box.head

            // Waits of a second or more take no time; the server comes back during the eighth.
            let clock = ManualFleetClock(realBelow: .seconds(1)) { _, count in
                if count == 7 { try? await cluster.startServer() }
            }
            let states = Mutex<[DependencyBreaker.State]>([])
            var options = ShipOptions(boxID: "k-follow")
            // A batch stuck on a server going down is abandoned well within the test's time limit.
            options.batchTimeout = .seconds(20)
            options.batchRecords = 50
            options.follow = true
            options.pollInterval = .milliseconds(50)
            options.clock = clock.clock
            let destination = try FleetDestination(url: cluster.url(database: database))
            let shipper = Shipper(store: try box.store, destination: destination, options: options,
                                  onEvent: { event in if case .breaker(let state) = event { states.withLock { $0.append(state) } } },
                                  afterCommit: { progress in
                                      if progress.shippedSeq == 100 { try? await cluster.stopServer() }
                                  })
            let summary = try await following(shipper) {
                let caughtUp = try await eventually {
                    (try? await shippedRows(database, box: "k-follow", cluster: cluster))?.count == Int64(head)
                }
                #expect(caughtUp)
            }
            #expect(summary.stopped)
            #expect(summary.recordsShipped == head)
            #expect(try await shippedRows(database, box: "k-follow", cluster: cluster) == (Int64(head), 1, Int64(head)))
            // 1, 2, 4, 8 s of backoff, then the breaker spaces the probes 30 s apart.
            let waits = clock.waits
            #expect(Array(waits.prefix(4)) == [.seconds(1), .seconds(2), .seconds(4), .seconds(8)])
            #expect(waits.count >= 8)
            let seen = states.withLock { $0 }
            #expect(seen.first.map { if case .open = $0 { true } else { false } } == true)
            #expect(seen.contains(.halfOpen))
            #expect(seen.last == .closed(consecutiveFailures: 0))
        }
    }
}
