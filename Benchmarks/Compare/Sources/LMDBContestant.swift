internal import CLMDB
import Dispatch
import Foundation
import Synchronization

/// Raw LMDB through its C API: the physical limit under Larder. Same keys and values as Larder's
/// transfer, audit and decision rows (``RawRows``), same durability (a synced commit, `MDB_NOTLS`),
/// but nothing else: no balances, history, indexes, validation or writer thread.
final class LMDBContestant: Contestant, @unchecked Sendable {
    let name = "raw LMDB"
    private let env: OpaquePointer
    private var audit = MDB_dbi()
    private var transfers = MDB_dbi()
    private var decisions = MDB_dbi()

    init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var pointer: OpaquePointer?
        try Self.check(mdb_env_create(&pointer), "mdb_env_create")
        env = pointer!
        try Self.check(mdb_env_set_maxdbs(env, 4), "mdb_env_set_maxdbs")
        try Self.check(mdb_env_set_mapsize(env, 64 << 30), "mdb_env_set_mapsize")
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

    static func check(_ rc: Int32, _ what: String) throws {
        guard rc == MDB_SUCCESS else { throw Failure(description: "\(what): \(String(cString: mdb_strerror(rc)))") }
    }

    // MARK: Primitives

    private func put(_ txn: OpaquePointer?, _ dbi: MDB_dbi, _ key: [UInt8], _ value: [UInt8], _ flags: Int32) throws {
        let rc = key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
                var mv = MDB_val(mv_size: v.count, mv_data: UnsafeMutableRawPointer(mutating: v.baseAddress))
                return mdb_put(txn, dbi, &mk, &mv, UInt32(flags))
            }
        }
        try Self.check(rc, "mdb_put")
    }

    /// The value under `key`, copied out of the map (as Larder copies).
    private func get(_ txn: OpaquePointer?, _ dbi: MDB_dbi, _ key: [UInt8]) throws -> [UInt8]? {
        var data = MDB_val()
        let rc = key.withUnsafeBytes { k in
            var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            return mdb_get(txn, dbi, &mk, &data)
        }
        if rc == MDB_NOTFOUND { return nil }
        try Self.check(rc, "mdb_get")
        return Array(UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size))
    }

    /// The chain head, read from the log itself (as Larder does, so several processes could write).
    private func head(_ txn: OpaquePointer?) throws -> (seq: UInt64, chain: [UInt8]) {
        var cursor: OpaquePointer?
        try Self.check(mdb_cursor_open(txn, audit, &cursor), "mdb_cursor_open")
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val(), data = MDB_val()
        let rc = mdb_cursor_get(cursor, &key, &data, MDB_LAST)
        if rc == MDB_NOTFOUND { return (0, [UInt8](repeating: 0, count: 32)) }
        try Self.check(rc, "mdb_cursor_get")
        var seq: UInt64 = 0
        withUnsafeMutableBytes(of: &seq) { $0.copyMemory(from: UnsafeRawBufferPointer(start: key.mv_data, count: 8)) }
        let value = UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size)
        return (UInt64(bigEndian: seq), Array(value[(value.count - 32)...]))
    }

    /// Writes one transfer's rows after `head`; returns the new head.
    private func writeRows(_ txn: OpaquePointer?, _ spec: TransferSpec, head: (seq: UInt64, chain: [UInt8]),
                           withDecision: Bool) throws -> (seq: UInt64, chain: [UInt8]) {
        let seq = head.seq + 1
        let rows = RawRows(spec, seq: seq, timeMicros: nowMicros(), previousChain: head.chain)
        try put(txn, audit, RawRows.seqKey(seq), rows.auditValue, MDB_APPEND)
        try put(txn, transfers, Array(spec.id.utf8), rows.transferValue, MDB_NOOVERWRITE)
        if withDecision {
            try put(txn, decisions, Array(spec.decisionID.utf8), rows.decisionValue, MDB_NOOVERWRITE)
        }
        return (seq, rows.chainHash)
    }

    /// One decision in its own transaction: look the decision up, then write the three rows.
    private func decide(_ txn: OpaquePointer?, _ spec: TransferSpec, head: (seq: UInt64, chain: [UInt8])?) throws -> (seq: UInt64, chain: [UInt8]) {
        let existing = try get(txn, decisions, Array(spec.decisionID.utf8))
        precondition(existing == nil, "decision \(spec.decisionID) exists")
        return try writeRows(txn, spec, head: try head ?? self.head(txn), withDecision: true)
    }

    // MARK: Workloads

    func bulkImport(_ range: Range<Int>, batchCount: Int) throws -> Measurement {
        var latencies: [Int64] = []
        let start = ContinuousClock.now
        for batchStart in stride(from: range.lowerBound, to: range.upperBound, by: batchCount) {
            latencies.append(try timed {
                var txn: OpaquePointer?
                try Self.check(mdb_txn_begin(env, nil, 0, &txn), "mdb_txn_begin")
                var current = try head(txn)
                for index in batchStart..<min(batchStart + batchCount, range.upperBound) {
                    current = try writeRows(txn, TransferSpec(index: index), head: current, withDecision: false)
                }
                try Self.check(mdb_txn_commit(txn), "mdb_txn_commit")
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
            latencies.append(try timed {
                var txn: OpaquePointer?
                try Self.check(mdb_txn_begin(env, nil, 0, &txn), "mdb_txn_begin")
                _ = try decide(txn, TransferSpec(index: index), head: nil)
                try Self.check(mdb_txn_commit(txn), "mdb_txn_commit")
            })
        }
        return Measurement(operations: latencies.count, elapsed: ContinuousClock.now - start,
                           latenciesNanoseconds: latencies, unit: "op")
    }

    /// 64 client threads hand their transfer to ONE writer thread, which takes everything queued
    /// (up to 64) into one transaction and one durable commit, then wakes those clients: raw group
    /// commit, the same shape as Larder's writer, without its nested transactions.
    func concurrentWrites(_ range: Range<Int>, writers: Int, budget: Duration) async throws -> Measurement {
        let queue = GroupCommitQueue(batchCountMax: 64)
        let writer = Thread { [self] in
            while let batch = queue.takeBatch() {
                var failure: (any Error)?
                do {
                    var txn: OpaquePointer?
                    try Self.check(mdb_txn_begin(env, nil, 0, &txn), "mdb_txn_begin")
                    var current = try head(txn)
                    for item in batch { current = try decide(txn, item.spec, head: current) }
                    try Self.check(mdb_txn_commit(txn), "mdb_txn_commit")
                } catch {
                    failure = error
                }
                for item in batch { item.finish(failure) }
            }
        }
        writer.start()
        let latencies = try runClientThreads(range, writers: writers, budget: budget) { spec in
            try queue.submit(spec)
        }
        queue.stop()
        return Measurement(operations: latencies.values.count, elapsed: latencies.elapsed,
                           latenciesNanoseconds: latencies.values, unit: "op")
    }

    func pointReads(_ indexes: [Int]) throws -> Measurement {
        var latencies: [Int64] = []
        latencies.reserveCapacity(indexes.count)
        let start = ContinuousClock.now
        for index in indexes {
            let key = Array(TransferSpec(index: index).id.utf8)
            latencies.append(try timed {
                var txn: OpaquePointer?
                try Self.check(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin")
                defer { mdb_txn_abort(txn) }
                let value = try get(txn, transfers, key)
                precondition(value != nil, "transfer \(index) is missing")
                consume(value)
            })
        }
        return Measurement(operations: indexes.count, elapsed: ContinuousClock.now - start,
                           latenciesNanoseconds: latencies, unit: "op")
    }

    func auditScans(_ starts: [UInt64], length: Int) throws -> Measurement {
        var latencies: [Int64] = []
        let start = ContinuousClock.now
        for seq in starts {
            latencies.append(try timed {
                var txn: OpaquePointer?
                try Self.check(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin")
                defer { mdb_txn_abort(txn) }
                var cursor: OpaquePointer?
                try Self.check(mdb_cursor_open(txn, audit, &cursor), "mdb_cursor_open")
                defer { mdb_cursor_close(cursor) }
                var values: [[UInt8]] = []
                values.reserveCapacity(length)
                let seek = RawRows.seqKey(seq)
                var key = MDB_val(), data = MDB_val()
                var rc = seek.withUnsafeBytes { k in
                    key = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
                    return mdb_cursor_get(cursor, &key, &data, MDB_SET_RANGE)
                }
                while rc == MDB_SUCCESS && values.count < length {
                    values.append(Array(UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size)))
                    rc = mdb_cursor_get(cursor, &key, &data, MDB_NEXT)
                }
                precondition(values.count == length, "audit scan from \(seq) returned \(values.count)")
                consume(values)
            })
        }
        return Measurement(operations: starts.count * length, elapsed: ContinuousClock.now - start,
                           latenciesNanoseconds: latencies, unit: "scan of \(length)")
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
        var previous = [UInt8](repeating: 0, count: 32)
        var checked = 0
        var rc = mdb_cursor_get(cursor, &key, &data, MDB_FIRST)
        while rc == MDB_SUCCESS {
            let (chain, ok) = RawRows.verify(UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size),
                                             previousChain: previous)
            precondition(ok, "raw LMDB chain broken at record \(checked + 1)")
            previous = chain
            checked += 1
            rc = mdb_cursor_get(cursor, &key, &data, MDB_NEXT)
        }
        let elapsed = ContinuousClock.now - start
        return Measurement(operations: checked, elapsed: elapsed, latenciesNanoseconds: [elapsed.nanoseconds],
                           unit: "whole chain")
    }

    func close() { mdb_env_close(env) }
}

/// The queue between the raw contestant's client threads and its one writer thread.
final class GroupCommitQueue: @unchecked Sendable {
    final class Item: @unchecked Sendable {
        let spec: TransferSpec
        private let done = DispatchSemaphore(value: 0)
        private var error: (any Error)?
        init(_ spec: TransferSpec) { self.spec = spec }
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

    /// Queues `spec` and waits until the writer has committed it.
    func submit(_ spec: TransferSpec) throws {
        let item = Item(spec)
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

/// Runs `writers` OS threads that each claim the next index of `range` and call `operation`,
/// until the range is done or `budget` is spent. Returns every operation's latency.
func runClientThreads(_ range: Range<Int>, writers: Int, budget: Duration,
                      _ operation: @escaping @Sendable (TransferSpec) throws -> Void) throws -> (values: [Int64], elapsed: Duration) {
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
                    mine.append(try timed { try operation(TransferSpec(index: index)) })
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
