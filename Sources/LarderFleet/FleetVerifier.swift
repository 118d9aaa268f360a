import Foundation
public import Larder
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The first thing wrong with a box's rows.
public struct FleetProblem: Sendable, Hashable, CustomStringConvertible {
    /// The first bad row's seq; nil when the problem is not one row's (e.g. `larder_boxes`).
    public let seq: UInt64?
    public let reason: String

    public var description: String { seq.map { "seq \($0): \(reason)" } ?? reason }
}

/// The result for one box.
public struct BoxVerifyReport: Sendable, Hashable {
    public let boxID: String
    public let rowsChecked: UInt64
    /// The head the rows recompute to (seq 0 and 32 zero bytes for a box without rows).
    public let head: ChainHead
    /// What `larder_boxes` says was shipped last.
    public let shipped: ChainHead
    /// The RFC 6962 Merkle root of the rows checked (leaf i = record seq i + 1), recomputed from
    /// their record bytes: compare it with a checkpoint the box signed at `rowsChecked` records.
    public let merkleRoot: MerkleHash
    /// The first problem; nil when every row verifies, the head is the shipped one, and every
    /// stored checkpoint is signed by the box's verifier key over the root the rows give.
    public let problem: FleetProblem?
    /// Signed checkpoints stored for the box (`larder_checkpoints`).
    public let checkpointsStored: Int
    /// Of those, the ones whose signature and Merkle root were checked and found right.
    public let checkpointsVerified: Int

    public var isIntact: Bool { problem == nil }
}

/// The result of `larder fleet verify`.
public struct FleetVerifyReport: Sendable, Hashable {
    public let boxes: [BoxVerifyReport]
    public let elapsed: Duration

    public var isIntact: Bool { boxes.allSatisfy(\.isIntact) }
    public var rowsChecked: UInt64 { boxes.reduce(0) { $0 + $1.rowsChecked } }
    public var rowsPerSecond: Double {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return seconds > 0 ? Double(rowsChecked) / seconds : 0
    }
}

/// Progress of a fleet verification: rows of one box done, of how many (boxes are verified
/// several at a time, so reports of different boxes interleave).
public struct FleetVerifyProgress: Sendable {
    public let boxID: String
    public let boxIndex: Int
    public let boxCount: Int
    public let rowsDone: UInt64
    public let rowsTotal: UInt64
    /// Rows shipped by every box being verified.
    public let fleetRowsTotal: UInt64
}

/// Re-derives every box's chain from the rows in the fleet database, trusting nothing but the
/// record bytes: each row's leaf hash must be SHA-256(0x00 ‖ record_bytes), its chain hash
/// SHA-256(0x01 ‖ previous chain hash ‖ leaf hash), seqs must run 1, 2, 3 … without a gap, every
/// decoded column must say what the record bytes say, and the last row must be the head that
/// `larder_boxes` records as shipped. The same leaves form the box's RFC 6962 Merkle tree: every
/// checkpoint in `larder_checkpoints` must carry a valid signature by the box's verifier key and
/// name the root the rows give at its tree size.
///
/// ```swift
/// let report = try await FleetVerifier.verify(destination: try FleetDestination(url: url))
/// for box in report.boxes where !box.isIntact { print(box.boxID, box.problem!) }
/// ```
public enum FleetVerifier {
    /// Rows between two progress reports.
    public static let progressRowsInterval: UInt64 = 1_000
    /// Boxes verified at once at most (one database connection each).
    public static let jobsMax = 64

