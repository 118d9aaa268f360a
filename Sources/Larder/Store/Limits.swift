import LarderStorage

/// The limits of one store, validated when it opens. Every size has its unit last.
///
/// ```swift
/// var limits = Limits()
/// limits.mapSizeBytesMax = 8 << 30   // the data file may grow to 8 GiB
/// limits.readersMax = 126            // read transactions at once, across every process
/// let store = try Store.open(at: "/var/lib/kitchen/larder", options: Store.Options(limits: limits))
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
    /// Default 8 GiB.
    public var mapSizeBytesMax: Int = 8 << 30
    /// Concurrent read transactions across every process that opens the store. Default 126.
    public var readersMax: Int = 126
    /// Named tables in the store (Larder uses 16). Default 32.
    public var tablesMax: Int = 32
    /// The largest value Larder writes; larger values are VALIDATION_FAILED. Default 4 MiB.
    public var valueSizeBytesMax: Int = 4 << 20
    /// Write requests the writer takes into one LMDB transaction (group commit). Default 64.
    public var writeBatchCountMax: Int = 64
    /// Write requests that may wait for the writer before new ones are refused with
    /// STORAGE_UNAVAILABLE (retry after 1 s). Default 4,096.
    public var writeQueueDepthMax: Int = 4_096

    public init() {}

    /// The smallest map accepted: a few pages per table plus LMDB's meta pages.
    public static let mapSizeBytesFloor = Environment.Limits.mapSizeBytesFloor
    /// The largest map accepted (1 TiB).
    public static let mapSizeBytesCeiling = Environment.Limits.mapSizeBytesCeiling

    /// Throws VALIDATION_FAILED naming the first limit out of range.
    ///
    /// - throws: VALIDATION_FAILED.
    public func validate() throws(LarderError) {
        do {
            try storageLimits.validate()
        } catch {
            throw LarderError(error)
        }
    }

    /// The same limits, as the storage core takes them.
    var storageLimits: Environment.Limits {
        var limits = Environment.Limits()
        limits.mapSizeBytesMax = mapSizeBytesMax
        limits.readersMax = readersMax
        limits.tablesMax = tablesMax
        limits.valueSizeBytesMax = valueSizeBytesMax
        limits.writeBatchCountMax = writeBatchCountMax
        limits.writeQueueDepthMax = writeQueueDepthMax
        return limits
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

    var storageDurability: Environment.Durability {
        switch self {
        case .durable: .durable
        case .fastUnsafe: .fastUnsafe
        }
    }
}

/// The write breaker: after `failuresToOpen` consecutive storage failures, writes fail fast with
/// STORAGE_UNAVAILABLE (without touching the disk); every `probeIntervalSeconds` one write is
/// let through as a probe, and the first success closes the breaker.
///
/// ```swift
/// let options = Store.Options(breaker: BreakerPolicy(failuresToOpen: 3, probeIntervalSeconds: 10))
/// ```
public struct BreakerPolicy: Sendable, Hashable {
    /// Consecutive storage failures that open the breaker. Default 5.
    public var failuresToOpen: Int = 5
    /// Seconds between probes while the breaker is open. Default 30.
    public var probeIntervalSeconds: Double = 30

    public init(failuresToOpen: Int = 5, probeIntervalSeconds: Double = 30) {
        self.failuresToOpen = failuresToOpen
        self.probeIntervalSeconds = probeIntervalSeconds
    }

    var storagePolicy: Environment.BreakerPolicy {
        Environment.BreakerPolicy(failuresToOpen: failuresToOpen, probeIntervalSeconds: probeIntervalSeconds)
    }
}

/// The state of the write breaker, for readiness checks and metrics.
public enum BreakerState: String, Sendable, Hashable {
    /// Writes go through.
    case closed
    /// Writes fail fast with STORAGE_UNAVAILABLE until a probe succeeds.
    case open

    init(_ state: Environment.BreakerState) {
        switch state {
        case .closed: self = .closed
        case .open: self = .open
        }
    }
}
