import ArgumentParser
import Dispatch
import Foundation
import Larder
import LarderFleet

/// `larder ship`: sends the box's audit log to the fleet database.
struct ShipCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ship",
        abstract: "Ship the audit log to the fleet's PostgreSQL database (opens the store read-only).",
        discussion: """
            Sends the records the fleet database does not hold yet, in seq order, in batches of --batch records \
            (one PostgreSQL transaction each), after checking that they continue what was shipped: a box whose \
            history differs (a fork, a restored older backup) is refused with CONFLICT and nothing is inserted. \
            Creates or migrates the fleet schema when needed. Retries an unreachable database with backoff \
            (1 s, 2 s, 4 s, … up to --retries attempts), then fails with STORAGE_UNAVAILABLE saying what was shipped. \
            With --follow it keeps shipping as the box writes, never gives up on an unreachable database (its \
            breaker spaces the attempts), and stops cleanly on Ctrl-C or SIGTERM. Progress is kept in \
            ship-state.json beside the store; `larder stats` shows the lag. With --verifier-key, the checkpoints \
            the box signed with that key ship too, and the key is registered as the box's.
            """)

    @OptionGroup var location: StoreLocation

    @Option(name: .long, help: "The fleet database: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=verify-full&sslrootcert=FILE].")
    var postgres: String

    @Option(name: .customLong("box-id"), help: "This box's id in the fleet.")
    var boxID: String

    @Flag(name: .long, help: "Keep shipping as the box writes, until Ctrl-C or SIGTERM.")
    var follow = false

    @Option(name: .long, help: "Records per batch (1...10000).")
    var batch = 1_000

    @Option(name: .long, help: "With --follow: how often to look for new records (50ms...60s).")
    var interval = "1s"

    @Option(name: .long, help: "Without --follow: attempts per batch before giving up (1...20); after 5 failures in a row the breaker spaces them 30 s apart.")
    var retries = 5

    @Option(name: .customLong("verifier-key"),
            help: "The box's checkpoint verifier key (NAME+<key ID>+<base64>, as `larder key create` printed it): ship the checkpoints it signed.")
    var verifierKey: String?

    func validate() throws {
        guard (1...ShipOptions.batchRecordsMax).contains(batch) else { throw ValidationError("--batch must be in 1...\(ShipOptions.batchRecordsMax).") }
        guard (1...20).contains(retries) else { throw ValidationError("--retries must be in 1...20.") }
    }

    func run() async throws {
        let console = Console.current
        var options = ShipOptions(boxID: boxID)
        options.batchRecords = batch
        options.follow = follow
        options.pollInterval = try FleetParse.duration(interval, option: "--interval")
        options.retry.attemptsMax = retries
        if let verifierKey {
            options.checkpoints = .signed(by: try NoteVerifierKey(parsing: verifierKey))
        }
        try options.validate()
        let destination = try FleetDestination(url: postgres)
        let store = try location.open(readOnly: true)
        defer { store.close() }
        let progress = ShipProgressPrinter(console: console, follow: follow)
        let shipper = Shipper(store: store, destination: destination, options: options) { progress.report($0) }
        let stop = ShipStop()
        let signals = SignalTrap(stop: stop)
        defer { signals.release() }
        let summary = try await shipper.run(stop: stop)
        progress.finish()
        console.print(Self.describe(summary, destination: destination))
    }

    static func describe(_ summary: ShipSummary, destination: FleetDestination) -> String {
        let box = summary.boxID
        var text: String
        if summary.recordsShipped > 0 {
            let seconds = Double(summary.elapsed.components.seconds) + Double(summary.elapsed.components.attoseconds) / 1e18
            text = "shipped box \(box) to \(destination.redacted): \(summary.recordsShipped) record(s), seq \(summary.startSeq + 1)…\(summary.shippedSeq), "
                + "in \(summary.batches) batch(es), \(String(format: "%.2f", seconds)) s, \(Int(summary.rowsPerSecond)) rows/s"
        } else {
            text = "box \(box) is up to date in \(destination.redacted): nothing to ship"
        }
        text += "\n  the fleet database holds seq \(summary.shippedSeq); the box is at seq \(summary.headSeq)"
        if summary.stopped { text += "\n  stopped on request" }
        return text
    }
}

