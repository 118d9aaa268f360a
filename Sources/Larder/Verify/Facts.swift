/// The pairs of streams verify holds against each other. Each relation has a left side (what
/// should be, derived from the audit log or from the row that owns the data) and a right side
/// (what a table holds); they must be equal as multisets of facts.
///
/// The two sides are read in different key orders (the log by seq, a table by its own key), so
/// verify does not sort either: it walks each table once, in its own order, and sums a keyed
/// 64-bit hash of every fact on each side. Equal sides give equal sums and counts; a fact missing,
/// extra or different on one side changes the sum except with probability about 2⁻⁶⁴, for a key
/// drawn afresh for every run (nobody who damages a store can aim at it). Only when a relation's
/// sums differ does verify walk its two sides again to name the facts that differ.
enum Relation: Int, CaseIterable {
    case auditByRequest, auditByRef, auditByTime
    case accountRecords, transferRecords
    case incidentCreated, incidentTransitions, responseRecords, refundOutcomes
    case historyEntries, releases, resolutions, resolutionShapes
    case refundRequests, cancelledCycles, incidentIndex

    /// How a problem on this relation is named.
    var info: (left: String, right: String, table: String, leftOnly: VerifyReport.Problem.Kind, rightOnly: VerifyReport.Problem.Kind) {
        switch self {
        case .auditByRequest: ("the audit log", "index/request", StoreTables.auditByRequestName, .missingIndexEntry, .danglingIndexEntry)
        case .auditByRef: ("the audit log", "index/ref", StoreTables.auditByRefName, .missingIndexEntry, .danglingIndexEntry)
        case .auditByTime: ("the records before meta.time_ordered_from", "index/time", StoreTables.auditByTimeName, .missingIndexEntry, .danglingIndexEntry)
        case .accountRecords: ("the audit log", "ledger_accounts", StoreTables.ledgerAccountsName, .ledgerMismatch, .ledgerMismatch)
        case .transferRecords: ("the audit log", "ledger_transfers", StoreTables.ledgerTransfersName, .ledgerMismatch, .ledgerMismatch)
        case .incidentCreated: ("the audit log", "incidents", StoreTables.incidentsName, .incidentMismatch, .incidentMismatch)
        case .incidentTransitions: ("the audit log", "incidents", StoreTables.incidentsName, .incidentMismatch, .incidentMismatch)
        case .responseRecords: ("the audit log", "incidents", StoreTables.incidentsName, .incidentMismatch, .incidentMismatch)
        case .refundOutcomes: ("the audit log", "incident_refunds", StoreTables.incidentRefundsName, .incidentMismatch, .incidentMismatch)
        case .historyEntries: ("ledger_transfers", "ledger_history", StoreTables.ledgerHistoryName, .ledgerMismatch, .ledgerMismatch)
        case .releases: ("ledger_transfers", "ledger_history", StoreTables.ledgerHistoryName, .ledgerMismatch, .ledgerMismatch)
        case .resolutions: ("ledger_transfers", "ledger_resolutions", StoreTables.ledgerResolutionsName, .ledgerMismatch, .ledgerMismatch)
        case .resolutionShapes: ("the resolved transfers", "the transfers resolving them", StoreTables.ledgerTransfersName, .ledgerMismatch, .ledgerMismatch)
        case .refundRequests: ("the incidents' refund responses", "incident_refunds", StoreTables.incidentRefundsName, .incidentMismatch, .incidentMismatch)
        case .cancelledCycles: ("the incidents' cancellation responses", "cancelled_cycles", StoreTables.cancelledCyclesName, .incidentMismatch, .incidentMismatch)
        case .incidentIndex: ("incidents", "index/incident", StoreTables.incidentsIndexName, .missingIndexEntry, .danglingIndexEntry)
        }
    }
}

/// Which side of a relation a fact comes from.
enum FactSide {
    case left, right
}

/// One fact, hashed field by field under the run's key. Both sides of a relation must feed the
/// same fields in the same order with the same methods.
///
/// The hash folds 64-bit words with a multiply-fold (the 128-bit product of the state and a
/// multiplier derived from the run's key, high half XOR low half), as fast hashes such as wyhash
/// do: it is not a cryptographic hash, and it needs none — what a damaged store could aim at is
/// the key, drawn afresh for every run. Fields carry their lengths, so they cannot run together.
struct Fact {
    private var state: UInt64
    private let multiplier: UInt64

