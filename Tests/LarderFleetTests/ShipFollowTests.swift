import Foundation
import Larder
@testable import LarderFleet
import LarderTesting
import Testing

/// `larder ship --follow`: keeps shipping as the box writes; stops cleanly on request or SIGTERM.
extension FleetTests {
    @Test func aFollowerShipsAsTheBoxWritesAndStopsOnRequest() async throws {
        var random = seeded(50)
        let database = try await FleetDatabase.cluster.createDatabase()
        let box = try TestBox()
        try appendRecords(box.store, count: 120, random: &random)
        let first = try box.head
        let shipper = try shipper(box, database: database, boxID: "k-live", batch: 40, clock: .system, follow: true)
        let summary = try await following(shipper) {
            var expected = Int64(first)
            for round in 0..<3 {
                let target = expected
                let shipped = try await eventually { (try? await shippedRows(database, box: "k-live"))?.count == target }
                #expect(shipped, "round \(round): the follower did not ship up to \(target)")
                try appendRecords(box.store, count: 35, random: &random, requestPrefix: "round-\(round)", perWrite: 7)
                expected += 35
            }
            let target = expected
            #expect(try await eventually { (try? await shippedRows(database, box: "k-live"))?.count == target })
        }
        #expect(summary.stopped)
        #expect(summary.recordsShipped == first + 105)
        #expect(summary.shippedSeq == first + 105)
        #expect(try await shippedRows(database, box: "k-live") == (Int64(first + 105), 1, Int64(first + 105)))
    }

    @Test func theBinaryFollowsAndStopsCleanlyOnSIGTERM() async throws {
        var random = seeded(51)
        let database = try await FleetDatabase.cluster.createDatabase()
        let box = try TestBox()
        try appendRecords(box.store, count: 60, random: &random)
        let head = try box.head
        let process = Process()
        process.executableURL = URL(fileURLWithPath: builtProductPath("larder"))
        process.arguments = ["ship", "--db", box.path, "--postgres", FleetDatabase.cluster.url(database: database),
                             "--box-id", "k-bin", "--follow", "--interval", "100ms"]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        defer { if process.isRunning { process.interrupt() } }
        #expect(try await eventually { (try? await shippedRows(database, box: "k-bin"))?.count == Int64(head) })
        try appendRecords(box.store, count: 25, random: &random, requestPrefix: "later")
        #expect(try await eventually { (try? await shippedRows(database, box: "k-bin"))?.count == Int64(head + 25) })
        process.terminate()   // SIGTERM
        let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0, "\(err)")
        #expect(out.contains("stopped on request"), "\(out)")
        #expect(out.contains("the fleet database holds seq \(head + 25); the box is at seq \(head + 25)"), "\(out)")
        #expect(err.contains("up to date at seq \(head); following"), "\(err)")
        #expect(try await shippedRows(database, box: "k-bin") == (Int64(head + 25), 1, Int64(head + 25)))
    }
}
