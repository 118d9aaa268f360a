import LarderStorage

/// A snapshot of a store's size and use: map, readers, breaker, whether it is open. The name
/// recalls the LMDB environment under every store.
///
/// ```swift
/// let info = store.info()
/// if info.mapUseFraction > 0.9 { /* raise Limits.mapSizeBytesMax, or purge decisions */ }
/// ```
public struct EnvironmentInfo: Sendable, Hashable {
    /// The store's directory.
    public let path: String
    /// The size of this process's map.
    public let mapSizeBytes: Int
    /// The map maximum that governs the store: the one its writer recorded (see
    /// ``limitsRecordedInStore``), or this process's own.
    public let mapSizeBytesMax: Int
    /// Bytes of the map in use (up to the last used page).
    public let mapUsedBytes: Int
    public let pageSizeBytes: Int
    /// Reader slots taken now, across every process.
    public let readersUsed: Int
    public let readersMax: Int
    public let lastTransactionID: Int
    public let keySizeBytesMax: Int
    public let readOnly: Bool
    public let durability: Durability
    public let breaker: BreakerState
    /// False once the store was closed.
    public let isOpen: Bool
    /// True once LMDB reported a fatal error (MDB_PANIC): reads and writes fail until the store is
    /// closed and opened again.
    public let restartRequired: Bool
    /// Whether ``mapSizeBytesMax`` is the maximum recorded in the store by the process that
    /// writes it (true), rather than this process's own `Limits.mapSizeBytesMax` (false).
    public let limitsRecordedInStore: Bool

    /// Use of the maximum map, 0...1.
    public var mapUseFraction: Double { mapSizeBytesMax > 0 ? Double(mapUsedBytes) / Double(mapSizeBytesMax) : 0 }

    init(_ info: Environment.Info, durability: Durability, recordedMapSizeBytesMax: Int?) {
        path = info.path
        mapSizeBytes = info.mapSizeBytes
        mapSizeBytesMax = recordedMapSizeBytesMax ?? info.mapSizeBytesMax
        mapUsedBytes = info.mapUsedBytes
        pageSizeBytes = info.pageSizeBytes
        readersUsed = info.readersUsed
        readersMax = info.readersMax
        lastTransactionID = info.lastTransactionID
        keySizeBytesMax = info.keySizeBytesMax
        readOnly = info.readOnly
        self.durability = durability
        breaker = BreakerState(info.breaker)
        isOpen = info.isOpen
        restartRequired = info.restartRequired
        limitsRecordedInStore = recordedMapSizeBytesMax != nil
    }
}

/// Entry count and page use of one table of the store (`larder stats`).
public struct TableStatistics: Sendable, Hashable {
    public let name: String
    public let entries: Int
    /// Depth of the table's B+ tree.
    public let depth: Int
    public let branchPages: Int
    public let leafPages: Int
    public let overflowPages: Int

    init(_ usage: TableUsage) {
        name = usage.name
        entries = usage.entries
        depth = usage.depth
        branchPages = usage.branchPages
        leafPages = usage.leafPages
        overflowPages = usage.overflowPages
    }
}

/// Which way a paged read walks: oldest first (`forward`) or newest first (`backward`).
public enum ScanDirection: String, Sendable, Hashable {
    case forward, backward

    var cursorDirection: CursorDirection {
        switch self {
        case .forward: .forward
        case .backward: .backward
        }
    }
}