    init(_ relation: Relation, key: UInt64) {
        multiplier = (key ^ 0xE703_7ED1_A0B4_28DB) | 1
        state = key ^ (UInt64(relation.rawValue) &* 0x9E37_79B9_7F4A_7C15)
    }

    @inline(__always) private static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    @inline(__always) private mutating func word(_ value: UInt64) {
        state = Self.fold(state ^ value, multiplier)
    }

    @inline(__always) mutating func add(_ value: UInt64) { word(value) }
    @inline(__always) mutating func add(_ value: Int64) { word(UInt64(bitPattern: value)) }
    @inline(__always) mutating func add(_ flag: Bool) { word(flag ? 0x5151 : 0xA0A0) }

    /// Bytes, behind their length (so that fields cannot run into each other).
    @inline(__always) mutating func add(bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        word(UInt64(count) | 0xB000_0000_0000_0000)
        var offset = 0
        while offset + 8 <= count {
            word(bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            offset += 8
        }
        if offset < count {
            var tail: UInt64 = 0
            withUnsafeMutableBytes(of: &tail) { buffer in
                buffer.baseAddress!.copyMemory(from: bytes.baseAddress! + offset, byteCount: count - offset)
            }
            word(tail)
        }
    }

    @inline(__always) mutating func add(bytes: [UInt8]) {
        bytes.withUnsafeBytes { add(bytes: $0) }
    }

    mutating func add(_ text: String) {
        var text = text
        text.withUTF8 { add(bytes: UnsafeRawBufferPointer($0)) }
    }

    @inline(__always) mutating func add(optional bytes: UnsafeRawBufferPointer?) {
        if let bytes {
            word(1)
            add(bytes: bytes)
        } else {
            word(0)
        }
    }

    mutating func add(optional text: String?) {
        if let text {
            word(1)
            add(text)
        } else {
            word(0)
        }
    }

    /// Refs as a record holds them: the count, then kind and id of each, in stored order.
    mutating func add(refs: [CorrelationRef]) {
        add(UInt64(refs.count))
        for ref in refs {
            add(ref.kind)
            add(ref.id)
        }
    }

    @inline(__always) func finish() -> UInt64 { Self.fold(state ^ 0x8BB8_4B93_962E_ACC9, multiplier ^ 0x4B33_A62E_D433_D4A3) }
}

/// Where a fact came from, for the problem that names it.
struct FactOrigin {
    let seq: UInt64?
    let what: String
}

/// The sums of every relation's two sides, and, when they differ, the walks that name the facts
/// that differ: first a walk that sums per bucket (the top 16 bits of the hash), then one that
/// keeps the facts of the buckets that differ, with their origins. Memory stays bounded: 2¹⁶
/// buckets per relation located, and at most ``detailedFactsMax`` facts kept.
final class FactBook {
    enum Mode {
        case summing
        case bucketing
        case detailing
    }

    /// The run's key: fresh for every verify.
    let key: UInt64
    @exclusivity(unchecked) private(set) var mode = Mode.summing
    /// Set while a walk runs for another purpose than facts (naming a missing decision).
    @exclusivity(unchecked) var isPaused = false
    // Touched for every fact: no dynamic exclusivity checks (one thread, no reentrancy).
    @exclusivity(unchecked) private var sumDifference: [UInt64]
    @exclusivity(unchecked) private var countDifference: [Int]

    /// Relations being located, by raw value.
    private var locating: [Bool]
    private var bucketSums: [[UInt64]] = []
    private var bucketCounts: [[Int32]] = []
    private var bucketTotals: [[Int32]] = []
    private var chosenBuckets: [Set<UInt16>] = []
    private var pending: [[UInt64: Pending]] = []
    private var detailedFacts = 0

    struct Pending {
        var balance = 0
        var left: FactOrigin?
        var right: FactOrigin?
    }

    static let bucketCount = 1 << 16
    /// Facts kept with their origins while naming problems, at most.
    static let detailedFactsMax = 200_000

