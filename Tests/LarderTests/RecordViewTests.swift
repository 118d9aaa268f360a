import Foundation
import Larder
import LarderTesting
import Testing

/// Zero-copy record views against the owned, decoded values, on seeded random stores: every
/// field a view reads in place must equal the decoded record's, its JSON must be the decoded
/// entry's byte for byte, and a scan through views must visit what a page of records holds.
@Suite("Record views")
struct RecordViewTests {
    static let events: [AuditEvent] = ["ORDER_NOTED", "NOTE_CORRECTED", "SHIFT_CLOSED", "É_NON_ASCII_EVENT"]
    static let characters: [String] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{1F}", "é", "€", "\u{2028}", "😀", "𝄞"]

    static func randomText(_ random: inout SeededGenerator) -> String {
        (0..<Int.random(in: 0...12, using: &random)).map { _ in characters.randomElement(using: &random)! }.joined()
    }

    /// A store with `count` random records (on top of the initial ones): with and without trace
    /// and decision ids, 0–4 refs in any order, the optional failure fields, non-ASCII and
    /// escaped payloads; and a few ledger transfers.
    static func randomStore(seed: UInt64, count: Int) throws -> TemporaryStore {
        var random = SeededGenerator(seed: seed)
        let temporary = try TemporaryStore()
        let store = temporary.store
        for index in 0..<count {
            let trace: String? = Bool.random(using: &random) ? "trace-\(index)" : nil
            let context = WriteContext(actor: ActorIdentity(id: "actor-\(index % 3)", role: Role.allCases.randomElement(using: &random)!),
                                       requestID: "req-\(index)", traceID: trace)
            let refs = (0..<Int.random(in: 0...4, using: &random)).map { _ in
                CorrelationRef(["order", "pack", "customer", "z_kind"].randomElement(using: &random)!, "id-\(Int.random(in: 0...5, using: &random))")
            }
            var payload = JSONWriter()
            payload.object { o in
                o.field("text", randomText(&random))
                o.field("n", Int.random(in: -1_000...1_000, using: &random))
            }
            let optional: () -> String? = { Bool.random(using: &random) ? "code.\(index)" : nil }
            let draft = AuditDraft(event: events.randomElement(using: &random)!, refs: refs, failureCategory: optional(),
                                   responseType: optional(), reasonCode: optional(), payload: payload.text)
            try store.write(context) { txn in try txn.appendAudit(draft) }
        }
        try store.write(.test("accounts")) { txn in
            try txn.ledger.createAccount(NewAccount(id: "a.packs", ledger: "packs", code: 1))
            try txn.ledger.createAccount(NewAccount(id: "b.packs", ledger: "packs", code: 2, refs: [.customer("17")]))
        }
        for index in 0..<8 {
            let amount = UInt64.random(in: 1...1_000_000, using: &random)
            let request: TransferRequest = index % 3 == 2
                ? .pending(id: "t-\(index)", debit: "a.packs", credit: "b.packs", amount: amount, code: 7)
                : .transfer(id: "t-\(index)", debit: "a.packs", credit: "b.packs", amount: amount, refs: [.order("o-\(index)")])
            _ = try store.post(request, context: .test("post-\(index)", decisionID: index % 2 == 0 ? "d-\(index)" : nil))
        }
        return temporary
    }