    /// Verifies every box, or only `boxID`.
    ///
    /// - parameter verifierKey: with `boxID`, the box's checkpoint verifier key as the auditor
    ///   got it from the box's operator (not from the database): checkpoints are checked against
    ///   it, and a different key registered in `larder_boxes` is a problem. Without it, the key
    ///   the box registered when it first shipped is used.
    /// - parameter jobs: boxes verified at once, each on a connection of its own (1 to
    ///   ``jobsMax``): a box's rows are checked in order on one connection, so a fleet verifies
    ///   faster with several, up to the cores of this machine and of the server.
    /// - throws: NOT_FOUND for an unknown `boxID`; VALIDATION_FAILED for a `verifierKey` without
    ///   `boxID` or `jobs` out of range; STORAGE_UNAVAILABLE or PERSISTENCE_ERROR (external dependency) when the
    ///   database cannot be read. A broken box is not an error: it is in the report.
    public static func verify(destination: FleetDestination, boxID: String? = nil, verifierKey: NoteVerifierKey? = nil,
                              jobs: Int = 4, clock: FleetClock = .system,
                              onProgress: @escaping @Sendable (FleetVerifyProgress) -> Void = { _ in }) async throws(LarderError) -> FleetVerifyReport {
        guard verifierKey == nil || boxID != nil else {
            throw LarderError(.validationFailed, "A verifier key is one box's: give the box id with it.")
        }
        guard (1...jobsMax).contains(jobs) else { throw LarderError(.validationFailed, "jobs \(jobs) is not in 1...\(jobsMax).") }
        let started = clock.now()
        let configuration = try destination.configuration()
        let logger = FleetLogging.silent
        do {
            let boxes = try await withFleetConnection(configuration) { connection in
                guard try await FleetSchema.currentVersion(connection, logger: logger) != nil else {
                    throw LarderError(.notFound, "\(destination.redacted) holds no Larder fleet tables (nothing was shipped there).")
                }
                var boxes: [ListedBox] = []
                let listing: PostgresQuery = boxID.map { "SELECT box_id, last_seq, last_chain_hash, verifier_key FROM larder_boxes WHERE box_id = \($0)" }
                    ?? "SELECT box_id, last_seq, last_chain_hash, verifier_key FROM larder_boxes ORDER BY box_id"
                for try await (id, seq, chain, key) in try await connection.query(listing, logger: logger)
                    .decode((String, Int64, ByteBuffer, String?).self) {
                    boxes.append(ListedBox(id: id, shipped: ChainHead(seq: UInt64(seq), chainHash: Array(buffer: chain)), key: key))
                }
                return boxes
            }
            if let boxID, boxes.isEmpty { throw LarderError(.notFound, "No box \(boxID) in \(destination.redacted).") }
            let fleetRows = boxes.reduce(UInt64(0)) { $0 + $1.shipped.seq }
            // Workers take the next box from a shared counter, each on its own connection; the
            // reports are put back in box order.
            let next = TicketCounter()
            let reports = try await withThrowingTaskGroup(of: [(Int, BoxVerifyReport)].self) { group in
                for _ in 0..<min(jobs, boxes.count) {
                    group.addTask {
                        try await withFleetConnection(configuration) { connection in
                            var done: [(Int, BoxVerifyReport)] = []
                            while true {
                                let index = next.take()
                                guard index < boxes.count else { return done }
                                let box = boxes[index]
                                let keys = BoxKeys(registered: box.key, trusted: verifierKey)
                                done.append((index, try await verifyBox(box.id, shipped: box.shipped, keys: keys, on: connection) { rows in
                                    onProgress(FleetVerifyProgress(boxID: box.id, boxIndex: index, boxCount: boxes.count,
                                                                   rowsDone: rows, rowsTotal: box.shipped.seq, fleetRowsTotal: fleetRows))
                                }))
                            }
                        }
                    }
                }
                var all: [(Int, BoxVerifyReport)] = []
                for try await part in group { all += part }
                return all.sorted { $0.0 < $1.0 }.map(\.1)
            }
            return FleetVerifyReport(boxes: reports, elapsed: clock.now() - started)
        } catch {
            throw FleetFailure.larderError(error, doing: "Verifying the fleet in \(destination.redacted)")
        }
    }

    /// Hands out 0, 1, 2 … to the workers, each number once.
    final class TicketCounter: Sendable {
        private let next = Mutex(0)

        func take() -> Int {
            next.withLock { value in
                defer { value += 1 }
                return value
            }
        }
    }

    /// A box as `larder_boxes` lists it.
    struct ListedBox: Sendable {
        let id: String
        let shipped: ChainHead
        let key: String?
    }

    /// The verifier keys of one box: the one it registered in `larder_boxes`, and the one an
    /// auditor gave (trusted over the database's).
    struct BoxKeys {
        let registered: String?
        let trusted: NoteVerifierKey?

        /// What to check a box's checkpoints with.
        enum Choice {
            case key(NoteVerifierKey)
            case none
            /// No key can be trusted, and why.
            case problem(FleetProblem)
        }

        /// The key to check checkpoints with, or why there is none to trust.
        func key() -> Choice {
            var parsed: NoteVerifierKey?
            if let registered {
                do {
                    parsed = try NoteVerifierKey(parsing: registered)
                } catch {
                    if trusted == nil {
                        return .problem(FleetProblem(seq: nil, reason: "larder_boxes holds a verifier key that is not one (\(error.message))"))
                    }
                }
            }
            if let trusted {
                if let registered, parsed != trusted {
                    return .problem(FleetProblem(seq: nil, reason: """
                        larder_boxes registers the verifier key \(registered), not the one given (\(trusted)): the box's \
                        checkpoints were signed by another key than its operator says
                        """))
                }
                return .key(trusted)
            }
            return parsed.map(Choice.key) ?? .none
        }
    }

