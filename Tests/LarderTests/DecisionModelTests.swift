import Foundation
import Larder
import LarderStorage
import LarderTesting
import Testing

/// Threads and tasks write at once under shared decisionIDs — notes, ledger transfers, incident
/// reports and responses, the same request or another one, by the same actor or another — on a
/// roomy map and on a tiny one that fills up (STORAGE_UNAVAILABLE). ``DecisionModel`` then checks
/// that every decisionID has exactly one outcome, that replays return the stored bytes, that
/// conflicts wrote nothing and that the audit log holds exactly one record set per committed
/// decision. Set `LARDER_TEST_SEED` to vary the writers' choices and `LARDER_MODEL_STEPS` for
/// more calls per writer.
@Suite("Decisions under concurrent writers")
struct DecisionModelTests {
    /// A note padded to fill the map quickly.
    struct PadNote: FingerprintedRequest, Hashable {
        static let operationName = "test.pad_note"
        let decision: String
        let variant: Int
        let padBytes: Int
    }

    struct PadResult: Codable, Sendable, Hashable {
        let seq: UInt64
        let variant: Int
    }

    enum Kind: String, CaseIterable, Sendable {
        case note, transfer, incident, delay
    }

    /// One call: which decision, what request, by whom.
    struct Call: Sendable {
        let decision: String
        let kind: Kind
        let variant: Int
        let actor: ActorIdentity
        let requestID: String

        var key: String { "\(kind.rawValue)/\(variant)/\(actor.id)" }
        var context: WriteContext { WriteContext(actor: actor, requestID: requestID, decisionID: decision) }
        var note: PadNote { PadNote(decision: decision, variant: variant, padBytes: 1_500 + 1_500 * variant) }
        var transfer: TransferRequest { .transfer(id: "t-\(decision)-\(variant)", debit: "src", credit: "dst", amount: UInt64(variant + 1)) }
        var report: IncidentReport {
            IncidentReport(category: .supply, severity: .p3, summary: "s-\(decision)-\(variant)", source: "detector")
        }
        var delay: IncidentResponse { .delay(revisedTimeMicros: 4_000_000_000_000_000, subject: .order("o-\(variant)")) }
    }

    static let decisionsCount = 96
    static let actors = [ActorIdentity(id: "am-1", role: .accountManager), ActorIdentity(id: "am-2", role: .accountManager)]

    static var callsPerWriter: Int {
        if let text = ProcessInfo.processInfo.environment["LARDER_MODEL_STEPS"], let steps = Int(text) { return max(10, steps / 10) }
        return 120
    }

    /// The calls of one writer, from its own seeded generator.
    static func calls(writer: Int, seed: UInt64) -> [Call] {
        var random = SeededGenerator(seed: seed &+ UInt64(writer) &* 0x9E37_79B9)
        return (0..<callsPerWriter).map { index in
            let number = Int.random(in: 0..<decisionsCount, using: &random)
            // Each decision has a home kind; now and then another kind reuses its id.
            let home = Kind.allCases[number % Kind.allCases.count]
            var kind = Int.random(in: 0..<10, using: &random) == 0 ? Kind.allCases.randomElement(using: &random)! : home
            // Responses have no async form: tasks (writers 3 and up) send notes instead.
            if writer >= 3, kind == .delay { kind = .note }
            let variant = Int.random(in: 0..<10, using: &random) < 7 ? 0 : Int.random(in: 1...2, using: &random)
            let actor = Int.random(in: 0..<10, using: &random) == 0 ? actors[1] : actors[0]
            return Call(decision: "d-\(number)", kind: kind, variant: variant, actor: actor, requestID: "w\(writer)-\(index)")
        }
    }

    /// A call on the calling thread, through the Store's own operations.
    static func runBlocking(_ call: Call, store: Store, decisions: DecisionModel) {
        switch call.kind {
        case .note:
            let note = call.note
            decisions.observe(decisionID: call.decision, request: call.key, requestID: call.requestID) {
                try store.write(call.context, request: note) { txn in try Self.write(note, txn) }
            }
        case .transfer:
            decisions.observe(decisionID: call.decision, request: call.key, requestID: call.requestID) {
                try store.post(call.transfer, context: call.context)
            }
        case .incident:
            decisions.observe(decisionID: call.decision, request: call.key, requestID: call.requestID) {
                try store.recordIncident(call.report, context: call.context)
            }
        case .delay:
            decisions.observe(decisionID: call.decision, request: call.key, requestID: call.requestID) {
                try store.apply(call.delay, to: "shared", context: call.context)
            }
        }
    }

