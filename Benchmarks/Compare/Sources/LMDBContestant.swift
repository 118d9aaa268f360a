internal import CCallgrind
internal import CLMDB
import Dispatch
import Foundation
import Synchronization

/// Raw LMDB through its C API: the physical limit under Larder. Same keys and values as Larder's
/// transfer, audit and decision rows, same durability (a synced commit, `MDB_NOTLS`), but nothing
/// else: no balances, history, indexes, validation or writer thread for one writer.
///
/// Written lean, as a careful application would be: rows built by hand into reused buffers
/// (``LeanRowBuilder``), keys and values handed to LMDB as pointers, reads done in place. It is
/// held to within 1.5× of the C program in Benchmarks/Compare/c doing the same puts and hashes.
final class LMDBContestant: Contestant, @unchecked Sendable {
    let name = "raw LMDB"
    let directory: String
    private let env: OpaquePointer
    private var audit = MDB_dbi()
    private var transfers = MDB_dbi()
    private var decisions = MDB_dbi()
    /// The writing thread's builder (the main thread's writes, then the group-commit writer's:
    /// never both at once).
    private let rows = LeanRowBuilder()

    init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var pointer: OpaquePointer?
        try Self.check(mdb_env_create(&pointer), "mdb_env_create")
        env = pointer!
        try Self.check(mdb_env_set_maxdbs(env, 4), "mdb_env_set_maxdbs")
        // Valgrind cannot reserve a 64 GiB map; 8 GiB holds the largest runs measured under it.
        try Self.check(mdb_env_set_mapsize(env, (larder_running_on_valgrind() != 0 ? 8 : 64) << 30), "mdb_env_set_mapsize")
        try Self.check(mdb_env_open(env, directory, UInt32(MDB_NOTLS), 0o644), "mdb_env_open")
        var txn: OpaquePointer?
        try Self.check(mdb_txn_begin(env, nil, 0, &txn), "mdb_txn_begin")
        try Self.check(mdb_dbi_open(txn, "audit", UInt32(MDB_CREATE), &audit), "mdb_dbi_open")
        try Self.check(mdb_dbi_open(txn, "transfers", UInt32(MDB_CREATE), &transfers), "mdb_dbi_open")
        try Self.check(mdb_dbi_open(txn, "decisions", UInt32(MDB_CREATE), &decisions), "mdb_dbi_open")
        try Self.check(mdb_txn_commit(txn), "mdb_txn_commit")
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    @inline(__always) static func check(_ rc: Int32, _ what: StaticString) throws {
        guard rc == MDB_SUCCESS else { throw Failure(description: "\(what): \(String(cString: mdb_strerror(rc)))") }
    }

    func support(_ workload: Workload) -> Support {
        workload == .verifyChainOnly ? .notApplicable : .measured
    }

    func run(_ workload: Workload, _ plan: Plan) throws -> Measurement {
        switch workload {
        case .bulk: try bulkImport(plan.bulkRange, batchCount: plan.batchCount)
        case .single: try singleWrites(plan.singleRange, budget: plan.budget, sync: true)
        case .singleNoSync: try singleWrites(plan.noSyncRange, budget: plan.budget, sync: false)
        case .concurrent: try concurrentWrites(plan.concurrentRange, writers: plan.writers, budget: plan.budget)
        case .pointRead: try pointReads(plan.readIndexes, zeroCopy: false)
        case .pointReadZeroCopy: try pointReads(plan.readIndexes, zeroCopy: true)
        case .scan: try auditScans(plan.scanStarts, length: plan.scanLength, views: false)
        case .scanViews: try auditScans(plan.scanStarts, length: plan.scanLength, views: true)
        case .verify: try verifyChain()
        case .verifyChainOnly: preconditionFailure("not applicable")
        }
    }

    // MARK: Primitives

    @inline(__always) private func val(_ bytes: UnsafeRawBufferPointer) -> MDB_val {
        MDB_val(mv_size: bytes.count, mv_data: UnsafeMutableRawPointer(mutating: bytes.baseAddress))
    }

    @inline(__always) private func put(_ txn: OpaquePointer?, _ dbi: MDB_dbi, _ key: UnsafeRawBufferPointer,
                                       _ value: UnsafeRawBufferPointer, _ flags: Int32) throws {
        var k = val(key), v = val(value)
        try Self.check(mdb_put(txn, dbi, &k, &v, UInt32(flags)), "mdb_put")
    }

