#if canImport(Glibc)
import Glibc
#endif

/// The workloads, in the order a round runs them on a store. The names' leading words are stable
/// (BENCHMARKS.md and issue 13 refer to them): "bulk import", "point read", "audit scan",
/// "chain verification", "chain only", "1 writer", "64 writers".
enum Workload: String, CaseIterable, Sendable {
    case bulk = "bulk import (1,000 per txn)"
    case pointRead = "point read (decoded)"
    case pointReadZeroCopy = "point read (zero-copy)"
    case scan = "audit scan (decoded, 1,000 records)"
    case scanViews = "audit scan (views, 1,000 records)"
    case verify = "chain verification (Larder: whole verify())"
    case verifyChainOnly = "chain only, public read API"
    case single = "1 writer, 1 op per durable commit"
    case concurrent = "64 writers, each waits for durability"
    /// Last: Larder reopens its store without sync for it.
    case singleNoSync = "1 writer, 1 op per commit, no sync (CPU)"

    /// The `--phase` name.
    var key: String {
        switch self {
        case .bulk: "bulk"
        case .pointRead: "point-read"
        case .pointReadZeroCopy: "point-read-zero-copy"
        case .scan: "scan"
        case .scanViews: "scan-views"
        case .verify: "verify"
        case .verifyChainOnly: "chain-only"
        case .single: "single"
        case .concurrent: "concurrent"
        case .singleNoSync: "single-nosync"
        }
    }

    init?(key: String) {
        guard let workload = Self.allCases.first(where: { $0.key == key || $0.rawValue == key }) else { return nil }
        self = workload
    }

    /// Phases that run on the calling thread alone (or with one writer thread and no Swift
    /// concurrency): the ones `--instructions` can run under callgrind.
    var isSingleThreaded: Bool { self != .concurrent }

    var writes: Bool { self == .bulk || self == .single || self == .concurrent || self == .singleNoSync }
}

/// Whether a contestant runs a workload.
enum Support: Equatable {
    case measured
    /// The API does not exist yet (Larder's zero-copy reads before format v2): the table says so.
    case notImplemented
    /// The workload does not apply to this contestant.
    case notApplicable
}

/// Everything a round needs to run a workload: the same for every contestant at one scale.
struct Plan: Sendable {
    var scale: Int
    var bulkRange: Range<Int>
    var batchCount: Int
    var singleRange: Range<Int>
    var concurrentRange: Range<Int>
    var noSyncRange: Range<Int>
    var budget: Duration
    var writers: Int
    var readIndexes: [Int]
    var scanStarts: [UInt64]
    var scanLength: Int
}

/// One side of the comparison. Every contestant gets the same transfers (``TransferSpec``) in the
/// same order, on a store in its own temporary directory.
protocol Contestant: AnyObject {
    var name: String { get }
    var directory: String { get }

    func support(_ workload: Workload) -> Support

    /// Work between phases that is not part of the next one (Larder reopening its store without
    /// sync before the no-sync phase). Not timed, not instrumented.
    func prepare(for workload: Workload) throws

    /// Runs one workload of `plan`; only called when ``support(_:)`` is `.measured`.
    ///
    /// - bulk: `plan.bulkRange`, `plan.batchCount` per durable transaction: per transfer, the
    ///   transfer row and its chained audit record (an import is not a decision: no decision rows).
    /// - single / singleNoSync: one writer, one transfer + audit record + decision per commit,
    ///   until the range is done or the budget is spent.
    /// - concurrent: `plan.writers` concurrent writers, each waiting until its own transfer is
    ///   durable.
    /// - pointRead: transfers by id, each in its own read transaction, decoded into Swift values;
    ///   pointReadZeroCopy: the same, reading the amount in place.
    /// - scan: `plan.scanLength` audit records from each start, one read transaction per scan,
    ///   decoded; scanViews: the same, reading seq, time and event in place (``AuditViewTally``).
    /// - verify: the whole hash chain recomputed (operations = records checked).
    func run(_ workload: Workload, _ plan: Plan) throws -> Measurement

    /// Closes the store; the caller removes the directory.
    func close()
}

extension Contestant {
    func prepare(for workload: Workload) throws {}
}

/// The microseconds since 1970 that every contestant stamps on its records.
func nowMicros() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1_000
}

/// Times `count` operations one by one; the shape every per-op read workload shares.
@inline(__always)
func measureEach<C: Collection>(_ items: C, unit: String = "op", operationsPerItem: Int = 1,
                                _ body: (C.Element) throws -> Void) rethrows -> Measurement {
    var latencies: [Int64] = []
    latencies.reserveCapacity(items.count)
    let start = ContinuousClock.now
    for item in items {
        latencies.append(try timed { try body(item) })
    }
    return Measurement(operations: items.count * operationsPerItem, elapsed: ContinuousClock.now - start,
                       latenciesNanoseconds: latencies, unit: unit)
}

/// One writer, one op per commit, until `range` is done or `budget` is spent.
@inline(__always)
func measureUntilBudget(_ range: Range<Int>, budget: Duration, _ body: (Int) throws -> Void) rethrows -> Measurement {
    var latencies: [Int64] = []
    latencies.reserveCapacity(range.count)
    let start = ContinuousClock.now
    for index in range {
        if ContinuousClock.now - start > budget { break }
        latencies.append(try timed { try body(index) })
    }
    return Measurement(operations: latencies.count, elapsed: ContinuousClock.now - start,
                       latenciesNanoseconds: latencies, unit: "op", commits: latencies.count)
}