    /// A call from a task, through the async write.
    static func runAsync(_ call: Call, store: Store) async -> DecisionModel.Seen {
        do {
            let bytes: [UInt8]?
            let committed: Bool
            let seq: UInt64?
            switch call.kind {
            case .note:
                let note = call.note
                let outcome = try await store.write(call.context, request: note) { txn in try Self.write(note, txn) }
                (bytes, committed, seq) = (outcome.storedResult, outcome.kind == .committed, outcome.auditSeq)
            case .transfer:
                let transfer = call.transfer
                let outcome = try await store.write(call.context, request: transfer) { txn in try txn.ledger.post(transfer) }
                (bytes, committed, seq) = (outcome.storedResult, outcome.kind == .committed, outcome.auditSeq)
            case .incident:
                let report = call.report
                let outcome = try await store.write(call.context, request: report) { txn in try txn.incidents.record(report) }
                (bytes, committed, seq) = (outcome.storedResult, outcome.kind == .committed, outcome.auditSeq)
            case .delay:
                preconditionFailure("responses have no async form; calls(writer:seed:) gives tasks none")
            }
            return committed ? .committed(auditSeq: seq, storedResult: bytes ?? []) : .replayed(auditSeq: seq, storedResult: bytes ?? [])
        } catch let error as LarderError {
            return .failed(error.code, message: error.message)
        } catch {
            return .failed(LarderError.Code(rawValue: "UNEXPECTED"), message: "\(error)")
        }
    }

    static func write(_ note: PadNote, _ txn: StoreTransaction) throws -> PadResult {
        try txn.rawPutForTesting(table: "meta", key: Array("note.\(note.decision)".utf8), value: Array("\(note.variant)".utf8))
        let entry = try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", refs: [.order(note.decision)],
                                                   payload: "{\"pad\":\"" + String(repeating: "p", count: note.padBytes) + "\"}"))
        return PadResult(seq: entry.seq, variant: note.variant)
    }

    @Test(arguments: [false, true])
    func concurrentWritersShareDecisionIDs(tinyMap: Bool) async throws {
        let seed = SeededGenerator.seedFromEnvironment(default: 0xDEC1_5105)
        var options = Store.Options(durability: .fastUnsafe)
        if tinyMap {
            options.limits.mapSizeBytesInitial = 256 << 10
            options.limits.mapSizeBytesMax = 256 << 10
        }
        let temporary = try TemporaryStore(options: options)
        let store = temporary.store
        try await store.write(WriteContext(actor: .larder, requestID: "setup")) { txn in
            try txn.ledger.createAccount(NewAccount(id: "src", ledger: "x"))
            try txn.ledger.createAccount(NewAccount(id: "dst", ledger: "x"))
            try txn.incidents.record(IncidentReport(id: "shared", category: .delivery, severity: .p3, summary: "shared", source: "detector"))
        }
        let initial = try store.auditCount()
        let decisions = DecisionModel()

        // Three threads with blocking calls and three tasks with async ones, all at once.
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<3 {
                group.addTask {
                    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                        Thread {
                            for call in Self.calls(writer: writer, seed: seed) { Self.runBlocking(call, store: store, decisions: decisions) }
                            done.resume()
                        }.start()
                    }
                }
            }
            for writer in 3..<6 {
                group.addTask {
                    for call in Self.calls(writer: writer, seed: seed) {
                        let seen = await Self.runAsync(call, store: store)
                        decisions.observe(decisionID: call.decision, request: call.key, requestID: call.requestID, seen)
                    }
                }
            }
        }

        let tally = decisions.tally
        let problems = try decisions.problems(in: store, allowedFailures: tinyMap ? [.storageUnavailable] : [],
                                              initialAuditCount: initial, recordsPerWrite: { _ in 1 })
        #expect(problems.isEmpty, "seed \(seed), tiny map \(tinyMap), \(tally):\n\(problems.prefix(20).joined(separator: "\n"))")
        #expect(tally["committed", default: 0] > 0, "seed \(seed): \(tally)")
        #expect(tally["replayed", default: 0] > 0, "seed \(seed): \(tally)")
        #expect(tally["CONFLICT", default: 0] > 0, "seed \(seed): \(tally)")
        if tinyMap { #expect(tally["STORAGE_UNAVAILABLE", default: 0] > 0, "seed \(seed): the map never filled: \(tally)") }

        // The domain effects are the winners' only.
        let winners = Dictionary(decisions.all.compactMap { observation -> (String, String)? in
            if case .committed = observation.seen { return (observation.decisionID, observation.request) }
            return nil
        }, uniquingKeysWith: { first, _ in first })
        for number in 0..<Self.decisionsCount {
            let id = "d-\(number)"
            let winner = winners[id]?.split(separator: "/").map(String.init)
            let note = try store.environmentForTesting.rawGet(table: "meta", key: Array("note.\(id)".utf8))
                .map { String(decoding: $0, as: UTF8.self) }
            #expect(note == (winner?[0] == "note" ? winner?[1] : nil), "seed \(seed): \(id) note \(String(describing: note)), winner \(String(describing: winner))")
            for variant in 0..<3 {
                let exists = try store.read { try $0.ledger.transfer(id: "t-\(id)-\(variant)") } != nil
                #expect(exists == (winner?[0] == "transfer" && winner?[1] == "\(variant)"), "seed \(seed): transfer t-\(id)-\(variant)")
            }
        }
        let reports = try store.read { try $0.incidents.incidents(limit: 500).incidents }.filter { $0.id != "shared" }
        #expect(reports.count == winners.values.filter { $0.hasPrefix("incident/") }.count, "seed \(seed)")
        let delays = try #require(try store.read { try $0.incidents.incident(id: "shared") }).responses.count
        #expect(delays == winners.values.filter { $0.hasPrefix("delay/") }.count, "seed \(seed)")
        #expect(try store.verify().isIntact)
    }
}
