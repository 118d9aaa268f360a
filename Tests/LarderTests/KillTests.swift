import Dispatch
import Foundation
import Larder
import LarderTesting
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// kill -9 at seeded random moments: a child process (`larder-fixture chaos`) writes ledger
/// posts, incidents and credit responses, each under a decisionID, from two threads and two
/// tasks, printing each write before it starts and each acknowledgement as it returns. After each
/// kill the store must hold every acknowledged write with its audit record and decision, every
/// write in flight must be all there or not there at all, retries must replay, and verify passes.
///
/// 20 kills by default; `LARDER_KILL_COUNT=200` runs more. `LARDER_TEST_SEED` replays a run.
@Suite("Kill -9")
struct KillTests {
    let fixture = builtProductPath("larder-fixture")

    @Test func everyAcknowledgedWriteSurvivesKill9() async throws {
        let kills = ProcessInfo.processInfo.environment["LARDER_KILL_COUNT"].flatMap { Int($0) } ?? 20
        let seed = SeededGenerator.seedFromEnvironment(default: 20_261_123)
        var random = SeededGenerator(seed: seed)
        let directory = try TemporaryDirectory(prefix: "larder-kill")
        let path = directory.path("store")
        var acknowledged = 0, inFlight = 0, inFlightCommitted = 0, replayed = 0
        for round in 0..<kills {
            // Sometimes right after the child is ready, sometimes well into its writes.
            let target = Int.random(in: 0...80, using: &random)
            let (fixture, run, childSeed) = (fixture, "r\(round)", seed &+ UInt64(round))
            let child = try await onOwnThread {
                try Self.runAndKill(fixture: fixture, path: path, run: run, seed: childSeed, afterAcknowledgements: target)
            }
            #expect(child.killed, "round \(round) (seed \(seed)): the child ended by itself: \(child.errorText)")
            if !child.killed { return }
            let log = ChildLog(child.output)
            #expect(log.errors.isEmpty, "round \(round) (seed \(seed)): the child reported errors: \(log.errors.prefix(3))")

            let store = try Store.open(at: path)
            defer { store.close() }
            try store.read { (view: StoreView) throws in
                for (id, ack) in log.acknowledged {
                    let operation = try #require(log.begun[id], "ACK without BEGIN for \(id)")
                    try Self.expectCommitted(operation, in: view, seq: ack.seq, responseID: ack.detail, round: round, seed: seed)
                }
                for (id, operation) in log.begun where log.acknowledged[id] == nil {
                    if try view.decisions.decision(id: id) != nil {
                        inFlightCommitted += 1
                        try Self.expectCommitted(operation, in: view, seq: nil, responseID: nil, round: round, seed: seed)
                    } else {
                        try Self.expectAbsent(operation, in: view, round: round, seed: seed)
                    }
                }
            }
            // Retries of acknowledged writes replay their first result and write nothing.
            let head = try store.read { view in try view.audit.head().seq }
            for id in log.acknowledged.keys.sorted().prefix(3) {
                let (isReplay, ack) = try KillWorkload.perform(log.begun[id]!, on: store)
                #expect(isReplay, "round \(round) (seed \(seed)): \(id) ran again")
                #expect(ack == log.acknowledged[id], "round \(round) (seed \(seed)): \(id) replayed another result")
                replayed += 1
            }
            #expect(try store.read { view in try view.audit.head().seq } == head)
            let report = try store.verify()
            #expect(report.isIntact, "round \(round) (seed \(seed)): \(report.problems.prefix(3))")
            acknowledged += log.acknowledged.count
            inFlight += log.begun.count - log.acknowledged.count
        }
        print("kill -9: \(kills) kills, \(acknowledged) acknowledged writes, \(inFlight) in flight (\(inFlightCommitted) committed), \(replayed) replays checked (seed \(seed))")
        #expect(acknowledged > 0)
    }

