import Foundation
import Larder
#if canImport(Glibc)
import Glibc
#endif

// larder-compare: Larder, raw LMDB and SQLite side by side on the same workloads, in one process.
//
//   LARDER_BENCHMARKS=1 swift run -c release larder-compare [--quick] [--scale 10000,1000000]
//       [--ops 2000] [--concurrent-ops 10000] [--budget-seconds 10] [--writers 64] [--json FILE]
//
// The table goes to stdout (Markdown), progress to stderr.

struct Settings {
    var scales = [10_000, 1_000_000]
    /// Per-commit single-writer workload: at most this many operations…
    var singleOps = 2_000
    /// …and the concurrent one at most this many…
    var concurrentOps = 10_000
    /// …each within this time budget.
    var budget: Duration = .seconds(10)
    var writers = 64
    var batchCount = 1_000
    var pointReads = 100_000
    var scans = 100
    var scanLength = 1_000
    var jsonPath: String?
    var quick = false

    static func parse(_ arguments: [String]) -> Settings {
        var settings = Settings()
        var iterator = arguments.makeIterator()
        func value(_ flag: String) -> String {
            guard let value = iterator.next() else { fail("\(flag) needs a value") }
            return value
        }
        func integer(_ flag: String) -> Int {
            let text = value(flag)
            guard let number = Int(text.replacingOccurrences(of: "_", with: "")), number > 0 else { fail("\(flag) \(text) is not a positive integer") }
            return number
        }
        while let argument = iterator.next() {
            switch argument {
            case "--quick":
                settings.quick = true
                settings.scales = [2_000]
                settings.singleOps = 200
                settings.concurrentOps = 640
                settings.budget = .seconds(3)
                settings.pointReads = 10_000
                settings.scans = 10
            case "--scale":
                settings.scales = value("--scale").split(separator: ",").map { part in
                    guard let number = Int(part.replacingOccurrences(of: "_", with: "")), number >= 1_000 else {
                        fail("--scale takes record counts of at least 1000, comma-separated")
                    }
                    return number
                }
            case "--ops": settings.singleOps = integer("--ops")
            case "--concurrent-ops": settings.concurrentOps = integer("--concurrent-ops")
            case "--budget-seconds": settings.budget = .seconds(integer("--budget-seconds"))
            case "--writers": settings.writers = integer("--writers")
            case "--json": settings.jsonPath = value("--json")
            case "--help", "-h":
                print("usage: larder-compare [--quick] [--scale 10000,1000000] [--ops N] [--concurrent-ops N] [--budget-seconds S] [--writers N] [--json FILE]")
                exit(0)
            default:
                fail("unknown argument \(argument) (try --help)")
            }
        }
        return settings
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("larder-compare: \(message)\n".utf8))
    exit(2)
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

struct ResultRow: Encodable {
    let scale: Int
    let workload: String
    let contestant: String
    let unit: String
    let operations: Int
    let seconds: Double
    let opsPerSecond: Double
    let p50Microseconds: Double
    let p99Microseconds: Double
}

struct Report: Encodable {
    let command: String
    let date: String
    let cores: Int
    let settings: [String: String]
    var rows: [ResultRow] = []
    var notes: [String] = []
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

let settings = Settings.parse(Array(CommandLine.arguments.dropFirst()))
let root = FileManager.default.temporaryDirectory.appendingPathComponent("larder-compare-\(getpid())").path
try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: root) }

var report = Report(
    command: CommandLine.arguments.joined(separator: " "),
    date: ISO8601DateFormatter().string(from: Date()),
    cores: ProcessInfo.processInfo.activeProcessorCount,
    settings: ["scales": settings.scales.map(String.init).joined(separator: ","), "singleOps": "\(settings.singleOps)",
               "concurrentOps": "\(settings.concurrentOps)", "budgetSeconds": "\(settings.budget.seconds)",
               "writers": "\(settings.writers)", "batchCount": "\(settings.batchCount)",
               "pointReads": "\(settings.pointReads)", "scans": "\(settings.scans)x\(settings.scanLength)"])