    /// The chain head, read from the log itself (as Larder does, so several processes could
    /// write): its seq, and its chain hash where it lies in the map (valid in this txn).
    private func head(_ txn: OpaquePointer?) throws -> (seq: UInt64, chain: UnsafeRawBufferPointer) {
        var cursor: OpaquePointer?
        try Self.check(mdb_cursor_open(txn, audit, &cursor), "mdb_cursor_open")
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val(), data = MDB_val()
        let rc = mdb_cursor_get(cursor, &key, &data, MDB_LAST)
        if rc == MDB_NOTFOUND { return (0, LeanRowBuilder.genesis) }
        try Self.check(rc, "mdb_cursor_get")
        let seq = UInt64(bigEndian: key.mv_data.loadUnaligned(as: UInt64.self))
        return (seq, UnsafeRawBufferPointer(start: data.mv_data + data.mv_size - 32, count: 32))
    }

    /// Writes one transfer's rows as audit record `seq` after `previousChain`.
    @inline(__always)
    private func writeRows(_ txn: OpaquePointer?, _ spec: LeanSpec, seq: UInt64, previousChain: UnsafeRawBufferPointer,
                           importBatchStart: Int?) throws {
        rows.build(spec, seq: seq, timeMicros: nowMicros(), previousChain: previousChain, importBatchStart: importBatchStart)
        try put(txn, audit, rows.seqKey(seq), rows.auditValue, MDB_APPEND)
        try put(txn, transfers, rows.idKey(spec.id), rows.transferValue, MDB_NOOVERWRITE)
        if importBatchStart == nil {
            try put(txn, decisions, rows.idKey(spec.decisionID), rows.decisionValue, MDB_NOOVERWRITE)
        }
    }

    /// One decision: look it up, then write its three rows after `seq` (read from the log when nil).
    private func decide(_ txn: OpaquePointer?, _ spec: LeanSpec, after seq: UInt64?) throws -> UInt64 {
        var key = val(rows.idKey(spec.decisionID)), found = MDB_val()
        let rc = mdb_get(txn, decisions, &key, &found)
        guard rc == MDB_NOTFOUND else {
            try Self.check(rc, "mdb_get")
            preconditionFailure("decision dec-\(spec.index) exists")
        }
        if let seq {
            try writeRows(txn, spec, seq: seq + 1, previousChain: rows.chainHash, importBatchStart: nil)
            return seq + 1
        }
        let (last, chain) = try head(txn)
        try writeRows(txn, spec, seq: last + 1, previousChain: chain, importBatchStart: nil)
        return last + 1
    }

    // MARK: Workloads

    func bulkImport(_ range: Range<Int>, batchCount: Int) throws -> Measurement {
        var latencies: [Int64] = []
        let start = ContinuousClock.now
        for batchStart in stride(from: range.lowerBound, to: range.upperBound, by: batchCount) {
            latencies.append(try timed {
                var txn: OpaquePointer?
                try Self.check(mdb_txn_begin(env, nil, 0, &txn), "mdb_txn_begin")
                let (last, chain) = try head(txn)
                var seq = last
                for index in batchStart..<min(batchStart + batchCount, range.upperBound) {
                    seq += 1
                    // The first row chains after the stored head, the others after the row before.
                    try writeRows(txn, LeanSpec(index: index), seq: seq, previousChain: seq == last + 1 ? chain : rows.chainHash,
                                  importBatchStart: batchStart)
                }
                try Self.check(mdb_txn_commit(txn), "mdb_txn_commit")
            })
        }
        return Measurement(operations: range.count, elapsed: ContinuousClock.now - start, latenciesNanoseconds: latencies,
                           unit: "batch of \(batchCount)", commits: latencies.count)
    }

    func singleWrites(_ range: Range<Int>, budget: Duration, sync: Bool) throws -> Measurement {
        if !sync { try Self.check(mdb_env_set_flags(env, UInt32(MDB_NOSYNC), 1), "mdb_env_set_flags") }
        defer {
            if !sync {
                mdb_env_set_flags(env, UInt32(MDB_NOSYNC), 0)
                mdb_env_sync(env, 1)
            }
        }
        return try measureUntilBudget(range, budget: budget) { index in
            var txn: OpaquePointer?
            try Self.check(mdb_txn_begin(env, nil, 0, &txn), "mdb_txn_begin")
            _ = try decide(txn, LeanSpec(index: index), after: nil)
            try Self.check(mdb_txn_commit(txn), "mdb_txn_commit")
        }
    }