    /// The write is there whole: its decision, its audit record(s) under its requestID and
    /// decisionID, and its domain change.
    static func expectCommitted(_ operation: KillWorkload.Operation, in view: StoreView, seq: UInt64?, responseID: String?,
                                round: Int, seed: UInt64) throws {
        let id = operation.id
        let where_ = "round \(round) (seed \(seed)), \(operation.line)"
        let decision = try #require(try view.decisions.decision(id: id), "no decision: \(where_)")
        if let seq { #expect(decision.auditSeq == seq, "decision seq: \(where_)") }
        let entry = try #require(try view.audit.record(seq: decision.auditSeq), "no audit record: \(where_)")
        #expect(entry.record.decisionID == id && entry.record.requestID == id, "audit record: \(where_)")
        let trail = try view.audit.records(requestID: id, limit: 20).records
        switch operation {
        case .post(_, let customer, let amount):
            let transfer = try #require(try view.ledger.transfer(id: id), "no transfer: \(where_)")
            #expect(transfer.amount == amount && transfer.creditAccount == KillWorkload.customerAccount(customer), "transfer: \(where_)")
            #expect(trail.map(\.record.event) == [.ledgerTransferPosted], "records: \(where_)")
        case .incident:
            #expect(try view.incidents.incident(id: id) != nil, "no incident: \(where_)")
            #expect(trail.map(\.record.event) == [.opFailureRecorded], "records: \(where_)")
        case .credit(_, let incidentID, _, let amount):
            let incident = try #require(try view.incidents.incident(id: incidentID), "no incident: \(where_)")
            let seqs = Set(trail.map(\.seq))
            let response = try #require(incident.responses.first { seqs.contains($0.auditSeq) }, "no response: \(where_)")
            if let responseID { #expect(response.id == responseID, "response id: \(where_)") }
            let transfer = try #require(try response.transferID.flatMap { try view.ledger.transfer(id: $0) }, "no credit transfer: \(where_)")
            #expect(transfer.amount == amount, "credit amount: \(where_)")
            #expect(trail.contains { $0.record.event == .opCreditGranted }, "records: \(where_)")
        }
    }

    /// A write that did not commit left nothing: no decision, no audit record, no domain change.
    static func expectAbsent(_ operation: KillWorkload.Operation, in view: StoreView, round: Int, seed: UInt64) throws {
        let where_ = "round \(round) (seed \(seed)), \(operation.line)"
        #expect(try view.audit.records(requestID: operation.id, limit: 1).records.isEmpty, "half a write: \(where_)")
        switch operation {
        case .post: #expect(try view.ledger.transfer(id: operation.id) == nil, "half a write: \(where_)")
        case .incident: #expect(try view.incidents.incident(id: operation.id) == nil, "half a write: \(where_)")
        case .credit: break
        }
    }

    struct Child {
        let output: String
        let errorText: String
        let killed: Bool
    }

    /// Runs the chaos child until it has printed `count` acknowledgements, then kills it with
    /// SIGKILL and returns everything it printed.
    static func runAndKill(fixture: String, path: String, run: String, seed: UInt64,
                           afterAcknowledgements count: Int) throws -> Child {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: fixture)
        process.arguments = ["chaos", path, run, String(seed)]
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let pid = process.processIdentifier
        let killed = Atomic<Bool>(false)
        // A safety net against a child that hangs, not a timing assertion.
        DispatchQueue.global().asyncAfter(deadline: .now() + 120) {
            if !killed.exchange(true, ordering: .relaxed) { kill(pid, SIGKILL) }
        }
        var data = Data()
        var acknowledgements = 0, ready = false
        var scanned = 0
        let reader = output.fileHandleForReading
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            data.append(chunk)
            guard !killed.load(ordering: .relaxed) else { continue }
            // Count complete lines only.
            while let newline = data[scanned...].firstIndex(of: 0x0A) {
                let line = data[scanned..<newline]
                if line.starts(with: Array("READY".utf8)) { ready = true }
                if line.starts(with: Array("ACK ".utf8)) { acknowledgements += 1 }
                scanned = newline + 1
            }
            if ready && acknowledgements >= count && !killed.exchange(true, ordering: .relaxed) {
                kill(pid, SIGKILL)
            }
        }
        process.waitUntilExit()
        let errorText = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let bySignal = process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL
        return Child(output: String(decoding: data, as: UTF8.self), errorText: errorText, killed: bySignal)
    }

    /// What the child printed.
    struct ChildLog {
        var begun: [String: KillWorkload.Operation] = [:]
        var acknowledged: [String: KillWorkload.Acknowledgement] = [:]
        var errors: [String] = []

        init(_ text: String) {
            // A line cut by the kill is not a complete line: only lines ending in a newline count.
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            lines.removeLast()
            for line in lines {
                if line.hasPrefix("BEGIN "), let operation = KillWorkload.Operation(line: line.dropFirst(6)) {
                    begun[operation.id] = operation
                } else if line.hasPrefix("ACK "), let ack = KillWorkload.Acknowledgement(line: line.dropFirst(4)) {
                    acknowledged[ack.id] = ack
                } else if line.hasPrefix("ERR ") {
                    errors.append(String(line))
                }
            }
        }
    }
}
