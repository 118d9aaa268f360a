import Foundation

// The Markdown the harness prints: per scale, the throughput table, the bytes table, the flush
// probes around each phase and the instruction counts; then the targets and raw Swift vs C.

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

func bytes(_ value: Double) -> String {
    switch value {
    case 1_048_576.0...: String(format: "%.1f MiB", value / 1_048_576)
    case 10_240.0...: String(format: "%.0f KiB", value / 1_024)
    case 1_024.0...: String(format: "%.1f KiB", value / 1_024)
    default: String(format: "%.0f B", value)
    }
}

func count(_ value: Double) -> String {
    switch value {
    case 1_000_000...: String(format: "%.2fM", value / 1_000_000)
    case 10_000...: String(format: "%.1fk", value / 1_000)
    default: String(format: "%.0f", value)
    }
}

func ratioText(_ value: Double?) -> String {
    guard let value else { return "–" }
    return String(format: value >= 10 ? "%.1f×" : "%.2f×", value)
}

func spread(_ row: TargetRow) -> String {
    guard let low = row.ratioMin, let high = row.ratioMax, low != high else { return "" }
    return " (\(ratioText(low))–\(ratioText(high)))"
}

/// Throughput · p50 · p99, with the spread over repeats.
func cell(_ row: ResultRow) -> String {
    let spread = row.repeats > 1 ? " (\(rate(row.opsPerSecondMin))–\(rate(row.opsPerSecondMax)))" : ""
    if row.unit.hasPrefix("whole") { return "\(rate(row.opsPerSecond)) rec/s\(spread) (\(String(format: "%.2f", row.seconds)) s)" }
    return "\(rate(row.opsPerSecond))/s\(spread) · \(micros(row.p50Microseconds)) · \(micros(row.p99Microseconds))"
}