    /// 64 client threads hand their transfer to ONE writer thread, which takes everything queued
    /// (up to 64) into one transaction and one durable commit, then wakes those clients: raw group
    /// commit, the same shape as Larder's writer, without its nested transactions.
    func concurrentWrites(_ range: Range<Int>, writers: Int, budget: Duration) throws -> Measurement {
        let commits = Counter()
        let latencies = try runGroupCommit(range, writers: writers, budget: budget) { [self] batch in
            var txn: OpaquePointer?
            try Self.check(mdb_txn_begin(env, nil, 0, &txn), "mdb_txn_begin")
            do {
                var seq: UInt64? = nil
                for item in batch { seq = try decide(txn, LeanSpec(index: item.index), after: seq) }
                try Self.check(mdb_txn_commit(txn), "mdb_txn_commit")
            } catch {
                mdb_txn_abort(txn)
                throw error
            }
            commits.add()
        }
        return Measurement(operations: latencies.values.count, elapsed: latencies.elapsed,
                           latenciesNanoseconds: latencies.values, unit: "op", commits: commits.value)
    }

    /// Each transfer in its own read txn: `mdb_get`, then decoded into Swift values
    /// (``DecodedTransfer``), or with `zeroCopy` only its amount read where it lies.
    func pointReads(_ indexes: [Int], zeroCopy: Bool) throws -> Measurement {
        try measureEach(indexes) { index in
            var txn: OpaquePointer?
            try Self.check(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin")
            defer { mdb_txn_abort(txn) }
            var key = val(rows.idKey(LeanSpec(index: index).id)), data = MDB_val()
            try Self.check(mdb_get(txn, transfers, &key, &data), "mdb_get")
            let value = UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size)
            if zeroCopy {
                consume(try DecodedTransfer.amountInPlace(value))
            } else {
                consume(try DecodedTransfer.decode(value))
            }
        }
    }

    /// One read txn per scan: cursor `MDB_SET_RANGE` + `MDB_NEXT`; each record decoded into Swift
    /// values (``DecodedAuditRecord``), or with `views` read in place (``AuditViewTally``).
    func auditScans(_ starts: [UInt64], length: Int, views: Bool) throws -> Measurement {
        try measureEach(starts, unit: "scan of \(length)", operationsPerItem: length) { seq in
            var txn: OpaquePointer?
            try Self.check(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin")
            defer { mdb_txn_abort(txn) }
            var cursor: OpaquePointer?
            try Self.check(mdb_cursor_open(txn, audit, &cursor), "mdb_cursor_open")
            defer { mdb_cursor_close(cursor) }
            var key = val(rows.seqKey(seq)), data = MDB_val()
            var rc = mdb_cursor_get(cursor, &key, &data, MDB_SET_RANGE)
            var seen = 0
            if views {
                var tally = AuditViewTally()
                while rc == MDB_SUCCESS && seen < length {
                    try tally.visit(auditValue: UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size))
                    seen += 1
                    rc = mdb_cursor_get(cursor, &key, &data, MDB_NEXT)
                }
                consume(tally)
            } else {
                var records: [DecodedAuditRecord] = []
                records.reserveCapacity(length)
                while rc == MDB_SUCCESS && seen < length {
                    records.append(try DecodedAuditRecord.decode(auditValue: UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size)))
                    seen += 1
                    rc = mdb_cursor_get(cursor, &key, &data, MDB_NEXT)
                }
                consume(records)
            }
            precondition(seen == length, "audit scan from \(seq) returned \(seen)")
        }
    }

    func verifyChain() throws -> Measurement {
        let start = ContinuousClock.now
        var txn: OpaquePointer?
        try Self.check(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin")
        defer { mdb_txn_abort(txn) }
        var cursor: OpaquePointer?
        try Self.check(mdb_cursor_open(txn, audit, &cursor), "mdb_cursor_open")
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val(), data = MDB_val()
        var verifier = LeanChainVerifier()
        defer { verifier.deallocate() }
        var rc = mdb_cursor_get(cursor, &key, &data, MDB_FIRST)
        while rc == MDB_SUCCESS {
            let ok = verifier.check(UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size))
            precondition(ok, "raw LMDB chain broken at record \(verifier.checked + 1)")
            rc = mdb_cursor_get(cursor, &key, &data, MDB_NEXT)
        }
        let elapsed = ContinuousClock.now - start
        return Measurement(operations: verifier.checked, elapsed: elapsed, latenciesNanoseconds: [elapsed.nanoseconds],
                           unit: "whole chain")
    }

    func close() { mdb_env_close(env) }
}