    @Test func viewsAgreeWithDecodedRecords() throws {
        let seed = SeededGenerator.seedFromEnvironment(default: 0x71E_5EED)
        let temporary = try Self.randomStore(seed: seed, count: 120)
        let store = temporary.store
        try store.read { view in
            let head = try view.audit.head().seq
            for seq in 1...head {
                let entry = try #require(try view.audit.record(seq: seq), "seed \(seed) seq \(seq)")
                let record = entry.record
                let recordView = try #require(try view.audit.recordView(seq: seq), "seed \(seed) seq \(seq)")
                #expect(recordView.seq == record.seq)
                #expect(recordView.timeMicros == record.timeMicros)
                #expect(try recordView.event == record.event)
                #expect(recordView.isEvent(record.event))
                #expect(!recordView.isEvent(AuditEvent(rawValue: "NOT_" + record.event.rawValue)))
                #expect(try recordView.actor == record.actor)
                #expect(try recordView.requestID == record.requestID)
                #expect(try recordView.traceID == record.traceID)
                #expect(try recordView.decisionID == record.decisionID)
                #expect(try recordView.refs == record.refs)
                #expect(try recordView.refCount == record.refs.count)
                var visited: [CorrelationRef] = []
                try recordView.forEachRef { visited.append($0) }
                #expect(visited == record.refs)
                for ref in record.refs { #expect(try recordView.hasRef(ref)) }
                #expect(try !recordView.hasRef(CorrelationRef("absent", "ref")))
                #expect(try recordView.failureCategory == record.failureCategory)
                #expect(try recordView.responseType == record.responseType)
                #expect(try recordView.reasonCode == record.reasonCode)
                #expect(try recordView.payload == record.payload)
                #expect(try recordView.withPayloadUTF8 { Array($0) } == Array(record.payload.utf8))
                #expect(recordView.withRecordBytes { Array($0) } == entry.recordBytes)
                #expect(recordView.leafHash == entry.leafHash)
                #expect(recordView.chainHash == entry.chainHash)
                #expect(try recordView.decoded() == entry)

                // The view's JSON, the entry's (from its bytes) and the entry's from its decoded
                // fields are the same bytes.
                var fromView = JSONWriter()
                try recordView.writeJSON(to: &fromView)
                #expect(fromView.text == entry.jsonText, "seed \(seed) seq \(seq)")
                var fromFields = JSONWriter()
                entry.writeJSONFromFields(to: &fromFields)
                #expect(fromFields.utf8 == fromView.utf8, "seed \(seed) seq \(seq)")
            }
            #expect(try view.audit.recordView(seq: head + 1)?.seq == nil)
        }
    }

    @Test(arguments: [ScanDirection.forward, .backward])
    func scansThroughViewsVisitWhatPagesHold(direction: ScanDirection) throws {
        let seed = SeededGenerator.seedFromEnvironment(default: 0x5CA_4)
        var random = SeededGenerator(seed: seed)
        let temporary = try Self.randomStore(seed: seed, count: 40)
        let store = temporary.store
        try store.read { view in
            let head = try view.audit.head().seq
            for _ in 0..<30 {
                let from = UInt64.random(in: 0...(head + 2), using: &random)
                let limit = Int.random(in: 1...20, using: &random)
                let page = try view.audit.records(fromSeq: from, limit: limit, direction: direction)
                var seen: [AuditEntry] = []
                let next = try view.audit.forEachRecord(fromSeq: from, limit: limit, direction: direction) { record in
                    seen.append(try record.decoded())
                }
                #expect(seen == page.records, "seed \(seed) from \(from) limit \(limit)")
                #expect(next.map(String.init) == page.nextCursor, "seed \(seed) from \(from) limit \(limit)")
            }
        }
    }

    @Test func transferViewsAgreeWithDecodedTransfers() throws {
        let seed = SeededGenerator.seedFromEnvironment(default: 0x7_4A5F)
        let temporary = try Self.randomStore(seed: seed, count: 4)
        try temporary.store.read { view in
            for index in 0..<8 {
                let transfer = try #require(try view.ledger.transfer(id: "t-\(index)"))
                let transferView = try #require(try view.ledger.transferView(id: "t-\(index)"))
                #expect(transferView.id == transfer.id)
                #expect(transferView.amount == transfer.amount)
                #expect(try transferView.kind == transfer.kind)
                #expect(try transferView.debitAccount == transfer.debitAccount)
                #expect(try transferView.creditAccount == transfer.creditAccount)
                #expect(try transferView.ledger == transfer.ledger)
                #expect(try transferView.code == transfer.code)
                #expect(try transferView.refs == transfer.refs)
                #expect(try transferView.target == transfer.target)
                #expect(try transferView.timeMicros == transfer.timeMicros)
                #expect(try transferView.auditSeq == transfer.auditSeq)
                #expect(try transferView.decoded() == transfer)
            }
            #expect(try view.ledger.transferView(id: "t-absent")?.amount == nil)
        }
    }

    @Test func aThrowingBodyEndsTheScan() throws {
        struct Stop: Error {}
        let temporary = try TemporaryStore()
        var visited = 0
        #expect(throws: Stop.self) {
            try temporary.store.read { view in
                try view.audit.forEachRecord(limit: 10) { _ in
                    visited += 1
                    throw Stop()
                }
            }
        }
        #expect(visited == 1)
    }

