import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where record views check that the bytes they read in place are still there, without holding a
/// reference to their transaction.
///
/// A view over LMDB's map is valid while its transaction is open and has not written since the
/// view was made (a put or delete may move or free the page its bytes lie on). Each thread that
/// runs a transaction making views has a *cell* (``ReadTransaction/viewCell()``): two words, the
/// cell's count and the count at which the thread's last such transaction ended. The count goes
/// up at every put and delete of a transaction that made views and when that transaction ends,
/// and it never goes down, so a view remembers the count it was made at and is valid exactly
/// while the count is still that: one load and one compare per field, no reference counting,
/// and no atomic operation per transaction. A thread runs one transaction at a time (the
/// environment refuses a transaction inside another); were two on one thread to overlap, each
/// one's end would also end the other's views: a needless stop, never a missed one.
///
/// Cells are never freed (a thread that exits leaves its cell in a pool for the next thread; the
/// pool holds at most as many as threads ever made views at once, 16 bytes each), so a view that
/// escaped its transaction can always read its cell: it finds a larger count there, whatever ran
/// on that thread since, and its owner stops the program instead of reading bytes that are gone.
///
/// A cell is written only by its thread; views are not `Sendable`, so a view read on another
/// thread is outside what this checks.
///
/// A cell's first word (`pointee`) is its count, read by views in other modules without a call;
/// the second is the count at which the thread's last transaction with views ended.
package enum ViewCells {
    private static let countWord = 0
    /// A stamp below it was made in an earlier transaction (its closure returned), one at or
    /// above it in the current one.
    private static let endedAtWord = 1

    /// The cells of exited threads, by address, for the next threads.
    private static let free = Mutex<[UInt]>([])

    /// This thread's cell, once it made views; given to ``free`` when the thread exits.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, { cell in
            guard let cell else { return }
            ViewCells.free.withLock { $0.append(UInt(bitPattern: cell)) }
        }) == 0, "pthread_key_create failed")
        return key
    }()

    /// The calling thread's cell: its own, or one from the pool, or a new one.
    static func current() -> UnsafeMutablePointer<UInt64> {
        if let own = pthread_getspecific(key) { return own.assumingMemoryBound(to: UInt64.self) }
        let cell: UnsafeMutablePointer<UInt64>
        if let address = free.withLock({ $0.popLast() }), let reused = UnsafeMutablePointer<UInt64>(bitPattern: address) {
            cell = reused
        } else {
            cell = UnsafeMutablePointer<UInt64>.allocate(capacity: 2)
            cell.initialize(repeating: 0, count: 2)
        }
        precondition(pthread_setspecific(key, cell) == 0, "pthread_setspecific failed")
        return cell
    }

    /// Ends the views made with `cell` so far (their transaction ended).
    static func end(_ cell: UnsafeMutablePointer<UInt64>) {
        cell[countWord] += 1
        cell[endedAtWord] = cell[countWord]
    }

    /// Whether a view stamped `stamp` on `cell` stopped being valid because its transaction
    /// ended (true) or because the transaction wrote after it was made (false). For the message
    /// of the failure; call only once the stamp no longer matches.
    package static func endedBeforeUse(_ cell: UnsafePointer<UInt64>, stamp: UInt64) -> Bool {
        stamp < cell[endedAtWord]
    }
}
