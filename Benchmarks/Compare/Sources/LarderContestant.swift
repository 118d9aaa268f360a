import Foundation
import Larder
import Synchronization

/// Larder through its public API only: `store.post`, `store.write`, `store.read`, `store.verify`.
final class LarderContestant: Contestant {
    let name: String
    let store: Store
    /// The seq of the first transfer's audit record: the store's own records (schema, policy,
    /// accounts) come first.
    let firstTransferSeq: UInt64

    init(directory: String, durability: Durability = .durable) throws {
        name = durability == .durable ? "Larder" : "Larder (fastUnsafe)"
        var limits = Limits()
        // Room for a million transfers (the map is opened at its maximum; it never grows).
        limits.mapSizeBytesMax = 64 << 30
        store = try Store.open(at: directory, options: .init(limits: limits, durability: durability))
        let context = WriteContext(actor: TransferSpec.actor, requestID: "bench-accounts")
        try store.write(context) { txn in
            for number in 0..<TransferSpec.accountsCount {
                try txn.ledger.createAccount(NewAccount(id: TransferSpec.account(number), ledger: TransferSpec.ledger))
            }
        }
        firstTransferSeq = UInt64(try store.read { view in try view.audit.count() }) + 1
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

    func singleWrites(_ range: Range<Int>, budget: Duration) throws -> Measurement {
        var latencies: [Int64] = []
        let start = ContinuousClock.now
        for index in range {
            if ContinuousClock.now - start > budget { break }
            let spec = TransferSpec(index: index)
            latencies.append(try timed {
                let outcome = try store.post(spec.request, context: spec.context)
                precondition(outcome.kind == .committed, "transfer \(spec.id) was not committed")
            })
        }
        return Measurement(operations: latencies.count, elapsed: ContinuousClock.now - start,
                           latenciesNanoseconds: latencies, unit: "op")
    }

    func concurrentWrites(_ range: Range<Int>, writers: Int, budget: Duration) async throws -> Measurement {
        let next = IndexCounter(range.lowerBound)
        let store = self.store
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
                        let outcome = try await store.write(spec.context, request: request) { txn in
                            try txn.ledger.post(request)
                        }
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

    func pointReads(_ indexes: [Int]) throws -> Measurement {
        var latencies: [Int64] = []
        latencies.reserveCapacity(indexes.count)
        let start = ContinuousClock.now
        for index in indexes {
            let id = TransferSpec(index: index).id
            latencies.append(try timed {
                let transfer = try store.read { view in try view.ledger.transfer(id: id) }
                precondition(transfer != nil, "transfer \(id) is missing")
            })
        }
        return Measurement(operations: indexes.count, elapsed: ContinuousClock.now - start,
                           latenciesNanoseconds: latencies, unit: "op")
    }

    func auditScans(_ starts: [UInt64], length: Int) throws -> Measurement {
        var latencies: [Int64] = []
        let offset = firstTransferSeq - 1
        let start = ContinuousClock.now
        for seq in starts {
            latencies.append(try timed {
                let page = try store.read { view in try view.audit.records(fromSeq: seq + offset, limit: length) }
                precondition(page.records.count == length, "audit scan from \(seq) returned \(page.records.count)")
            })
        }
        return Measurement(operations: starts.count * length, elapsed: ContinuousClock.now - start,
                           latenciesNanoseconds: latencies, unit: "scan of \(length)")
    }

    /// `store.verify()`: the chain plus every index, decision, ledger balance and incident.
    func verifyChain() throws -> Measurement {
        let start = ContinuousClock.now
        let report = try store.verify()
        let elapsed = ContinuousClock.now - start
        precondition(report.isIntact, "verify found problems: \(report.problems.prefix(3))")
        return Measurement(operations: report.recordsChecked, elapsed: elapsed, latenciesNanoseconds: [elapsed.nanoseconds],
                           unit: "whole verify")
    }

    /// The chain alone, recomputed through the public read API (pages of 1,000 records): what the
    /// raw contestants' verification does, for a like-for-like figure.
    func verifyChainOnly() throws -> Measurement {
        let start = ContinuousClock.now
        var previous = AuditChain.genesis
        var checked = 0
        var cursor: String? = nil
        repeat {
            let page = try store.read { view in try view.audit.records(fromSeq: 1, limit: AuditLog.recordsPerPageMax, cursor: cursor) }
            for entry in page.records {
                let leaf = AuditChain.leafHash(entry.recordBytes)
                let chain = AuditChain.chainHash(previous: previous, leaf: leaf)
                precondition(leaf == entry.leafHash && chain == entry.chainHash, "chain broken at \(entry.record.seq)")
                previous = entry.chainHash
                checked += 1
            }
            cursor = page.nextCursor
        } while cursor != nil
        let elapsed = ContinuousClock.now - start
        return Measurement(operations: checked, elapsed: elapsed, latenciesNanoseconds: [elapsed.nanoseconds],
                           unit: "whole chain")
    }

    func close() { store.close() }
}

/// Hands out the next operation index to concurrent writers.
final class IndexCounter: Sendable {
    private let value: Atomic<Int>
    init(_ first: Int) { value = Atomic(first) }
    func claim() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}
