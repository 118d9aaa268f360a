import Foundation
import Larder
import LarderStorage
import LarderTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The store under LMDB failures: a caller is never told `.committed` for a write that is not on
/// disk, a store whose creation fails is not left half-made, LMDB's fatal state is reported and
/// survived by reopening, and the limits that govern a store are recorded in it.
@Suite("Store faults")
struct StoreFaultTests {
    func options(_ faults: LMDBFaults? = nil, limits: Limits = Limits()) -> Store.Options {
        var options = Store.Options(limits: limits)
        options.lmdbFaults = faults
        return options
    }

    /// Item 1: the domain code catches a failed put and returns normally. Before, the caller got
    /// `.committed` with an audit seq that was never written.
    @Test(arguments: [EIO, ENOSPC, LMDBFaults.Code.txnFull, LMDBFaults.Code.mapFull])
    func aStorageErrorCaughtInsideAWriteIsNeverCommitted(code: Int32) throws {
        let faults = LMDBFaults { point, call in
            point == .put && call.table == "meta" && call.key == Array("note.b".utf8) ? code : nil
        }
        let temporary = try TemporaryStore(options: options(faults))
        let store = temporary.store
        let error = try #require(throws: LarderError.self) {
            try store.write(.test("req-1")) { txn -> NoteResult in
                let result = try txn.note(NoteRequest(order: "a", amount: 1))
                _ = try? txn.note(NoteRequest(order: "b", amount: 2))
                return result
            }
        }
        #expect(error.storageCode == code)
        #expect(error.requestID == "req-1")
        #expect(error.transactionRolledBack)
        #expect(faults.injectedCount(at: .put) == 1)
        #expect(try store.noteValue("a") == nil)
        #expect(try store.auditCount() == initialRecords)
        #expect(store.metrics.writesCommitted == 2, "only the schema's and the policy's writes")
        #expect(try store.verify().isIntact)
    }

    /// Item 4: the disk fills during the new store's first commit: the open fails with
    /// STORAGE_UNAVAILABLE and removes the half-made store; the next open creates it whole.
    @Test(arguments: [ENOSPC, EDQUOT])
    func aStoreWhoseCreationFailsIsNotLeftBehind(code: Int32) throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("kitchen/larder")
        let error = try #require(throws: LarderError.self) {
            try Store.open(at: path, options: options(LMDBFaults.failing(.commit, with: code)))
        }
        #expect(error.code == .storageUnavailable)
        #expect(error.retryable)
        #expect(!FileManager.default.fileExists(atPath: directory.path("kitchen")))
        let store = try Store.open(at: path)
        defer { store.close() }
        #expect(try store.auditCount() == initialRecords)
        #expect(try store.verify().isIntact)
    }

    /// Item 5: LMDB's fatal state (MDB_PANIC) is "restart required": reported by `info()`, writes
    /// fail fast with a clear error, and the application recovers by closing and reopening.
    @Test func aPanicIsReportedAndSurvivedByReopening() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("store")
        // Commits 1 and 2 are the schema's and the policy's.
        let faults = LMDBFaults { point, call in point == .commit && call.number == 4 ? LMDBFaults.Code.panic : nil }
        let store = try Store.open(at: path, options: options(faults))
        try store.write(.test("req-1")) { txn in try txn.note(NoteRequest(order: "a", amount: 1)) }
        let error = try #require(throws: LarderError.self) {
            try store.write(.test("req-2")) { txn in try txn.note(NoteRequest(order: "b", amount: 2)) }
        }
        #expect(error.code == .persistenceError)
        #expect(!error.retryable)
        #expect(error.message.contains("restart required"))
        #expect(store.info().restartRequired)
        let fast = try #require(throws: LarderError.self) {
            try store.write(.test("req-3")) { txn in try txn.note(NoteRequest(order: "c", amount: 3)) }
        }
        #expect(fast.message.contains("needs a restart"))
        store.close()
        let reopened = try Store.open(at: path)
        defer { reopened.close() }
        #expect(!reopened.info().restartRequired)
        #expect(try reopened.noteValue("a") == "1")
        #expect(try reopened.noteValue("b") == nil)
        try reopened.write(.test("req-3")) { txn in try txn.note(NoteRequest(order: "c", amount: 3)) }
        #expect(try reopened.verify().isIntact)
    }

    /// Item 10: the writer records its limits (once, audited); a read-only process and a tool
    /// that records nothing report map use against them, not against their own defaults.
    @Test func theWriterRecordsItsLimitsAndEveryProcessUsesThem() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("store")
        var limits = Limits()
        limits.mapSizeBytesMax = 1 << 20
        limits.readersMax = 20
        do {
            let store = try Store.open(at: path, options: options(limits: limits))
            defer { store.close() }
            let record = try store.read { view in try view.audit.head() }.seq
            #expect(record == UInt64(initialRecords + 1))
            let entry = try #require(try store.read { view in try view.audit.record(seq: record) })
            #expect(entry.record.event == .limitsRecorded)
            #expect(entry.record.payload == #"{"map_size_bytes_max":1048576,"readers_max":20,"previous":null}"#)
            #expect(try store.recordedStoreLimits() == RecordedLimits(mapSizeBytesMax: 1 << 20, readersMax: 20))
            // The bytes of docs/FORMAT.md section 5.2.
            #expect(try store.environmentForTesting.rawGet(table: "meta", key: Array("limits".utf8) + [0, 0])
                == [0x01, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0x14])
            #expect(store.info().mapSizeBytesMax == 1 << 20)
        }
        // The same limits again: nothing recorded.
        try Store.open(at: path, options: options(limits: limits)).close()
        // A read-only process and a tool (recordsLimits false) with the default 8 GiB.
        let reader = try Store.open(at: path, options: Store.Options(readOnly: true))
        #expect(reader.info().mapSizeBytesMax == 1 << 20)
        #expect(reader.info().limitsRecordedInStore)
        #expect(try reader.auditCount() == initialRecords + 1)
        reader.close()
        var toolOptions = Store.Options()
        toolOptions.recordsLimits = false
        toolOptions.recordsPolicy = false
        let tool = try Store.open(at: path, options: toolOptions)
        #expect(tool.info().mapSizeBytesMax == 1 << 20)
        #expect(tool.info().mapUseFraction > Double(tool.info().mapUsedBytes) / Double(8 << 30))
        tool.close()
        // An application that opens with other limits records them, naming the previous ones.
        let grown = try Store.open(at: path)
        defer { grown.close() }
        let last = try #require(try grown.read { view in try view.audit.records(fromSeq: .max, limit: 1, direction: .backward).records.first })
        #expect(last.record.event == .limitsRecorded)
        #expect(last.record.payload
            == #"{"map_size_bytes_max":8589934592,"readers_max":126,"previous":{"map_size_bytes_max":1048576,"readers_max":20}}"#)
        #expect(grown.info().mapSizeBytesMax == 8 << 30)
        #expect(try grown.verify().isIntact)
    }

    /// A store with the default limits records none: its first records stay the schema's and the
    /// policy's, and every process reports against the default maximum.
    @Test func defaultLimitsAreNotRecorded() throws {
        let temporary = try TemporaryStore()
        #expect(try temporary.store.auditCount() == initialRecords)
        #expect(try temporary.store.recordedStoreLimits() == nil)
        #expect(temporary.store.info().mapSizeBytesMax == RecordedLimits.implied.mapSizeBytesMax)
        #expect(!temporary.store.info().limitsRecordedInStore)
    }
}
