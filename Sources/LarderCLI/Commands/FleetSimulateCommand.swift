public import ArgumentParser
import Foundation
import Larder
import LarderAdmin
public import LarderFleet

/// `larder fleet simulate`: the fleet benchmark (hidden; `Tools/fleet-simulation.sh` runs it
/// against a throwaway server). Fills N stores with M records each, signing a checkpoint every
/// 1,000 records as a box does by default, ships one alone, ships the others concurrently into one
/// database (records and checkpoints), then verifies the whole fleet, printing rows/s.
struct FleetSimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Benchmark: fill, ship and verify a simulated fleet (use a throwaway database).",
        shouldDisplay: false)

    @Option(name: .long, help: "The fleet database URL (a throwaway one: the simulation adds boxes sim-000 …).")
    var postgres: String

    @Option(name: .long, help: "Boxes (1...500).")
    var boxes = 50

    @Option(name: .long, help: "Audit records per box (1...10000000).")
    var records = 100_000

    @Option(name: .long, help: "Records per batch.")
    var batch = 1_000

    @Option(name: .long, help: "A directory for the boxes' stores (reused when it already holds them).")
    var work: String

    @Option(name: .long, help: "copy (the default, what larder ship uses) or insert (multi-row INSERTs, as with row-level security).")
    var method: ShipOptions.BulkInsert = .copy

    @Option(name: .customLong("verify-jobs"), help: "Boxes fleet verify checks at once (1 measures one connection's records/s).")
    var verifyJobs = 1

    @Option(name: .long, help: "Seed of the generated records.")
    var seed: UInt64 = 2026

    func validate() throws {
        guard (1...500).contains(boxes) else { throw ValidationError("--boxes must be in 1...500.") }
        guard (1...10_000_000).contains(records) else { throw ValidationError("--records must be in 1...10000000.") }
        guard (1...FleetVerifier.jobsMax).contains(verifyJobs) else { throw ValidationError("--verify-jobs must be in 1...\(FleetVerifier.jobsMax).") }
        guard (1...ShipOptions.batchRecordsMax).contains(batch) else { throw ValidationError("--batch must be in 1...\(ShipOptions.batchRecordsMax).") }
    }

    func run() async throws {
        let console = Console.current
        let destination = try FleetDestination(url: postgres)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let paths = (0..<boxes).map { "\(work)/" + String(format: "sim-%03d", $0) }

        let generating = ContinuousClock.now
        var generated = 0
        for (index, path) in paths.enumerated() where try Self.fill(path: path, records: records, seed: seed &+ UInt64(index),
                                                                      key: try Self.key(box: index)) {
            generated += 1
        }
        console.print("generate: \(generated) store(s) of \(records) records written in \(Self.seconds(since: generating)) s "
                      + "(\(boxes - generated) reused) under \(work)")

        // One box alone: the rows/s of a single shipper.
        let method = self.method
        let single = try await Self.ship(paths[0], boxID: "sim-000", destination: destination, batch: batch, method: method,
                                         key: try Self.key(box: 0))
        console.print("ship one box: \(single.recordsShipped) rows in \(Self.format(single.elapsed)) s = \(Int(single.rowsPerSecond)) rows/s "
                      + "(batch \(batch), \(method.rawValue))")

        // The rest at once: the fleet's aggregate rows/s into one server.
        if boxes > 1 {
            let started = ContinuousClock.now
            let summaries = try await withThrowingTaskGroup(of: ShipSummary.self) { group in
                for (index, path) in paths.enumerated().dropFirst() {
                    let key = try Self.key(box: index)
                    group.addTask {
                        try await Self.ship(path, boxID: String(format: "sim-%03d", index), destination: destination, batch: batch, method: method,
                                            key: key)
                    }
                }
                var all: [ShipSummary] = []
                for try await summary in group { all.append(summary) }
                return all
            }
            let elapsed = ContinuousClock.now - started
            let rows = summaries.reduce(UInt64(0)) { $0 + $1.recordsShipped }
            let seconds = Self.secondsValue(elapsed)
            let slowest = summaries.map(\.rowsPerSecond).min() ?? 0
            console.print("ship \(boxes - 1) boxes concurrently: \(rows) rows in \(Self.format(elapsed)) s = \(Int(Double(rows) / seconds)) rows/s "
                          + "(slowest shipper \(Int(slowest)) rows/s)")
        }

        let report = try await FleetVerifier.verify(destination: destination, jobs: verifyJobs)
        console.print("fleet verify (\(verifyJobs) job(s)): \(report.boxes.count) box(es), \(report.rowsChecked) rows in \(Self.format(report.elapsed)) s = "
                      + "\(Int(report.rowsPerSecond)) records/s, \(report.boxes.reduce(0) { $0 + $1.checkpointsVerified }) signed checkpoints verified; "
                      + (report.isIntact ? "all intact" : "BROKEN"))
        if !report.isIntact { throw VerifyFailed(status: 1) }
    }

    /// Box `index`'s checkpoint signing key (fixed: the stores are reused between runs).
    static func key(box index: Int) throws -> NoteSigningKey {
        try NoteSigningKey(name: String(format: "sim-%03d", index), seed: [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 32))
    }

    static func ship(_ path: String, boxID: String, destination: FleetDestination, batch: Int,
                     method: ShipOptions.BulkInsert, key: NoteSigningKey) async throws -> ShipSummary {
        var options = Store.Options(readOnly: true)
        options.recordsPolicy = false
        options.createIfMissing = false
        let store = try Store.open(at: path, options: options)
        defer { store.close() }
        var shipOptions = ShipOptions(boxID: boxID)
        shipOptions.batchRecords = batch
        shipOptions.bulkInsert = method
        shipOptions.checkpoints = .signed(by: key.verifierKey)
        return try await Shipper(store: store, destination: destination, options: shipOptions).run()
    }

    /// Fills a store with `records` seeded audit records unless it holds them already; true when written.
    static func fill(path: String, records: Int, seed: UInt64, key: NoteSigningKey) throws -> Bool {
        var options = Store.Options(durability: .fastUnsafe)
        options.recordsPolicy = false
        let store = try Store.open(at: path, options: options)
        defer { store.close() }
        let head = try store.read { view in try view.audit.head().seq }
        guard head < UInt64(records) else { return false }
        var random = SplitMix(seed: seed)
        var written = Int(head)
        let events: [AuditEvent] = [.ledgerTransferPosted, .opCreditGranted, .incidentStateChanged, .opResponseApplied, .forensicAccess]
        while written < records {
            let count = min(1_000, records - written)
            let request = "req-\(seed)-\(written / 1_000)"
            let context = WriteContext(actor: ActorIdentity(id: "am-\(random.next() % 40)", role: .accountManager), requestID: request)
            var drafts: [AuditDraft] = []
            for _ in 0..<count {
                let order = String(random.next() % 100_000)
                drafts.append(AuditDraft(event: events[Int(random.next() % UInt64(events.count))],
                                         refs: [.order(order), .customer("c-\(random.next() % 5_000)")],
                                         failureCategory: random.next() % 4 == 0 ? "delivery" : nil,
                                         payload: #"{"amount_cents":\#(random.next() % 100_000),"order":"\#(order)","note":"seeded fleet record for the shipping benchmark"}"#))
            }
            try store.write(context) { txn in
                for draft in drafts { _ = try txn.appendAudit(draft) }
            }
            written += count
            try store.signCheckpoint(with: key)
        }
        return true
    }

    static func seconds(since start: ContinuousClock.Instant) -> String { format(ContinuousClock.now - start) }
    static func secondsValue(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
    static func format(_ duration: Duration) -> String { String(format: "%.1f", secondsValue(duration)) }
}

extension ShipOptions.BulkInsert: ExpressibleByArgument {}

/// SplitMix64, for reproducible simulated records (the tool does not link the test kit).
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
