import Foundation
#if canImport(Glibc)
import Glibc
#endif

// larder-compare: Larder, raw LMDB (Swift, and the same puts in C) and SQLite side by side on the
// same workloads. See BENCHMARKS.md ("Fair harness") and `--help`.
//
//   LARDER_BENCHMARKS=1 swift build -c release --product larder-compare
//   bash Benchmarks/Compare/c/build.sh
//   .build/release/larder-compare [--repeat 3] [--scale 10000,1000000] [--instructions] [--json FILE]
//
// The table goes to stdout (Markdown), progress to stderr. The main thread never runs Swift
// concurrency (only Larder's 64-writer phase does, from a detached task), so that `--phase` runs
// stay usable under valgrind, which crashes when libdispatch starts the cooperative pool.

let settings = Settings.parse(Array(CommandLine.arguments.dropFirst()))

if settings.checkRows {
    exit(checkRows(settings) ? 0 : 1)
}
if let phases = settings.phases {
    runPhases(phases, settings: settings)
    exit(0)
}

let root = FileManager.default.temporaryDirectory.appendingPathComponent("larder-compare-\(getpid())").path
try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: root) }

var kinds = ContestantKind.allCases.filter { settings.contestants?.contains($0.rawValue) ?? $0.runsByDefault }
if kinds.contains(.cLMDB) && settings.resolvedCBinary == nil {
    if settings.contestants != nil { fail("c-lmdb needs bash Benchmarks/Compare/c/build.sh (or --c-binary PATH)") }
    progress("no C program at \(settings.cBinary ?? CContestant.defaultBinary): the C LMDB contestant is left out (bash Benchmarks/Compare/c/build.sh)")
    kinds.removeAll { $0 == .cLMDB }
}

var results = Results()
var notes: [String] = []
let startedAt = Date()

@MainActor func note(_ text: String) {
    notes.append(text)
    progress(text)
}

let runFlushBefore = FlushProbe.run(in: root, count: settings.probeCount)
note("Disk flush before the run: 4 KiB pwrite + fdatasync p50 \(micros(runFlushBefore.p50Microseconds)), p99 \(micros(runFlushBefore.p99Microseconds)); load average \(String(format: "%.2f", loadAverage()))")

if settings.timing {
    for scale in settings.scales {
        let plan = makePlan(scale: scale, settings: settings)
        for round in 0..<settings.repeats {
            try runRound(plan, round: round)
        }
    }
}

if settings.instructions {
    results.instructions = runInstructions(settings: settings, kinds: kinds)
}

let runFlushAfter = FlushProbe.run(in: root, count: settings.probeCount)
note("Disk flush after the run: 4 KiB pwrite + fdatasync p50 \(micros(runFlushAfter.p50Microseconds)), p99 \(micros(runFlushAfter.p99Microseconds)); load average \(String(format: "%.2f", loadAverage()))")

let report = buildReport()
print(renderTables(report))
if let path = settings.jsonPath {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(report).write(to: URL(fileURLWithPath: path))
    progress("wrote \(path)")
}

// MARK: Rounds

/// The same transfers, ids and ranges for every contestant at one scale. `bulkExtra` moves the
/// write ranges up, past the extra bulk import of `--phase` runs.
func makePlan(scale: Int, settings: Settings, bulkExtra: Int = 0) -> Plan {
    var generator = SeededGenerator(state: UInt64(scale))
    let readIndexes = (0..<settings.pointReads).map { _ in Int.random(in: 0..<scale, using: &generator) }
    let scanLength = min(settings.scanLength, scale)
    let scanStarts = (0..<settings.scans).map { _ in UInt64.random(in: 1...UInt64(scale - scanLength + 1), using: &generator) }
    let base = scale + bulkExtra
    let singleRange = base..<(base + settings.singleOps)
    let concurrentRange = singleRange.upperBound..<(singleRange.upperBound + settings.concurrentOps)
    let noSyncRange = concurrentRange.upperBound..<(concurrentRange.upperBound + settings.noSyncOps)
    return Plan(scale: scale, bulkRange: 0..<scale, batchCount: settings.batchCount, singleRange: singleRange,
                concurrentRange: concurrentRange, noSyncRange: noSyncRange, budget: settings.budget, writers: settings.writers,
                readIndexes: readIndexes, scanStarts: scanStarts, scanLength: scanLength)
}