    init() {
        var generator = SystemRandomNumberGenerator()
        key = generator.next()
        sumDifference = Array(repeating: 0, count: Relation.allCases.count)
        countDifference = Array(repeating: 0, count: Relation.allCases.count)
        locating = Array(repeating: false, count: Relation.allCases.count)
    }

    /// A new fact of `relation`, hashed under this run's key.
    @inline(__always) func fact(_ relation: Relation) -> Fact { Fact(relation, key: key) }

    /// Counts a finished fact. `origin` is called only while problems are being named.
    @inline(__always) func add(_ relation: Relation, _ side: FactSide, _ hash: UInt64, _ origin: () -> FactOrigin) {
        guard !isPaused else { return }
        let index = relation.rawValue
        switch mode {
        case .summing:
            if side == .left {
                sumDifference[index] &+= hash
                countDifference[index] += 1
            } else {
                sumDifference[index] &-= hash
                countDifference[index] -= 1
            }
        case .bucketing:
            guard locating[index] else { return }
            let bucket = Int(hash >> 48)
            if side == .left {
                bucketSums[index][bucket] &+= hash
                bucketCounts[index][bucket] += 1
            } else {
                bucketSums[index][bucket] &-= hash
                bucketCounts[index][bucket] -= 1
            }
            bucketTotals[index][bucket] &+= 1
        case .detailing:
            guard locating[index], chosenBuckets[index].contains(UInt16(hash >> 48)) else { return }
            var entry = pending[index][hash] ?? Pending()
            if side == .left {
                entry.balance += 1
                if entry.left == nil { entry.left = origin() }
            } else {
                entry.balance -= 1
                if entry.right == nil { entry.right = origin() }
            }
            pending[index][hash] = entry
        }
    }

    /// The relations whose two sides differ after the summing walk.
    var mismatched: [Relation] {
        Relation.allCases.filter { sumDifference[$0.rawValue] != 0 || countDifference[$0.rawValue] != 0 }
    }

    /// How many more facts the left side holds than the right (negative: fewer).
    func surplus(_ relation: Relation) -> Int { countDifference[relation.rawValue] }

    /// Starts the first locating walk for `relations`.
    func startBucketing(_ relations: [Relation]) {
        mode = .bucketing
        for relation in relations { locating[relation.rawValue] = true }
        bucketSums = Relation.allCases.map { locating[$0.rawValue] ? Array(repeating: 0, count: Self.bucketCount) : [] }
        bucketCounts = Relation.allCases.map { locating[$0.rawValue] ? Array(repeating: 0, count: Self.bucketCount) : [] }
        bucketTotals = Relation.allCases.map { locating[$0.rawValue] ? Array(repeating: 0, count: Self.bucketCount) : [] }
    }

    /// Starts the second locating walk: keeps the facts of the buckets that differ, as many as
    /// fit in ``detailedFactsMax``. Returns whether some differing buckets were left out.
    @discardableResult
    func startDetailing() -> Bool {
        mode = .detailing
        var budget = Self.detailedFactsMax
        var leftOut = false
        chosenBuckets = Relation.allCases.map { relation in
            let index = relation.rawValue
            guard locating[index] else { return [] }
            var chosen = Set<UInt16>()
            for bucket in 0..<Self.bucketCount where bucketSums[index][bucket] != 0 || bucketCounts[index][bucket] != 0 {
                let size = Int(bucketTotals[index][bucket])
                guard size <= budget else {
                    leftOut = true
                    continue
                }
                budget -= size
                chosen.insert(UInt16(bucket))
            }
            return chosen
        }
        pending = Relation.allCases.map { _ in [:] }
        bucketSums = []
        bucketCounts = []
        bucketTotals = []
        return leftOut
    }

    /// The facts found on one side only, per relation, after the detailing walk.
    func unmatched(_ relation: Relation) -> [(side: FactSide, surplus: Int, origin: FactOrigin?)] {
        guard mode == .detailing, locating[relation.rawValue] else { return [] }
        return pending[relation.rawValue].values
            .filter { $0.balance != 0 }
            .map { entry in
                entry.balance > 0 ? (FactSide.left, entry.balance, entry.left) : (FactSide.right, -entry.balance, entry.right)
            }
            .sorted { ($0.origin?.seq ?? .max, $0.origin?.what ?? "") < ($1.origin?.seq ?? .max, $1.origin?.what ?? "") }
    }
}
