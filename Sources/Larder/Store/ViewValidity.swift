import LarderStorage

/// What a record view checks before it reads the map: that its transaction's closure has not
/// returned and that the transaction has not written since the view was made (a put or delete
/// may move or free the page the view's bytes lie on).
///
/// A plain value (a pointer and a count), so that making and copying views touches no reference
/// count: the pointer leads to a cell the storage core never frees (``ViewCells``), whose count
/// moves on at every write of the transaction and when it ends. A check is one load and one
/// compare; a failed one stops the program (a view that outlived its closure is a programmer
/// error, and reading on would read bytes that may be gone).
@usableFromInline
struct ViewValidity {
    @usableFromInline let cell: UnsafePointer<UInt64>
    /// The cell's count (its first word) when the view was made.
    @usableFromInline let stamp: UInt64

    init(cell: UnsafePointer<UInt64>) {
        self.cell = cell
        stamp = cell.pointee
    }

    /// Stops the program unless the view is still valid.
    @inlinable @inline(__always)
    func check() {
        if _slowPath(cell.pointee != stamp) { fail() }
    }

    @usableFromInline @inline(never)
    func fail() -> Never {
        if ViewCells.endedBeforeUse(cell, stamp: stamp) {
            preconditionFailure("A Larder record view was used after its read closure returned; views must not escape store.read { }. Copy what must outlive it (decoded()).")
        }
        preconditionFailure("A Larder record view was used after its write transaction changed the store; read views again after writing, or copy what must outlive a write (decoded()).")
    }
}
