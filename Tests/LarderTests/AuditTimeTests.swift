import Foundation
import Larder
import LarderStorage
import LarderTesting
import Testing

/// Record times never decrease (docs/FORMAT.md section 3): a clock that goes back writes the last
/// record's time again, and a time range is found by binary search on seq.
@Suite("Audit times")
struct AuditTimeTests {
    @Test func aClockThatGoesBackWritesTheLastTimeAgain() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        try store.write(.test("before")) { txn in try txn.note(NoteRequest(order: "o1", amount: 1)) }
        let first = try store.read { try $0.audit.head() }
        let firstTime = try #require(try store.read { try $0.audit.record(seq: first.seq) }).record.timeMicros
        temporary.clock.advance(seconds: -600)
        try store.write(.test("after")) { txn in try txn.note(NoteRequest(order: "o2", amount: 2)) }
        let second = try #require(try store.read { try $0.audit.record(seq: first.seq + 1) })
        #expect(second.record.timeMicros == firstTime)
        // Once the clock passes the last time again, records take the clock's time.
        temporary.clock.advance(seconds: 1_200)
        try store.write(.test("later")) { txn in try txn.note(NoteRequest(order: "o3", amount: 3)) }
        let third = try #require(try store.read { try $0.audit.record(seq: first.seq + 2) })
        #expect(third.record.timeMicros == firstTime + 600_000_000)
        // The range holding that time holds every record of it (the store's own first records were
        // written at the same manual-clock time), in seq order, the one written "earlier" included.
        let page = try store.read { try $0.audit.records(since: firstTime, until: firstTime + 1, limit: 10) }
        #expect(page.records.map(\.seq) == Array(1...(first.seq + 1)))
        #expect(try store.verify().isIntact)
    }

    /// A time range is found by binary search on seq: every window over many records returns
    /// exactly the records whose time lies in it, in order, across pages.
    @Test func timeRangesAreFoundBySeq() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        var generator = SeededGenerator(seed: 13)
        for index in 0..<300 {
            // Steps forward, sometimes back (clamped), sometimes none (equal times).
            temporary.clock.advance(seconds: Double(Int.random(in: -3...5, using: &generator)))
            try store.write(.test("w-\(index)")) { txn in try txn.note(NoteRequest(order: "o\(index % 9)", amount: index)) }
        }
        let all = try store.read { try $0.audit.records(fromSeq: 1, limit: 1_000) }.records
        let times = all.map(\.record.timeMicros)
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 <= $1 }, "seed 13")
        for _ in 0..<40 {
            let since = times[Int.random(in: 0..<times.count, using: &generator)] + Int64.random(in: -2...2, using: &generator)
            let until = since + Int64.random(in: 0...40_000_000, using: &generator)
            var found: [UInt64] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try store.read { try $0.audit.records(since: since, until: until, limit: 7, cursor: cursor) }
                found += page.records.map(\.seq)
                cursor = page.nextCursor
                pages += 1
            } while cursor != nil && pages <= all.count   // a cursor that does not advance must fail, not hang
            let expected = all.filter { $0.record.timeMicros >= since && $0.record.timeMicros < until }.map(\.seq)
            #expect(found == expected, "window \(since)..<\(until), seed 13")
        }
    }
}
