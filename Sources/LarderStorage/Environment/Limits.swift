extension Environment {
    /// The limits of one environment, validated when it opens. Every size has its unit last.
    ///
    /// ```swift
    /// var limits = Environment.Limits()
    /// limits.mapSizeBytesMax = 8 << 30
    /// limits.readersMax = 126
    /// ```
    package struct Limits: Sendable, Hashable {
        /// The size of the map, opened in full from the start (it costs address space, not disk).
        /// The data file can grow to this size; then writes fail with ``StorageError/Kind/exhausted``.
        package var mapSizeBytesMax: Int = 8 << 30
        /// Concurrent read transactions across every process that opens the environment.
        package var readersMax: Int = 126
        /// Named tables in the environment.
        package var tablesMax: Int = 32
        /// The largest value a put accepts; larger values are ``StorageError/Kind/invalidArgument``.
        package var valueSizeBytesMax: Int = 4 << 20
        /// Write requests the writer takes into one LMDB transaction (group commit).
        package var writeBatchCountMax: Int = 64
        /// Write requests that may wait for the writer before new ones are refused.
        package var writeQueueDepthMax: Int = 4_096

        package init() {}

        /// The smallest map accepted: a few pages per table plus LMDB's meta pages.
        package static let mapSizeBytesFloor = 64 << 10
        /// The largest map accepted (1 TiB).
        package static let mapSizeBytesCeiling = 1 << 40

        /// Throws ``StorageError/Kind/invalidArgument`` naming the first limit out of range.
        package func validate() throws(StorageError) {
            func fail(_ message: String) -> StorageError {
                StorageError(.invalidArgument, "Invalid limits: \(message).", phase: .open)
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
    package enum Durability: String, Sendable, Hashable, CaseIterable {
        /// Every commit is on disk (flushed) before it returns.
        case durable
        /// `MDB_NOSYNC`: commits return before the data is flushed; a power loss or kernel crash
        /// can lose the last commits (LMDB keeps the file consistent).
        case fastUnsafe
    }

    /// The write breaker: after `failuresToOpen` consecutive storage failures, writes fail fast
    /// with ``StorageError/Kind/paused``; every `probeIntervalSeconds` one batch is let through
    /// as a probe, and the first success closes the breaker.
    package struct BreakerPolicy: Sendable, Hashable {
        package var failuresToOpen: Int = 5
        package var probeIntervalSeconds: Double = 30
        package init(failuresToOpen: Int = 5, probeIntervalSeconds: Double = 30) {
            self.failuresToOpen = failuresToOpen
            self.probeIntervalSeconds = probeIntervalSeconds
        }
    }

    /// The state of the write breaker.
    package enum BreakerState: String, Sendable, Hashable {
        case closed, open
    }
}