/// One round at one scale: a fresh store per contestant, then every workload in order, the
/// contestants one after another within each workload (A, B, C, A, B, C…), each phase between
/// two disk-flush probes.
@MainActor func runRound(_ plan: Plan, round: Int) throws {
    let scale = plan.scale
    progress("scale \(scale), round \(round + 1) of \(settings.repeats)")
    let contestants: [(kind: ContestantKind, contestant: any Contestant)] = try kinds.map { kind in
        (kind, try kind.make(directory: root + "/\(scale)-\(round)-\(kind.rawValue)", settings: settings))
    }
    defer {
        for (_, contestant) in contestants {
            contestant.close()
            try? FileManager.default.removeItem(atPath: contestant.directory)
        }
    }
    if round == 0, let sqlite = contestants.lazy.compactMap({ $0.contestant as? SQLiteContestant }).first {
        if scale == settings.scales.first {
            note("SQLite: PRAGMA mmap_size=\(SQLiteContestant.mmapSizeBytesRequested) requested, \(sqlite.mmapSizeBytes) applied (SQLite caps it at its compile-time maximum)")
        }
    }
    for workload in Workload.allCases where workload == .bulk || (settings.workloads?.contains(workload) ?? true) {
        for (_, contestant) in contestants where contestant.support(workload) == .measured {
            try contestant.prepare(for: workload)
            let load = loadAverage()
            let flushBefore = FlushProbe.run(in: root, count: settings.probeCount)
            let ioBefore = IOCounters.current()
            var measurement = try contestant.run(workload, plan)
            let ioAfter = IOCounters.current()
            if measurement.io == nil { measurement.io = ioAfter - ioBefore }
            let flushAfter = FlushProbe.run(in: root, count: settings.probeCount)
            let onDisk = workload == .bulk ? Double(allocatedBytes(contestant.directory)) / Double(plan.bulkRange.count) : nil
            let run = RunRecord(
                round: round, operations: measurement.operations, seconds: measurement.seconds,
                opsPerSecond: measurement.operationsPerSecond, p50Microseconds: measurement.percentileMicroseconds(0.50),
                p99Microseconds: measurement.percentileMicroseconds(0.99), unit: measurement.unit, commits: measurement.commits,
                wcharBytes: workload.writes ? measurement.io?.wcharBytes : nil,
                pageCacheWriteBytes: workload.writes ? measurement.io?.writeBytes : nil,
                flushBefore: flushBefore, flushAfter: flushAfter, loadAverage: load, bytesOnDiskPerTransfer: onDisk)
            results.add(run, scale: scale, workload: workload, contestant: contestant.name)
            var line = "  \(contestant.name) · \(workload.rawValue): \(rate(run.opsPerSecond))/s (\(run.operations) in \(String(format: "%.2f", run.seconds)) s)"
            if let perCommit = run.bytesWrittenPerCommit { line += ", \(Int(perCommit)) B written per commit" }
            if let onDisk { line += ", \(Int(onDisk)) B on disk per transfer" }
            line += "; flush p50 \(micros(flushBefore.p50Microseconds)) → \(micros(flushAfter.p50Microseconds)), load \(String(format: "%.1f", load))"
            progress(line)
        }
    }
}

// MARK: The report

struct Report: Encodable {
    let command: String
    let date: String
    let finished: String
    let cores: Int
    let settings: [String: String]
    let rows: [ResultRow]
    let targets: [TargetRow]
    let rawVersusC: [TargetRow]
    let instructions: [InstructionRow]
    let treeCost: [TargetRow]
    let notes: [String]
    let flushBeforeRun: FlushProbe
    let flushAfterRun: FlushProbe
    let contestants: [String]
}

@MainActor func buildReport() -> Report {
    let names = kinds.map(\.displayName)
    var rows: [ResultRow] = []
    for scale in settings.scales {
        for workload in Workload.allCases {
            for name in names {
                if let row = results.row(scale, workload, name) { rows.append(row) }
            }
        }
    }
    return Report(
        command: CommandLine.arguments.joined(separator: " "),
        date: ISO8601DateFormatter().string(from: startedAt),
        finished: ISO8601DateFormatter().string(from: Date()),
        cores: ProcessInfo.processInfo.activeProcessorCount,
        settings: ["scales": settings.scales.map(String.init).joined(separator: ","), "singleOps": "\(settings.singleOps)",
                   "noSyncOps": "\(settings.noSyncOps)", "concurrentOps": "\(settings.concurrentOps)",
                   "budgetSeconds": "\(settings.budget.seconds)", "writers": "\(settings.writers)",
                   "batchCount": "\(settings.batchCount)", "pointReads": "\(settings.pointReads)",
                   "scans": "\(settings.scans)x\(settings.scanLength)", "repeats": "\(settings.repeats)",
                   "flushProbeCount": "\(settings.probeCount)", "timing": "\(settings.timing)",
                   "instructions": "\(settings.instructions)"],
        rows: rows, targets: targetRows(), rawVersusC: rawVersusCRows(), instructions: results.instructions,
        treeCost: treeCostRows(), notes: notes,
        flushBeforeRun: runFlushBefore, flushAfterRun: runFlushAfter, contestants: names)
}

