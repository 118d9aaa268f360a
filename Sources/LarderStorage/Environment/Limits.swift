/// The limits of one environment, validated when it opens. Every size has its unit last.
///
/// ```swift
/// var limits = Limits()
/// limits.mapSizeBytesMax = 8 << 30
/// limits.readersMax = 126
/// ```
public struct Limits: Sendable, Hashable {
    /// Ignored: the map is opened at ``mapSizeBytesMax`` from the start and never grows.
    ///
    /// Without `MDB_WRITEMAP` a map of the maximum size costs address space only: the data file
    /// grows with the data, and a map that never changes size is safe to read at any moment.
    @available(*, deprecated, message: "Ignored: the map is opened at mapSizeBytesMax from the start and never grows.")
    public var mapSizeBytesInitial: Int {
        get { ignoredMapSizeBytesInitial }
        set { ignoredMapSizeBytesInitial = newValue }
    }
    private var ignoredMapSizeBytesInitial: Int = 16 << 20
    /// The size of the map, opened in full from the start (it costs address space, not disk).
    /// The data file can grow to this size; then writes fail with STORAGE_UNAVAILABLE.
    public var mapSizeBytesMax: Int = 8 << 30
    /// Concurrent read transactions across every process that opens the store.
    public var readersMax: Int = 126
    /// Named tables in the environment.
    public var tablesMax: Int = 32
    /// The largest value Larder writes. Larger values are VALIDATION_FAILED.
    public var valueSizeBytesMax: Int = 4 << 20
    /// Write requests the writer takes into one LMDB transaction (group commit).
    public var writeBatchCountMax: Int = 64
    /// Write requests that may wait for the writer before new ones are refused.
    public var writeQueueDepthMax: Int = 4_096

    public init() {}

    /// The smallest map accepted: a few pages per table plus LMDB's meta pages.
    public static let mapSizeBytesFloor = 64 << 10
    /// The largest map accepted (1 TiB).
    public static let mapSizeBytesCeiling = 1 << 40

    /// Throws VALIDATION_FAILED naming the first limit out of range.
    public func validate() throws(LarderError) {
        func fail(_ message: String) -> LarderError {
            LarderError(.validationFailed, "Invalid limits: \(message).", failurePoint: .open)
        }
        guard mapSizeBytesMax >= Self.mapSizeBytesFloor else {
            throw fail("mapSizeBytesMax \(mapSizeBytesMax) is below \(Self.mapSizeBytesFloor)")
        }
        guard mapSizeBytesMax <= Self.mapSizeBytesCeiling else {
            throw fail("mapSizeBytesMax \(mapSizeBytesMax) is above \(Self.mapSizeBytesCeiling)")
        }
        guard (1...32_767).contains(readersMax) else { throw fail("readersMax \(readersMax) is not in 1...32767") }
        guard (1...1_024).contains(tablesMax) else { throw fail("tablesMax \(tablesMax) is not in 1...1024") }
        guard (1...(1 << 30)).contains(valueSizeBytesMax) else {
            throw fail("valueSizeBytesMax \(valueSizeBytesMax) is not in 1...\(1 << 30)")
        }
        guard (1...4_096).contains(writeBatchCountMax) else {
            throw fail("writeBatchCountMax \(writeBatchCountMax) is not in 1...4096")
        }
        guard (1...1_000_000).contains(writeQueueDepthMax) else {
            throw fail("writeQueueDepthMax \(writeQueueDepthMax) is not in 1...1000000")
        }
    }
}

/// How a commit reaches the disk.
public enum Durability: String, Sendable, Hashable, CaseIterable {
    /// Every commit is on disk (flushed) before it returns. The default.
    case durable
    /// `MDB_NOSYNC`: commits return before the data is flushed. A power loss or kernel crash can
    /// lose the last commits (LMDB keeps the file consistent, but recent commits may be gone).
    /// For benchmarks and bulk import only.
    case fastUnsafe
}
