import Foundation

/// Command-line settings of larder-compare (see `usage`).
struct Settings {
    var scales = [10_000, 1_000_000]
    /// Per-commit single-writer workload: at most this many operations…
    var singleOps = 2_000
    /// …the no-sync single writer at most this many…
    var noSyncOps = 5_000
    /// …and the concurrent one at most this many…
    var concurrentOps = 10_000
    /// …each within this time budget.
    var budget: Duration = .seconds(10)
    var writers = 64
    var batchCount = 1_000
    var pointReads = 100_000
    var scans = 100
    var scanLength = 1_000
    var repeats = 1
    var probeCount = 100
    var jsonPath: String?
    var quick = false
    /// Contestant keys to run (nil: all available).
    var contestants: [String]?
    var cBinary: String?
    /// Run the callgrind instruction counts (after the timed rounds, unless `timing` is off).
    var instructions = false
    var timing = true
    var instructionScales: [Int]?
    /// Phases `--instructions` measures (default: every single-threaded one).
    var instructionPhases = Workload.allCases.filter(\.isSingleThreaded)
    /// `--phase` mode: run these phases of one contestant on a freshly imported store.
    var phases: [Workload]?
    var phaseContestant: String?
    /// In `--phase` mode, the bulk phase imports this many transfers on top of the store.
    var bulkExtra = 2_000
    var checkRows = false
    /// Timed rounds run only these workloads (and always the bulk import, which fills the stores).
    var workloads: [Workload]?

    static let usage = """
        usage: larder-compare [--quick] [--scale 10000,1000000] [--repeat N] [--ops N] [--nosync-ops N]
                              [--concurrent-ops N] [--budget-seconds S] [--writers N] [--point-reads N] [--scans N]
                              [--contestants larder,raw-lmdb,c-lmdb,sqlite,sqlite-group,larder-no-tree] [--workloads KEY,…] [--c-binary PATH]
                              [--instructions [--instruction-scale N,…] [--instruction-phases KEY,…]] [--no-timing]
                              [--probe-count N] [--json FILE]
               larder-compare --phase KEY[,KEY…] --contestant KEY --scale N [--ops N …] [--bulk-extra N]
               larder-compare --check-rows [--c-binary PATH]

        Phase and workload keys: \(Workload.allCases.map(\.key).joined(separator: ", ")).
        Contestant keys: larder, raw-lmdb, c-lmdb, sqlite, sqlite-group; larder-no-tree (Larder without its
        Merkle tree, only when named: `--contestants larder,larder-no-tree` measures the tree's cost).
        """

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
        func scales(_ flag: String) -> [Int] {
            value(flag).split(separator: ",").map { part in
                guard let number = Int(part.replacingOccurrences(of: "_", with: "")), number >= 1_000 else {
                    fail("\(flag) takes record counts of at least 1000, comma-separated")
                }
                return number
            }
        }
        while let argument = iterator.next() {
            switch argument {
            case "--quick":
                settings.quick = true
                settings.scales = [2_000]
                settings.singleOps = 200
                settings.noSyncOps = 500
                settings.concurrentOps = 640
                settings.budget = .seconds(3)
                settings.pointReads = 10_000
                settings.scans = 10
                settings.probeCount = 20
            case "--scale": settings.scales = scales("--scale")
            case "--repeat": settings.repeats = integer("--repeat")
            case "--ops": settings.singleOps = integer("--ops")
            case "--nosync-ops": settings.noSyncOps = integer("--nosync-ops")
            case "--concurrent-ops": settings.concurrentOps = integer("--concurrent-ops")
            case "--budget-seconds": settings.budget = .seconds(integer("--budget-seconds"))
            case "--writers": settings.writers = integer("--writers")
            case "--point-reads": settings.pointReads = integer("--point-reads")
            case "--scans": settings.scans = integer("--scans")
            case "--probe-count": settings.probeCount = integer("--probe-count")
            case "--json": settings.jsonPath = value("--json")
            case "--contestants": settings.contestants = value("--contestants").split(separator: ",").map(String.init)
            case "--c-binary": settings.cBinary = value("--c-binary")
            case "--instructions": settings.instructions = true
            case "--instruction-scale": settings.instructionScales = scales("--instruction-scale")
            case "--instruction-phases":
                settings.instructionPhases = value("--instruction-phases").split(separator: ",").map { key in
                    guard let workload = Workload(key: String(key)), workload.isSingleThreaded else {
                        fail("--instruction-phases takes single-threaded phase keys (try --help)")
                    }
                    return workload
                }
            case "--workloads":
                settings.workloads = value("--workloads").split(separator: ",").map { key in
                    guard let workload = Workload(key: String(key)) else { fail("unknown workload \(key) (try --help)") }
                    return workload
                }
            case "--no-timing": settings.timing = false
            case "--phase":
                settings.phases = value("--phase").split(separator: ",").map { key in
                    guard let workload = Workload(key: String(key)) else { fail("unknown phase \(key) (try --help)") }
                    return workload
                }
            case "--contestant": settings.phaseContestant = value("--contestant")
            case "--bulk-extra": settings.bulkExtra = integer("--bulk-extra")
            case "--check-rows": settings.checkRows = true
            case "--help", "-h":
                print(usage)
                exit(0)
            default:
                fail("unknown argument \(argument) (try --help)")
            }
        }
        if let contestants = settings.contestants {
            for key in contestants where !ContestantKind.allCases.map(\.rawValue).contains(key) {
                fail("unknown contestant \(key) (try --help)")
            }
        }
        if settings.phases != nil && settings.phaseContestant == nil { fail("--phase needs --contestant") }
        return settings
    }

    /// The C program, if built: `--c-binary`, or `.build-c/raw_lmdb` in the current directory.
    var resolvedCBinary: String? {
        let path = cBinary ?? CContestant.defaultBinary
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }
}