    /// A checkpoint as stored, its signature checked.
    struct StoredCheckpoint {
        let treeSize: UInt64
        let rootHash: MerkleHash
    }

    /// Reads and checks the signatures of a box's checkpoints, oldest first; the first problem
    /// instead when one is malformed, unsigned by `key`, or disagrees with its own columns.
    static func checkpoints(of boxID: String, key: BoxKeys.Choice,
                            on connection: PostgresConnection) async throws -> (checkpoints: [StoredCheckpoint], stored: Int, problem: FleetProblem?) {
        let logger = FleetLogging.silent
        var stored: [(treeSize: Int64, root: ByteBuffer, note: String)] = []
        for try await row in try await connection.query(
            "SELECT tree_size, root_hash, signed_note FROM larder_checkpoints WHERE box_id = \(boxID) ORDER BY tree_size",
            logger: logger).decode((Int64, ByteBuffer, String).self) {
            stored.append(row)
        }
        // A key that cannot be trusted is a problem even before the box signed anything.
        if case .problem(let problem) = key { return ([], stored.count, problem) }
        guard !stored.isEmpty else { return ([], 0, nil) }
        let verifierKey: NoteVerifierKey
        switch key {
        case .problem(let problem):
            return ([], stored.count, problem)
        case .none:
            return ([], stored.count, FleetProblem(seq: nil, reason: """
                \(stored.count) checkpoint(s) are stored but larder_boxes has no verifier key for the box: their signatures \
                cannot be checked
                """))
        case .key(let key):
            verifierKey = key
        }
        var checked: [StoredCheckpoint] = []
        for (treeSize, root, note) in stored {
            func bad(_ reason: String) -> FleetProblem {
                FleetProblem(seq: nil, reason: "the checkpoint stored at tree size \(treeSize): \(reason)")
            }
            let checkpoint: Checkpoint
            do {
                checkpoint = try Checkpoint.open(note, verifierKey: verifierKey).0
            } catch {
                return (checked, stored.count, bad("\(error) (key \(verifierKey))"))
            }
            guard checkpoint.treeSize == UInt64(treeSize), let column = MerkleHash(bytes: Array(buffer: root)),
                  column == checkpoint.rootHash else {
                return (checked, stored.count, bad("""
                    its signed note says tree size \(checkpoint.treeSize) and root \(checkpoint.rootHash), its columns \
                    tree size \(treeSize) and root \(Array(buffer: root).hexString)
                    """))
            }
            checked.append(StoredCheckpoint(treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash))
        }
        return (checked, stored.count, nil)
    }

