public import ArgumentParser
import Foundation
import Larder

extension IncidentState: ExpressibleByArgument {}
extension IncidentCategory: ExpressibleByArgument {}
extension Severity: ExpressibleByArgument {}

/// `larder incidents`: incidents, newest first, filtered.
struct IncidentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "incidents", abstract: "List incidents (read-only).")

    @OptionGroup var location: StoreLocation

    @Option(name: .long, help: "open, acknowledged, contained, resolved or closed.")
    var state: IncidentState?

    @Option(name: .long, help: "supply, kitchenProduction, orderingSystem, delivery, humanProcess or forceMajeure.")
    var category: IncidentCategory?

    @Option(name: .long, help: "P0, P1, P2 or P3.")
    var severity: Severity?

    @Flag(name: .long, help: "Only open incidents past their acknowledgement deadline.")
    var overdue = false

    @Option(name: .long, help: "At most this many incidents (1...500).")
    var limit: Int = 50

    func validate() throws {
        guard (1...IncidentReader.incidentsPerPageMax).contains(limit) else { throw ValidationError("--limit must be in 1...500.") }
    }

    func run() throws {
        let console = Console.current
        let store = try location.open(readOnly: true)
        defer { store.close() }
        let incidents = try overdue
            ? Array(store.overdueIncidents().prefix(limit))
            : store.read { view in try view.incidents.incidents(state: state, category: category, severity: severity, limit: limit).incidents }
        let now = store.options.clock.now().unixMicros
        console.print("ID".column(14) + "CATEGORY".column(18) + "SEV".column(5) + "STATE".column(14) + "VER".column(5)
                      + "CREATED".column(28) + "RESPONSES".column(11) + "SUMMARY")
        for incident in incidents {
            let state = incident.isOverdue(atMicros: now) ? "open OVERDUE" : incident.state.rawValue
            console.print(incident.id.column(14) + incident.category.rawValue.column(18) + incident.severity.rawValue.column(5)
                          + state.column(14) + String(incident.version).column(5) + RFC3339.format(incident.createdAtMicros).column(28)
                          + String(incident.responses.count).column(11) + incident.summary)
        }
        console.print("\(incidents.count) incident(s)")
    }
}

/// `larder ledger`: one account's balance and history.
struct LedgerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ledger", abstract: "Show an account's balance and history (read-only).")

    @OptionGroup var location: StoreLocation

    @Option(name: .long, help: "The account id.")
    var account: String

    @Option(name: .long, help: "History entries, newest first (1...1000).")
    var limit: Int = 20

    func validate() throws {
        guard (1...LedgerReader.historyEntriesPerPageMax).contains(limit) else { throw ValidationError("--limit must be in 1...1000.") }
    }

    func run() throws {
        let console = Console.current
        let store = try location.open(readOnly: true)
        defer { store.close() }
        let (account, balance, history) = try store.read { view -> (Account, Balance, AccountHistoryPage) in
            guard let account = try view.ledger.account(id: self.account) else {
                throw LarderError(.notFound, "No account \(self.account).")
            }
            return (account, try view.ledger.balance(of: account.id),
                    try view.ledger.history(of: account.id, direction: .backward, limit: limit))
        }
        console.print("account \(account.id) on ledger \(account.ledger) (code \(account.code))")
        console.print("  net \(balance.net), available \(balance.available)")
        console.print("  debits posted \(balance.debitsPosted), pending \(balance.debitsPending); credits posted \(balance.creditsPosted), pending \(balance.creditsPending)")
        console.print("SEQ".column(8) + "TRANSFER".column(30) + "KIND".column(13) + "SIDE".column(8) + "AMOUNT".column(12) + "NET AFTER")
        for entry in history.entries {
            console.print(String(entry.seq).column(8) + entry.transferID.column(30) + entry.kind.rawValue.column(13)
                          + (entry.isDebit ? "debit" : "credit").column(8) + String(entry.amount).column(12) + String(entry.balanceAfter.net))
        }
    }
}

/// `larder stats`: tables, counts, map use, readers, head, shipping lag.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Show tables, record counts, map use, readers, the chain head and the shipping lag (read-only).")

    /// The shipping line: how far the fleet database is behind, from `ship-state.json`.
    static func shipping(_ lag: ShippingLag?) -> String {
        guard let lag else { return "never shipped (no ship-state.json)" }
        var text = "box \(lag.state.boxID) to \(lag.state.destination): shipped seq \(lag.state.shippedSeq) of \(lag.headSeq), "
        if lag.isAheadOfStore {
            text += "AHEAD of this store (it was replaced by an older copy; larder ship will refuse it)"
        } else if lag.recordsUnshipped == 0 {
            text += "up to date"
        } else {
            text += "\(lag.recordsUnshipped) record(s) not yet shipped"
            if let age = lag.oldestUnshippedAgeSeconds { text += ", the oldest \(String(format: "%.1f", age)) s old" }
        }
        if let shippedAt = lag.state.shippedAtMicros { text += "; last shipped \(RFC3339.format(shippedAt))" }
        if let error = lag.state.lastError { text += "; last attempt at \(RFC3339.format(lag.state.lastAttemptAtMicros)) failed: \(error)" }
        return text
    }

    @OptionGroup var location: StoreLocation

    func run() throws {
        let console = Console.current
        let store = try location.open(readOnly: true)
        defer { store.close() }
        let info = store.info()
        let head = try store.read { view in try view.audit.head() }
        console.print("store \(info.path)")
        let maxSource = info.limitsRecordedInStore ? "recorded by the store's writer" : "none recorded; this tool's default"
        console.print("  map: \(info.mapUsedBytes) bytes used; max \(info.mapSizeBytesMax) (\(maxSource)), \(String(format: "%.1f", info.mapUseFraction * 100)) % of max")
        console.print("  readers: \(info.readersUsed) of \(info.readersMax); page size \(info.pageSizeBytes) bytes; last transaction \(info.lastTransactionID)")
        console.print("  audit head: seq \(head.seq) \(head.chainHash.hexString)")
        // A damaged state file must not hide the rest of the statistics.
        let shipping: String
        do { shipping = Self.shipping(try store.shippingLag()) } catch { shipping = "unknown: \(error.message)" }
        console.print("  shipping: " + shipping)
        let tables = try store.tableStatistics()
        // As wide as the longest name and a gap (compensation_proposals filled 22 columns).
        let nameWidth = max(22, (tables.map(\.name.count).max() ?? 0) + 2)
        console.print("TABLE".column(nameWidth) + "ENTRIES".column(12) + "DEPTH".column(7) + "PAGES")
        for table in tables {
            console.print(table.name.column(nameWidth) + String(table.entries).column(12) + String(table.depth).column(7)
                          + String(table.branchPages + table.leafPages + table.overflowPages))
        }
    }
}