@MainActor func renderTables(_ report: Report) -> String {
    let names = report.contestants
    var out = ""
    for scale in settings.scales where settings.timing {
        let rowsHere = report.rows.filter { $0.scale == scale }
        func row(_ workload: Workload, _ name: String) -> ResultRow? {
            rowsHere.first { $0.workload == workload.rawValue && $0.contestant == name }
        }
        out += "\n### \(scale.formatted()) records\n\n"
        out += "Per cell: throughput\(settings.repeats > 1 ? " (median of \(settings.repeats) rounds, min–max in brackets)" : "") · p50 · p99 latency (per op; per batch for bulk, per scan for scans). "
        out += "Larder ÷ other is throughput (below 1: Larder is slower); Larder ÷ SQLite uses the faster SQLite variant of the row.\n\n"
        out += "| workload | " + names.joined(separator: " | ") + " | Larder ÷ raw LMDB | Larder ÷ SQLite |\n"
        out += "|---|" + String(repeating: "---|", count: names.count + 2) + "\n"
        for workload in Workload.allCases {
            var label = workload.rawValue
            if workload == .single || workload == .concurrent || workload == .singleNoSync {
                let cap = workload == .single ? settings.singleOps : workload == .concurrent ? settings.concurrentOps : settings.noSyncOps
                label += " (≤ \(cap.formatted()) ops or \(Int(settings.budget.seconds)) s)"
            }
            var cells: [String] = []
            for name in names {
                if let found = row(workload, name) {
                    cells.append(cell(found))
                } else if name == larderName && (workload == .pointReadZeroCopy || workload == .scanViews) {
                    cells.append("n/a (not implemented yet)")
                } else if workload == .verifyChainOnly && name != larderName {
                    cells.append("(chain verification row)")
                } else {
                    cells.append("–")
                }
            }
            let larder = row(workload, larderName)
            let raw = workload == .verifyChainOnly ? row(.verify, rawName) : row(workload, rawName)
            let sqliteWorkload = workload == .verifyChainOnly ? Workload.verify : workload
            let sqlite = [ContestantKind.sqlite, .sqliteGroup].compactMap { row(sqliteWorkload, $0.displayName) }.max { $0.opsPerSecond < $1.opsPerSecond }
            func ratio(_ other: ResultRow?) -> String {
                guard let larder, let other, other.opsPerSecond > 0 else { return "–" }
                return ratioText(larder.opsPerSecond / other.opsPerSecond)
            }
            out += "| \(label) | " + cells.joined(separator: " | ") + " | \(ratio(raw)) | \(ratio(sqlite)) |\n"
        }

        out += "\nBytes (write phases): allocated bytes on disk per transfer after the bulk import; bytes handed to write system calls (`wchar`) per commit; commits in the phase; page-cache `write_bytes` per commit (inflated by large folios, for reference).\n\n"
        out += "| contestant | on disk per transfer | bulk: written per commit (1,000 transfers) | 1 writer durable: written per commit | 64 writers: commits, written per commit | no sync: written per commit | 1 writer durable: `write_bytes` per commit |\n|---|---|---|---|---|---|---|\n"
        for name in names {
            let bulk = row(.bulk, name), single = row(.single, name), concurrent = row(.concurrent, name), noSync = row(.singleNoSync, name)
            guard bulk != nil || single != nil else { continue }
            let concurrentText = concurrent.map { row in
                "\(row.commits.map { "\($0) commits (\(String(format: "%.1f", Double(row.operations) / Double(max($0, 1)))) per commit)" } ?? "–"), \(row.bytesWrittenPerCommit.map(bytes) ?? "–")"
            } ?? "–"
            out += "| \(name) | \(bulk?.bytesOnDiskPerTransfer.map(bytes) ?? "–") | \(bulk?.bytesWrittenPerCommit.map(bytes) ?? "–") | \(single?.bytesWrittenPerCommit.map(bytes) ?? "–") | \(concurrentText) | \(noSync?.bytesWrittenPerCommit.map(bytes) ?? "–") | \(single?.pageCacheWriteBytesPerCommit.map(bytes) ?? "–") |\n"
        }

        out += "\nDisk flush probe around each phase (4 KiB pwrite + fdatasync × \(settings.probeCount), median over rounds): p50 / p99 before → after; load average (1 min) at the phase's start, min–max over rounds.\n\n"
        out += "| workload | " + names.joined(separator: " | ") + " |\n|---|" + String(repeating: "---|", count: names.count) + "\n"
        for workload in Workload.allCases {
            let cells = names.map { name -> String in
                guard let found = row(workload, name) else { return "–" }
                let load = found.loadAverageMin == found.loadAverageMax ? String(format: "%.1f", found.loadAverageMin)
                    : String(format: "%.1f–%.1f", found.loadAverageMin, found.loadAverageMax)
                return "\(micros(found.flushBeforeP50Microseconds)) / \(micros(found.flushBeforeP99Microseconds)) → \(micros(found.flushAfterP50Microseconds)) / \(micros(found.flushAfterP99Microseconds)); load \(load)"
            }
            out += "| \(workload.rawValue) | " + cells.joined(separator: " | ") + " |\n"
        }
    }

    let instructionScales = Set(report.instructions.map(\.scale)).sorted()
    for scale in instructionScales {
        let here = report.instructions.filter { $0.scale == scale }
        let instructionNames = names.filter { name in here.contains { $0.contestant == name } }
        out += "\n### Instructions per op at \(scale.formatted()) records (callgrind, all threads)\n\n"
        out += "| workload | " + instructionNames.joined(separator: " | ") + " | Larder ÷ raw LMDB |\n|---|" + String(repeating: "---|", count: instructionNames.count + 1) + "\n"
        for workload in Workload.allCases {
            let found = instructionNames.map { name in here.first { $0.workload == workload.rawValue && $0.contestant == name } }
            guard found.contains(where: { $0 != nil }) else { continue }
            let cells = found.map { $0.map { "\(count($0.instructionsPerOp)) (\($0.operations.formatted()) ops)" } ?? "–" }
            let larder = here.first { $0.workload == workload.rawValue && $0.contestant == larderName }
            let raw = here.first { $0.workload == (workload == .verifyChainOnly ? Workload.verify : workload).rawValue && $0.contestant == rawName }
            let ratio = larder.flatMap { l in raw.map { r in ratioText(l.instructionsPerOp / r.instructionsPerOp) } } ?? "–"
            out += "| \(workload.rawValue) | " + cells.joined(separator: " | ") + " | \(ratio) |\n"
        }
    }

    if !report.targets.isEmpty {
        out += "\n### Issue 13 targets (Larder ÷ fair raw LMDB, same run; ratio = median of per-round ratios, min–max in brackets)\n\n"
        out += "| scale | target | measure | numerator | denominator | ratio | target | met? |\n|---|---|---|---|---|---|---|---|\n"
        for row in report.targets {
            let status = row.met.map { $0 ? "met" : "missed" } ?? (row.note ?? "–")
            let numbers = (row.numerator.map(targetNumber(row)) ?? "–", row.denominator.map(targetNumber(row)) ?? "–")
            let extra = row.met != nil && row.note != nil ? " (\(row.note!))" : ""
            out += "| \(row.scale.map { $0.formatted() } ?? "–") | \(row.name) | \(row.measure) | \(numbers.0) | \(numbers.1) | \(ratioText(row.ratio))\(spread(row))\(extra) | \(row.target) | \(status) |\n"
        }
    }
    if !report.treeCost.isEmpty {
        out += "\n### Merkle tree cost (Larder ÷ Larder without its Merkle tree, same run; ratio = median of per-round ratios, min–max in brackets)\n\n"
        out += "| scale | workload | measure | with the tree | without | ratio | target | met? |\n|---|---|---|---|---|---|---|---|\n"
        for row in report.treeCost {
            let isInstructions = row.name.hasSuffix("(instructions per op)")
            func show(_ value: Double) -> String { isInstructions ? count(value) : "\(rate(value))/s" }
            out += "| \(row.scale.map { $0.formatted() } ?? "–") | \(row.name) | \(row.measure) | \(row.numerator.map(show) ?? "–") | \(row.denominator.map(show) ?? "–") | \(ratioText(row.ratio))\(spread(row)) | \(row.target) | \(row.met.map { $0 ? "met" : "missed" } ?? "–") |\n"
        }
    }
    if !report.rawVersusC.isEmpty {
        out += "\n### Raw Swift vs C (the fair raw contestant's bound: within 1.5× of C)\n\n"
        out += "| scale | comparison | raw LMDB (Swift) | C LMDB | ratio | target | met? |\n|---|---|---|---|---|---|---|\n"
        for row in report.rawVersusC {
            let isInstructions = row.name.hasSuffix("(instructions per op)")
            // Timing rows divide C by Swift throughput; show each side's own throughput.
            let swift = isInstructions ? row.numerator.map(count) : row.denominator.map { "\(rate($0))/s" }
            let c = isInstructions ? row.denominator.map(count) : row.numerator.map { "\(rate($0))/s" }
            out += "| \(row.scale.map { $0.formatted() } ?? "–") | \(row.name) | \(swift ?? "–") | \(c ?? "–") | \(ratioText(row.ratio))\(spread(row)) | \(row.target) | \(row.met.map { $0 ? "met" : "missed" } ?? "–") |\n"
        }
    }
    out += "\nNotes:\n"
    for note in report.notes { out += "- \(note)\n" }
    return out
}

func targetNumber(_ row: TargetRow) -> (Double) -> String {
    { value in
        if row.name.hasPrefix("bytes") { return bytes(value) }
        if row.name.hasPrefix("cost per op") && row.name.hasSuffix("(instructions)") { return count(value) }
        if row.name.hasPrefix("cost per op") { return micros(value * 1_000_000) + "/op" }
        return rate(value) + "/s"
    }
}
