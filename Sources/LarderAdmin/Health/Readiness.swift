import Foundation
import Larder
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `/readyz` checks: the store can take writes now and will for a while. Each failing
/// check is one reason, so an operator sees everything that is wrong at once.
struct Readiness {
    struct Reason: Sendable, Hashable {
        /// Stable name of the check: `open`, `restart_required`, `writable`, `map_use`,
        /// `disk_free`, `readers`, `breaker`.
        let check: String
        let message: String
    }

    static func evaluate(store: Store, configuration: AdminConfiguration) -> [Reason] {
        let info = store.info()
        var reasons: [Reason] = []
        guard info.isOpen else {
            return [Reason(check: "open", message: "The store is closed.")]
        }
        if info.restartRequired {
            reasons.append(Reason(check: "restart_required",
                                  message: "Restart required: LMDB reported a fatal error (MDB_PANIC); the application must close the store and open it again."))
        }
        if info.readOnly {
            reasons.append(Reason(check: "writable", message: "The store is open read-only; it cannot record writes or forensic reads."))
        }
        if info.mapUseFraction > configuration.readinessMapUseFractionMax {
            reasons.append(Reason(check: "map_use",
                                  message: "The map uses \(percent(info.mapUseFraction)) of its maximum \(info.mapSizeBytesMax) bytes\(info.limitsRecordedInStore ? " (recorded by the store's writer)" : "") (limit \(percent(configuration.readinessMapUseFractionMax)))."))
        }
        if let free = diskFreeFraction(path: store.path) {
            if free < configuration.readinessDiskFreeFractionMin {
                reasons.append(Reason(check: "disk_free",
                                      message: "\(percent(free)) of the store's file system is free (need \(percent(configuration.readinessDiskFreeFractionMin)))."))
            }
        } else {
            reasons.append(Reason(check: "disk_free", message: "The free space of \(store.path) cannot be read (statvfs failed)."))
        }
        // Slots taken now (not LMDB's high-water mark), so readiness recovers after a burst.
        let readers = info.readersMax > 0 ? Double(info.readersUsed) / Double(info.readersMax) : 1
        if readers >= configuration.readinessReaderUseFractionMax {
            reasons.append(Reason(check: "readers",
                                  message: "\(info.readersUsed) of \(info.readersMax) reader slots are taken (limit \(percent(configuration.readinessReaderUseFractionMax)))."))
        }
        if info.breaker == .open {
            reasons.append(Reason(check: "breaker", message: "The write breaker is open after repeated storage failures; writes fail fast."))
        }
        return reasons
    }

    /// Free fraction of the file system holding `path`, as an unprivileged process sees it
    /// (`f_bavail`, not `f_bfree`: the root reserve is not ours to use).
    static func diskFreeFraction(path: String) -> Double? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0, stats.f_blocks > 0 else { return nil }
        return Double(stats.f_bavail) / Double(stats.f_blocks)
    }

    private static func percent(_ fraction: Double) -> String {
        "\((fraction * 1000).rounded() / 10) %"
    }
}
