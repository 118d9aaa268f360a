public import ArgumentParser
import Larder

extension ProposalState: ExpressibleByArgument {}

/// `larder proposals`: compensation proposals, newest first; `--overdue` for the ones still
/// waiting past their deadline.
struct ProposalsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "proposals", abstract: "List compensation proposals (read-only).")

    @OptionGroup var location: StoreLocation

    @Option(name: .long, help: "pending, approved or rejected.")
    var state: ProposalState?

    @Option(name: .long, help: "Only the proposals of this incident.")
    var incident: String?

    @Flag(name: .long, help: "Only proposals still waiting past their deadline (most overdue first).")
    var overdue = false

    @Option(name: .long, help: "At most this many proposals (1...500).")
    var limit: Int = 50

    func validate() throws {
        guard (1...CompensationReader.proposalsPerPageMax).contains(limit) else { throw ValidationError("--limit must be in 1...500.") }
    }

    func run() throws {
        let console = Console.current
        let store = try location.open(readOnly: true)
        defer { store.close() }
        let now = store.options.clock.now().unixMicros
        var proposals = try store.read { view -> [CompensationProposal] in
            if overdue { return try view.compensation.overdue(atMicros: now, limit: limit) }
            if let incident { return try view.compensation.proposals(incident: incident).reversed() }
            return try view.compensation.proposals(state: state, limit: limit).proposals
        }
        if let state { proposals = proposals.filter { $0.state == state } }
        proposals = Array(proposals.prefix(limit))
        console.print("ID".column(36) + "CHANNEL".column(8) + "CENTS".leftPadded(8) + "  " + "STATE".column(17) + "PROPOSED BY".column(16)
                      + "DECIDE BY".column(28) + "DECIDED BY")
        for proposal in proposals {
            let state = proposal.isOverdue(atMicros: now) ? "pending OVERDUE" : proposal.state.rawValue
            let decided = proposal.decision.map { $0.autoRule.map { "rule \($0)" } ?? $0.actor.id } ?? "-"
            console.print(proposal.id.column(36) + proposal.offer.channel.rawValue.column(8) + String(proposal.offer.totalCents).leftPadded(8)
                          + "  " + state.column(17) + proposal.proposedBy.id.column(16)
                          + RFC3339.format(proposal.decideByMicros).column(28) + decided)
        }
        console.print("\(proposals.count) proposal(s)")
    }
}
