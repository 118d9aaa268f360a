import Foundation

/// One run of one workload by one contestant (one round of `--repeat`).
struct RunRecord: Codable, Sendable {
    let round: Int
    let operations: Int
    let seconds: Double
    let opsPerSecond: Double
    let p50Microseconds: Double
    let p99Microseconds: Double
    let unit: String
    let commits: Int?
    /// Bytes handed to write system calls during the phase (/proc/self/io `wchar`).
    let wcharBytes: UInt64?
    /// The page cache's dirtied bytes during the phase (/proc/self/io `write_bytes`), for reference.
    let pageCacheWriteBytes: UInt64?
    let flushBefore: FlushProbe
    let flushAfter: FlushProbe
    let loadAverage: Double
    /// After a bulk import: allocated bytes of the store's files ÷ transfers.
    let bytesOnDiskPerTransfer: Double?

    var bytesWrittenPerCommit: Double? {
        guard let commits, commits > 0, let wcharBytes else { return nil }
        return Double(wcharBytes) / Double(commits)
    }

    var pageCacheWriteBytesPerCommit: Double? {
        guard let commits, commits > 0, let pageCacheWriteBytes else { return nil }
        return Double(pageCacheWriteBytes) / Double(commits)
    }
}

/// Every run of one (scale, workload, contestant), and the row the JSON and the table show.
struct ResultRow: Encodable, Sendable {
    let scale: Int
    let workload: String
    let contestant: String
    let unit: String
    /// Medians over the runs (the run's own p50 and p99, then their median).
    let operations: Int
    let seconds: Double
    let opsPerSecond: Double
    let p50Microseconds: Double
    let p99Microseconds: Double
    let repeats: Int
    let opsPerSecondMin: Double
    let opsPerSecondMax: Double
    let commits: Int?
    let bytesWrittenPerCommit: Double?
    let pageCacheWriteBytesPerCommit: Double?
    let bytesOnDiskPerTransfer: Double?
    /// From a callgrind run of the phase (`--instructions`), when measured.
    var instructionsPerOp: Double?
    let flushBeforeP50Microseconds: Double
    let flushBeforeP99Microseconds: Double
    let flushAfterP50Microseconds: Double
    let flushAfterP99Microseconds: Double
    let loadAverageMin: Double
    let loadAverageMax: Double
    let runs: [RunRecord]

    init(scale: Int, workload: Workload, contestant: String, runs: [RunRecord]) {
        self.scale = scale
        self.workload = workload.rawValue
        self.contestant = contestant
        self.runs = runs
        unit = runs[0].unit
        operations = Int(median(runs.map { Double($0.operations) }))
        seconds = median(runs.map(\.seconds))
        opsPerSecond = median(runs.map(\.opsPerSecond))
        p50Microseconds = median(runs.map(\.p50Microseconds))
        p99Microseconds = median(runs.map(\.p99Microseconds))
        repeats = runs.count
        opsPerSecondMin = runs.map(\.opsPerSecond).min()!
        opsPerSecondMax = runs.map(\.opsPerSecond).max()!
        commits = runs.compactMap(\.commits).isEmpty ? nil : Int(median(runs.compactMap(\.commits).map(Double.init)))
        bytesWrittenPerCommit = medianOrNil(runs.compactMap(\.bytesWrittenPerCommit))
        pageCacheWriteBytesPerCommit = medianOrNil(runs.compactMap(\.pageCacheWriteBytesPerCommit))
        bytesOnDiskPerTransfer = medianOrNil(runs.compactMap(\.bytesOnDiskPerTransfer))
        flushBeforeP50Microseconds = median(runs.map(\.flushBefore.p50Microseconds))
        flushBeforeP99Microseconds = median(runs.map(\.flushBefore.p99Microseconds))
        flushAfterP50Microseconds = median(runs.map(\.flushAfter.p50Microseconds))
        flushAfterP99Microseconds = median(runs.map(\.flushAfter.p99Microseconds))
        loadAverageMin = runs.map(\.loadAverage).min()!
        loadAverageMax = runs.map(\.loadAverage).max()!
    }
}

