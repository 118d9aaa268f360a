import Foundation
import Larder
import LarderTesting
import Testing

/// The ship-state file beside a store and the shipping lag computed from it.
@Suite("shipping lag")
struct ShippingLagTests {
    func append(_ temporary: TemporaryStore, _ count: Int, advancing seconds: Double = 0) throws {
        for index in 0..<count {
            try temporary.store.write(WriteContext(actor: ActorIdentity(id: "am-1", role: .accountManager), requestID: "req-\(index)")) { txn in
                _ = try txn.appendAudit(AuditDraft(event: "NOTE"))
            }
            temporary.clock.advance(seconds: seconds)
        }
    }

    @Test func aStoreNeverShippedHasNoLag() throws {
        let temporary = try TemporaryStore()
        try append(temporary, 3)
        #expect(try ShipState.load(storePath: temporary.path) == nil)
        #expect(try temporary.store.shippingLag() == nil)
    }

    @Test func theStateFileRoundTripsAndIsReplacedWhole() throws {
        let temporary = try TemporaryStore()
        let state = ShipState(boxID: "kitchen-7", destination: "postgres://box@db:5432/fleet", shippedSeq: 42,
                              shippedChainHash: [UInt8](repeating: 0xAB, count: 32), shippedAtMicros: 1_800_000_000_000_000,
                              lastAttemptAtMicros: 1_800_000_001_000_000, lastError: nil)
        try state.save(storePath: temporary.path)
        #expect(try ShipState.load(storePath: temporary.path) == state)
        var failed = state
        failed.lastError = "PostgreSQL error 57P01: terminating connection"
        try failed.save(storePath: temporary.path)
        #expect(try ShipState.load(storePath: temporary.path) == failed)
        // No temporary file is left behind, and the LMDB files are untouched.
        let files = try FileManager.default.contentsOfDirectory(atPath: temporary.path).sorted()
        #expect(files == ["data.mdb", "lock.mdb", "ship-state.json"])
        let text = try String(contentsOfFile: ShipState.path(storePath: temporary.path), encoding: .utf8)
        #expect(text.hasPrefix(#"{"format":1,"box_id":"kitchen-7","destination":"postgres://box@db:5432/fleet","shipped_seq":42,"#))
    }

    @Test(arguments: ["not json", #"{"format":2}"#, #"{"format":1,"box_id":"k","destination":"d","shipped_seq":-1}"#,
                      #"{"format":1,"box_id":"k","destination":"d","shipped_seq":1,"shipped_chain_hash":"ab","last_attempt_at":"2026-01-01T00:00:00Z"}"#])
    func aDamagedStateFileIsAPersistenceError(_ text: String) throws {
        let temporary = try TemporaryStore()
        try text.write(toFile: ShipState.path(storePath: temporary.path), atomically: true, encoding: .utf8)
        #expect(throws: LarderError.self) { try ShipState.load(storePath: temporary.path) }
    }

    @Test func theLagCountsUnshippedRecordsAndTheAgeOfTheOldest() throws {
        let temporary = try TemporaryStore()
        // A new store holds its own records already (schema, policy).
        let base = try temporary.store.read { view in try view.audit.head().seq }
        try append(temporary, 10, advancing: 2)
        let shipped = try #require(try temporary.store.read { view in try view.audit.record(seq: base + 6) })
        let state = ShipState(boxID: "k", destination: "postgres://box@db:5432/fleet", shippedSeq: base + 6, shippedChainHash: shipped.chainHash,
                              shippedAtMicros: nil, lastAttemptAtMicros: 0)
        try state.save(storePath: temporary.path)
        let lag = try #require(try temporary.store.shippingLag())
        #expect(lag.headSeq == base + 10)
        #expect(lag.recordsUnshipped == 4)
        // The oldest unshipped record was written 2 s after the last shipped one; the clock is now
        // 2 s past the newest: 4 × 2 s.
        #expect(lag.oldestUnshippedAgeSeconds == 8)
        #expect(!lag.isAheadOfStore)

        var caughtUp = state
        caughtUp.shippedSeq = base + 10
        try caughtUp.save(storePath: temporary.path)
        let none = try #require(try temporary.store.shippingLag())
        #expect(none.recordsUnshipped == 0)
        #expect(none.oldestUnshippedAgeSeconds == nil)

        var ahead = state
        ahead.shippedSeq = base + 15
        try ahead.save(storePath: temporary.path)
        let restored = try #require(try temporary.store.shippingLag())
        #expect(restored.isAheadOfStore)
        #expect(restored.recordsUnshipped == 0)
    }
}
