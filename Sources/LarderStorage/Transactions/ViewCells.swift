import Synchronization

/// Where record views check that the bytes they read in place are still there, without holding a
/// reference to their transaction.
///
/// A view over LMDB's map is valid while its transaction is open and has not written since the
/// view was made (a put or delete may move or free the page its bytes lie on). A transaction
/// that makes views takes a *cell* from this process-wide pool when it makes its first one
/// (``ReadTransaction/viewCell()``): two words, the cell's count and the count at which it was
/// last given back. The count goes up at every put and delete of the transaction and when the
/// transaction ends, and it never goes down, so a view remembers the count it was made at and is
/// valid exactly while the count is still that: one load and one compare per field, and copying
/// a view touches no reference count.
///
/// Cells are never freed (the pool holds as many as transactions ever made views at once, at
/// most LMDB's reader slots plus the writer, 16 bytes each), so a view that escaped its
/// transaction can always read its cell: it finds a larger count there, whichever transaction
/// holds the cell by then, and its owner stops the program instead of reading bytes that are gone.
///
/// A cell is written only by the thread that runs its transaction; views are not `Sendable`, so
/// a view read on another thread is outside what this checks.
///
/// A cell's first word (`pointee`) is its count, read by views in other modules without a call;
/// the second is the count at which it was last given back.
package enum ViewCells {
    private static let countWord = 0
    /// A stamp below it was made in an earlier transaction (its closure returned), one at or
    /// above it in the current one.
    private static let endedAtWord = 1

    /// The free cells' addresses. A `Mutex` (one atomic operation to take and one to leave when
    /// nobody else holds it): every read transaction that makes a view takes a cell and gives it back.
    private static let free = Mutex<[UInt]>([])

    /// A cell for a transaction's views: from the pool, or a new one.
    static func take() -> UnsafeMutablePointer<UInt64> {
        if let address = free.withLock({ $0.popLast() }), let reused = UnsafeMutablePointer<UInt64>(bitPattern: address) {
            return reused
        }
        let cell = UnsafeMutablePointer<UInt64>.allocate(capacity: 2)
        cell.initialize(repeating: 0, count: 2)
        return cell
    }

    /// Ends the views of `cell`'s transaction and puts it back in the pool.
    static func giveBack(_ cell: UnsafeMutablePointer<UInt64>) {
        cell[countWord] += 1
        cell[endedAtWord] = cell[countWord]
        let address = UInt(bitPattern: cell)
        free.withLock { $0.append(address) }
    }

    /// Whether a view stamped `stamp` on `cell` stopped being valid because its transaction
    /// ended (true) or because the transaction wrote after it was made (false). For the message
    /// of the failure; call only once the stamp no longer matches.
    package static func endedBeforeUse(_ cell: UnsafePointer<UInt64>, stamp: UInt64) -> Bool {
        stamp < cell[endedAtWord]
    }
}
