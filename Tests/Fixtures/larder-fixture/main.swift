// A second process for the multi-process, kill and disk-full tests.
//
//   larder-fixture write PATH COUNT ACTOR [PAD]  — COUNT writes of one audit record each, with PAD
//                                                 bytes of payload padding (to grow the store)
//   larder-fixture head PATH                     — opens read-only, prints "HEAD <seq> <records>"
//   larder-fixture create PATH                   — creates (or opens) a store, writes one record,
//                                                 prints "CREATED <head seq>"
//   larder-fixture chaos PATH RUN SEED           — writes the kill test's workload from two threads
//                                                 and two tasks until killed, printing
//                                                 "BEGIN <operation>" before and "ACK <…>" after
//                                                 each write (KillWorkload)
//
// Errors print the error contract's JSON body on standard error and exit with status 1.
import Foundation
import Larder
import LarderTesting
import Synchronization

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: larder-fixture write PATH COUNT ACTOR | head PATH | create PATH | chaos PATH RUN SEED\n".utf8))
    exit(2)
}
do {
    switch arguments[1] {
    case "write":
        let store = try Store.open(at: arguments[2])
        let count = Int(arguments[3]) ?? 0
        let actor = ActorIdentity(id: arguments[4], role: .system)
        let pad = arguments.count > 5 ? String(repeating: "p", count: Int(arguments[5]) ?? 0) : ""
        for index in 0..<count {
            let context = WriteContext(actor: actor, requestID: "\(arguments[4])-\(index)")
            try store.write(context) { txn in
                try txn.appendAudit(AuditDraft(event: "FIXTURE_NOTE", refs: [CorrelationRef("writer", arguments[4])],
                                               payload: "{\"pad\":\"\(pad)\"}"))
            }
        }
        store.close()
        print("WROTE \(count)")
    case "head":
        let store = try Store.open(at: arguments[2], options: .init(readOnly: true))
        let (head, count) = try store.read { view in (try view.audit.head(), try view.audit.count()) }
        print("HEAD \(head.seq) \(count)")
        store.close()
    case "create":
        let store = try Store.open(at: arguments[2])
        try store.write(WriteContext(actor: ActorIdentity(id: "fixture", role: .system), requestID: "create")) { txn in
            try txn.appendAudit(AuditDraft(event: "FIXTURE_NOTE"))
        }
        let head = try store.read { view in try view.audit.head() }
        store.close()
        print("CREATED \(head.seq)")
    case "chaos":
        try Chaos(path: arguments[2], runName: arguments[3], seed: UInt64(arguments[4]) ?? 1).start()
    default:
        exit(2)
    }
} catch let error as LarderError {
    // The status only says "failed"; tests read the error contract's body for the code.
    FileHandle.standardError.write(Data((error.jsonBody + "\n").utf8))
    exit(1)
}

/// The kill test's child: writes until killed, printing each operation before it starts and
/// each acknowledgement as soon as its write returns.
struct Chaos: Sendable {
    let path: String
    let runName: String
    let seed: UInt64

    /// Whole lines only: two workers' lines must not interleave.
    static let output = Mutex<Void>(())

    static func say(_ line: String) {
        output.withLock { _ in
            let bytes = Array((line + "\n").utf8)
            bytes.withUnsafeBytes { raw in _ = Foundation.write(1, raw.baseAddress, raw.count) }
        }
    }

    func start() throws {
        let store = try Store.open(at: path)
        try KillWorkload.setUp(store)
        Self.say("READY")
        for worker in 0..<2 {
            Thread { self.work(worker, store: store) }.start()
        }
        for worker in 2..<4 {
            Task.detached { await self.workAsync(worker, store: store) }
        }
        // Until killed.
        while true { sleep(60) }
    }

    /// The next operation of a worker: mostly posts, some incidents, and credits on incidents
    /// this worker recorded and saw acknowledged.
    func next(_ worker: Int, _ number: Int, _ random: inout SeededGenerator, incidents: [String],
              allowCredits: Bool) -> KillWorkload.Operation {
        let id = "\(runName)-w\(worker)-\(number)"
        let customer = Int.random(in: 0..<KillWorkload.customerCount, using: &random)
        let amount = UInt64.random(in: 1...500, using: &random)
        switch Int.random(in: 0..<10, using: &random) {
        case 0..<5: return .post(id: id, customer: customer, amount: amount)
        case 5..<7: return .incident(id: id, number: number)
        default:
            guard allowCredits, let incident = incidents.randomElement(using: &random) else { return .incident(id: id, number: number) }
            return .credit(id: id, incident: incident, customer: customer, amount: amount)
        }
    }

    func work(_ worker: Int, store: Store) {
        var random = SeededGenerator(seed: seed &+ UInt64(worker))
        var incidents: [String] = []
        for number in 1... {
            let operation = next(worker, number, &random, incidents: incidents, allowCredits: true)
            Self.say("BEGIN \(operation.line)")
            do {
                let ack = try KillWorkload.perform(operation, on: store).ack
                Self.say("ACK \(ack.line)")
                if case .incident = operation { incidents.append(operation.id) }
            } catch {
                Self.say("ERR \(operation.kind) \(operation.id) \((error as? LarderError)?.code.rawValue ?? "\(error)")")
            }
        }
    }

    func workAsync(_ worker: Int, store: Store) async {
        var random = SeededGenerator(seed: seed &+ UInt64(worker))
        for number in 1... {
            let operation = next(worker, number, &random, incidents: [], allowCredits: false)
            Self.say("BEGIN \(operation.line)")
            do {
                let ack = try await KillWorkload.performAsync(operation, on: store)
                Self.say("ACK \(ack.line)")
            } catch {
                Self.say("ERR \(operation.kind) \(operation.id) \((error as? LarderError)?.code.rawValue ?? "\(error)")")
            }
        }
    }
}