    static func verifyBox(_ boxID: String, shipped: ChainHead, keys: BoxKeys, on connection: PostgresConnection,
                          onProgress: (UInt64) -> Void) async throws -> BoxVerifyReport {
        let logger = FleetLogging.silent
        let key = keys.key()
        let signed = try await checkpoints(of: boxID, key: key, on: connection)
        var chain = RowChain()
        var pending = signed.checkpoints[...]
        // Tree sizes whose signed checkpoint verified, from larder_checkpoints or from the
        // CHECKPOINT_SIGNED records in the log itself.
        var verifiedSizes = Set<UInt64>()
        var checkpointProblem = signed.problem
        let rows = try await connection.query("""
            SELECT seq, (extract(epoch FROM time) * 1000000)::bigint, event, actor_id, actor_role, request_id, trace_id,
                   decision_id, refs::text, failure_category, response_type, reason_code, payload::text,
                   record_bytes, leaf_hash, chain_hash
            FROM larder_audit WHERE box_id = \(boxID) ORDER BY seq
            """, logger: logger)
        for try await row in rows {
            let (seq, time, event, actorID, actorRole, requestID, traceID, decisionID, refs, failureCategory, responseType,
                 reasonCode, payload, recordBytes, leafHash, chainHash) = try row.decode(
                    (Int64, Int64, String, String, String, String, String?, String?, String, String?, String?, String?,
                     String?, ByteBuffer, ByteBuffer, ByteBuffer).self)
            let columns = StoredColumns(time: time, event: event, actorID: actorID, actorRole: actorRole, requestID: requestID,
                                        traceID: traceID, decisionID: decisionID, refs: refs, failureCategory: failureCategory,
                                        responseType: responseType, reasonCode: reasonCode, payload: payload)
            // A checkpoint's record directly follows the records it covers: its root is the tree's
            // before this row's leaf joins it.
            let rootBefore = event == AuditEvent.checkpointSigned.rawValue ? chain.tree.root : nil
            let record = chain.check(seq: UInt64(seq), recordBytes: Array(buffer: recordBytes), leafHash: Array(buffer: leafHash),
                                     chainHash: Array(buffer: chainHash), columns: columns)
            if let record, let rootBefore, checkpointProblem == nil {
                switch Self.checkRecordedCheckpoint(record, rootBefore: rootBefore, key: key) {
                case .signatureVerified: verifiedSizes.insert(record.seq - 1)
                case .rootMatches: break
                case .problem(let problem): checkpointProblem = problem
                }
            }
            if chain.rows % progressRowsInterval == 0 { onProgress(chain.rows) }
            // Each checkpoint is compared when the tree reaches its size; the first that differs
            // ends the comparisons (later roots contain the same difference).
            while checkpointProblem == nil, let next = pending.first, next.treeSize == chain.tree.size {
                pending.removeFirst()
                if chain.tree.root == next.rootHash {
                    verifiedSizes.insert(next.treeSize)
                } else {
                    checkpointProblem = FleetProblem(seq: next.treeSize, reason: """
                        the Merkle root of seqs 1…\(next.treeSize) is \(chain.tree.root), but the box signed a checkpoint of \
                        that tree with root \(next.rootHash) (the rows are not the log the box signed)
                        """)
                }
            }
        }
        onProgress(chain.rows)
        if chain.problem == nil, chain.head != shipped {
            let firstBad = chain.head.seq > shipped.seq ? shipped.seq + 1 : nil
            chain.problem = FleetProblem(seq: firstBad, reason: """
                the rows end at seq \(chain.head.seq) (chain \(chain.head.chainHash.hexString)), but larder_boxes records \
                seq \(shipped.seq) (chain \(shipped.chainHash.hexString)) as shipped
                """)
        }
        if chain.problem == nil, checkpointProblem == nil, let beyond = pending.first {
            checkpointProblem = FleetProblem(seq: chain.head.seq + 1, reason: """
                the box signed a checkpoint of \(beyond.treeSize) records, but the rows end at seq \(chain.head.seq)
                """)
        }
        // A broken row comes first: it names the row; a checkpoint problem names the tree.
        return BoxVerifyReport(boxID: boxID, rowsChecked: chain.rows, head: chain.head, shipped: shipped, merkleRoot: chain.tree.root,
                               problem: chain.problem ?? checkpointProblem, checkpointsStored: signed.stored,
                               checkpointsVerified: verifiedSizes.count)
    }

    /// What a `CHECKPOINT_SIGNED` record in the rows says.
    enum RecordedCheckpoint {
        /// Its root is the rows' and its signature by the box's key verifies.
        case signatureVerified
        /// Its root is the rows', but no key of the box's signed it here (no key is known, or the
        /// box signed with another key then).
        case rootMatches
        case problem(FleetProblem)
    }

    /// Checks the note a `CHECKPOINT_SIGNED` record carries (docs/FORMAT.md section 14.7) against
    /// the root of the rows before it and, when the note carries a signature by the box's key,
    /// that signature.
    static func checkRecordedCheckpoint(_ record: AuditRecord, rootBefore: MerkleHash, key: BoxKeys.Choice) -> RecordedCheckpoint {
        func bad(_ reason: String) -> RecordedCheckpoint {
            .problem(FleetProblem(seq: record.seq, reason: "the checkpoint recorded at seq \(record.seq): \(reason)"))
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(record.payload.utf8))) as? [String: Any],
              let note = object["note"] as? String else { return bad("its payload holds no signed note") }
        let parsed: SignedNote
        let checkpoint: Checkpoint
        do {
            parsed = try SignedNote(parsing: note)
            checkpoint = try Checkpoint(body: parsed.text)
        } catch {
            return bad("its note is malformed (\(error.message))")
        }
        guard checkpoint.treeSize == record.seq - 1, checkpoint.rootHash == rootBefore else {
            return bad("""
                it names tree size \(checkpoint.treeSize) and root \(checkpoint.rootHash), but the \(record.seq - 1) rows before it \
                give root \(rootBefore) (the rows are not the log the box signed)
                """)
        }
        guard case .key(let verifierKey) = key,
              parsed.signatures.contains(where: { $0.keyName == verifierKey.name && $0.keyID == verifierKey.keyID }) else {
            return .rootMatches
        }
        do {
            _ = try Checkpoint.open(note, verifierKey: verifierKey)
        } catch {
            return bad("\(error) (key \(verifierKey))")
        }
        return .signatureVerified
    }
}

