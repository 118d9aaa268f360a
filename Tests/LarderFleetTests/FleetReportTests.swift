import Foundation
import Larder
@testable import LarderFleet
import LarderTesting
import Testing

/// `larder fleet report incident-costs`: the figures each box's own report gives, computed in
/// the fleet database from the shipped records alone. The kitchen-day demo is the oracle: it
/// grants, overrides and reverses credits, requests a refund that succeeds, proposes
/// compensation that is approved, rejected or left pending, and cancels a cycle whose packs
/// are given back.
extension FleetTests {
    /// The JSON of a report without the fleet's own fields, for comparing with a box's.
    func reportObject(_ text: String) throws -> NSDictionary {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
        return object.filter { $0.key != "boxes" && $0.key != "records_skipped" } as NSDictionary
    }

    @Test func incidentCostsAcrossTheFleetMatchEachBoxsOwnReport() async throws {
        let database = try await FleetDatabase.cluster.createDatabase()
        let url = FleetDatabase.cluster.url(database: database)
        let directory = try TemporaryDirectory()
        // Two kitchens on different days: the incident ids repeat across boxes (inc-39, …), so
        // every figure must be joined within its box.
        let boxes = [("k-north", directory.path("north"), "3"), ("k-south", directory.path("south"), "4")]
        for (boxID, path, seed) in boxes {
            let demo = await larder(["demo", "--db", path, "--no-serve", "--seed", seed])
            #expect(demo.status == 0, "\(demo.err)")
            let ship = await larder(["ship", "--db", path, "--postgres", url, "--box-id", boxID])
            #expect(ship.status == 0, "\(ship.err)")
        }

        for grouping in ["category", "severity", "day", "ref:route", "ref:cycle"] {
            for (boxID, path, _) in boxes {
                let own = await larder(["report", "incident-costs", "--db", path, "--format", "json", "--group-by", grouping])
                let fleet = await larder(["fleet", "report", "incident-costs", "--postgres", url, "--box-id", boxID,
                                          "--format", "json", "--group-by", grouping])
                #expect(own.status == 0 && fleet.status == 0, "\(own.err) \(fleet.err)")
                #expect(try reportObject(fleet.out) == (try reportObject(own.out)), "\(boxID) by \(grouping):\n\(fleet.out)\n\(own.out)")
            }
        }
        // A range: only incidents recorded in it, on both sides.
        let firstIncident = try #require(try await FleetDatabase.cluster.strings(
            "SELECT to_char(min(time) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM larder_audit WHERE event = 'OP_FAILURE_RECORDED' AND box_id = 'k-north'",
            database: database).first ?? nil)
        let (_, northPath, _) = boxes[0]
        let own = await larder(["report", "incident-costs", "--db", northPath, "--format", "json", "--since", firstIncident, "--until", "2100-01-01T00:00:00Z"])
        let ranged = await larder(["fleet", "report", "incident-costs", "--postgres", url, "--box-id", "k-north", "--format", "json",
                                   "--since", firstIncident, "--until", "2100-01-01T00:00:00Z"])
        #expect(try reportObject(ranged.out) == (try reportObject(own.out)), "\(ranged.out)\n\(own.out)")

        // The whole fleet: by box, each box's total; overall, their sum.
        let byBox = await larder(["fleet", "report", "incident-costs", "--postgres", url, "--format", "json", "--group-by", "box"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(byBox.out.utf8)) as? [String: Any])
        let rows = try #require(object["by_box"] as? [[String: Any]])
        #expect(rows.map { $0["box_id"] as? String } == ["k-north", "k-south"])
        var costs: [Int] = []
        for (index, (_, path, _)) in boxes.enumerated() {
            let own = try #require(try JSONSerialization.jsonObject(with: Data(
                await larder(["report", "incident-costs", "--db", path, "--format", "json"]).out.utf8)) as? [String: Any])
            let total = try #require(own["total"] as? [String: Any])
            #expect(rows[index].filter { $0.key != "box_id" } as NSDictionary == total as NSDictionary)
            costs.append(try #require(total["cost_cents"] as? Int))
        }
        #expect((object["total"] as? [String: Any])?["cost_cents"] as? Int == costs.reduce(0, +))
        #expect(object["boxes"] as? Int == 2)
        #expect(object["records_skipped"] as? Int == 0)
        let table = await larder(["fleet", "report", "incident-costs", "--postgres", url, "--group-by", "box"])
        #expect(table.out.contains("BOX") && table.out.contains("k-north") && table.out.contains("2 box(es) with incidents in the range"), "\(table.out)")
    }
}
