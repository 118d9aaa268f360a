import ArgumentParser
import Foundation
import Hummingbird
import Larder
import LarderAdmin

/// `larder demo`: the README's main job. Plays a kitchen day, prints a summary, then serves the
/// admin API with a demo token and ready-to-paste curl lines.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Play a seeded kitchen day through Larder, print a summary, then serve the admin API.")

    @Option(name: .long, help: "The store directory (created when missing; reused: each run plays the next day).")
    var db = ".larder/demo"

    @Option(name: .long, help: "Admin API port on 127.0.0.1.")
    var port = 8089

    @Flag(name: .customLong("no-serve"), help: "Exit after the summary instead of serving the admin API.")
    var noServe = false

    @Option(name: .long, help: "Seed of the day's randomness.")
    var seed: UInt64 = 2026

    @Option(name: .customLong("log-level"), help: "Log to standard error at this level and above: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "notice"

    func run() async throws {
        let console = Console.current
        let logger = Parse.stderrLogger(level: try Parse.logLevel(logLevel))
        // The store records its counters into the registry the demo's /metrics renders.
        let store = try Store.open(at: db, options: Store.Options(logger: logger, metricsFactory: AdminServer.metricsFactory()))
        defer { store.close() }
        var day = try KitchenDay(store: store, console: console, seed: seed)
        let summary = try await day.play()
        console.print("")
        console.print("Summary")
        for customer in summary.customers {
            console.print("  \(customer.name.column(7)) packs \(String(customer.packs).column(4)) credits \(customer.credits)¢")
        }
        console.print("  today's incidents:")
        for incident in summary.incidentsToday {
            console.print("    \(incident.id.column(10)) \(incident.category.rawValue.column(18)) \(incident.severity.rawValue) \(incident.state.rawValue.column(10)) \(incident.responses.count) response(s)  \(incident.summary)")
        }
        console.print("  open incidents in the store: \(summary.openIncidents.count)")
        console.print("  today's compensation proposals:")
        for proposal in summary.proposals {
            let how = proposal.decision.map { decision in
                decision.autoRule.map { "at once, rule \($0)" } ?? "by \(decision.actor.id)"
            } ?? "waiting, decide by \(RFC3339.format(proposal.decideByMicros))"
            console.print("    \(proposal.id.column(34)) \(proposal.offer.channel.rawValue.column(7)) \(String(proposal.offer.totalCents).leftPadded(6))¢  \(proposal.state.rawValue.column(9)) \(how)")
        }
        console.print("  proposals waiting in the store: \(summary.waitingProposals) (overdue: \(summary.overdueProposals))")
        if let count = summary.count {
            console.print("  tomato count \(count.id): counted \(count.counted), ledger expected \(count.expected), adjustment \(count.adjustment)")
        }
        if let costs = summary.costs {
            console.print("  today's incident costs:")
            for line in IncidentCostTable.lines(costs, indent: "    ") { console.print(line) }
        }
        console.print("  audit head: seq \(summary.head.seq) \(summary.head.chainHash.hexString)")
        console.print("  chain verified: \(summary.verify.isIntact ? "yes" : "NO — run larder verify") (\(summary.verify.recordsChecked) records, every index and ledger balance)")
        guard !noServe else { return }

        // A fresh demo token, valid for a day, in a token file beside the store.
        let tokensPath = URL(fileURLWithPath: db).standardizedFileURL.path + ".tokens.json"
        var tokens = FileManager.default.fileExists(atPath: tokensPath) ? try TokenFile.load(from: tokensPath) : try TokenFile()
        _ = tokens.removeToken(id: "demo")
        let created = try tokens.createToken(id: "demo", scopes: Set(TokenScope.all),
                                             expiresAt: Date().unixMicros + 86_400_000_000)
        try tokens.save(to: tokensPath)
        var configuration = AdminConfiguration()
        configuration.port = port
        let server = try AdminServer(store: store, tokens: tokens, configuration: configuration, logger: logger)
        let incident = summary.incidentsToday.first { $0.category == .delivery }?.id ?? "inc-1"
        let secret = created.secret
        try await server.makeApplication { boundPort in
            let base = "http://127.0.0.1:\(boundPort)"
            console.print("")
            console.print("Admin API on \(base) (read-only; Ctrl-C stops). Try:")
            console.print("  curl -s \(base)/healthz")
            console.print("  curl -s \(base)/readyz")
            console.print("  curl -s -H 'Authorization: Bearer \(secret)' '\(base)/v1/audit?from_seq=1&limit=5'")
            console.print("  curl -s -H 'Authorization: Bearer \(secret)' '\(base)/v1/audit?ref=incident:\(incident)'")
            console.print("  curl -s -H 'Authorization: Bearer \(secret)' \(base)/v1/incidents/\(incident)")
            console.print("  curl -s -H 'Authorization: Bearer \(secret)' \(base)/v1/audit/verify")
            console.print("  curl -s -H 'Authorization: Bearer \(secret)' '\(base)/v1/reports/incident-costs?group_by=category'")
            console.print("  curl -s \(base)/metrics")
        }.runService()
    }
}