/// A throughput ratio target between two (workload, contestant) cells, paired per round.
@MainActor func ratioTarget(_ scale: Int, name: String, _ a: (Workload, String), _ b: (Workload, String),
                            target: Double, atLeast: Bool, note: String? = nil,
                            value: (RunRecord) -> Double? = { $0.opsPerSecond },
                            measure: String = "Larder ÷ raw LMDB throughput") -> TargetRow {
    let ratios = results.pairedRatios(scale, a, b, value)
    let left = results.runs(scale, a.0, a.1).compactMap(value), right = results.runs(scale, b.0, b.1).compactMap(value)
    let ratio = medianOrNil(ratios)
    return TargetRow(scale: scale, name: name, measure: measure, numerator: medianOrNil(left), denominator: medianOrNil(right),
                     ratio: ratio, ratioMin: ratios.min(), ratioMax: ratios.max(),
                     target: "\(atLeast ? "≥" : "≤") \(String(format: "%.2f", target))×",
                     met: ratio.map { atLeast ? $0 >= target : $0 <= target }, note: note)
}

@MainActor func targetRows() -> [TargetRow] {
    var rows: [TargetRow] = []
    for scale in settings.scales where settings.timing {
        rows.append(ratioTarget(scale, name: "1 writer durable", (.single, larderName), (.single, rawName), target: 0.8, atLeast: true))
        rows.append(ratioTarget(scale, name: "64 writers", (.concurrent, larderName), (.concurrent, rawName), target: 0.5, atLeast: true))
        rows.append(ratioTarget(scale, name: "bulk import", (.bulk, larderName), (.bulk, rawName), target: 0.25, atLeast: true))
        rows.append(ratioTarget(scale, name: "point read (decoded)", (.pointRead, larderName), (.pointRead, rawName), target: 0.5, atLeast: true))
        rows.append(ratioTarget(scale, name: "audit scan (views)", (.scanViews, larderName), (.scanViews, rawName), target: 0.5, atLeast: true))
        rows.append(ratioTarget(scale, name: "chain only", (.verifyChainOnly, larderName), (.verify, rawName), target: 0.7, atLeast: true,
                                measure: "Larder chain-only walk ÷ raw LMDB chain verification, records/s"))
        rows.append(ratioTarget(scale, name: "whole verify", (.verify, larderName), (.verify, rawName), target: 0.3, atLeast: true,
                                measure: "Larder verify() ÷ raw LMDB chain verification, records/s"))
        let verifyRate = results.runs(scale, .verify, larderName).map(\.opsPerSecond)
        if let rate = medianOrNil(verifyRate) {
            rows.append(TargetRow(scale: scale, name: "whole verify rate", measure: "Larder verify() records/s ÷ 300k",
                                  numerator: rate, denominator: 300_000, ratio: rate / 300_000,
                                  ratioMin: verifyRate.min()! / 300_000, ratioMax: verifyRate.max()! / 300_000,
                                  target: "≥ 1.00× (300k records/s)", met: rate >= 300_000, note: nil))
        }
        rows.append(ratioTarget(scale, name: "bytes on disk per transfer", (.bulk, larderName), (.bulk, rawName), target: 1.3, atLeast: false,
                                value: { $0.bytesOnDiskPerTransfer }, measure: "Larder ÷ raw LMDB allocated bytes per imported transfer"))
        rows.append(ratioTarget(scale, name: "bytes written per durable commit", (.single, larderName), (.single, rawName), target: 1.5,
                                atLeast: false, value: { $0.bytesWrittenPerCommit },
                                measure: "Larder ÷ raw LMDB bytes handed to write syscalls per 1-writer durable commit"))
    }
    // Cost per op from the smallest to the largest scale: time per op, Larder's growth (the
    // target) with raw LMDB's beside it; then the same in instructions, which the machine's load
    // does not move.
    if settings.timing, let small = settings.scales.min(), let large = settings.scales.max(), small != large {
        for workload in [Workload.bulk, .single, .singleNoSync, .pointRead, .scan] {
            let larderSmall = results.runs(small, workload, larderName).map(\.opsPerSecond)
            let larderLarge = results.runs(large, workload, larderName).map(\.opsPerSecond)
            guard let s = medianOrNil(larderSmall), let l = medianOrNil(larderLarge), l > 0 else { continue }
            let growth = s / l
            var note: String? = nil
            if let rs = medianOrNil(results.runs(small, workload, rawName).map(\.opsPerSecond)),
               let rl = medianOrNil(results.runs(large, workload, rawName).map(\.opsPerSecond)), rl > 0 {
                note = "raw LMDB: \(String(format: "%.2f", rs / rl))×"
            }
            rows.append(TargetRow(scale: nil, name: "cost per op from \(small.formatted()) to \(large.formatted()): \(workload.rawValue)",
                                  measure: "Larder time per op at \(large.formatted()) ÷ at \(small.formatted())",
                                  numerator: 1 / l, denominator: 1 / s, ratio: growth,
                                  ratioMin: larderSmall.min()! / larderLarge.max()!, ratioMax: larderSmall.max()! / larderLarge.min()!,
                                  target: "≤ 1.50×", met: growth <= 1.5, note: note))
        }
    }
    let instructionScales = Set(results.instructions.map(\.scale))
    if let small = instructionScales.min(), let large = instructionScales.max(), small != large {
        for workload in [Workload.bulk, .single, .singleNoSync, .pointRead, .scan] {
            guard let s = results.instructionsPerOp(small, workload, larderName),
                  let l = results.instructionsPerOp(large, workload, larderName), s > 0 else { continue }
            var note: String? = nil
            if let rs = results.instructionsPerOp(small, workload, rawName), let rl = results.instructionsPerOp(large, workload, rawName), rs > 0 {
                note = "raw LMDB: \(String(format: "%.2f", rl / rs))×"
            }
            rows.append(TargetRow(scale: nil, name: "cost per op from \(small.formatted()) to \(large.formatted()): \(workload.rawValue) (instructions)",
                                  measure: "Larder instructions per op at \(large.formatted()) ÷ at \(small.formatted()) (callgrind)",
                                  numerator: l, denominator: s, ratio: l / s, ratioMin: nil, ratioMax: nil,
                                  target: "≤ 1.50×", met: l / s <= 1.5, note: note))
        }
    }
    return rows
}