// MARK: Group commit for the raw contestants

/// The queue between client threads and one writer thread.
final class GroupCommitQueue: @unchecked Sendable {
    final class Item: @unchecked Sendable {
        let index: Int
        private let done = DispatchSemaphore(value: 0)
        private var error: (any Error)?
        init(_ index: Int) { self.index = index }
        func finish(_ error: (any Error)?) {
            self.error = error
            done.signal()
        }
        func wait() throws {
            done.wait()
            if let error { throw error }
        }
    }

    private let condition = NSCondition()
    private var items: [Item] = []
    private var stopping = false
    private let batchCountMax: Int

    init(batchCountMax: Int) { self.batchCountMax = batchCountMax }

    /// Queues transfer `index` and waits until the writer has committed it.
    func submit(_ index: Int) throws {
        let item = Item(index)
        condition.lock()
        items.append(item)
        condition.signal()
        condition.unlock()
        try item.wait()
    }

    /// The next batch, or nil once stopped and drained.
    func takeBatch() -> [Item]? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !stopping { condition.wait() }
        if items.isEmpty { return nil }
        let count = min(items.count, batchCountMax)
        let batch = Array(items.prefix(count))
        items.removeFirst(count)
        return batch
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }
}

/// Runs `writers` client threads handing their transfers to one writer thread, which commits
/// each batch it takes (up to 64) with `commit` and then wakes the batch's clients. Returns every
/// client's latency (queueing + commit).
func runGroupCommit(_ range: Range<Int>, writers: Int, budget: Duration,
                    commit: @escaping @Sendable ([GroupCommitQueue.Item]) throws -> Void) throws -> (values: [Int64], elapsed: Duration) {
    let queue = GroupCommitQueue(batchCountMax: 64)
    let writerDone = DispatchSemaphore(value: 0)
    let writer = Thread {
        while let batch = queue.takeBatch() {
            var failure: (any Error)?
            do { try commit(batch) } catch { failure = error }
            for item in batch { item.finish(failure) }
        }
        writerDone.signal()
    }
    writer.start()
    defer {
        queue.stop()
        writerDone.wait()
    }
    return try runClientThreads(range, writers: writers, budget: budget) { index in try queue.submit(index) }
}

/// Runs `writers` OS threads that each claim the next index of `range` and call `operation`,
/// until the range is done or `budget` is spent. Returns every operation's latency.
func runClientThreads(_ range: Range<Int>, writers: Int, budget: Duration,
                      _ operation: @escaping @Sendable (Int) throws -> Void) throws -> (values: [Int64], elapsed: Duration) {
    let next = IndexCounter(range.lowerBound)
    let collected = Mutex<(latencies: [Int64], failure: String?)>(([], nil))
    let group = DispatchGroup()
    let start = ContinuousClock.now
    for _ in 0..<writers {
        group.enter()
        let thread = Thread {
            var mine: [Int64] = []
            var failure: String?
            while true {
                let index = next.claim()
                if index >= range.upperBound || ContinuousClock.now - start > budget { break }
                do {
                    mine.append(try timed { try operation(index) })
                } catch {
                    failure = "\(error)"
                    break
                }
            }
            collected.withLock {
                $0.latencies += mine
                if let failure, $0.failure == nil { $0.failure = failure }
            }
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
    let elapsed = ContinuousClock.now - start
    let result = collected.withLock { $0 }
    if let failure = result.failure { throw LMDBContestant.Failure(description: failure) }
    return (result.latencies, elapsed)
}

/// Hands out the next operation index to concurrent writers.
final class IndexCounter: Sendable {
    private let value: Atomic<Int>
    init(_ first: Int) { value = Atomic(first) }
    func claim() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}

/// A count shared between threads.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.wrappingAdd(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
