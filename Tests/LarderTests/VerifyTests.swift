import Foundation
import Larder
import LarderStorage
import LarderTesting
import Testing

/// verify names the first broken record: each test damages a copy of a healthy store through
/// the test-only raw path.
@Suite("Verify")
struct VerifyTests {
    /// A healthy store of 42 records, copied for each damage.
    static func makeCopy() throws -> (TemporaryDirectory, Store) {
        let temporary = try TemporaryStore()
        for index in 0..<40 {
            try temporary.store.write(.test("req-\(index)")) { txn in try txn.note(NoteRequest(order: "o\(index % 4)", amount: index)) }
        }
        #expect(try temporary.store.verify().isIntact)
        let directory = try TemporaryDirectory(prefix: "larder-copy")
        try temporary.store.copy(to: directory.path("copy"))
        let copy = try Store.open(at: directory.path("copy"))
        return (directory, copy)
    }

    static func auditValue(_ store: Store, _ seq: UInt64) throws -> [UInt8] {
        try #require(try store.environmentForTesting.rawGet(table: "audit", key: seq.encodedKey))
    }

    @Test func aHealthyCopyVerifies() throws {
        let (directory, copy) = try Self.makeCopy()
        defer { copy.close(); _ = directory }
        let report = try copy.verify()
        #expect(report.isIntact)
        #expect(report.recordsChecked == 42)
        #expect(report.head.seq == 42)
    }

    /// Flipping any single byte of a record's stored value is found at that record, whether it
    /// lands in the record bytes, its leaf hash or its chain hash.
    @Test(arguments: [0, 9, 30, -64, -40, -32, -1])
    func aFlippedByteIsNamed(offset: Int) throws {
        let (directory, copy) = try Self.makeCopy()
        defer { copy.close(); _ = directory }
        var value = try Self.auditValue(copy, 17)
        let index = offset >= 0 ? offset : value.count + offset
        value[index] ^= 0x01
        try copy.environmentForTesting.rawPut(table: "audit", key: UInt64(17).encodedKey, value: value)
        let report = try copy.verify()
        #expect(!report.isIntact)
        #expect(report.firstBrokenSeq == 17, "\(report.problems)")
        #expect(report.problems.first?.seq == 17)
    }

    @Test func aRemovedRecordIsAGap() throws {
        let (directory, copy) = try Self.makeCopy()
        defer { copy.close(); _ = directory }
        try copy.environmentForTesting.rawDelete(table: "audit", key: UInt64(20).encodedKey)
        let report = try copy.verify()
        #expect(report.problems.contains { $0.kind == .gap && $0.seq == 21 })
        #expect(report.problems.contains { $0.kind == .danglingIndexEntry && $0.seq == 20 })
        #expect(report.firstBrokenSeq == 20)
    }

    /// Schema 2 keeps no chain head in meta: a record cut off the end still leaves its index
    /// entries, which point nowhere. (An anchor or checkpoint kept off the box sees the rest.)
    @Test func aTruncatedTailLeavesItsIndexEntriesDangling() throws {
        let (directory, copy) = try Self.makeCopy()
        defer { copy.close(); _ = directory }
        try copy.environmentForTesting.rawDelete(table: "audit", key: UInt64(42).encodedKey)
        let report = try copy.verify()
        #expect(report.problems.contains { $0.kind == .danglingIndexEntry && $0.seq == 42 && $0.table == "index/request" },
                "\(report.problems)")
    }

    @Test func aMissingIndexEntryIsNamed() throws {
        let (directory, copy) = try Self.makeCopy()
        defer { copy.close(); _ = directory }
        try copy.environmentForTesting.rawDelete(table: "index", key: IndexKey.of(IndexKey.request, KeyPair("req-10", UInt64(13))))
        let report = try copy.verify()
        #expect(report.problems.count == 1)
        #expect(report.problems.first?.kind == .missingIndexEntry)
        #expect(report.problems.first?.seq == 13)
        #expect(report.problems.first?.table == "index/request")
    }

    @Test func anIndexEntryPointingNowhereIsNamed() throws {
        let (directory, copy) = try Self.makeCopy()
        defer { copy.close(); _ = directory }
        try copy.environmentForTesting.rawPut(table: "index", key: IndexKey.of(IndexKey.ref, KeyPair(KeyPair("order", "o1"), UInt64(999))), value: [])
        try copy.environmentForTesting.rawPut(table: "index", key: IndexKey.of(IndexKey.time, KeyPair(Int64(5), UInt64(3))), value: [])
        let report = try copy.verify()
        #expect(report.problems.contains { $0.kind == .danglingIndexEntry && $0.seq == 999 && $0.table == "index/ref" })
        // A new store's times are all in order: it keeps no time entry at all.
        #expect(report.problems.contains { $0.kind == .danglingIndexEntry && $0.seq == 3 && $0.table == "index/time" })
    }

    @Test func progressIsReported() throws {
        let temporary = try TemporaryStore()
        var phases = Set<String>()
        _ = try temporary.store.verify { phases.insert($0.phase) }
        #expect(phases.contains("audit chain"))
    }

    /// A store written by a newer Larder is refused, untouched.
    @Test func aNewerSchemaIsRefused() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("store")
        do {
            let store = try Store.open(at: path)
            try store.environmentForTesting.rawPut(table: "meta", key: "schema_version".encodedKey, value: [0, 0, 0, 99])
            store.close()
        }
        let error = try #require(throws: LarderError.self) { try Store.open(at: path) }
        #expect(error.message.contains("schema version 99"))
    }

    @Test func reopeningKeepsTheChain() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("store")
        for round in 0..<3 {
            let store = try Store.open(at: path)
            try store.write(.test("req-\(round)")) { txn in try txn.note(NoteRequest(order: "o", amount: round)) }
            store.close()
        }
        let store = try Store.open(at: path, options: .init(readOnly: true))
        defer { store.close() }
        #expect(try store.read { try $0.audit.head().seq } == 5)
        #expect(try store.verify().isIntact)
    }
}