/// The disk's own flush latency right now: 4 KiB written and fdatasync'ed `count` times. Every
/// durable per-commit figure is bounded by this, and other work on the machine moves it a lot.
func fsyncProbe(in directory: String, count: Int = 200) -> (p50Microseconds: Double, p99Microseconds: Double) {
    let path = directory + "/fsync-probe"
    let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
    guard fd >= 0 else { return (0, 0) }
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
    return (samples.percentileMicroseconds(0.5), samples.percentileMicroseconds(0.99))
}

@MainActor func noteFsync(_ when: String) {
    let probe = fsyncProbe(in: root)
    var load = [0.0, 0.0, 0.0]
    _ = getloadavg(&load, 3)
    report.notes.append("Disk flush \(when): 4 KiB pwrite + fdatasync p50 \(micros(probe.p50Microseconds)), p99 \(micros(probe.p99Microseconds)); load average \(String(format: "%.2f", load[0]))")
    progress(report.notes.last!)
}

enum Workload: String, CaseIterable {
    case bulk = "bulk import (1,000 per txn)"
    case single = "1 writer, 1 op per durable commit"
    case concurrent = "64 writers, each waits for durability"
    case pointRead = "point read (transfer by id)"
    case scan = "audit scan (1,000 records)"
    case verify = "chain verification (Larder: whole verify())"
    case verifyChainOnly = "chain only, public read API"
}