/// The decoded columns of a stored row, as read back.
struct StoredColumns {
    let time: Int64
    let event: String
    let actorID: String
    let actorRole: String
    let requestID: String
    let traceID: String?
    let decisionID: String?
    /// `refs::text`.
    let refs: String
    let failureCategory: String?
    let responseType: String?
    let reasonCode: String?
    /// `payload::text`.
    let payload: String?
}

/// The chain recomputed over one box's rows, stopping at the first problem (later rows cannot
/// be judged once the chain is broken: their previous hash is unknown).
struct RowChain {
    private(set) var rows: UInt64 = 0
    private(set) var head = ChainHead.empty
    /// The Merkle tree of the rows that verified (it stops growing at the first problem).
    private(set) var tree = MerkleRootAccumulator()
    var problem: FleetProblem?

    /// Checks the next row; returns its decoded record when it verified.
    @discardableResult
    mutating func check(seq: UInt64, recordBytes: [UInt8], leafHash: [UInt8], chainHash: [UInt8], columns: StoredColumns) -> AuditRecord? {
        guard problem == nil else { return nil }
        rows += 1
        let expected = head.seq + 1
        guard seq == expected else {
            problem = FleetProblem(seq: expected, reason: "row missing: the rows jump from seq \(head.seq) to seq \(seq)")
            return nil
        }
        let leaf = AuditChain.leafHash(recordBytes)
        guard leaf == leafHash else {
            problem = FleetProblem(seq: seq, reason: "leaf_hash does not match record_bytes (the record or its hash was altered)")
            return nil
        }
        let chain = AuditChain.chainHash(previous: head.chainHash, leaf: leaf)
        guard chain == chainHash else {
            problem = FleetProblem(seq: seq, reason: "chain_hash does not follow from the previous row's chain_hash and this leaf_hash")
            return nil
        }
        let record: AuditRecord
        do {
            record = try AuditRecord.decode(recordBytes)
        } catch {
            problem = FleetProblem(seq: seq, reason: "record_bytes do not decode: \(error.message)")
            return nil
        }
        guard record.seq == seq else {
            problem = FleetProblem(seq: seq, reason: "record_bytes hold seq \(record.seq)")
            return nil
        }
        if let mismatch = Self.mismatch(record, columns) {
            problem = FleetProblem(seq: seq, reason: mismatch)
            return nil
        }
        head = ChainHead(seq: seq, chainHash: chain)
        tree.append(MerkleHash(bytes: leaf)!)
        return record
    }

    /// The first decoded column that does not say what the record bytes say.
    static func mismatch(_ record: AuditRecord, _ columns: StoredColumns) -> String? {
        func differs(_ name: String, _ stored: String?, _ expected: String?) -> String? {
            let expected = expected.map(FleetColumns.text)
            guard stored != expected else { return nil }
            return "column \(name) is \(stored.map(JSONWriter.quoted) ?? "NULL") but record_bytes say \(expected.map(JSONWriter.quoted) ?? "NULL")"
        }
        if columns.time != record.timeMicros {
            return "column time is \(RFC3339.format(columns.time)) but record_bytes say \(RFC3339.format(record.timeMicros))"
        }
        if let text = differs("event", columns.event, record.event.rawValue) ?? differs("actor_id", columns.actorID, record.actor.id)
            ?? differs("actor_role", columns.actorRole, record.actor.role.rawValue)
            ?? differs("request_id", columns.requestID, record.requestID) ?? differs("trace_id", columns.traceID, record.traceID)
            ?? differs("decision_id", columns.decisionID, record.decisionID)
            ?? differs("failure_category", columns.failureCategory, record.failureCategory)
            ?? differs("response_type", columns.responseType, record.responseType)
            ?? differs("reason_code", columns.reasonCode, record.reasonCode) {
            return text
        }
        let refs = FleetColumns.refsJSONBText(record.refs)
        if columns.refs != refs { return "column refs is \(columns.refs) but record_bytes say \(refs)" }
        if FleetColumns.isJSONBSafe(record.payload) {
            guard let stored = columns.payload, JSONEquality.same(stored, record.payload) else {
                return "column payload is \(columns.payload ?? "NULL") but record_bytes say \(record.payload)"
            }
        } else if let stored = columns.payload {
            return "column payload is \(stored) but record_bytes hold a payload jsonb cannot store (it must be NULL)"
        }
        return nil
    }
}