/// `larder fleet …`: the fleet database, across boxes.
struct FleetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Verify and query the audit logs the boxes shipped to PostgreSQL.",
        subcommands: [FleetVerifyCommand.self, FleetAuditCommand.self, FleetReportCommand.self, FleetMigrateCommand.self,
                      FleetSimulateCommand.self])
}

/// `larder fleet verify`.
struct FleetVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute every box's chain from the rows in PostgreSQL.",
        discussion: """
            Checks each row's leaf and chain hash from its record bytes, that seqs run without a gap, that every \
            decoded column says what the record bytes say, and that the rows end at the head larder_boxes records \
            as shipped; recomputes the box's RFC 6962 Merkle root from the same leaves and checks every stored \
            checkpoint's signature and root against it. Exits 0 when every box is intact, 1 naming each broken \
            box's first bad row (or checkpoint).
            """)

    @Option(name: .long, help: "The fleet database URL (a read-only role is enough).")
    var postgres: String

    @Option(name: .customLong("box-id"), help: "Verify only this box.")
    var boxID: String?

    @Option(name: .customLong("verifier-key"),
            help: "With --box-id: the box's checkpoint verifier key (NAME+<key ID>+<base64>, as `larder key create` printed it), trusted over the one the box registered.")
    var verifierKey: String?

    @Option(name: .long, help: "Boxes verified at once, one connection each (1...\(FleetVerifier.jobsMax)).")
    var jobs = 4

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        if verifierKey != nil, boxID == nil { throw ValidationError("--verifier-key needs --box-id: a key is one box's.") }
        guard (1...FleetVerifier.jobsMax).contains(jobs) else { throw ValidationError("--jobs must be in 1...\(FleetVerifier.jobsMax).") }
    }

    func run() async throws {
        let console = Console.current
        let destination = try FleetDestination(url: postgres)
        let key = try verifierKey.map { text throws(LarderError) in try NoteVerifierKey(parsing: text) }
        let progress = FleetVerifyProgressPrinter(console: console)
        let report = try await FleetVerifier.verify(destination: destination, boxID: boxID, verifierKey: key, jobs: jobs) { progress.report($0) }
        progress.finish()
        console.print(json ? Self.json(report) : Self.text(report, destination: destination))
        if !report.isIntact { throw VerifyFailed(status: 1) }
    }

    static func text(_ report: FleetVerifyReport, destination: FleetDestination) -> String {
        var lines: [String] = []
        for box in report.boxes {
            if let problem = box.problem {
                // A problem that is not one row's (a key, a checkpoint's own columns) says what it is.
                let row = problem.seq.map { "first bad row at seq \($0): " } ?? ""
                lines.append("BROKEN: box \(box.boxID): \(row)\(problem.reason)")
            } else {
                lines.append("intact: box \(box.boxID): \(box.rowsChecked) rows, head seq \(box.head.seq) \(box.head.chainHash.hexString), "
                             + "Merkle root \(box.merkleRoot), \(box.checkpointsVerified) signed checkpoint(s) verified")
            }
        }
        let seconds = Double(report.elapsed.components.seconds) + Double(report.elapsed.components.attoseconds) / 1e18
        let broken = report.boxes.filter { !$0.isIntact }.count
        lines.append("fleet \(destination.redacted): \(report.boxes.count) box(es), \(report.rowsChecked) rows checked in "
                     + "\(String(format: "%.2f", seconds)) s (\(Int(report.rowsPerSecond)) rows/s); "
                     + (broken == 0 ? "all intact" : "\(broken) broken"))
        return lines.joined(separator: "\n")
    }

    static func json(_ report: FleetVerifyReport) -> String {
        var json = JSONWriter()
        json.object { o in
            o.field("intact", report.isIntact)
            o.field("rows_checked", report.rowsChecked)
            o.array("boxes") { boxes in
                for box in report.boxes {
                    boxes.object { b in
                        b.field("box_id", box.boxID)
                        b.field("intact", box.isIntact)
                        b.field("rows_checked", box.rowsChecked)
                        b.field("head_seq", box.head.seq)
                        b.field("head_chain_hash", box.head.chainHash.hexString)
                        b.field("shipped_seq", box.shipped.seq)
                        b.field("first_bad_seq", box.problem?.seq)
                        b.field("problem", box.problem?.reason)
                        b.field("merkle_root", box.merkleRoot.hexString)
                        b.field("checkpoints_stored", box.checkpointsStored)
                        b.field("checkpoints_verified", box.checkpointsVerified)
                    }
                }
            }
        }
        return json.text
    }
}

