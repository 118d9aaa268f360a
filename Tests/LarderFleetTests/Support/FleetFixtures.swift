import Foundation
@testable import LarderFleet
import Larder
import LarderCLI
import LarderTesting
import Synchronization
import Testing

/// The fleet suite: every test that needs a real PostgreSQL server. One cluster serves the whole
/// suite; each test creates its own database in it, so tests run in parallel.
@Suite("fleet against a real PostgreSQL", .enabled(if: FleetDatabase.isAvailable), .sharedPostgresCluster, .timeLimit(.minutes(2)))
struct FleetTests {}

/// Runs `larder` in-process with captured output.
func larder(_ arguments: [String]) async -> (status: Int32, out: String, err: String) {
    let console = Console.capturing()
    let status = await Console.$current.withValue(console) {
        await LarderCommand.run(arguments: arguments)
    }
    return (status, console.output, console.errorOutput)
}

/// Payloads that exercise COPY's escaping, jsonb's normalization, and the payloads jsonb refuses.
let awkwardPayloads = [
    #"{"note":"tab\there, newline\nthere, backslash \\ and quote \""}"#,
    "{\t\"spaced\" :\n 1 ,\r\n \"x\": [1, 2]}",
    #"{"dish":"Crème brûlée 🍮","escaped":"\u00e9\ud83c\udf6e"}"#,
    #"{"n":1.50,"m":1e2,"z":-0,"big":123456789012345678901234567890,"small":1.5E-7}"#,
    #"{"a":1,"a":2,"nested":{"deep":[true,false,null,{"k":"v"}]}}"#,
    #"{"nul":"a\u0000b"}"#,
    #"{"lonely":"\ud800"}"#,
    #"{"huge":1e200000,"fine":1e5000}"#,
    "{}",
]

/// Event names that need escaping in COPY text, or cannot be text at all (NUL).
let awkwardEvents: [AuditEvent] = ["EVT_TAB\tIN_NAME", "EVT_BACKSLASH\\N", "EVT_NEWLINE\nX", "EVT_NUL\u{0}X"]