/// The contestants, in table order.
enum ContestantKind: String, CaseIterable {
    case larder = "larder"
    case rawLMDB = "raw-lmdb"
    case cLMDB = "c-lmdb"
    case sqlite = "sqlite"
    case sqliteGroup = "sqlite-group"
    /// Larder without its Merkle tree (a benchmark-only store option): only when named in
    /// `--contestants`, to measure what the tree costs writes.
    case larderNoTree = "larder-no-tree"

    /// Whether a run without `--contestants` includes it.
    var runsByDefault: Bool { self != .larderNoTree }

    var displayName: String {
        switch self {
        case .larder: "Larder"
        case .larderNoTree: "Larder without its Merkle tree"
        case .rawLMDB: "raw LMDB"
        case .cLMDB: "C LMDB"
        case .sqlite: "SQLite WAL (connection per writer)"
        case .sqliteGroup: "SQLite WAL (one writer, group commit)"
        }
    }

    func make(directory: String, settings: Settings) throws -> any Contestant {
        switch self {
        case .larder: return try LarderContestant(directory: directory)
        case .larderNoTree: return try LarderContestant(directory: directory, keepsMerkleTree: false)
        case .rawLMDB: return try LMDBContestant(directory: directory)
        case .cLMDB:
            guard let binary = settings.resolvedCBinary else { fail("the C contestant needs bash Benchmarks/Compare/c/build.sh (or --c-binary)") }
            return try CContestant(directory: directory, binary: binary)
        case .sqlite: return try SQLiteContestant(directory: directory, mode: .connectionPerWriter)
        case .sqliteGroup: return try SQLiteContestant(directory: directory, mode: .groupCommit)
        }
    }
}

// Declared here, not in main.swift: main.swift's globals are initialized in order as its top-level
// code runs, so functions it calls early would see them uninitialized.
let larderName = ContestantKind.larder.displayName
let rawName = ContestantKind.rawLMDB.displayName
let cName = ContestantKind.cLMDB.displayName
let larderNoTreeName = ContestantKind.larderNoTree.displayName