/// `larder fleet audit`.
struct FleetAuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Query the audit records of every box (or one) in PostgreSQL.",
        discussion: "Give exactly one of --request-id, --ref, or --since with --until.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json, ndjson
    }

    @Option(name: .long, help: "The fleet database URL (a read-only role is enough).")
    var postgres: String

    @Option(name: .customLong("request-id"), help: "Records of one request, on any box.")
    var requestID: String?

    @Option(name: .long, help: "Records about a correlation reference, KIND:ID (e.g. order:4411).")
    var ref: String?

    @Option(name: .long, help: "Records at or after this RFC 3339 time (with --until).")
    var since: String?

    @Option(name: .long, help: "Records before this RFC 3339 time (with --since).")
    var until: String?

    @Option(name: .customLong("box-id"), help: "Only this box's records.")
    var boxID: String?

    @Option(name: .long, help: "At most this many records (1...10000000).")
    var limit = 1_000

    @Option(name: .long, help: "table, json or ndjson.")
    var format: Format = .table

    func validate() throws {
        let modes = [requestID != nil, ref != nil, since != nil || until != nil].filter { $0 }.count
        guard modes == 1 else { throw ValidationError("Give exactly one of --request-id, --ref, or --since with --until.") }
        guard (since == nil) == (until == nil) else { throw ValidationError("--since and --until go together.") }
        if let ref, CorrelationRef(parsing: ref) == nil { throw ValidationError("--ref must be KIND:ID, e.g. order:4411.") }
        guard (1...FleetAudit.rowsMax).contains(limit) else { throw ValidationError("--limit must be in 1...\(FleetAudit.rowsMax).") }
    }

    func run() async throws {
        let console = Console.current
        let destination = try FleetDestination(url: postgres)
        let query: FleetAuditQuery
        if let requestID {
            query = .requestID(requestID)
        } else if let ref, let parsed = CorrelationRef(parsing: ref) {
            query = .ref(parsed)
        } else {
            query = .time(since: try Parse.time(since ?? "", option: "--since"), until: try Parse.time(until ?? "", option: "--until"))
        }
        var printed = 0
        var started = false
        let format = self.format
        let count = try await FleetAudit.query(destination, query, boxID: boxID, limit: limit) { row in
            switch format {
            case .table:
                if !started {
                    console.print("BOX".column(16) + "SEQ".column(8) + "TIME".column(28) + "EVENT".column(26) + "ACTOR".column(24)
                                  + "REQUEST".column(26) + "REFS")
                }
                console.print(row.boxID.column(16) + String(row.seq).column(8) + RFC3339.format(row.timeMicros).column(28)
                              + row.event.column(26) + "\(row.actorID)/\(row.actorRole)".column(24) + row.requestID.column(26)
                              + row.refs.joined(separator: " "))
            case .json:
                console.write((started ? "," : "{\"records\":[") + row.jsonText)
            case .ndjson:
                console.print(row.jsonText)
            }
            started = true
            printed += 1
        }
        switch format {
        case .table:
            if !started {
                console.print("BOX".column(16) + "SEQ".column(8) + "TIME".column(28) + "EVENT".column(26) + "ACTOR".column(24)
                              + "REQUEST".column(26) + "REFS")
            }
            console.print("\(count) record(s)")
        case .json:
            console.print(started ? "]}" : "{\"records\":[]}")
        case .ndjson:
            break
        }
    }
}

/// `larder fleet report`.
struct FleetReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Reports over the audit records the boxes shipped.",
        subcommands: [FleetIncidentCostsCommand.self])
}

