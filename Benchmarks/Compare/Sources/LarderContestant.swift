internal import CCallgrind
import Dispatch
import Foundation
import Larder
import Synchronization

/// Larder through its public API only: `store.post`, `store.write`, `store.read`, `store.verify`.
final class LarderContestant: Contestant {
    let name: String
    let directory: String
    private(set) var store: Store
    /// The seq of the first transfer's audit record: the store's own records (schema, policy,
    /// accounts) come first.
    let firstTransferSeq: UInt64
    /// False for the contestant `larder-no-tree`: the same store without its Merkle tree, so that
    /// the tree's cost on writes is the ratio of two contestants of the same round.
    let keepsMerkleTree: Bool

    init(directory: String, keepsMerkleTree: Bool = true) throws {
        self.directory = directory
        self.keepsMerkleTree = keepsMerkleTree
        name = keepsMerkleTree ? ContestantKind.larder.displayName : ContestantKind.larderNoTree.displayName
        store = try Self.open(directory, durability: .durable, keepsMerkleTree: keepsMerkleTree)
        let context = WriteContext(actor: TransferSpec.actor, requestID: "bench-accounts")
        try store.write(context) { txn in
            for number in 0..<TransferSpec.accountsCount {
                try txn.ledger.createAccount(NewAccount(id: TransferSpec.account(number), ledger: TransferSpec.ledger))
            }
        }
        firstTransferSeq = UInt64(try store.read { view in try view.audit.count() }) + 1
    }

    private static func open(_ directory: String, durability: Durability, keepsMerkleTree: Bool) throws -> Store {
        var limits = Limits()
        // Room for a million transfers (the map is opened at its maximum and never grows); under
        // valgrind, which cannot map 64 GiB (the open fails with EINVAL), 8 GiB as raw LMDB has.
        limits.mapSizeBytesMax = (larder_running_on_valgrind() != 0 ? 8 : 64) << 30
        var options = Store.Options(limits: limits, durability: durability)
        options.keepsMerkleTree = keepsMerkleTree
        return try Store.open(at: directory, options: options)
    }

    func support(_ workload: Workload) -> Support {
        // Without the tree only the writes differ, and verify would (rightly) report the missing nodes.
        if !keepsMerkleTree && !workload.writes { return .notApplicable }
        switch workload {
        default: return .measured
        }
    }

    /// The no-sync phase runs on the same store reopened with `.fastUnsafe` (`MDB_NOSYNC`): the
    /// CPU of the write path without the flushes. It is the last phase of a round.
    func prepare(for workload: Workload) throws {
        guard workload == .singleNoSync else { return }
        store.close()
        store = try Self.open(directory, durability: .fastUnsafe, keepsMerkleTree: keepsMerkleTree)
    }

    func run(_ workload: Workload, _ plan: Plan) throws -> Measurement {
        let commitsBefore = store.metrics.writer.commits
        var measurement: Measurement
        switch workload {
        case .bulk: measurement = try bulkImport(plan.bulkRange, batchCount: plan.batchCount)
        case .single: measurement = try singleWrites(plan.singleRange, budget: plan.budget)
        case .singleNoSync: measurement = try singleWrites(plan.noSyncRange, budget: plan.budget)
        case .concurrent: measurement = try concurrentWrites(plan.concurrentRange, writers: plan.writers, budget: plan.budget)
        case .pointRead: measurement = try pointReads(plan.readIndexes)
        case .scan: measurement = try auditScans(plan.scanStarts, length: plan.scanLength)
        case .verify: measurement = try verify()
        case .verifyChainOnly: measurement = try verifyChainOnly()
        case .pointReadZeroCopy: measurement = try pointReadZeroCopy(plan.readIndexes)
        case .scanViews: measurement = try auditScanViews(plan.scanStarts, length: plan.scanLength)
        }
        if workload.writes { measurement.commits = store.metrics.writer.commits - commitsBefore }
        return measurement
    }

    func bulkImport(_ range: Range<Int>, batchCount: Int) throws -> Measurement {
        var latencies: [Int64] = []
        let start = ContinuousClock.now
        for batchStart in stride(from: range.lowerBound, to: range.upperBound, by: batchCount) {
            let specs = (batchStart..<min(batchStart + batchCount, range.upperBound)).map(TransferSpec.init)
            let context = WriteContext(actor: TransferSpec.actor, requestID: "import-\(batchStart)")
            latencies.append(try timed {
                try store.write(context) { txn in
                    for spec in specs { try txn.ledger.post(spec.request) }
                }
            })
        }
        return Measurement(operations: range.count, elapsed: ContinuousClock.now - start, latenciesNanoseconds: latencies,
                           unit: "batch of \(batchCount)")
    }

    /// `store.post` per transfer, each its own decision and commit (durable or not, as opened).
    func singleWrites(_ range: Range<Int>, budget: Duration) throws -> Measurement {
        try measureUntilBudget(range, budget: budget) { index in
            let spec = TransferSpec(index: index)
            let outcome = try store.post(spec.request, context: spec.context)
            precondition(outcome.kind == .committed, "transfer \(spec.id) was not committed")
        }
    }

