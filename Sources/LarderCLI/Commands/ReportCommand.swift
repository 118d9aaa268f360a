import ArgumentParser
import Foundation
import Larder

/// `larder report`: reports computed from the store.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Reports computed from the ledger and the incidents (read-only).",
        subcommands: [IncidentCostsCommand.self])
}

/// `larder report incident-costs`: what incidents cost, grouped, as a table with a small chart
/// (or the admin API's JSON).
struct IncidentCostsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incident-costs",
        abstract: "Credits, refunds and cancelled packs of the incidents recorded in a range, grouped.")

    @OptionGroup var location: StoreLocation

    @Option(name: .long, help: "Incidents recorded at or after this RFC 3339 time.")
    var since: String?

    @Option(name: .long, help: "Incidents recorded before this RFC 3339 time.")
    var until: String?

    @Option(name: .customLong("group-by"), help: "category, severity, day or ref:KIND (e.g. ref:route).")
    var groupBy = "category"

    @Option(name: .long, help: "table or json (the body of GET /v1/reports/incident-costs).")
    var format = "table"

    func validate() throws {
        guard IncidentCostGrouping(groupBy) != nil else {
            throw ValidationError("--group-by must be category, severity, day or ref:KIND.")
        }
        guard ["table", "json"].contains(format) else { throw ValidationError("--format must be table or json.") }
    }

    func run() throws {
        let console = Console.current
        let since = try self.since.map { text throws(LarderError) in try Parse.time(text, option: "--since") }
        let until = try self.until.map { text throws(LarderError) in try Parse.time(text, option: "--until") }
        let grouping = IncidentCostGrouping(groupBy)!
        let store = try location.open(readOnly: true)
        defer { store.close() }
        let report = try store.read { view in try view.reports.incidentCosts(since: since, until: until, groupBy: grouping) }
        if format == "json" {
            var json = JSONWriter()
            json.object { o in report.writeJSON(to: &o) }
            console.print(json.text)
        } else {
            for line in IncidentCostTable.lines(report) { console.print(line) }
        }
    }
}

/// The incident cost report as terminal lines: a table, then a bar per row of what it cost
/// (credits `█`, succeeded refunds `▒`), scaled to the costliest row.
enum IncidentCostTable {
    static let barWidthMax = 30

    static func lines(_ report: IncidentCostReport, indent: String = "") -> [String] {
        lines(grouping: report.groupBy.description, rows: report.rows.map { (label($0, report.groupBy), $0.figures) },
              total: report.total, indent: indent)
    }

    /// The table and chart of any rows of figures (the fleet's report groups by box too).
    static func lines(grouping: String, rows: [(label: String, figures: IncidentCostFigures)], total: IncidentCostFigures,
                      indent: String = "") -> [String] {
        let width = max(10, min(28, (rows.map(\.label.count).max() ?? 0) + 2))
        var lines: [String] = []
        let header = grouping.uppercased().column(width) + "INCIDENTS".leftPadded(10) + "CREDITS".leftPadded(10)
            + "REFUNDS".leftPadded(10) + "REQUESTED".leftPadded(11) + "PENDING".leftPadded(10) + "CYCLES".leftPadded(8)
            + "PACKS".leftPadded(7) + "COST".leftPadded(10)
        lines.append(indent + header)
        for row in rows { lines.append(indent + figuresLine(row.label, row.figures, width: width)) }
        lines.append(indent + figuresLine("total", total, width: width))
        guard !rows.isEmpty else {
            lines.append(indent + "(no incidents in the range)")
            return lines
        }
        let largest = rows.map(\.figures.costCents).max() ?? 0
        lines.append("")
        lines.append(indent + "cost by \(grouping) (█ credits, ▒ refunds)")
        for row in rows {
            let figures = row.figures
            let credits = cells(figures.creditsCents, of: largest)
            let refunds = min(barWidthMax - credits, cells(figures.costCents, of: largest) - credits)
            let bar = String(repeating: "█", count: credits) + String(repeating: "▒", count: max(0, refunds))
            lines.append(indent + row.label.column(width) + (bar.isEmpty ? "·" : bar) + " " + money(figures.costCents))
        }
        return lines
    }

    private static func label(_ row: IncidentCostReport.Row, _ grouping: IncidentCostGrouping) -> String {
        if case .ref = grouping, row.key.isEmpty { return "(none)" }
        return row.key
    }

    private static func figuresLine(_ label: String, _ f: IncidentCostFigures, width: Int) -> String {
        label.column(width) + String(f.incidents).leftPadded(10) + money(f.creditsCents).leftPadded(10)
            + money(f.refundsCents).leftPadded(10) + money(f.refundsRequestedCents).leftPadded(11)
            + money(f.pendingCompensationCents).leftPadded(10) + String(f.cancelledCycles).leftPadded(8)
            + String(f.cancelledPacks).leftPadded(7) + money(f.costCents).leftPadded(10)
    }

    /// Cells of a bar for `value` when `largest` fills the whole width.
    private static func cells(_ value: UInt64, of largest: UInt64) -> Int {
        guard largest > 0 else { return 0 }
        return Int((UInt128(value) * UInt128(barWidthMax) + UInt128(largest) / 2) / UInt128(largest))
    }

    /// Cents as `12.99`.
    static func money(_ cents: UInt64) -> String {
        let fraction = cents % 100
        return "\(cents / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}

extension String {
    /// Right-aligned in `width` characters, for number columns.
    func leftPadded(_ width: Int) -> String {
        count >= width ? " " + self : String(repeating: " ", count: width - count) + self
    }
}