/// What the Merkle tree costs writes (issue 14: at most 10 % on the 1-writer and 64-writer
/// workloads): Larder ÷ Larder without its tree, paired per round, and in instructions per op.
@MainActor func treeCostRows() -> [TargetRow] {
    guard kinds.contains(.larder), kinds.contains(.larderNoTree) else { return [] }
    var rows: [TargetRow] = []
    let measure = "Larder ÷ Larder without its Merkle tree throughput"
    for scale in settings.scales where settings.timing {
        for (workload, name) in [(Workload.single, "1 writer durable"), (.concurrent, "64 writers"), (.singleNoSync, "1 writer no sync (CPU)"),
                                 (.bulk, "bulk import")] {
            let row = ratioTarget(scale, name: name, (workload, larderName), (workload, larderNoTreeName), target: 0.9, atLeast: true,
                                  measure: measure)
            if row.ratio != nil { rows.append(row) }
        }
    }
    for scale in Set(results.instructions.map(\.scale)).sorted() {
        for workload in [Workload.single, .singleNoSync, .bulk] {
            guard let with = results.instructionsPerOp(scale, workload, larderName),
                  let without = results.instructionsPerOp(scale, workload, larderNoTreeName), without > 0 else { continue }
            rows.append(TargetRow(scale: scale, name: "\(workload.rawValue) (instructions per op)",
                                  measure: "Larder ÷ Larder without its Merkle tree instructions per op (callgrind)",
                                  numerator: with, denominator: without, ratio: with / without, ratioMin: nil, ratioMax: nil,
                                  target: "≤ 1.10×", met: with / without <= 1.1, note: nil))
        }
    }
    return rows
}

/// The Swift raw contestant against the C program: time per op (C throughput ÷ raw Swift
/// throughput) must stay within 1.5×; instructions per op beside it when measured.
@MainActor func rawVersusCRows() -> [TargetRow] {
    var rows: [TargetRow] = []
    let scales = Set(settings.scales + (settings.instructions ? (settings.instructionScales ?? [settings.scales.min()!]) : [])).sorted()
    for scale in scales {
        for workload in [Workload.bulk, .single, .singleNoSync] {
            let hasTiming = !results.runs(scale, workload, cName).isEmpty && !results.runs(scale, workload, rawName).isEmpty
            let instructions = (results.instructionsPerOp(scale, workload, rawName), results.instructionsPerOp(scale, workload, cName))
            if hasTiming {
                let timing = ratioTarget(scale, name: "raw Swift vs C: \(workload.rawValue) (time per op)", (workload, cName), (workload, rawName),
                                         target: 1.5, atLeast: false, measure: "C LMDB ÷ raw LMDB throughput (raw Swift time per op ÷ C's)")
                rows.append(timing)
            }
            if let swift = instructions.0, let c = instructions.1, c > 0 {
                rows.append(TargetRow(scale: scale, name: "raw Swift vs C: \(workload.rawValue) (instructions per op)",
                                      measure: "raw LMDB ÷ C LMDB instructions per op (callgrind)", numerator: swift, denominator: c,
                                      ratio: swift / c, ratioMin: nil, ratioMax: nil, target: "≤ 1.50×", met: swift / c <= 1.5, note: nil))
            }
        }
    }
    return rows
}
