extension Array where Element == UInt8 {
    /// Calls `body` with the array's bytes, keeping `body`'s typed error: the standard library's
    /// `withUnsafeBytes` rethrows `any Error`, which would erase ``StorageError`` and `LarderError`
    /// on every decode from an owned array.
    ///
    /// ```swift
    /// let first = try bytes.withBytes { (raw: UnsafeRawBufferPointer) throws(StorageError) in raw.first }
    /// ```
    ///
    /// - throws: whatever `body` throws.
    @inline(__always)
    package func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Result<R, E> in
            Result { () throws(E) -> R in try body(raw) }
        }.get()
    }
}