noteFsync("before the run")
for scale in settings.scales {
    var generator = SeededGenerator(state: UInt64(scale))
    let readIndexes = (0..<settings.pointReads).map { _ in Int.random(in: 0..<scale, using: &generator) }
    let scanLength = min(settings.scanLength, scale)
    let scanStarts = (0..<settings.scans).map { _ in UInt64.random(in: 1...UInt64(scale - scanLength + 1), using: &generator) }
    let singleRange = scale..<(scale + settings.singleOps)
    let concurrentRange = singleRange.upperBound..<(singleRange.upperBound + settings.concurrentOps)

    let makers: [(String, (String) throws -> any Contestant)] = [
        ("larder", { try LarderContestant(directory: $0) }),
        ("lmdb", { try LMDBContestant(directory: $0) }),
        ("sqlite", { try SQLiteContestant(directory: $0) }),
    ]
    for (folder, make) in makers {
        let directory = root + "/\(scale)-\(folder)"
        let contestant = try make(directory)
        func record(_ workload: Workload, _ measurement: Measurement) {
            report.rows.append(ResultRow(
                scale: scale, workload: workload.rawValue, contestant: contestant.name, unit: measurement.unit,
                operations: measurement.operations, seconds: measurement.seconds, opsPerSecond: measurement.operationsPerSecond,
                p50Microseconds: measurement.percentileMicroseconds(0.50), p99Microseconds: measurement.percentileMicroseconds(0.99)))
            progress("  \(contestant.name) \(workload.rawValue): \(Int(measurement.operationsPerSecond)) ops/s (\(measurement.operations) in \(String(format: "%.2f", measurement.seconds)) s)")
        }
        progress("\(contestant.name) at \(scale): bulk import of \(scale) transfers…")
        record(.bulk, try contestant.bulkImport(0..<scale, batchCount: settings.batchCount))
        report.notes.append("\(contestant.name) at \(scale): \(allocatedBytes(directory) / scale) bytes on disk per imported transfer (\(allocatedBytes(directory) >> 20) MiB)")
        progress("\(contestant.name) at \(scale): \(settings.pointReads) point reads, \(settings.scans) scans, verify…")
        record(.pointRead, try contestant.pointReads(readIndexes))
        record(.scan, try contestant.auditScans(scanStarts, length: scanLength))
        record(.verify, try contestant.verifyChain())
        if let larder = contestant as? LarderContestant {
            record(.verifyChainOnly, try larder.verifyChainOnly())
        }
        progress("\(contestant.name) at \(scale): durable per-commit writes (≤ \(settings.singleOps) ops / \(Int(settings.budget.seconds)) s)…")
        record(.single, try contestant.singleWrites(singleRange, budget: settings.budget))
        let before = (contestant as? LarderContestant)?.store.metrics.writer
        progress("\(contestant.name) at \(scale): \(settings.writers) concurrent writers (≤ \(settings.concurrentOps) ops / \(Int(settings.budget.seconds)) s)…")
        record(.concurrent, try await contestant.concurrentWrites(concurrentRange, writers: settings.writers, budget: settings.budget))
        if let larder = contestant as? LarderContestant, let before {
            let after = larder.store.metrics.writer
            let commits = after.commits - before.commits
            let requests = after.requestsCommitted - before.requestsCommitted
            report.notes.append("Larder at \(scale), \(settings.writers) writers: \(requests) writes in \(commits) commits (group commit: \(String(format: "%.1f", Double(requests) / Double(max(commits, 1)))) writes per commit)")
        }
        contestant.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

noteFsync("after the run")

// MARK: The table

func rate(_ value: Double) -> String {
    switch value {
    case 1_000_000...: String(format: "%.2fM", value / 1_000_000)
    case 10_000...: String(format: "%.0fk", value / 1_000)
    case 1_000...: String(format: "%.1fk", value / 1_000)
    default: String(format: "%.0f", value)
    }
}

func micros(_ value: Double) -> String {
    switch value {
    case 10_000...: String(format: "%.1f ms", value / 1_000)
    case 1_000...: String(format: "%.2f ms", value / 1_000)
    default: String(format: "%.1f µs", value)
    }
}

func cell(_ row: ResultRow?) -> String {
    guard let row else { return "–" }
    if row.unit.hasPrefix("whole") { return "\(rate(row.opsPerSecond)) rec/s (\(String(format: "%.2f", row.seconds)) s)" }
    return "\(rate(row.opsPerSecond))/s · \(micros(row.p50Microseconds)) · \(micros(row.p99Microseconds))"
}

func ratio(_ a: ResultRow?, _ b: ResultRow?) -> String {
    guard let a, let b, b.opsPerSecond > 0 else { return "–" }
    return String(format: "%.2f×", a.opsPerSecond / b.opsPerSecond)
}

var table = ""
for scale in settings.scales {
    table += "\n### \(scale.formatted()) records\n\n"
    table += "Per cell: throughput · p50 · p99 latency (per op; per batch for bulk, per scan for scans). Ratios are Larder ÷ other throughput (below 1: Larder is slower).\n\n"
    table += "| workload | Larder | raw LMDB | SQLite WAL | Larder/LMDB | Larder/SQLite |\n|---|---|---|---|---|---|\n"
    for workload in Workload.allCases {
        let rows = report.rows.filter { $0.scale == scale && $0.workload == workload.rawValue }
        let larder = rows.first { $0.contestant == "Larder" }
        let lmdb = rows.first { $0.contestant == "raw LMDB" }
        let sqlite = rows.first { $0.contestant == "SQLite WAL" }
        if larder == nil && lmdb == nil && sqlite == nil { continue }
        var name = workload.rawValue
        if workload == .single || workload == .concurrent {
            let cap = workload == .single ? settings.singleOps : settings.concurrentOps
            name += " (≤ \(cap.formatted()) ops or \(Int(settings.budget.seconds)) s, on the \(scale.formatted())-record store)"
        }
        if workload == .verifyChainOnly {
            // Larder's chain-only walk against the raw contestants' verification, which is chain only.
            let raw = report.rows.filter { $0.scale == scale && $0.workload == Workload.verify.rawValue }
            let lmdbChain = raw.first { $0.contestant == "raw LMDB" }
            let sqliteChain = raw.first { $0.contestant == "SQLite WAL" }
            table += "| \(name) | \(cell(larder)) | (as above) | (as above) | \(ratio(larder, lmdbChain)) | \(ratio(larder, sqliteChain)) |\n"
        } else {
            table += "| \(name) | \(cell(larder)) | \(cell(lmdb)) | \(cell(sqlite)) | \(ratio(larder, lmdb)) | \(ratio(larder, sqlite)) |\n"
        }
    }
}
table += "\nNotes:\n"
for note in report.notes { table += "- \(note)\n" }
print(table)

if let path = settings.jsonPath {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(report).write(to: URL(fileURLWithPath: path))
    progress("wrote \(path)")
}
