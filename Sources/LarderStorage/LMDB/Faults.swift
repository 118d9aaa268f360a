internal import CLMDB
import Synchronization

/// Test-only: makes chosen LMDB calls of one environment fail as if LMDB had returned a code,
/// without calling LMDB. Package-level on purpose: the shipped API has no way to inject faults.
///
/// ```swift
/// // The third put into "items" fails with EIO; every commit after the first with ENOSPC.
/// let faults = LMDBFaults { point, call in
///     switch point {
///     case .put where call.table == "items" && call.number == 3: EIO
///     case .commit where call.number > 1: ENOSPC
///     default: nil
///     }
/// }
/// ```
///
/// An injected put or delete leaves the LMDB transaction usable (LMDB itself would mark it
/// failed); Larder's own bookkeeping treats it as failed either way. An injected commit aborts
/// the transaction, as a failed `mdb_txn_commit` does.
package final class LMDBFaults: Sendable, Hashable {
    /// Where a fault can be injected.
    package enum Point: String, Sendable, Hashable, CaseIterable {
        /// Reserving blocks for `lock.mdb` and the first pages of a new `data.mdb` (`posix_fallocate`).
        case reserve
        /// `mdb_env_open`.
        case open
        /// `mdb_dbi_open`, for each table while opening.
        case openTable
        /// `mdb_txn_begin` of a read transaction.
        case beginRead
        /// `mdb_txn_begin` of the top-level write transaction.
        case beginWrite
        /// `mdb_put`.
        case put
        /// `mdb_del`.
        case delete
        /// `mdb_txn_commit` of a request's nested transaction in a group commit.
        case nestedCommit
        /// `mdb_txn_commit` of the top-level write transaction (the durable commit).
        case commit
    }

    /// One call at a point.
    package struct Call: Sendable {
        /// 1 for the first call at this point in this environment, then 2, 3, …
        package let number: Int
        /// The table of a put, delete or table open.
        package let table: String?
        /// The encoded key of a put or delete.
        package let key: [UInt8]?
    }

    private let decide: @Sendable (Point, Call) -> Int32?
    private let counts = Mutex<[Point: Int]>([:])
    private let injected = Mutex<[Point: Int]>([:])

    /// `decide` returns the code a call should fail with, or nil to make the real call.
    package init(_ decide: @escaping @Sendable (Point, Call) -> Int32?) {
        self.decide = decide
    }

    /// Fails every call at `point` whose number is in `calls` (all calls when nil) with `code`.
    package static func failing(_ point: Point, with code: Int32, calls: Set<Int>? = nil) -> LMDBFaults {
        LMDBFaults { at, call in at == point && (calls?.contains(call.number) ?? true) ? code : nil }
    }

    /// The code to fail this call with, or nil.
    func fault(_ point: Point, table: String? = nil, key: [UInt8]? = nil) -> Int32? {
        let number = counts.withLock { counts -> Int in
            counts[point, default: 0] += 1
            return counts[point]!
        }
        let code = decide(point, Call(number: number, table: table, key: key))
        if code != nil { injected.withLock { $0[point, default: 0] += 1 } }
        return code
    }

    /// How many faults were injected at `point` so far.
    package func injectedCount(at point: Point) -> Int { injected.withLock { $0[point] ?? 0 } }

    /// How many calls reached `point` so far (injected or not).
    package func callCount(at point: Point) -> Int { counts.withLock { $0[point] ?? 0 } }

    package static func == (lhs: LMDBFaults, rhs: LMDBFaults) -> Bool { lhs === rhs }
    package func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

extension LMDBFaults {
    /// LMDB's own return codes, for tests that do not import the C module. (`errno` values such
    /// as `EIO` and `ENOSPC` come from Glibc.)
    package enum Code {
        package static let mapFull: Int32 = MDB_MAP_FULL
        package static let txnFull: Int32 = MDB_TXN_FULL
        package static let panic: Int32 = MDB_PANIC
        package static let badTxn: Int32 = MDB_BAD_TXN
        package static let mapResized: Int32 = MDB_MAP_RESIZED
    }
}
