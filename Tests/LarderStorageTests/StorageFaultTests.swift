import Dispatch
import Foundation
import LarderStorage
import LarderTesting
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The storage core under LMDB failures, injected with ``LMDBFaults`` or provoked for real (a
/// tiny map): never a false success, never a crash, only the request that fails fails.
@Suite("Storage faults")
struct StorageFaultTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory()
    }

    func open(_ name: String = "env", limits: Environment.Limits = Environment.Limits(), breaker: Environment.BreakerPolicy = Environment.BreakerPolicy(),
              faults: LMDBFaults? = nil) throws -> Environment {
        var options = Environment.Options(limits: limits, durability: .fastUnsafe, breaker: breaker)
        options.faults = faults
        return try Environment.open(at: directory.path(name), options: options, tables: ["items", "other"])
    }

    /// The codes a put can fail with on a real system.
    static let putFailures: [Int32] = [EIO, ENOSPC, LMDBFaults.Code.txnFull, LMDBFaults.Code.mapFull]

    // MARK: Item 1: a transaction that saw a storage failure never answers success

    /// The closure catches the failed put and returns normally: the caller still gets the
    /// original error (with its LMDB code), and nothing of the transaction is kept.
    @Test(arguments: putFailures)
    func aCaughtPutFailureFailsTheWrite(code: Int32) throws {
        let faults = LMDBFaults { point, call in
            point == .put && call.table == "items" && call.key == UInt64(2).encodedKey ? code : nil
        }
        let environment = try open(faults: faults)
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: String.self)
        let error = try #require(throws: StorageError.self) {
            _ = try environment.write { txn -> String in
                try txn.put(items, 1, "one")
                _ = try? txn.put(items, 2, "two")
                return "a success the caller must not see"
            }
        }
        #expect(error.code == code)
        #expect(error.transactionRolledBack)
        #expect(faults.injectedCount(at: .put) == 1)
        #expect(try environment.read { try $0.get(items, 1) } == nil)
    }

    /// In a group commit, only the request whose put failed fails; the others commit.
    @Test func aCaughtFailureInAGroupCommitFailsOnlyItsRequest() async throws {
        let faults = LMDBFaults { point, call in
            point == .put && call.key == UInt64(5).encodedKey ? EIO : nil
        }
        let environment = try open(faults: faults)
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: UInt64.self)
        let outcomes = await Self.writeAsOneBatch(environment, keys: 0..<10) { txn, key in
            _ = try? txn.put(items, key, key)
        }
        #expect(outcomes[5] == EIO)
        for key in (0..<10 as Range<UInt64>) where key != 5 { #expect(outcomes[key] == 0, "key \(key)") }
        try environment.read { (txn: ReadTransaction) throws in
            for key in 0..<10 as Range<UInt64> { #expect(try txn.get(items, key) == (key == 5 ? nil : key)) }
        }
    }

    // MARK: Item 2: MDB_BAD_TXN and EINVAL throw, naming the first failure

    /// A real LMDBFaults.Code.mapFull, caught, then more calls in the same transaction: LMDB answers them
    /// with MDB_BAD_TXN, which must be an error naming the map-full failure, not a crash.
    @Test func callsAfterARealMapFullThrowTheFirstFailure() throws {
        var limits = Environment.Limits()
        limits.mapSizeBytesMax = 256 << 10
        let environment = try open(limits: limits)
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: [UInt8].self)
        let later = Mutex<[StorageError]>([])
        let error = try #require(throws: StorageError.self) {
            try environment.write { txn in
                var key: UInt64 = 0
                while (try? txn.put(items, key, [UInt8](repeating: 1, count: 4_000))) == true { key += 1 }
                // The application goes on after the failure: a read and another write.
                do { _ = try txn.get(items, 0) } catch let error as StorageError { later.withLock { $0.append(error) } }
                do { try txn.put(items, 1_000_000, [1]) } catch let error as StorageError { later.withLock { $0.append(error) } }
            }
        }
        #expect(error.kind == .exhausted)
        #expect(error.code == LMDBFaults.Code.mapFull)
        let laterErrors = later.withLock { $0 }
        #expect(laterErrors.count == 2)
        for laterError in laterErrors {
            #expect(laterError.code == LMDBFaults.Code.mapFull, "\(laterError)")
            #expect(laterError.message.contains("map is full"))
        }
        #expect(try environment.read { try $0.statistics(items).entries } == 0)
        // The environment is fine afterwards.
        try environment.write { txn in try txn.put(items, 1, [1]) }
    }

    // MARK: Item 3: the map is at its maximum from the start; info, stat and copy always safe

    @Test func theMapIsOpenedAtItsMaximumAndTheFileStaysSmall() throws {
        var limits = Environment.Limits()
        limits.mapSizeBytesMax = 64 << 30
        let environment = try open(limits: limits)
        defer { environment.close() }
        #expect(environment.info().mapSizeBytes == 64 << 30)
        let items = try environment.table("items", key: UInt64.self, value: [UInt8].self)
        try environment.write { txn in
            for key in 0..<100 as Range<UInt64> { try txn.put(items, key, [UInt8](repeating: 3, count: 1_000)) }
        }
        let attributes = try FileManager.default.attributesOfItem(atPath: environment.path + "/data.mdb")
        let size = try #require(attributes[.size] as? Int)
        // The creation reserve (1 MiB) plus the pages written, nowhere near the map's 64 GiB.
        #expect(size <= 2 << 20)
        #expect(environment.info().mapSizeBytes == 64 << 30)
    }

    /// `info()`, table statistics and `copy()` from other threads while the writer fills the
    /// store: with a map that never moves, none of them can touch a map being replaced.
    @Test func infoStatisticsAndCopyRunWhileTheWriterWrites() throws {
        let environment = try open()
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: [UInt8].self)
        let stop = Atomic<Bool>(false)
        let copies = Atomic<Int>(0)
        let done = (0..<3).map { _ in DispatchSemaphore(value: 0) }
        let copyDirectory = directory
        Thread {
            while !stop.load(ordering: .relaxed) { _ = environment.info() }
            done[0].signal()
        }.start()
        Thread {
            while !stop.load(ordering: .relaxed) { _ = try? environment.read { try $0.allStatistics() } }
            done[1].signal()
        }.start()
        Thread {
            var index = 0
            while !stop.load(ordering: .relaxed) && index < 5 {
                if (try? environment.copy(to: copyDirectory.path("copy-\(index)"))) != nil { copies.add(1, ordering: .relaxed) }
                index += 1
            }
            done[2].signal()
        }.start()
        for batch in 0..<50 as Range<UInt64> {
            try environment.write { txn in
                for index in 0..<50 as Range<UInt64> { try txn.put(items, batch * 50 + index, [UInt8](repeating: 5, count: 2_000)) }
            }
        }
        stop.store(true, ordering: .relaxed)
        for signal in done { signal.wait() }
        #expect(copies.load(ordering: .relaxed) > 0)
        #expect(try environment.read { try $0.statistics(items).entries } == 2_500)
    }

    @Test func infoAndReadsAfterCloseDoNotCrash() throws {
        let environment = try open()
        let items = try environment.table("items", key: UInt64.self, value: UInt64.self)
        environment.close()
        let info = environment.info()
        #expect(!info.isOpen)
        #expect(info.mapUsedBytes == 0)
        let readError = try #require(throws: StorageError.self) { try environment.read { try $0.get(items, 1) } }
        #expect(readError.message.contains("closed"))
        let writeError = try #require(throws: StorageError.self) { try environment.write { try $0.put(items, 1, 1) } }
        #expect(writeError.message.contains("closed"))
        #expect(throws: StorageError.self) { try environment.copy(to: directory.path("copy")) }
    }

    // MARK: Item 4: opening never kills the host and leaves nothing half-made

    /// A table that cannot be opened fails the open late, after LMDB opened: closed once (no
    /// double free), and the directory this open created is gone.
    @Test(arguments: [EIO, ENOSPC])
    func aLateOpenFailureClosesOnceAndRemovesWhatItCreated(code: Int32) throws {
        let faults = LMDBFaults { point, call in point == .openTable && call.table == "other" ? code : nil }
        let error = try #require(throws: StorageError.self) { try open("late", faults: faults) }
        #expect(error.code == code)
        #expect(error.phase == .open)
        #expect(!FileManager.default.fileExists(atPath: directory.path("late")))
        // The path is free again.
        try open("late").close()
    }

    @Test func tooFewTablesIsAValidationErrorNotACrash() throws {
        var limits = Environment.Limits()
        limits.tablesMax = 1
        let error = try #require(throws: StorageError.self) { try open("few", limits: limits) }
        #expect(error.kind == .invalidArgument)
        #expect(error.message.contains("tablesMax"))
        #expect(!FileManager.default.fileExists(atPath: directory.path("few")))
    }

    /// A full disk at open (no room for the lock file, the first data pages, or LMDB's own first
    /// write) is STORAGE_UNAVAILABLE, retryable, and leaves no store behind.
    @Test(arguments: [(LMDBFaults.Point.reserve, ENOSPC), (.reserve, EDQUOT), (.open, ENOSPC)])
    func aFullDiskAtOpenIsStorageUnavailable(point: LMDBFaults.Point, code: Int32) throws {
        let error = try #require(throws: StorageError.self) {
            try open("full", faults: LMDBFaults.failing(point, with: code))
        }
        #expect(error.kind == .exhausted)
        #expect(error.phase == .open)
        #expect(error.code == code)
        #expect(!FileManager.default.fileExists(atPath: directory.path("full")))
    }

    /// An I/O error at open is a clear PERSISTENCE_ERROR naming it (when the disk is not full).
    @Test func anIOErrorAtOpenSaysSo() throws {
        let error = try #require(throws: StorageError.self) { try open("eio", faults: LMDBFaults.failing(.open, with: EIO)) }
        #expect(error.kind == .failed)
        #expect(error.code == EIO)
        #expect(error.message.contains("Input/output error"))
        #expect(!FileManager.default.fileExists(atPath: directory.path("eio")))
    }

    /// A failed open of an EXISTING store removes nothing of it.
    @Test func aFailedOpenOfAnExistingStoreKeepsIt() throws {
        let first = try open("kept")
        let items = try first.table("items", key: UInt64.self, value: UInt64.self)
        try first.write { txn in try txn.put(items, 7, 7) }
        first.close()
        #expect(throws: StorageError.self) { try open("kept", faults: LMDBFaults.failing(.open, with: EIO)) }
        #expect(throws: StorageError.self) { try open("kept", faults: LMDBFaults.failing(.openTable, with: EIO)) }
        let again = try open("kept")
        defer { again.close() }
        #expect(try again.read { try $0.get(items, 7) } == 7)
    }

    // MARK: Item 5: LMDBFaults.Code.panic means restart required

    @Test func aPanicRequiresARestartAndAReopenWorks() throws {
        let faults = LMDBFaults { point, call in point == .commit && call.number == 2 ? LMDBFaults.Code.panic : nil }
        let environment = try open("panic", faults: faults)
        let items = try environment.table("items", key: UInt64.self, value: UInt64.self)
        try environment.write { txn in try txn.put(items, 1, 1) }
        let error = try #require(throws: StorageError.self) { try environment.write { txn in try txn.put(items, 2, 2) } }
        #expect(error.code == LMDBFaults.Code.panic)
        #expect(error.kind == .restartRequired)
        #expect(environment.info().restartRequired)
        // Writes now fail fast, without asking LMDB.
        let begins = faults.callCount(at: .beginWrite)
        let fast = try #require(throws: StorageError.self) { try environment.write { txn in try txn.put(items, 3, 3) } }
        #expect(fast.message.contains("restart"))
        #expect(faults.callCount(at: .beginWrite) == begins)
        environment.close()
        let reopened = try open("panic")
        defer { reopened.close() }
        #expect(!reopened.info().restartRequired)
        try reopened.write { txn in try txn.put(items, 3, 3) }
        try reopened.read { (txn: ReadTransaction) throws in
            #expect(try txn.get(items, 1) == 1)
            #expect(try txn.get(items, 2) == nil)
            #expect(try txn.get(items, 3) == 3)
        }
    }

    // MARK: Item 6: the writer queue stays bounded under sustained load

    /// A queue that never drains (one taken, one added, forever) holds at most about twice what
    /// waits: answered requests are released as the writer goes.
    @Test func theWriteQueueReleasesWhatItHandedOut() {
        var queue = WriteQueue<Int>()
        for value in 0..<8 { queue.append(value) }
        var next = 8
        var storageMax = 0
        for _ in 0..<10_000 {
            let taken = queue.removeFirst(upTo: 1)
            #expect(taken.count == 1)
            queue.append(next)
            next += 1
            storageMax = max(storageMax, queue.storageCount)
        }
        #expect(queue.count == 8)
        #expect(storageMax <= 2 * 8 + 64)
        // Order is kept: the next one out is the oldest waiting.
        #expect(queue.removeFirst(upTo: 2) == [next - 8, next - 7])
    }

    // MARK: Item 7: readers are the slots taken now

    @Test func readersUsedCountsTheReadersOfNow() throws {
        let environment = try open()
        defer { environment.close() }
        #expect(environment.info().readersUsed == 0)
        let inside = DispatchSemaphore(value: 0)
        let leave = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        for _ in 0..<3 {
            Thread {
                _ = try? environment.read { _ in
                    inside.signal()
                    leave.wait()
                }
                finished.signal()
            }.start()
        }
        for _ in 0..<3 { inside.wait() }
        #expect(environment.info().readersUsed == 3)
        for _ in 0..<3 { leave.signal() }
        for _ in 0..<3 { finished.wait() }
        // LMDB's me_numreaders would still say 3: it is the highest slot ever used.
        #expect(environment.info().readersUsed == 0)
    }

    // MARK: Item 8: one request that does not fit fails alone

    /// A real map at its maximum: in one batch, the request too large for what is left fails
    /// with STORAGE_UNAVAILABLE, the small ones commit.
    @Test func onlyTheRequestThatDoesNotFitFails() async throws {
        var limits = Environment.Limits()
        limits.mapSizeBytesMax = 1 << 20
        let environment = try open(limits: limits)
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: [UInt8].self)
        let outcomes = await Self.writeAsOneBatch(environment, keys: 0..<12) { txn, key in
            try txn.put(items, key, [UInt8](repeating: 1, count: key == 6 ? 2 << 20 : 100))
        }
        #expect(outcomes[6] == LMDBFaults.Code.mapFull)
        for key in (0..<12 as Range<UInt64>) where key != 6 { #expect(outcomes[key] == 0, "key \(key)") }
        #expect(try environment.read { try $0.statistics(items).entries } == 11)
        #expect(environment.info().breaker == .closed)
    }

    /// The batch's commit fails as a whole (map full, TXN_FULL, disk full): every request is
    /// retried alone and commits.
    @Test(arguments: [(LMDBFaults.Point.commit, LMDBFaults.Code.mapFull), (.commit, ENOSPC), (.nestedCommit, LMDBFaults.Code.txnFull)])
    func aBatchThatFailsAsAWholeIsRetriedOneByOne(point: LMDBFaults.Point, code: Int32) async throws {
        // The blocker's commit is the first; the batch's the second (or its first nested one).
        let faults = LMDBFaults { at, call in at == point && call.number == (point == .commit ? 2 : 1) ? code : nil }
        let environment = try open(faults: faults)
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: UInt64.self)
        let counter = try environment.table("other", key: UInt64.self, value: UInt64.self)
        let outcomes = await Self.writeAsOneBatch(environment, keys: 0..<10) { txn, key in
            try txn.put(items, key, key)
            // Read-modify-write: a retried request must not count twice.
            try txn.put(counter, 0, (try txn.get(counter, 0) ?? 0) + 1)
        }
        #expect(faults.injectedCount(at: point) == 1)
        for key in 0..<10 as Range<UInt64> { #expect(outcomes[key] == 0, "key \(key)") }
        #expect(try environment.read { try $0.get(counter, 0) } == 10)
        #expect(try environment.read { try $0.statistics(items).entries } == 10)
    }

    /// A batch whose every commit fails is one storage failure for the breaker, not one per
    /// request: with failuresToOpen 2, one such batch leaves the breaker closed; a second opens it.
    @Test func aFailedBatchCountsOnceForTheBreaker() async throws {
        let faults = LMDBFaults { point, call in point == .commit && call.number > 1 ? ENOSPC : nil }
        let environment = try open(breaker: Environment.BreakerPolicy(failuresToOpen: 2, probeIntervalSeconds: 60), faults: faults)
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: UInt64.self)
        let first = await Self.writeAsOneBatch(environment, keys: 0..<10) { txn, key in try txn.put(items, key, key) }
        #expect(first.values.allSatisfy { $0 == ENOSPC })
        #expect(environment.info().breaker == .closed)
        #expect(throws: StorageError.self) { try environment.write { txn in try txn.put(items, 99, 99) } }
        #expect(environment.info().breaker == .open)
    }

    // MARK: Helpers

    /// Holds the writer inside a write until the requests for `keys` are all queued, so they run
    /// as one group-commit batch; returns each request's LMDB code (0 for success, -1 for any
    /// other error).
    static func writeAsOneBatch(
        _ environment: Environment, keys: Range<UInt64>,
        _ body: @escaping @Sendable (WriteTransaction, UInt64) throws -> Void
    ) async -> [UInt64: Int32] {
        let proceed = DispatchSemaphore(value: 0)
        await withCheckedContinuation { (entered: CheckedContinuation<Void, Never>) in
            Thread {
                _ = try? environment.write { _ in
                    entered.resume()
                    proceed.wait()
                }
            }.start()
        }
        return await withTaskGroup(of: (UInt64, Int32).self) { group in
            for key in keys {
                group.addTask {
                    do {
                        try await environment.write { txn in try body(txn, key) }
                        return (key, 0)
                    } catch let error as StorageError {
                        return (key, error.code ?? -1)
                    } catch {
                        return (key, -1)
                    }
                }
            }
            // Synchronization, not timing: wait until every request is queued behind the blocker.
            while environment.queuedWriteCount < keys.count { try? await Task.sleep(for: .milliseconds(1)) }
            proceed.signal()
            var all: [UInt64: Int32] = [:]
            for await (key, code) in group { all[key] = code }
            return all
        }
    }
}
