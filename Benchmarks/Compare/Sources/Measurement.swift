import Foundation

/// What one contestant did in one workload: how many operations, in how long, and the latency of
/// each timed unit (one operation, or one batch for bulk workloads).
struct Measurement: Sendable {
    var operations: Int
    var elapsed: Duration
    /// Latencies in nanoseconds, one per timed unit.
    var latenciesNanoseconds: [Int64]
    /// What one latency sample covers ("op", "batch of 1000", "scan of 1000").
    var unit: String

    var seconds: Double { elapsed.seconds }
    var operationsPerSecond: Double { seconds > 0 ? Double(operations) / seconds : 0 }

    func percentileMicroseconds(_ p: Double) -> Double {
        guard !latenciesNanoseconds.isEmpty else { return 0 }
        let sorted = latenciesNanoseconds.sorted()
        // Nearest rank: the smallest sample with at least p of the samples at or below it.
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return Double(sorted[min(max(rank, 1), sorted.count) - 1]) / 1_000
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}

/// Times `body` once and returns its duration in nanoseconds.
@inline(__always)
func timed(_ body: () throws -> Void) rethrows -> Int64 {
    let start = ContinuousClock.now
    try body()
    return (ContinuousClock.now - start).nanoseconds
}

/// Progress on stderr, so the table on stdout stays clean.
func progress(_ text: String) {
    FileHandle.standardError.write(Data("[larder-compare] \(text)\n".utf8))
}

/// Keeps the optimizer from dropping work whose result is otherwise unused.
@inline(never)
func consume<T>(_ value: T) {
    withExtendedLifetime(value) {}
}