/// Whether two JSON texts mean the same value: jsonb reorders keys, keeps the last of
/// duplicate keys, respaces, and prints numbers as `numeric` does, so the text PostgreSQL returns
/// is compared by meaning (numbers as exact decimals), not byte for byte.
enum JSONEquality {
    indirect enum Value: Equatable {
        case null
        case bool(Bool)
        /// Normalized: sign, significant digits, exponent (`-12e3` for -12000; `0` for zero).
        case number(String)
        case string(String)
        case array([Value])
        case object([String: Value])
    }

    static func same(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        guard let x = parse(a), let y = parse(b) else { return false }
        return x == y
    }

    static func parse(_ text: String) -> Value? {
        var parser = Parser(bytes: Array(text.utf8))
        guard let value = parser.value(depth: 0) else { return nil }
        parser.skipSpace()
        return parser.index == parser.bytes.count ? value : nil
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func value(depth: Int) -> Value? {
            guard depth < 256 else { return nil }
            skipSpace()
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [String: Value] = [:]
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard let key = string() else { return nil }
                    skipSpace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
                    index += 1
                    guard let member = value(depth: depth + 1) else { return nil }
                    members[key] = member   // the last duplicate wins, as in jsonb
                    skipSpace()
                    guard index < bytes.count else { return nil }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                    return nil
                }
            case UInt8(ascii: "["):
                index += 1
                var elements: [Value] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
                while true {
                    guard let element = value(depth: depth + 1) else { return nil }
                    elements.append(element)
                    skipSpace()
                    guard index < bytes.count else { return nil }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
                    return nil
                }
            case UInt8(ascii: "\""):
                return string().map(Value.string)
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            default: return number()
            }
        }

        mutating func literal(_ word: String, _ value: Value) -> Value? {
            let word = Array(word.utf8)
            guard index + word.count <= bytes.count, Array(bytes[index..<(index + word.count)]) == word else { return nil }
            index += word.count
            return value
        }

        mutating func string() -> String? {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
            index += 1
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flush() {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll(keepingCapacity: true)
            }
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    flush()
                    return String(scalars)
                }
                guard byte == UInt8(ascii: "\\") else {
                    raw.append(byte)
                    index += 1
                    continue
                }
                flush()
                guard index + 1 < bytes.count else { return nil }
                let escaped = bytes[index + 1]
                index += 2
                switch escaped {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{8}")
                case UInt8(ascii: "f"): scalars.append("\u{C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    guard var code = hex4() else { return nil }
                    if (0xD800...0xDBFF).contains(code), index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                       bytes[index + 1] == UInt8(ascii: "u") {
                        index += 2
                        guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { return nil }
                    scalars.append(scalar)
                default:
                    return nil
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count,
                  let code = UInt32(String(decoding: bytes[index..<(index + 4)], as: UTF8.self), radix: 16) else { return nil }
            index += 4
            return code
        }

        /// A number as an exact decimal: leading and trailing zeros folded into the exponent.
        mutating func number() -> Value? {
            var negative = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") { negative = true; index += 1 }
            var digits: [UInt8] = []
            var exponent = 0
            var sawDigit = false
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                digits.append(bytes[index]); index += 1; sawDigit = true
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                    digits.append(bytes[index]); exponent -= 1; index += 1; sawDigit = true
                }
            }
            guard sawDigit else { return nil }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                index += 1
                var sign = 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                    sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
                    index += 1
                }
                var value = 0
                var sawExponentDigit = false
                while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                    value = min(value * 10 + Int(bytes[index] - UInt8(ascii: "0")), 1_000_000)
                    index += 1
                    sawExponentDigit = true
                }
                guard sawExponentDigit else { return nil }
                exponent += sign * value
            }
            while let first = digits.first, first == UInt8(ascii: "0") { digits.removeFirst() }
            while let last = digits.last, last == UInt8(ascii: "0") { digits.removeLast(); exponent += 1 }
            if digits.isEmpty { return .number("0") }
            return .number((negative ? "-" : "") + String(decoding: digits, as: UTF8.self) + "e\(exponent)")
        }
    }
}
