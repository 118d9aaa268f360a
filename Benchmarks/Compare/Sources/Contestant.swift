#if canImport(Glibc)
import Glibc
#endif

/// One side of the comparison. Every contestant gets the same transfers (``TransferSpec``) in the
/// same order, on a store in its own temporary directory.
protocol Contestant: AnyObject {
    var name: String { get }

    /// Imports `range` of transfers, `batchCount` per durable transaction: per transfer, the
    /// transfer row and its chained audit record (an import is not a decision: no decision rows).
    func bulkImport(_ range: Range<Int>, batchCount: Int) throws -> Measurement

    /// One writer, one transfer + audit record + decision per durable commit, until `range` is
    /// done or `budget` is spent.
    func singleWrites(_ range: Range<Int>, budget: Duration) throws -> Measurement

    /// `writers` concurrent writers, each waiting until its own transfer is durable, until `range`
    /// is done or `budget` is spent.
    func concurrentWrites(_ range: Range<Int>, writers: Int, budget: Duration) async throws -> Measurement

    /// Reads transfers by id, each in its own read transaction.
    func pointReads(_ indexes: [Int]) throws -> Measurement

    /// Reads `length` audit records from each start seq, in one read transaction per scan.
    func auditScans(_ starts: [UInt64], length: Int) throws -> Measurement

    /// Recomputes the whole hash chain (operations = records checked).
    func verifyChain() throws -> Measurement

    /// Closes the store; the caller removes the directory.
    func close()
}

/// The microseconds since 1970 that every contestant stamps on its records.
func nowMicros() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1_000
}
