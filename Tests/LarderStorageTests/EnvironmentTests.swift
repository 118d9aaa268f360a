import Dispatch
import Foundation
import LarderStorage
import LarderTesting
import Synchronization
import Testing

/// Opening, reading and writing one environment: isolation, atomicity, group commit and limits.
@Suite("Environment")
struct EnvironmentTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory()
    }

    func open(_ name: String = "env", limits: Environment.Limits = Environment.Limits(), readOnly: Bool = false,
              breaker: Environment.BreakerPolicy = Environment.BreakerPolicy()) throws -> Environment {
        try Environment.open(at: directory.path(name),
                             options: .init(limits: limits, readOnly: readOnly, breaker: breaker),
                             tables: ["items", "other"])
    }

    @Test func writeThenRead() throws {
        let environment = try open()
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: String.self)
        try environment.write { txn in
            try txn.put(items, 1, "one")
            try txn.put(items, 2, "two")
        }
        #expect(try environment.read { try $0.get(items, 1) } == "one")
        #expect(try environment.read { try $0.get(items, 3) } == nil)
        #expect(try environment.read { try $0.statistics(items).entries } == 2)
    }

    @Test func insertNewAndAppendModes() throws {
        let environment = try open()
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: String.self)
        let results = try environment.write { txn in
            [try txn.put(items, 5, "a", mode: .insertNew),
             try txn.put(items, 5, "b", mode: .insertNew),
             try txn.put(items, 6, "c", mode: .append),
             try txn.put(items, 4, "d", mode: .append)]
        }
        #expect(results == [true, false, true, false])
        #expect(try environment.read { try $0.get(items, 5) } == "a")
    }

    @Test func aThrowingWriteLeavesNothingBehind() throws {
        struct Boom: Error {}
        let environment = try open()
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: String.self)
        try environment.write { txn in try txn.put(items, 1, "kept") }
        #expect(throws: Boom.self) {
            try environment.write { txn in
                try txn.put(items, 1, "overwritten")
                try txn.put(items, 2, "new")
                throw Boom()
            }
        }
        #expect(try environment.read { try $0.get(items, 1) } == "kept")
        #expect(try environment.read { try $0.get(items, 2) } == nil)
    }

    /// A reader that began before a write keeps seeing the old value after the commit.
    @Test func snapshotIsolation() throws {
        let environment = try open()
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: String.self)
        try environment.write { txn in try txn.put(items, 1, "before") }

        let readerStarted = DispatchSemaphore(value: 0)
        let writeDone = DispatchSemaphore(value: 0)
        let seen = Mutex<[String?]>([])
        let readerFinished = DispatchSemaphore(value: 0)
        Thread {
            try? environment.read { txn in
                seen.withLock { $0.append(try? txn.get(items, 1)) }
                readerStarted.signal()
                writeDone.wait()
                seen.withLock { $0.append(try? txn.get(items, 1)) }
            }
            readerFinished.signal()
        }.start()
        readerStarted.wait()
        try environment.write { txn in try txn.put(items, 1, "after") }
        writeDone.signal()
        readerFinished.wait()
        #expect(seen.withLock { $0 } == ["before", "before"])
        #expect(try environment.read { try $0.get(items, 1) } == "after")
    }

    /// Four reader threads check an invariant (two keys always written together) while the
    /// writer keeps changing them: no reader may ever see half a transaction.
    @Test func readersWhileTheWriterWrites() async throws {
        let environment = try open()
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: UInt64.self)
        try await environment.write { txn in
            try txn.put(items, 1, 0)
            try txn.put(items, 2, 0)
        }
        let stop = Atomic<Bool>(false)
        let reads = Atomic<Int>(0)
        let tornReads = Atomic<Int>(0)
        let finished = (0..<4).map { _ in DispatchSemaphore(value: 0) }
        for signal in finished {
            Thread {
                while !stop.load(ordering: .relaxed) {
                    let pair = try? environment.read { txn in (try txn.get(items, 1), try txn.get(items, 2)) }
                    if let pair, pair.0 != pair.1 { tornReads.add(1, ordering: .relaxed) }
                    reads.add(1, ordering: .relaxed)
                }
                signal.signal()
            }.start()
        }
        for value in 1...300 as ClosedRange<UInt64> {
            try await environment.write { txn in
                try txn.put(items, 1, value)
                try txn.put(items, 2, value)
            }
        }
        stop.store(true, ordering: .relaxed)
        for signal in finished { signal.wait() }
        #expect(tornReads.load(ordering: .relaxed) == 0)
        #expect(reads.load(ordering: .relaxed) > 0)
        #expect(try environment.read { try $0.get(items, 1) } == 300)
    }

    @Test func scansForwardAndBackwardWithLimits() throws {
        let environment = try open()
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: UInt64.self)
        try environment.write { txn in
            for key in stride(from: 10 as UInt64, through: 100, by: 10) { try txn.put(items, key, key * 2) }
        }
        try environment.read { (txn: ReadTransaction) throws in
            #expect(try txn.scan(items, limit: 3).map(\.key) == [10, 20, 30])
            #expect(try txn.scan(items, direction: .backward, limit: 3).map(\.key) == [100, 90, 80])
            #expect(try txn.scan(items, in: .from(35), limit: 2).map(\.key) == [40, 50])
            #expect(try txn.scan(items, in: .after(40), limit: 2).map(\.key) == [50, 60])
            #expect(try txn.scan(items, in: .before(40), direction: .backward, limit: 10).map(\.key) == [30, 20, 10])
            #expect(try txn.scan(items, in: .between(20, 50), limit: 10).map(\.key) == [20, 30, 40])
            #expect(try txn.scan(items, in: .between(20, through: 50), direction: .backward, limit: 10).map(\.key) == [50, 40, 30, 20])
            #expect(try txn.scan(items, in: .between(55, 56), limit: 10).isEmpty)
            #expect(try txn.scan(items, in: .between(1000, 2000), direction: .backward, limit: 10).isEmpty)
            #expect(try txn.scan(items, limit: 0).isEmpty)
            #expect(try txn.last(items)?.value == 200)
        }
    }

    @Test func prefixScansOfCompositeKeys() throws {
        let environment = try open()
        defer { environment.close() }
        let index = try environment.table("items", key: KeyPair<String, UInt64>.self, value: Empty.self)
        try environment.write { txn in
            for (name, seq) in [("a", 3), ("a", 1), ("ab", 2), ("a\u{0}", 9), ("b", 4)] as [(String, UInt64)] {
                try txn.put(index, KeyPair(name, seq), Empty())
            }
        }
        try environment.read { (txn: ReadTransaction) throws in
            #expect(try txn.scan(index, in: .prefix("a"), limit: 10).map(\.key.second) == [1, 3])
            #expect(try txn.scan(index, in: .prefix("a"), direction: .backward, limit: 10).map(\.key.second) == [3, 1])
            #expect(try txn.scan(index, in: .prefix("ab"), limit: 10).map(\.key.second) == [2])
            #expect(try txn.scan(index, in: .prefix("c"), limit: 10).isEmpty)
        }
    }

    @Test func anOversizedKeyIsRefusedBeforeLMDBSeesIt() throws {
        let environment = try open()
        defer { environment.close() }
        let items = try environment.table("items", key: String.self, value: String.self)
        let key = String(repeating: "k", count: 510) // 512 bytes with the terminator
        #expect(key.encodedKey.count == 512)
        let error = try #require(throws: StorageError.self) {
            try environment.write { txn in try txn.put(items, key, "v") }
        }
        #expect(error.kind == .invalidArgument)
        #expect(error.message.contains("511"))
        let readError = try #require(throws: StorageError.self) {
            try environment.read { txn in try txn.get(items, key) }
        }
        #expect(readError.kind == .invalidArgument)
        #expect(try environment.read { try $0.statistics(items).entries } == 0)
    }

    @Test func anOversizedValueIsRefused() throws {
        var limits = Environment.Limits()
        limits.valueSizeBytesMax = 1_000
        let environment = try open(limits: limits)
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: [UInt8].self)
        let error = try #require(throws: StorageError.self) {
            try environment.write { txn in try txn.put(items, 1, [UInt8](repeating: 1, count: 1_001)) }
        }
        #expect(error.kind == .invalidArgument)
    }

    @Test func theSamePathCannotBeOpenedTwice() throws {
        let environment = try open()
        let error = try #require(throws: StorageError.self) { try open() }
        #expect(error.kind == .invalidArgument)
        #expect(error.message.contains("already open"))
        environment.close()
        // Once closed, the path can be opened again.
        let again = try open()
        again.close()
    }

    @Test func invalidLimitsAreRefused() throws {
        var limits = Environment.Limits()
        limits.mapSizeBytesMax = Environment.Limits.mapSizeBytesFloor - 1
        let error = try #require(throws: StorageError.self) { try open(limits: limits) }
        #expect(error.kind == .invalidArgument)
        #expect(error.message.contains("mapSizeBytesMax"))
    }

    @Test func aReadOnlyOpenOfAMissingStoreCreatesNothing() throws {
        let error = try #require(throws: StorageError.self) { try open("missing", readOnly: true) }
        #expect(error.kind == .notFound)
        #expect(!FileManager.default.fileExists(atPath: directory.path("missing")))
    }

    @Test func aReadOnlyEnvironmentRefusesWrites() throws {
        try open().close()
        let environment = try open(readOnly: true)
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: String.self)
        let error = try #require(throws: StorageError.self) {
            try environment.write { txn in try txn.put(items, 1, "x") }
        }
        #expect(error.kind == .readOnly)
    }

    /// At the maximum the write fails with STORAGE_UNAVAILABLE, writes nothing, reads go on; after
    /// reopening with a larger maximum, writes work again.
    @Test func theMapAtItsMaximumFailsClosed() throws {
        var limits = Environment.Limits()
        limits.mapSizeBytesMax = 512 << 10
        let path = "capped"
        do {
            let environment = try open(path, limits: limits)
            defer { environment.close() }
            let items = try environment.table("items", key: UInt64.self, value: [UInt8].self)
            try environment.write { txn in try txn.put(items, 0, [1, 2, 3]) }
            var key: UInt64 = 1
            var failure: StorageError?
            while failure == nil && key < 10_000 {
                do {
                    try environment.write { txn in
                        for _ in 0..<10 {
                            try txn.put(items, key, [UInt8](repeating: 7, count: 1_000))
                            key += 1
                        }
                    }
                } catch let error as StorageError {
                    failure = error
                }
            }
            let error = try #require(failure)
            #expect(error.kind == .exhausted)
            #expect(error.transactionRolledBack)
            let countAfterFailure = try environment.read { try $0.statistics(items).entries }
            // The failed batch of ten left nothing: the count is a multiple of ten plus the first record.
            #expect((countAfterFailure - 1) % 10 == 0)
            #expect(try environment.read { try $0.get(items, 0) } == [1, 2, 3])
            #expect(environment.info().mapSizeBytes == limits.mapSizeBytesMax)
        }
        limits.mapSizeBytesMax = 8 << 20
        let reopened = try open(path, limits: limits)
        defer { reopened.close() }
        let items = try reopened.table("items", key: UInt64.self, value: [UInt8].self)
        try reopened.write { txn in
            for key in 100_000..<100_200 as Range<UInt64> { try txn.put(items, key, [UInt8](repeating: 1, count: 1_000)) }
        }
        #expect(try reopened.read { try $0.get(items, 100_199) }?.count == 1_000)
    }

    /// After consecutive storage failures the breaker opens and refuses writes fast; once the
    /// probe interval passes, a write that fits goes through and closes it.
    @Test func theBreakerOpensAfterConsecutiveStorageFailures() async throws {
        var limits = Environment.Limits()
        limits.mapSizeBytesMax = 256 << 10
        let environment = try open(limits: limits, breaker: Environment.BreakerPolicy(failuresToOpen: 3, probeIntervalSeconds: 0.2))
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: [UInt8].self)
        let tooLarge = [UInt8](repeating: 9, count: 600 << 10)
        for attempt in 0..<3 {
            let error = try #require(throws: StorageError.self) {
                try environment.write { txn in try txn.put(items, UInt64(attempt), tooLarge) }
            }
            #expect(error.kind == .exhausted)
        }
        #expect(environment.info().breaker == .open)
        let refused = try #require(throws: StorageError.self) {
            try environment.write { txn in try txn.put(items, 99, [1]) }
        }
        #expect(refused.kind == .paused)
        #expect(refused.message.contains("paused"))
        #expect(refused.retryAfterSeconds != nil)
        try await Task.sleep(for: .milliseconds(300))
        try await environment.write { txn in try txn.put(items, 99, [1]) }
        #expect(environment.info().breaker == .closed)
    }

    /// Many concurrent async writers are grouped into shared commits; one failing request rolls
    /// back only itself.
    @Test func groupCommitIsolatesFailures() async throws {
        struct Refused: Error {}
        let environment = try open()
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: UInt64.self)
        let outcomes = await Self.writeConcurrently(environment, keys: 0..<200) { txn, key in
            try txn.put(items, key, key)
            if key % 7 == 0 { throw Refused() }
        }
        for (key, ok) in outcomes { #expect(ok == (key % 7 != 0)) }
        try environment.read { (txn: ReadTransaction) throws in
            for key in 0..<200 as Range<UInt64> {
                #expect(try txn.get(items, key) == (key % 7 == 0 ? nil : key))
            }
        }
        // Every request that succeeded is counted once (29 keys of 0..<200 are multiples of 7).
        let statistics = environment.writerStatistics
        #expect(statistics.requestsCommitted == 200 - 29)
        #expect(statistics.commits <= statistics.requestsCommitted)
    }

    /// Writes that check before they write (`isolated: false`) run in the batch's transaction
    /// itself: a refusal that wrote nothing costs the others nothing, and one that wrote and then
    /// failed drops the batch, whose requests then run again alone, so that only it fails.
    @Test func writesThatCheckFirstShareTheBatchTransaction() async throws {
        struct Refused: Error {}
        let environment = try open()
        defer { environment.close() }
        let items = try environment.table("items", key: UInt64.self, value: UInt64.self)
        let outcomes = await withTaskGroup(of: (UInt64, Bool).self) { group in
            for key in 0..<200 as Range<UInt64> {
                group.addTask {
                    do {
                        try await environment.write(isolated: key % 2 == 0) { txn in
                            if key % 7 == 0 { throw Refused() }          // refused before writing
                            try txn.put(items, key, key)
                            if key % 11 == 0 { throw Refused() }         // a broken promise: wrote, then failed
                        }
                        return (key, true)
                    } catch {
                        return (key, false)
                    }
                }
            }
            var all: [UInt64: Bool] = [:]
            for await (key, ok) in group { all[key] = ok }
            return all
        }
        for (key, ok) in outcomes { #expect(ok == (key % 7 != 0 && key % 11 != 0), "key \(key)") }
        try environment.read { (txn: ReadTransaction) throws in
            for key in 0..<200 as Range<UInt64> {
                #expect(try txn.get(items, key) == (key % 7 == 0 || key % 11 == 0 ? nil : key), "key \(key)")
            }
        }
    }

    /// One async write per key, all at once (so the writer batches them); whether each committed.
    static func writeConcurrently(
        _ environment: Environment, keys: Range<UInt64>,
        _ body: @escaping @Sendable (WriteTransaction, UInt64) throws -> Void
    ) async -> [UInt64: Bool] {
        await withTaskGroup(of: (UInt64, Bool).self) { group in
            for key in keys {
                group.addTask {
                    do {
                        try await environment.write { txn in try body(txn, key) }
                        return (key, true)
                    } catch {
                        return (key, false)
                    }
                }
            }
            var all: [UInt64: Bool] = [:]
            for await (key, ok) in group { all[key] = ok }
            return all
        }
    }
}