/// Appends `count` audit records to `store`, seeded: varied events, actors, requests, refs and
/// payloads; with `awkward`, also the payloads and event names above.
func appendRecords(_ store: Store, count: Int, random: inout SeededGenerator, requestPrefix: String = "req",
                   awkward: Bool = false, perWrite: Int = 250) throws {
    var remaining = count
    var index = 0
    while remaining > 0 {
        let now = min(remaining, perWrite)
        var drafts: [AuditDraft] = []
        for _ in 0..<now {
            let order = String(UInt64.random(in: 1...500, using: &random))
            var draft = AuditDraft(event: ["LEDGER_TRANSFER_POSTED", "OP_CREDIT_GRANTED", "INCIDENT_STATE_CHANGED"].randomElement(using: &random)!,
                                   refs: [.order(order), .customer("c-\(UInt64.random(in: 1...50, using: &random))")],
                                   failureCategory: Bool.random(using: &random) ? "delivery" : nil,
                                   payload: #"{"amount":\#(UInt64.random(in: 1...10_000, using: &random)),"order":"\#(order)"}"#)
            if awkward, index % 3 == 0 {
                draft.payload = awkwardPayloads[(index / 3) % awkwardPayloads.count]
                if index % 2 == 0 { draft.event = awkwardEvents[(index / 6) % awkwardEvents.count] }
            }
            drafts.append(draft)
            index += 1
        }
        let request = "\(requestPrefix)-\(index / perWrite)"
        let context = WriteContext(actor: ActorIdentity(id: "am-\(UInt64.random(in: 1...9, using: &random))", role: .accountManager),
                                   requestID: request)
        try store.write(context) { txn in
            for draft in drafts { _ = try txn.appendAudit(draft) }
        }
        remaining -= now
    }
}

/// A box: a store in its own directory, as the box's application holds it. The `larder` tool run
/// in-process cannot open a store this process holds open, so ``close()`` before running it; the
/// next use of ``store`` opens it again.
final class TestBox: Sendable {
    let directory: TemporaryDirectory
    private let opened = Mutex<Store?>(nil)

    init() throws {
        directory = try TemporaryDirectory(prefix: "larder-box")
        _ = try open()
    }

    var path: String { directory.path("store") }

    var store: Store {
        get throws { try open() }
    }

    private func open() throws -> Store {
        try opened.withLock { opened in
            if let opened { return opened }
            let store = try Store.open(at: path)
            opened = store
            return store
        }
    }

    func close() {
        opened.withLock { opened in
            opened?.close()
            opened = nil
        }
    }

    /// The newest seq (a new store holds a few records of its own: schema, policy).
    var head: UInt64 {
        get throws { try store.read { view in try view.audit.head().seq } }
    }

    deinit { close() }
}

/// A shipper over `box` to `database`, with a clock whose waits take no time.
func shipper(_ box: TestBox, database: String, boxID: String, batch: Int = 100, clock: FleetClock = .instant,
             follow: Bool = false, attempts: Int = 5, onEvent: @escaping @Sendable (ShipEvent) -> Void = { _ in },
             afterCommit: @escaping @Sendable (ShipProgress) async -> Void = { _ in }) throws -> Shipper {
    var options = ShipOptions(boxID: boxID)
    options.batchRecords = batch
    options.clock = clock
    options.follow = follow
    options.pollInterval = .milliseconds(50)
    options.retry.attemptsMax = attempts
    return Shipper(store: try box.store, destination: try FleetDestination(url: FleetDatabase.cluster.url(database: database)),
                   options: options, onEvent: onEvent, afterCommit: afterCommit)
}

extension FleetClock {
    /// Time moves only by the waits asked for, which return at once: backoff takes no time.
    static var instant: FleetClock { ManualFleetClock().clock }
}

/// A fleet clock that records every wait and advances by it without waiting; waits shorter than
/// `realBelow` (poll intervals) pass in real time too, so a follower does not spin. `onWait` sees
/// each wait and how many came before it (to restart a server at a known point).
final class ManualFleetClock: Sendable {
    private let state = Mutex<(now: Duration, waits: [Duration])>((.zero, []))
    private let realBelow: Duration
    private let onWait: @Sendable (Duration, Int) async -> Void

    init(realBelow: Duration = .zero, onWait: @escaping @Sendable (Duration, Int) async -> Void = { _, _ in }) {
        self.realBelow = realBelow
        self.onWait = onWait
    }

    var clock: FleetClock {
        FleetClock(now: { self.state.withLock { $0.now } },
                   sleep: { duration in
                       if duration < self.realBelow {
                           try await Task.sleep(for: duration)
                           self.state.withLock { $0.now += duration }
                           return
                       }
                       let count = self.state.withLock { state -> Int in
                           state.now += duration
                           state.waits.append(duration)
                           return state.waits.count - 1
                       }
                       await self.onWait(duration, count)
                       await Task.yield()
                   })
    }

    /// Moves the clock without a wait (as if time passed elsewhere).
    func advance(_ duration: Duration) { state.withLock { $0.now += duration } }

    /// The waits that did not pass in real time.
    var waits: [Duration] { state.withLock { $0.waits } }
}

/// Waits (in real time, at most `seconds`) until `condition` holds; false when it never did.
func eventually(seconds: Double = 60, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// Rows of a box in the fleet database: count, min and max seq.
func shippedRows(_ database: String, box: String, cluster: PostgresCluster = FleetDatabase.cluster) async throws
    -> (count: Int64, min: Int64, max: Int64) {
    let count = try await cluster.integer("SELECT count(*) FROM larder_audit WHERE box_id = '\(box)'", database: database)
    let min = try await cluster.integer("SELECT coalesce(min(seq), 0) FROM larder_audit WHERE box_id = '\(box)'", database: database)
    let max = try await cluster.integer("SELECT coalesce(max(seq), 0) FROM larder_audit WHERE box_id = '\(box)'", database: database)
    return (count, min, max)
}

/// The seed of a randomized test, printed so that a failure can be replayed (`LARDER_TEST_SEED`).
func seeded(_ fallback: UInt64, _ name: String = #function) -> SeededGenerator {
    let seed = SeededGenerator.seedFromEnvironment(default: fallback)
    print("\(name): seed \(seed) (LARDER_TEST_SEED=\(seed) replays it)")
    return SeededGenerator(seed: seed)
}

/// Runs `shipper` (following) while `body` runs, then stops it and returns its summary. The
/// shipper is stopped on every path, so it never outlives the box it reads.
func following(_ shipper: Shipper, _ body: () async throws -> Void) async throws -> ShipSummary {
    let stop = ShipStop()
    let running = Task { try await shipper.run(stop: stop) }
    do {
        try await body()
    } catch {
        // The test failed or was cancelled (its time limit): stop the follower whatever it waits on.
        stop.request()
        running.cancel()
        _ = try? await running.value
        throw error
    }
    stop.request()
    return try await running.value
}

/// The box's checkpoint signing key in the checkpoint tests (a fixed seed: the same key each run).
func checkpointKey(_ name: String = "kitchen-cp", seedByte: UInt8 = 7) throws -> NoteSigningKey {
    try NoteSigningKey(name: name, seed: [UInt8](repeating: seedByte, count: 32))
}

/// The RFC 6962 roots of a store's log at the given sizes, from its own leaf hashes.
func merkleRoots(_ store: Store, sizes: [UInt64]) throws -> [UInt64: MerkleHash] {
    let wanted = Set(sizes)
    let last = sizes.max() ?? 0
    var tree = MerkleRootAccumulator()
    var roots: [UInt64: MerkleHash] = [:]
    try store.read { view in
        var seq: UInt64 = 1
        while seq <= last {
            let page = try view.audit.records(fromSeq: seq, limit: 1_000)
            for entry in page.records where entry.seq <= last {
                tree.append(MerkleHash(bytes: entry.leafHash)!)
                if wanted.contains(tree.size) { roots[tree.size] = tree.root }
            }
            guard let next = page.records.last?.seq, next >= seq else { break }
            seq = next + 1
        }
    }
    return roots
}

/// Checkpoints as a box signs them: every `every` records, the root of seqs 1…n signed by `key`.
func signedCheckpoints(key: NoteSigningKey, every: UInt64) -> ShipCheckpointSource {
    ShipCheckpointSource(verifierKey: { _ in key.verifierKey.description }) { store, after, through in
        let sizes = stride(from: every, through: through, by: Int(every)).filter { $0 > after }
        let roots = try merkleRoots(store, sizes: sizes)
        return try sizes.map { size in
            let checkpoint = try Checkpoint(origin: key.name, treeSize: size, rootHash: roots[size]!)
            return ShippableCheckpoint(treeSize: size, rootHash: checkpoint.rootHash.bytes, signedNote: try checkpoint.signed(by: key))
        }
    }
}
