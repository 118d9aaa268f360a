import Foundation
import LarderCLI
import LarderTesting
import Testing

/// The kitchen day's compensation, stock and cost report, and `larder report incident-costs`.
@Suite("larder report and the demo's operations")
struct ReportCommandTests {
    let directory: TemporaryDirectory
    var db: String { directory.path("db") }

    init() throws {
        directory = try TemporaryDirectory(prefix: "larder-report")
    }

    @Test func theDemoProposesDecidesCountsAndReports() async throws {
        let demo = await larder("demo", "--no-serve", "--db", db, "--seed", "7")
        #expect(demo.status == 0, "\(demo.err)")
        for words in ["approved at once", "the admin approved it", "the admin rejected the mixed proposal", "the retry was replayed",
                      "refused with PERMISSION_DENIED (The accountManager role may not decide a non-standard",
                      "approving the rejected proposal afterwards: refused with CONFLICT", "cycle count of tomatoes",
                      "today's incident costs:", "cost by category", "proposals waiting in the store: 1 (overdue: 0)"] {
            #expect(demo.out.contains(words), "missing \(words) in:\n\(demo.out)")
        }
        let audit = await larder("audit", "--db", db, "--format", "ndjson", "--limit", "100000")
        for event in ["COMPENSATION_PROPOSED", "COMPENSATION_APPROVED", "COMPENSATION_REJECTED", "STOCK_COUNTED",
                      "LEDGER_TRANSFER_PENDING", "LEDGER_PENDING_POSTED", "LEDGER_PENDING_VOIDED"] {
            #expect(audit.out.contains("\"event\":\"\(event)\""), "no \(event)")
        }
        // The count found a shortfall and booked it.
        let counted = audit.out.split(separator: "\n").first { $0.contains("\"event\":\"STOCK_COUNTED\"") }.map(String.init) ?? ""
        let record = try #require(try JSONSerialization.jsonObject(with: Data(counted.utf8)) as? [String: Any])
        let payload = try #require(record["payload"] as? [String: Any])
        #expect((payload["adjustment"] as? Int ?? 0) < 0, "\(payload)")
        #expect(payload["expected"] as? Int == (payload["counted"] as? Int ?? 0) - (payload["adjustment"] as? Int ?? 0))
    }

    @Test func theReportPrintsATableAndTheRoutesJSON() async throws {
        #expect(await larder("demo", "--no-serve", "--db", db, "--seed", "7").status == 0)
        let table = await larder("report", "incident-costs", "--db", db)
        #expect(table.status == 0, "\(table.err)")
        let lines = table.out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first?.hasPrefix("CATEGORY") == true)
        #expect(lines.contains { $0.hasPrefix("total") })
        #expect(lines.contains { $0.hasPrefix("delivery") && $0.contains("█") }, "\(table.out)")

        let json = await larder("report", "incident-costs", "--db", db, "--group-by", "ref:route", "--format", "json")
        #expect(json.status == 0, "\(json.err)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        let rows = try #require(object["by_ref"] as? [[String: Any]])
        let total = try #require(object["total"] as? [String: Any])
        for field in ["incidents", "credits_cents", "refunds_cents", "cancelled_packs", "cost_cents"] {
            #expect(total[field] as? Int == rows.compactMap { $0[field] as? Int }.reduce(0, +), "\(field)")
        }
        #expect(rows.contains { ($0["ref_ids"] as? [String]) == ["R4"] })

        let empty = await larder("report", "incident-costs", "--db", db, "--since", "2100-01-01T00:00:00Z")
        #expect(empty.out.contains("(no incidents in the range)"))
        #expect(await larder("report", "incident-costs", "--db", db, "--group-by", "route").status == 64)

        let proposals = await larder("proposals", "--db", db)
        #expect(proposals.status == 0, "\(proposals.err)")
        #expect(proposals.out.contains("4 proposal(s)"), "\(proposals.out)")
        let waiting = await larder("proposals", "--db", db, "--state", "pending")
        #expect(waiting.out.contains("1 proposal(s)") && waiting.out.contains("pending"), "\(waiting.out)")
        #expect(await larder("proposals", "--db", db, "--overdue").out.contains("0 proposal(s)"))
        #expect(await larder("report", "incident-costs", "--db", db, "--since", "tomorrow").status == 2)
    }
}
