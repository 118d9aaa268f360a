import Crypto
import Foundation
import Larder
import LarderTesting
import Testing

/// The audit log: sequence numbers, the hash chain as docs/FORMAT.md defines it, the documented byte
/// format, indexes and paged queries.
@Suite("Audit chain")
struct AuditChainTests {
    @Test func aNewStoreStartsWithItsSchemaRecord() throws {
        let temporary = try TemporaryStore()
        let first = try #require(try temporary.store.read { try $0.audit.record(seq: 1) })
        #expect(first.record.event == .schemaMigrated)
        #expect(first.record.actor == .larder)
        let second = try #require(try temporary.store.read { try $0.audit.record(seq: 2) })
        #expect(second.record.event == .policyChanged)
        #expect(second.record.payload.contains("\"creditIssuingAccount\":\"larder.credits.issued\""))
        #expect(try temporary.store.read { try $0.audit.head().seq } == UInt64(initialRecords))
    }

    /// Recomputes every hash with an independent SHA-256 (swift-crypto used directly, not through
    /// Larder) from the formula of docs/FORMAT.md section 4.
    @Test func hashesFollowTheDocumentedFormula() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        for index in 0..<20 {
            try store.write(.test("req-\(index)")) { txn in try txn.note(NoteRequest(order: "o\(index)", amount: index)) }
        }
        let page = try store.read { try $0.audit.records(fromSeq: 1, limit: 100) }
        #expect(page.records.map(\.seq) == Array(1...22))
        var previous = [UInt8](repeating: 0, count: 32)
        for entry in page.records {
            let leaf = Array(SHA256.hash(data: [0x00] + entry.recordBytes))
            let chain = Array(SHA256.hash(data: [0x01] + previous + leaf))
            #expect(entry.leafHash == leaf)
            #expect(entry.chainHash == chain)
            previous = chain
        }
        #expect(try store.read { try $0.audit.head() } == ChainHead(seq: 22, chainHash: previous))
    }

    /// The bytes match docs/FORMAT.md field by field, read here without Larder's decoder.
    @Test func recordBytesMatchTheDocumentedLayout() throws {
        let clock = ManualClock(start: Date(timeIntervalSince1970: 1_795_000_000.25))
        let temporary = try TemporaryStore(clock: clock)
        let context = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: "req-1",
                                   traceID: nil, decisionID: nil)
        try temporary.store.write(context) { txn in
            try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", refs: [.pack("P9"), .order("4411")],
                                           responseType: "delay", payload: "{}"))
        }
        let entry = try #require(try temporary.store.read { try $0.audit.record(seq: 3) })
        var expected: [UInt8] = [1]                                   // format version
        expected += [0, 0, 0, 0, 0, 0, 0, 3]                          // seq, big-endian
        let micros = UInt64(1_795_000_000_250_000)
        expected += (0..<8).map { UInt8(truncatingIfNeeded: micros >> (56 - 8 * $0)) }
        func string(_ s: String) -> [UInt8] {
            let bytes = Array(s.utf8)
            return [0, 0, UInt8(bytes.count >> 8), UInt8(bytes.count & 0xff)] + bytes
        }
        expected += string("ORDER_NOTED") + string("am-17") + string("accountManager") + string("req-1")
        expected += [0]                                               // no traceID
        expected += [0]                                               // no decisionID
        expected += [0, 0, 0, 2] + string("order") + string("4411") + string("pack") + string("P9") // refs, sorted
        expected += [0]                                               // no failure category
        expected += [1] + string("delay")                             // response type
        expected += [0]                                               // no reason code
        expected += string("{}")                                      // payload
        #expect(entry.recordBytes == expected)
        #expect(entry.record.timeMicros == Int64(micros))
    }

    @Test func indexesAnswerByRequestRefAndTime() throws {
        let clock = ManualClock()
        let temporary = try TemporaryStore(clock: clock)
        let store = temporary.store
        let start = clock.now().unixMicros
        for index in 0..<30 {
            clock.advance(seconds: 60)
            try store.write(.test("req-\(index % 3)")) { txn in
                try txn.note(NoteRequest(order: "o\(index % 5)", amount: index))
            }
        }
        try store.read { (view: StoreView) throws in
            let byRequest = try view.audit.records(requestID: "req-1", limit: 100)
            #expect(byRequest.records.count == 10)
            #expect(byRequest.records.allSatisfy { $0.record.requestID == "req-1" })
            let byRef = try view.audit.records(ref: .order("o2"), limit: 100)
            #expect(byRef.records.count == 6)
            #expect(byRef.records.allSatisfy { $0.record.refs.contains(.order("o2")) })
            // Minutes 10 to 19 after the start: the records of writes 9 through 18 (seq 12 to 21).
            let byTime = try view.audit.records(since: start + 10 * 60_000_000, until: start + 20 * 60_000_000, limit: 100)
            #expect(byTime.records.map(\.seq) == Array(12...21))
            #expect(try view.audit.records(requestID: "nobody", limit: 10).records.isEmpty)
        }
    }

    /// Every query type, paged with small limits, returns every record exactly once.
    @Test func pagingCoversEveryRecordExactlyOnce() throws {
        let clock = ManualClock()
        let temporary = try TemporaryStore(clock: clock)
        let store = temporary.store
        let start = clock.now().unixMicros
        for index in 0..<97 {
            if index % 4 == 0 { clock.advance(seconds: 1) } // several records share a timestamp
            try store.write(.test("req-shared")) { txn in try txn.note(NoteRequest(order: "o", amount: index)) }
        }
        func collect(_ pageAt: (String?) throws -> AuditPage) throws -> [UInt64] {
            var seqs: [UInt64] = []
            var cursor: String?
            repeat {
                let page = try pageAt(cursor)
                #expect(page.records.count <= 7)
                seqs += page.records.map(\.seq)
                cursor = page.nextCursor
            } while cursor != nil
            return seqs
        }
        try store.read { (view: StoreView) throws in
            #expect(try collect { try view.audit.records(fromSeq: 1, limit: 7, cursor: $0) } == Array(1...99))
            #expect(try collect { try view.audit.records(fromSeq: 99, limit: 7, direction: .backward, cursor: $0) } == Array((1...99).reversed()))
            #expect(try collect { try view.audit.records(requestID: "req-shared", limit: 7, cursor: $0) } == Array(3...99))
            #expect(try collect { try view.audit.records(ref: .order("o"), limit: 7, cursor: $0) } == Array(3...99))
            #expect(try collect { try view.audit.records(since: start, until: start + 1_000_000_000, limit: 7, cursor: $0) } == Array(1...99))
        }
    }

    @Test func badQueriesAreValidationErrors() throws {
        let temporary = try TemporaryStore()
        try temporary.store.read { (view: StoreView) throws in
            for attempt in [
                { _ = try view.audit.records(fromSeq: 1, limit: 0) },
                { _ = try view.audit.records(fromSeq: 1, limit: 1_001) },
                { _ = try view.audit.records(fromSeq: 1, limit: 5, cursor: "not-a-seq") },
                { _ = try view.audit.records(requestID: "has space", limit: 5) },
                { _ = try view.audit.records(ref: CorrelationRef("Order", "1"), limit: 5) },
                { _ = try view.audit.records(since: 10, until: 5, limit: 5) },
            ] as [() throws -> Void] {
                let error = try #require(throws: LarderError.self) { try attempt() }
                #expect(error.code == .validationFailed)
            }
        }
    }

    @Test func badContextsAreRefusedBeforeAnythingIsWritten() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        let cases: [WriteContext] = [
            .test(""),
            .test(String(repeating: "r", count: 129)),
            .test("req 1"),
            .test("req-1", actor: ""),
            WriteContext(actor: ActorIdentity(id: "a", role: .admin), requestID: "r", traceID: "t\n"),
        ]
        for context in cases {
            let error = try #require(throws: LarderError.self) {
                try store.write(context) { txn in try txn.note(NoteRequest(order: "x", amount: 1)) }
            }
            #expect(error.code == .validationFailed)
            #expect(!error.transactionRolledBack)
        }
        // A decisionID without a request to fingerprint is refused too.
        let error = try #require(throws: LarderError.self) {
            try store.write(.test("req-2", decisionID: "d-1")) { txn in try txn.note(NoteRequest(order: "x", amount: 1)) }
        }
        #expect(error.code == .validationFailed)
        #expect(error.message.contains("fingerprint"))
        #expect(try store.auditCount() == initialRecords)
    }

    @Test func aMalformedDraftIsRefused() throws {
        let temporary = try TemporaryStore()
        let error = try #require(throws: LarderError.self) {
            try temporary.store.write(.test("req-1")) { txn in
                try txn.appendAudit(AuditDraft(event: "X", payload: String(repeating: "x", count: AuditDraft.payloadBytesMax + 1)))
            }
        }
        #expect(error.code == .validationFailed)
        #expect(try temporary.store.auditCount() == initialRecords)
    }

    /// 100,000 records written (a thousand writes of a hundred records each) and verified.
    @Test func aHundredThousandRecordsVerify() throws {
        let temporary = try TemporaryStore(options: .init(durability: .fastUnsafe))
        let store = temporary.store
        for batch in 0..<1_000 {
            try store.write(.test("bulk-\(batch)")) { txn in
                for index in 0..<100 {
                    try txn.appendAudit(AuditDraft(event: "BULK", refs: [.order("o\(index % 50)")],
                                                   payload: "{\"batch\":\(batch),\"index\":\(index)}"))
                }
            }
        }
        var progressCalls = 0
        let report = try store.verify { _ in progressCalls += 1 }
        #expect(report.isIntact, "\(report.problems)")
        #expect(report.recordsChecked == 100_002)
        #expect(report.head.seq == 100_002)
        #expect(progressCalls >= 100_001 / Store.verifyProgressInterval)
    }
}
