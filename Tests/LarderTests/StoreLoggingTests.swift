import Foundation
import InMemoryLogging
import Larder
import LarderStorage
import LarderTesting
import Logging
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What a store logs through `Store.Options.logger`: each change in what it can do, once, with
/// the store's path and the write's ids; nothing for a successful write; nothing at all by
/// default.
@Suite("Store logging")
struct StoreLoggingTests {
    /// Options whose logger keeps every line (trace and up) in memory.
    static func logged(_ options: Store.Options = Store.Options()) -> (Store.Options, InMemoryLogHandler) {
        var handler = InMemoryLogHandler()
        handler.logLevel = .trace
        var options = options
        let captured = handler
        options.logger = Logger(label: "test") { _ in captured }
        return (options, handler)
    }

    static func messages(_ handler: InMemoryLogHandler, _ level: Logger.Level? = nil) -> [String] {
        handler.entries.filter { level == nil || $0.level == level }.map(\.message.description)
    }

    @Test func openingANewStoreLogsTheOpenAndWhatItRecorded() throws {
        let (options, handler) = Self.logged()
        let temporary = try TemporaryStore(options: options)
        let opened = try #require(handler.entries.first { $0.message.description == "Opened the store" })
        #expect(opened.level == .info)
        #expect(opened.metadata["larder.store"]?.description == temporary.path)
        #expect(opened.metadata["larder.access"]?.description == "read_write")
        let notices = Self.messages(handler, .notice)
        #expect(notices.contains { $0.contains("SCHEMA_MIGRATED") })
        #expect(notices.contains { $0.contains("POLICY_CHANGED") })
        let schema = try #require(handler.entries.first { $0.message.description.contains("SCHEMA_MIGRATED") })
        #expect(schema.metadata["larder.request_id"]?.description.hasPrefix("larder.open.") == true)
        // Writes that succeed log nothing.
        let count = handler.entries.count
        for index in 0..<20 {
            try temporary.store.write(.test("req-\(index)")) { txn in try txn.appendAudit(AuditDraft(event: "NOTE")) }
        }
        #expect(handler.entries.count == count)
        temporary.store.close()
        temporary.store.close()
        #expect(Self.messages(handler).filter { $0 == "Closed the store" }.count == 1)
    }

    @Test func reopeningRecordsNothingAndSaysNothingAboutIt() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("store")
        try Store.open(at: path).close()
        let (options, handler) = Self.logged()
        let store = try Store.open(at: path, options: options)
        defer { store.close() }
        #expect(Self.messages(handler) == ["Opened the store"])
    }

    @Test func theDefaultLoggerIsSilent() throws {
        #expect(Store.Options().logger.handler is SwiftLogNoOpLogHandler)
    }

    /// A write that failed in the storage is logged at error with its request and decision ids
    /// and LMDB's code; the writer's breaker opening is logged once.
    @Test func aFailedCommitIsLoggedWithItsIdsAndTheBreakerOnce() throws {
        var options = Store.Options(breaker: BreakerPolicy(failuresToOpen: 2, probeIntervalSeconds: 3_600))
        // Commits 1 and 2 are the schema's and the policy's; every later one fails.
        options.lmdbFaults = LMDBFaults { point, call in point == .commit && call.number > 2 ? EIO : nil }
        let (logging, handler) = Self.logged(options)
        let temporary = try TemporaryStore(options: logging)
        let request = NoteRequest(order: "4411", amount: 1)
        for attempt in 0..<2 {
            #expect(throws: LarderError.self) {
                try temporary.store.write(.test("req-\(attempt)", decisionID: "d-\(attempt)"), request: request) { txn in
                    try txn.note(request)
                }
            }
        }
        let failures = handler.entries.filter { $0.level == .error && $0.message.description.hasPrefix("A write failed in the storage") }
        #expect(failures.count == 2)
        #expect(failures.first?.metadata["larder.request_id"]?.description == "req-0")
        #expect(failures.first?.metadata["larder.decision_id"]?.description == "d-0")
        #expect(failures.first?.metadata["larder.storage_code"]?.description == String(EIO))
        #expect(failures.first?.metadata["larder.store"]?.description == temporary.path)
        // The breaker is open now: refusals are not logged one by one.
        for attempt in 2..<6 {
            #expect(throws: LarderError.self) {
                try temporary.store.write(.test("req-\(attempt)")) { txn in try txn.appendAudit(AuditDraft(event: "NOTE")) }
            }
        }
        #expect(Self.messages(handler).filter { $0.hasPrefix("Writes paused: the write breaker opened") }.count == 1)
        #expect(Self.messages(handler).filter { $0.hasPrefix("A write failed in the storage") }.count == 2)
    }

    @Test func restartRequiredIsLoggedOnceAtCritical() throws {
        var options = Store.Options()
        options.lmdbFaults = LMDBFaults { point, call in point == .commit && call.number == 3 ? LMDBFaults.Code.panic : nil }
        let (logging, handler) = Self.logged(options)
        let temporary = try TemporaryStore(options: logging)
        for attempt in 0..<3 {
            _ = try? temporary.store.write(.test("req-\(attempt)")) { txn in try txn.appendAudit(AuditDraft(event: "NOTE")) }
        }
        let critical = handler.entries.filter { $0.level == .critical }
        #expect(critical.count == 1)
        #expect(critical.first?.message.description.hasPrefix("Restart required") == true)
    }

    @Test func writesRefusedAfterCloseAreLoggedOnce() async throws {
        let (options, handler) = Self.logged()
        let temporary = try TemporaryStore(options: options)
        temporary.store.close()
        for attempt in 0..<3 {
            #expect(throws: LarderError.self) {
                try temporary.store.write(.test("late-\(attempt)")) { txn in try txn.appendAudit(AuditDraft(event: "NOTE")) }
            }
        }
        await #expect(throws: LarderError.self) {
            try await temporary.store.write(.test("late-async")) { txn in try txn.appendAudit(AuditDraft(event: "NOTE")) }
        }
        let refusals = handler.entries.filter { $0.message.description == "A write was refused because the store is closed" }
        #expect(refusals.count == 1)
        #expect(refusals.first?.level == .warning)
    }

    /// The write queue at its depth: the refusal is logged once, until the queue drains.
    @Test func aFullWriteQueueIsLoggedOnce() async throws {
        var options = Store.Options()
        options.limits.writeQueueDepthMax = 1
        let (logging, handler) = Self.logged(options)
        let temporary = try TemporaryStore(options: logging)
        let store = temporary.store
        let holding = WriterHold()
        let blocker = Task.detached {
            try await store.write(.test("hold")) { txn in
                holding.insideAndWait()
                try txn.appendAudit(AuditDraft(event: "HELD"))
            }
        }
        await holding.waitUntilInside()
        let queued = Task.detached {
            try await store.write(.test("queued")) { txn in try txn.appendAudit(AuditDraft(event: "QUEUED")) }
        }
        while store.environmentForTesting.queuedWriteCount == 0 { try await Task.sleep(for: .milliseconds(1)) }
        for attempt in 0..<3 {
            let error = try #require(throws: LarderError.self) {
                try store.write(.test("refused-\(attempt)")) { txn in try txn.appendAudit(AuditDraft(event: "NOTE")) }
            }
            #expect(error.code == .storageUnavailable)
        }
        holding.release()
        _ = try await blocker.value
        _ = try await queued.value
        let full = handler.entries.filter { $0.message.description.hasPrefix("The write queue is full") }
        #expect(full.count == 1)
        #expect(full.first?.level == .warning)
        #expect(full.first?.metadata["larder.write_queue_depth_max"]?.description == "1")
    }
}