    /// `isEvent` compares word by word with an overlapping last word: it must agree with `==` on
    /// the decoded event for names of every length around the word size, names that differ only
    /// in their first or last byte, prefixes and extensions, and the empty name.
    @Test func isEventAgreesWithTheDecodedEvent() throws {
        let seed = SeededGenerator.seedFromEnvironment(default: 0x15_E7E)
        var random = SeededGenerator(seed: seed)
        let temporary = try TemporaryStore()
        let store = temporary.store
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ_é")
        var names: [AuditEvent] = []
        for length in 1...34 {
            names.append(AuditEvent(rawValue: String((0..<length).map { _ in alphabet.randomElement(using: &random)! })))
        }
        for (index, name) in names.enumerated() {
            try store.write(.test("e-\(index)")) { txn in try txn.appendAudit(AuditDraft(event: name, payload: "{}")) }
        }
        try store.read { view in
            try view.audit.forEachRecord(limit: 1_000) { record in
                let event = try record.event
                let utf8 = Array(event.rawValue.utf8)
                var candidates: [AuditEvent] = [event, "", AuditEvent(rawValue: event.rawValue + "X"), AuditEvent(rawValue: "X" + event.rawValue)]
                candidates += names
                if !utf8.isEmpty {
                    candidates.append(AuditEvent(rawValue: String(decoding: utf8.dropLast(), as: UTF8.self)))
                    for index in [0, utf8.count / 2, utf8.count - 1] where utf8[index] < 0x80 {
                        var changed = utf8
                        changed[index] = changed[index] == UInt8(ascii: "Q") ? UInt8(ascii: "R") : UInt8(ascii: "Q")
                        candidates.append(AuditEvent(rawValue: String(decoding: changed, as: UTF8.self)))
                    }
                }
                for candidate in candidates {
                    #expect(record.isEvent(candidate) == (candidate == event),
                            "seed \(seed): \(event.rawValue) against \(candidate.rawValue)")
                }
            }
        }
    }

    /// A view made in a write transaction after its last write reads normally: only the views made
    /// before a write end with it.
    @Test func aViewMadeAfterAWriteInTheSameTransactionIsValid() throws {
        let temporary = try TemporaryStore()
        let seq = try temporary.store.write(.test("after")) { txn in
            let before = try txn.view.audit.head().seq
            try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", payload: "{}"))
            var seen: [UInt64] = []
            try txn.view.audit.forEachRecord(fromSeq: before, limit: 10) { record in seen.append(record.seq) }
            #expect(seen == [before, before + 1])
            return try #require(try txn.view.audit.recordView(seq: before + 1)).seq
        }
        #expect(seq.result > 1)
    }

    /// A view used after its read closure returned stops the process (its bytes belong to a
    /// snapshot that is gone) rather than reading freed memory.
    @Test func aViewThatEscapesItsClosureStopsTheProcess() async {
        await #expect(processExitsWith: .signal(SIGILL)) {
            let temporary = try TemporaryStore()
            let escaped = try temporary.store.read { view in try view.audit.recordView(seq: 1) }
            _ = escaped?.seq
        }
    }

    /// A view made in a write transaction is invalid once that transaction writes again: the
    /// put may have moved the page its bytes lay on.
    @Test func aViewUsedAfterItsTransactionWroteStopsTheProcess() async {
        await #expect(processExitsWith: .signal(SIGILL)) {
            let temporary = try TemporaryStore()
            try temporary.store.write(.test("escape")) { txn in
                let record = try txn.view.audit.recordView(seq: 1)
                try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", payload: "{}"))
                _ = record?.seq
            }
        }
    }

    /// A view kept from a scan is stopped even after later reads reused what its snapshot's views
    /// checked: whichever transaction holds its check by then, the view finds it moved on.
    @Test func aViewFromAScanStopsTheProcessAfterLaterReads() async {
        await #expect(processExitsWith: .signal(SIGILL)) {
            let temporary = try TemporaryStore()
            var kept: [AuditRecordView] = []
            try temporary.store.read { view in
                try view.audit.forEachRecord(limit: 10) { record in kept.append(record) }
            }
            for _ in 0..<3 {
                let count = try temporary.store.read { view in
                    var count = 0
                    try view.audit.forEachRecord(limit: 10) { record in count += record.seq > 0 ? 1 : 0 }
                    return count
                }
                precondition(count == kept.count, "later reads see the same records")
            }
            _ = kept.first?.timeMicros
        }
    }

    /// A transfer view that escaped its read closure stops the process too.
    @Test func aTransferViewThatEscapesItsClosureStopsTheProcess() async {
        await #expect(processExitsWith: .signal(SIGILL)) {
            let temporary = try RecordViewTests.randomStore(seed: 1, count: 0)
            let escaped = try temporary.store.read { view in try view.ledger.transferView(id: "t-0") }
            _ = escaped?.amount
        }
    }
}
