import ArgumentParser
import Larder

/// `larder audit`: query the audit log by sequence, request, correlation or time.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Query the audit log (read-only).",
        discussion: "Give at most one of --request-id, --ref, --since/--until, --from-seq (the default is the whole log from seq 1).",
        subcommands: [AuditProveCommand.self])

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json, ndjson
    }

    @OptionGroup var location: StoreLocation

    @Option(name: .customLong("request-id"), help: "Records of one request.")
    var requestID: String?

    @Option(name: .long, help: "Records about a correlation reference, KIND:ID (e.g. order:4411).")
    var ref: String?

    @Option(name: .long, help: "Records at or after this RFC 3339 time.")
    var since: String?

    @Option(name: .long, help: "Records before this RFC 3339 time (with --since).")
    var until: String?

    @Option(name: .customLong("from-seq"), help: "Records from this sequence number on.")
    var fromSeq: UInt64?

    @Option(name: .long, help: "At most this many records (1...10000000).")
    var limit: Int = 100

    @Option(name: .long, help: "table, json or ndjson.")
    var format: Format = .table

    func validate() throws {
        let modes = [requestID != nil, ref != nil, since != nil || until != nil, fromSeq != nil].filter { $0 }.count
        guard modes <= 1 else {
            throw ValidationError("Give at most one of --request-id, --ref, --since/--until, --from-seq.")
        }
        guard (1...10_000_000).contains(limit) else { throw ValidationError("--limit must be in 1...10000000.") }
        if until != nil && since == nil { throw ValidationError("--until needs --since.") }
        if let ref, CorrelationRef(parsing: ref) == nil { throw ValidationError("--ref must be KIND:ID, e.g. order:4411.") }
    }

    func run() throws {
        let console = Console.current
        let store = try location.open(readOnly: true)
        defer { store.close() }
        let sinceMicros = try since.map { text throws(LarderError) in try Parse.time(text, option: "--since") }
        let untilMicros = try until.map { text throws(LarderError) in try Parse.time(text, option: "--until") } ?? Int64.max
        var printed = 0
        var cursor: String?
        if format == .table {
            console.print("SEQ".column(8) + "TIME".column(28) + "EVENT".column(26) + "ACTOR".column(24) + "REQUEST".column(26) + "REFS")
        }
        if format == .json { console.write("{\"records\":[") }
        repeat {
            let pageSize = min(AuditLog.recordsPerPageMax, limit - printed)
            let page = try store.read { view -> AuditPage in
                if let requestID { return try view.audit.records(requestID: requestID, limit: pageSize, cursor: cursor) }
                if let ref, let parsed = CorrelationRef(parsing: ref) { return try view.audit.records(ref: parsed, limit: pageSize, cursor: cursor) }
                if let sinceMicros { return try view.audit.records(since: sinceMicros, until: untilMicros, limit: pageSize, cursor: cursor) }
                return try view.audit.records(fromSeq: fromSeq ?? 1, limit: pageSize, cursor: cursor)
            }
            for entry in page.records {
                switch format {
                case .table:
                    let record = entry.record
                    console.print(String(record.seq).column(8) + RFC3339.format(record.timeMicros).column(28)
                                  + record.event.rawValue.column(26) + "\(record.actor.id)/\(record.actor.role.rawValue)".column(24)
                                  + record.requestID.column(26) + record.refs.map(\.description).joined(separator: " "))
                case .json:
                    console.write((printed > 0 ? "," : "") + entry.jsonText)
                case .ndjson:
                    console.print(entry.jsonText)
                }
                printed += 1
            }
            cursor = page.nextCursor
        } while cursor != nil && printed < limit
        if format == .json { console.print("]}") }
    }
}