/// `larder fleet report incident-costs`: `larder report incident-costs` across the fleet.
struct FleetIncidentCostsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incident-costs",
        abstract: "Credits, refunds and cancelled packs of the incidents recorded on every box (or one), grouped.",
        discussion: """
            The figures a box's `larder report incident-costs` shows, computed from the shipped audit records alone; \
            --group-by box adds one row per box.
            """)

    @Option(name: .long, help: "The fleet database URL (a read-only role is enough).")
    var postgres: String

    @Option(name: .customLong("box-id"), help: "Only this box's incidents.")
    var boxID: String?

    @Option(name: .long, help: "Incidents recorded at or after this RFC 3339 time.")
    var since: String?

    @Option(name: .long, help: "Incidents recorded before this RFC 3339 time.")
    var until: String?

    @Option(name: .customLong("group-by"), help: "box, category, severity, day or ref:KIND (e.g. ref:route).")
    var groupBy = "category"

    @Option(name: .long, help: "table or json.")
    var format = "table"

    func validate() throws {
        guard FleetCostGrouping(groupBy) != nil else {
            throw ValidationError("--group-by must be box, category, severity, day or ref:KIND.")
        }
        guard ["table", "json"].contains(format) else { throw ValidationError("--format must be table or json.") }
    }

    func run() async throws {
        let console = Console.current
        let destination = try FleetDestination(url: postgres)
        let since = try self.since.map { text throws(LarderError) in try Parse.time(text, option: "--since") }
        let until = try self.until.map { text throws(LarderError) in try Parse.time(text, option: "--until") }
        let grouping = FleetCostGrouping(groupBy)!
        let fleet = try await FleetReports.incidentCosts(destination, boxID: boxID, since: since, until: until, groupBy: grouping)
        if format == "json" {
            console.print(fleet.jsonText)
            return
        }
        let lines: [String]
        switch grouping {
        case .box:
            lines = IncidentCostTable.lines(grouping: "box", rows: fleet.boxRows.map { ($0.boxID, $0.figures) }, total: fleet.report.total)
        case .incidents:
            lines = IncidentCostTable.lines(fleet.report)
        }
        for line in lines { console.print(line) }
        console.print("\(fleet.boxes) box(es) with incidents in the range")
        if fleet.recordsSkipped > 0 {
            console.print("note: \(fleet.recordsSkipped) record(s) the report reads have no jsonb payload in the fleet database and were not counted")
        }
    }
}

/// `larder fleet migrate`.
struct FleetMigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or migrate the fleet schema (larder ship does this too; run it as the owner role).")

    @Option(name: .long, help: "The fleet database URL, as a role that may create tables.")
    var postgres: String

    func run() async throws {
        let destination = try FleetDestination(url: postgres)
        let applied = try await FleetSchema.migrate(destination: destination)
        Console.current.print(applied.isEmpty
            ? "fleet schema in \(destination.redacted) is at version \(FleetSchema.version)"
            : "fleet schema in \(destination.redacted) migrated to version \(FleetSchema.version) (applied \(applied.map(String.init).joined(separator: ", ")))")
    }
}

enum FleetParse {
    /// `250ms`, `1s`, `2m` → a duration.
    static func duration(_ text: String, option: String) throws(LarderError) -> Duration {
        let units: [(String, Duration)] = [("ms", .milliseconds(1)), ("s", .seconds(1)), ("m", .seconds(60))]
        for (suffix, unit) in units where text.hasSuffix(suffix) {
            if let value = Int(text.dropLast(suffix.count)), value > 0, value <= 3_600_000 { return unit * value }
        }
        throw LarderError(.validationFailed, "\(option) \(JSONWriter.quoted(text)) is not a duration like 250ms, 1s or 2m.")
    }
}

/// SIGINT and SIGTERM request a stop instead of killing the process, while a shipper runs.
final class SignalTrap: @unchecked Sendable {
    private var sources: [any DispatchSourceSignal] = []

    init(stop: ShipStop) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.request() }
            source.resume()
            sources.append(source)
        }
    }

    func release() {
        for source in sources { source.cancel() }
        sources = []
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}