    /// 64 tasks on the async `store.write(_:request:_:)`; Larder's writer thread group-commits
    /// them. The only phase that uses Swift concurrency (so it never runs under callgrind).
    func concurrentWrites(_ range: Range<Int>, writers: Int, budget: Duration) throws -> Measurement {
        let next = IndexCounter(range.lowerBound)
        let store = self.store
        return try runBlocking {
            let start = ContinuousClock.now
            let latencies = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for _ in 0..<writers {
                    group.addTask {
                        var mine: [Int64] = []
                        while true {
                            let index = next.claim()
                            if index >= range.upperBound || ContinuousClock.now - start > budget { break }
                            let spec = TransferSpec(index: index)
                            let request = spec.request
                            let began = ContinuousClock.now
                            // The public call an application makes (as the 1-writer phase does): a
                            // built-in operation that checks before it writes shares its batch's
                            // transaction instead of opening a nested one.
                            let outcome = try await store.post(request, context: spec.context)
                            mine.append((ContinuousClock.now - began).nanoseconds)
                            precondition(outcome.kind == .committed, "transfer \(spec.id) was not committed")
                        }
                        return mine
                    }
                }
                var all: [Int64] = []
                for try await mine in group { all += mine }
                return all
            }
            return Measurement(operations: latencies.count, elapsed: ContinuousClock.now - start,
                               latenciesNanoseconds: latencies, unit: "op")
        }
    }

    /// "point read (decoded)": one read txn, the value copied and decoded into `Transfer`.
    func pointReads(_ indexes: [Int]) throws -> Measurement {
        try measureEach(indexes) { index in
            let id = TransferSpec(index: index).id
            let transfer = try store.read { view in try view.ledger.transfer(id: id) }
            precondition(transfer != nil, "transfer \(id) is missing")
        }
    }

    /// "point read (zero-copy)": one read txn, the transfer read through a ``TransferView`` and
    /// only its amount loaded in place (as the raw contestants do with
    /// ``DecodedTransfer/amountInPlace(_:)``).
    func pointReadZeroCopy(_ indexes: [Int]) throws -> Measurement {
        try measureEach(indexes) { index in
            let id = TransferSpec(index: index).id
            let amount = try store.read { view in try view.ledger.transferView(id: id)?.amount }
            precondition(amount != nil, "transfer \(id) is missing")
        }
    }

    /// "audit scan (decoded)": `view.audit.records(fromSeq:limit:)`, every record decoded.
    func auditScans(_ starts: [UInt64], length: Int) throws -> Measurement {
        let offset = firstTransferSeq - 1
        return try measureEach(starts, unit: "scan of \(length)", operationsPerItem: length) { seq in
            let page = try store.read { view in try view.audit.records(fromSeq: seq + offset, limit: length) }
            precondition(page.records.count == length, "audit scan from \(seq) returned \(page.records.count)")
        }
    }

    /// "audit scan (views)": `view.audit.forEachRecord(fromSeq:limit:)` in one `store.read`,
    /// doing what ``AuditViewTally`` does on the raw side: seq, time and event read in place, the
    /// records of one event counted.
    func auditScanViews(_ starts: [UInt64], length: Int) throws -> Measurement {
        let offset = firstTransferSeq - 1
        return try measureEach(starts, unit: "scan of \(length)", operationsPerItem: length) { seq in
            let tally = try store.read { view in
                var tally = (records: 0, transfersPosted: 0, seqSum: UInt64(0), latestMicros: Int64.min)
                try view.audit.forEachRecord(fromSeq: seq + offset, limit: length) { record in
                    tally.seqSum &+= record.seq
                    tally.latestMicros = max(tally.latestMicros, record.timeMicros)
                    if record.isEvent(.ledgerTransferPosted) { tally.transfersPosted += 1 }
                    tally.records += 1
                }
                return tally
            }
            precondition(tally.records == length, "audit scan from \(seq) returned \(tally.records)")
            consume(tally)
        }
    }

    /// `store.verify()`: the chain plus every index, decision, ledger balance and incident.
    func verify() throws -> Measurement {
        let start = ContinuousClock.now
        let report = try store.verify()
        let elapsed = ContinuousClock.now - start
        precondition(report.isIntact, "verify found problems: \(report.problems.prefix(3))")
        return Measurement(operations: report.recordsChecked, elapsed: elapsed, latenciesNanoseconds: [elapsed.nanoseconds],
                           unit: "whole verify")
    }

    /// `store.verifyChain()`: the chain alone (seqs, every leaf and chain hash from the bytes in
    /// the map, the head in meta), what the raw contestants' verification does, for a
    /// like-for-like figure.
    func verifyChainOnly() throws -> Measurement {
        let start = ContinuousClock.now
        let report = try store.verifyChain()
        let elapsed = ContinuousClock.now - start
        precondition(report.isIntact, "the chain is broken: \(report.problems.prefix(3))")
        return Measurement(operations: report.recordsChecked, elapsed: elapsed, latenciesNanoseconds: [elapsed.nanoseconds],
                           unit: "whole chain")
    }

    func close() { store.close() }
}

/// Runs async `body` to completion from synchronous code (the harness's main thread never runs
/// Swift concurrency itself, so that `--phase` runs stay callgrind-safe).
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let result = Mutex<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        let outcome: Result<T, any Error>
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        result.withLock { $0 = outcome }
        done.signal()
    }
    done.wait()
    return try result.withLock { $0! }.get()
}
