import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What one contestant did in one workload: how many operations, in how long, and the latency of
/// each timed unit (one operation, or one batch for bulk workloads).
struct Measurement: Sendable {
    var operations: Int
    var elapsed: Duration
    /// Latencies in nanoseconds, one per timed unit.
    var latenciesNanoseconds: [Int64]
    /// What one latency sample covers ("op", "batch of 1000", "scan of 1000").
    var unit: String
    /// Commits the phase made, when the contestant counts them (write phases).
    var commits: Int?
    /// The process's I/O over the phase: measured around the phase by the harness, or reported
    /// by an out-of-process contestant for its own process.
    var io: IOCounters?

    init(operations: Int, elapsed: Duration, latenciesNanoseconds: [Int64], unit: String, commits: Int? = nil,
         io: IOCounters? = nil) {
        self.operations = operations
        self.elapsed = elapsed
        self.latenciesNanoseconds = latenciesNanoseconds
        self.unit = unit
        self.commits = commits
        self.io = io
    }

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

/// Counters of /proc/self/io (the whole process, every thread).
///
/// `wchar` is the bytes handed to write system calls. Larder and the raw contestant use LMDB
/// without `MDB_WRITEMAP`, so a commit writes its dirty pages and its meta page with pwrite: wchar
/// is the bytes a commit writes, exactly (checked against strace on this machine). SQLite writes
/// its WAL frames and checkpoints with pwrite as well.
///
/// `write_bytes` is the page cache's accounting of dirtied pages. On this kernel (6.18, ext4 with
/// large folios) a small write into a large folio counts the whole folio: for LMDB's durable
/// one-op commits it reads ~8× wchar (333 KiB vs 42 KiB per commit for the C program), so it is
/// recorded for reference but not used for "bytes written per durable commit".
struct IOCounters: Sendable, Codable {
    var wcharBytes: UInt64
    var writeBytes: UInt64

    static func current() -> IOCounters {
        var counters = IOCounters(wcharBytes: 0, writeBytes: 0)
        guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return counters }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let value = UInt64(parts[1].trimmingCharacters(in: .whitespaces)) else { continue }
            if parts[0] == "wchar" { counters.wcharBytes = value }
            if parts[0] == "write_bytes" { counters.writeBytes = value }
        }
        return counters
    }

    static func - (after: IOCounters, before: IOCounters) -> IOCounters {
        IOCounters(wcharBytes: after.wcharBytes &- before.wcharBytes, writeBytes: after.writeBytes &- before.writeBytes)
    }
}

/// The disk's own flush latency right now: 4 KiB pwrite + fdatasync, `count` times, in `directory`.
/// Every durable per-commit figure is bounded by it, and other work on the machine moves it a lot.
struct FlushProbe: Sendable, Codable {
    var p50Microseconds: Double
    var p99Microseconds: Double

    static func run(in directory: String, count: Int = 100) -> FlushProbe {
        let path = directory + "/flush-probe"
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        guard fd >= 0 else { return FlushProbe(p50Microseconds: 0, p99Microseconds: 0) }
        defer {
            Glibc.close(fd)
            unlink(path)
        }
        let block = [UInt8](repeating: 0xA5, count: 4_096)
        var samples = Measurement(operations: count, elapsed: .zero, latenciesNanoseconds: [], unit: "fdatasync")
        for index in 0..<count {
            samples.latenciesNanoseconds.append(timed {
                _ = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(index % 16) * 4_096) }
                _ = fdatasync(fd)
            })
        }
        return FlushProbe(p50Microseconds: samples.percentileMicroseconds(0.5), p99Microseconds: samples.percentileMicroseconds(0.99))
    }
}

/// The 1-minute load average.
func loadAverage() -> Double {
    var load = [0.0, 0.0, 0.0]
    _ = getloadavg(&load, 3)
    return load[0]
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

/// SplitMix64: a seeded generator, so every contestant reads the same ids and scans the same ranges.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("larder-compare: \(message)\n".utf8))
    exit(2)
}

/// Allocated bytes of every file under `directory`.
func allocatedBytes(_ directory: String) -> Int {
    guard let names = FileManager.default.subpaths(atPath: directory) else { return 0 }
    var total = 0
    for name in names {
        var info = stat()
        if stat(directory + "/" + name, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG { total += Int(info.st_blocks) * 512 }
    }
    return total
}