/// Instructions per operation of one phase, from callgrind (all threads of the process).
struct InstructionRow: Codable, Sendable {
    let scale: Int
    let workload: String
    let contestant: String
    let operations: Int
    let instructions: UInt64
    var instructionsPerOp: Double { operations > 0 ? Double(instructions) / Double(operations) : 0 }

    enum CodingKeys: String, CodingKey { case scale, workload, contestant, operations, instructions, instructionsPerOp }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(scale, forKey: .scale)
        try container.encode(workload, forKey: .workload)
        try container.encode(contestant, forKey: .contestant)
        try container.encode(operations, forKey: .operations)
        try container.encode(instructions, forKey: .instructions)
        try container.encode(instructionsPerOp, forKey: .instructionsPerOp)
    }

    init(scale: Int, workload: String, contestant: String, operations: Int, instructions: UInt64) {
        self.scale = scale
        self.workload = workload
        self.contestant = contestant
        self.operations = operations
        self.instructions = instructions
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        scale = try container.decode(Int.self, forKey: .scale)
        workload = try container.decode(String.self, forKey: .workload)
        contestant = try container.decode(String.self, forKey: .contestant)
        operations = try container.decode(Int.self, forKey: .operations)
        instructions = try container.decode(UInt64.self, forKey: .instructions)
    }
}

/// A target of issue 13 (or the raw-vs-C bound) against what this run measured.
struct TargetRow: Encodable, Sendable {
    /// Nil for the rows that compare scales.
    let scale: Int?
    let name: String
    /// What the ratio divides.
    let measure: String
    let numerator: Double?
    let denominator: Double?
    /// Median over the rounds of the per-round ratio (contestants of one round ran back to back).
    let ratio: Double?
    let ratioMin: Double?
    let ratioMax: Double?
    /// "≥ 0.8×", "≤ 1.5×".
    let target: String
    /// Nil when it cannot be measured yet.
    let met: Bool?
    let note: String?
}

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

func medianOrNil(_ values: [Double]) -> Double? { values.isEmpty ? nil : median(values) }

/// Everything a run collects, keyed by scale, workload and contestant.
struct Results {
    private(set) var runs: [String: [RunRecord]] = [:]
    var instructions: [InstructionRow] = []

    static func key(_ scale: Int, _ workload: Workload, _ contestant: String) -> String {
        "\(scale)|\(workload.rawValue)|\(contestant)"
    }

    mutating func add(_ run: RunRecord, scale: Int, workload: Workload, contestant: String) {
        runs[Self.key(scale, workload, contestant), default: []].append(run)
    }

    func runs(_ scale: Int, _ workload: Workload, _ contestant: String) -> [RunRecord] {
        runs[Self.key(scale, workload, contestant)] ?? []
    }

    func row(_ scale: Int, _ workload: Workload, _ contestant: String) -> ResultRow? {
        let found = runs(scale, workload, contestant)
        guard !found.isEmpty else { return nil }
        var row = ResultRow(scale: scale, workload: workload, contestant: contestant, runs: found)
        row.instructionsPerOp = instructionsPerOp(scale, workload, contestant)
        return row
    }

    func instructionsPerOp(_ scale: Int, _ workload: Workload, _ contestant: String) -> Double? {
        instructions.first { $0.scale == scale && $0.workload == workload.rawValue && $0.contestant == contestant }?.instructionsPerOp
    }

    /// Per-round ratios of `value` between two contestants' runs of the same round.
    func pairedRatios(_ scale: Int, _ a: (Workload, String), _ b: (Workload, String),
                      _ value: (RunRecord) -> Double?) -> [Double] {
        let left = runs(scale, a.0, a.1), right = runs(scale, b.0, b.1)
        var ratios: [Double] = []
        for run in left {
            guard let other = right.first(where: { $0.round == run.round }), let x = value(run), let y = value(other), y > 0 else { continue }
            ratios.append(x / y)
        }
        return ratios
    }
}