/// A progress bar on a terminal; plain lines otherwise (at most one per 10 % of the backlog
/// while catching up, then one per batch while following).
final class ShipProgressPrinter: @unchecked Sendable {
    private let console: Console
    private let follow: Bool
    private let lock = NSLock()
    private var drawn = false
    private var backlogStart: UInt64?
    private var lastTenth = -1
    private var caughtUp = false

    init(console: Console, follow: Bool) {
        self.console = console
        self.follow = follow
    }

    func report(_ event: ShipEvent) {
        lock.lock()
        defer { lock.unlock() }
        switch event {
        case .connected(let destination, let migrated):
            clearBar()
            let schema = migrated.isEmpty ? "" : " (fleet schema migrated to version \(migrated.last!))"
            console.error("ship: connected to \(destination)\(schema)")
        case .committed(let progress):
            if backlogStart == nil { backlogStart = progress.shippedSeq - UInt64(progress.batchRecords) }
            let start = backlogStart ?? 0
            let total = progress.headSeq > start ? progress.headSeq - start : 1
            let done = progress.shippedSeq > start ? progress.shippedSeq - start : 0
            let fraction = min(1, Double(done) / Double(total))
            if console.isTerminal {
                let width = 30
                let filled = Int(fraction * Double(width))
                let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
                console.error("\r\u{1B}[2K[\(bar)] \(Int(fraction * 100))% box \(progress.boxID) seq \(progress.shippedSeq)/\(progress.headSeq)",
                              newline: false)
                drawn = true
            } else {
                let tenth = Int(fraction * 10)
                if caughtUp || tenth > lastTenth {
                    console.error("ship: box \(progress.boxID): seq \(progress.shippedSeq - UInt64(progress.batchRecords) + 1)…\(progress.shippedSeq) shipped (box at seq \(progress.headSeq))")
                    lastTenth = tenth
                }
            }
        case .upToDate(let progress):
            clearBar()
            if follow && !caughtUp {
                console.error("ship: box \(progress.boxID) up to date at seq \(progress.shippedSeq); following (Ctrl-C stops)")
            }
            caughtUp = follow
            backlogStart = nil
            lastTenth = -1
        case .switchedToInsert(let reason):
            clearBar()
            console.error("ship: COPY refused (\(reason)); inserting with INSERT statements instead")
        case .retrying(let attempt, let delay, let reason):
            clearBar()
            console.error("ship: attempt \(attempt) failed: \(reason); retrying in \(delay)")
        case .breaker(let state):
            clearBar()
            switch state {
            case .open: console.error("ship: the fleet database's breaker is open; probing it periodically")
            case .halfOpen: console.error("ship: probing the fleet database")
            case .closed: console.error("ship: the fleet database answers again; breaker closed")
            }
        }
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        clearBar()
    }

    private func clearBar() {
        if drawn { console.error("\r\u{1B}[2K", newline: false) }
        drawn = false
    }
}

/// The verify progress: a bar on a terminal, one line per box otherwise.
final class FleetVerifyProgressPrinter: @unchecked Sendable {
    private let console: Console
    private let lock = NSLock()
    private var drawn = false
    /// Rows done per box (boxes are verified several at a time).
    private var rowsDone: [Int: UInt64] = [:]

    init(console: Console) { self.console = console }

    func report(_ progress: FleetVerifyProgress) {
        lock.lock()
        defer { lock.unlock() }
        let first = rowsDone[progress.boxIndex] == nil
        rowsDone[progress.boxIndex] = progress.rowsDone
        if console.isTerminal {
            let done = rowsDone.values.reduce(0, +)
            let fraction = progress.fleetRowsTotal > 0 ? min(1, Double(done) / Double(progress.fleetRowsTotal)) : 1
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            console.error("\r\u{1B}[2K[\(bar)] \(done)/\(progress.fleetRowsTotal) rows; box \(progress.boxIndex + 1)/\(progress.boxCount) \(progress.boxID)",
                          newline: false)
            drawn = true
        } else if first {
            console.error("fleet verify: box \(progress.boxIndex + 1)/\(progress.boxCount) \(progress.boxID) (\(progress.rowsTotal) rows shipped)")
        }
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if drawn { console.error("\r\u{1B}[2K", newline: false) }
        drawn = false
    }
}
