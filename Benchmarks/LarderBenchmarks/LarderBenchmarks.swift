import Benchmark
import Foundation
import Larder

// Larder's hot paths under ordo-one/benchmark. Run with
//   LARDER_BENCHMARKS=1 swift package --allow-writing-to-package-directory benchmark
// Metrics: wall clock, throughput, mallocs and CPU only: the ARC metrics crash with the
// MallocInterposer trait on this toolchain (Swift 6.3, benchmark 1.38).

/// A store in a fresh temporary directory, with the accounts every transfer uses.
final class BenchStore: @unchecked Sendable {
    static let accountsCount = 100
    static let actor = ActorIdentity(id: "bench", role: .system)

    let directory: String
    let store: Store
    private(set) var nextIndex = 0

    init(durability: Durability = .durable) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("larder-bench-\(UUID().uuidString)").path
        store = try Store.open(at: directory, options: .init(durability: durability))
        try store.write(WriteContext(actor: Self.actor, requestID: "bench-accounts")) { txn in
            for number in 0..<Self.accountsCount {
                try txn.ledger.createAccount(NewAccount(id: Self.account(number), ledger: "credits.cents"))
            }
        }
    }

    static func account(_ number: Int) -> String { "acct-\(number)" }

    /// The next transfer and the context that makes it a decision of its own.
    func nextTransfer() -> (TransferRequest, WriteContext) {
        let index = nextIndex
        nextIndex += 1
        let debit = index % Self.accountsCount
        let credit = (debit + 1 + (index / Self.accountsCount) % (Self.accountsCount - 1)) % Self.accountsCount
        let request = TransferRequest.transfer(id: "t-\(index)", debit: Self.account(debit), credit: Self.account(credit),
                                               amount: UInt64(index % 997 + 1))
        return (request, WriteContext(actor: Self.actor, requestID: "req-\(index)", decisionID: "dec-\(index)"))
    }

    /// Adds transfers (each with its audit record) until the audit log holds `records` records,
    /// 1,000 per transaction.
    func fill(toAuditRecords records: Int) throws {
        while true {
            let count = try store.read { view in try view.audit.count() }
            guard count < records else { return }
            let batch = (0..<min(1_000, records - count)).map { _ in nextTransfer().0 }
            try store.write(WriteContext(actor: Self.actor, requestID: "bench-fill-\(count)")) { txn in
                for request in batch { try txn.ledger.post(request) }
            }
        }
    }

    func remove() {
        store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// The store of the benchmark that is running; set by its setup, removed by its teardown.
nonisolated(unsafe) var current: BenchStore!

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .cpuTotal],
        warmupIterations: 5,
        maxDuration: .seconds(3),
        maxIterations: 100_000
    )

    Benchmark("Durable commit: transfer + audit + decision",
              configuration: .init(maxIterations: 3_000)) { benchmark in
        for _ in benchmark.scaledIterations {
            let (request, context) = current.nextTransfer()
            blackHole(try! current.store.post(request, context: context))
        }
    } setup: {
        current = try BenchStore()
    } teardown: {
        current.remove()
    }

    Benchmark("fastUnsafe commit: transfer + audit + decision",
              configuration: .init(maxIterations: 20_000)) { benchmark in
        for _ in benchmark.scaledIterations {
            let (request, context) = current.nextTransfer()
            blackHole(try! current.store.post(request, context: context))
        }
    } setup: {
        current = try BenchStore(durability: .fastUnsafe)
    } teardown: {
        current.remove()
    }

    Benchmark("Replayed decision (same decisionID and request)") { benchmark in
        let (request, context) = (replayed!.0, replayed!.1)
        for _ in benchmark.scaledIterations {
            let outcome = try! current.store.post(request, context: context)
            precondition(outcome.kind == .replayed)
            blackHole(outcome)
        }
    } setup: {
        current = try BenchStore()
        let (request, context) = current.nextTransfer()
        try current.store.post(request, context: context)
        replayed = (request, context)
    } teardown: {
        current.remove()
    }

    Benchmark("Point read: balance of one account") { benchmark in
        for iteration in benchmark.scaledIterations {
            let account = BenchStore.account(iteration % BenchStore.accountsCount)
            blackHole(try! current.store.read { view in try view.ledger.balance(of: account) })
        }
    } setup: {
        current = try BenchStore()
        try current.fill(toAuditRecords: 10_000)
    } teardown: {
        current.remove()
    }

    Benchmark("Audit range scan: 1,000 records (10k-record store)") { benchmark in
        for iteration in benchmark.scaledIterations {
            let from = UInt64(1 + (iteration * 7_919) % 9_000)
            let page = try! current.store.read { view in try view.audit.records(fromSeq: from, limit: 1_000) }
            precondition(page.records.count == 1_000)
            blackHole(page)
        }
    } setup: {
        current = try BenchStore()
        try current.fill(toAuditRecords: 10_000)
    } teardown: {
        current.remove()
    }

    // One whole verify per iteration of a 1,000-record store; with the kilo scaling factor the
    // scaled figures read per audit record.
    Benchmark("Verify, per audit record (1,000-record store)",
              configuration: .init(scalingFactor: .kilo)) { benchmark in
        let report = try! current.store.verify()
        precondition(report.isIntact && report.recordsChecked == 1_000)
        blackHole(report)
    } setup: {
        current = try BenchStore()
        try current.fill(toAuditRecords: 1_000)
    } teardown: {
        current.remove()
    }

    // What GET /v1/audit?from_seq=…&limit=100 does after auth: one snapshot read of 100 records
    // and their JSON page, rendered with AuditEntry.writeJSON as AuditRoutes does.
    Benchmark("Admin audit page: read + render 100 records to JSON") { benchmark in
        for iteration in benchmark.scaledIterations {
            let from = UInt64(1 + (iteration * 7_919) % 9_800)
            let page = try! current.store.read { view in try view.audit.records(fromSeq: from, limit: 100) }
            var json = JSONWriter()
            json.object { o in
                o.array("records") { list in for entry in page.records { entry.writeJSON(to: &list) } }
                o.field("next_cursor", page.nextCursor)
            }
            blackHole(json.text)
        }
    } setup: {
        current = try BenchStore()
        try current.fill(toAuditRecords: 10_000)
    } teardown: {
        current.remove()
    }
}

nonisolated(unsafe) var replayed: (TransferRequest, WriteContext)?
