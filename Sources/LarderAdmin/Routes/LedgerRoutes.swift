import Hummingbird
import Larder

/// `ops:read` ledger accounts: the account, its balance now (and optionally as of an audit seq)
/// and a page of its history, all from one snapshot so that they agree with each other.
enum LedgerRoutes {
    static let all: [AdminRoute] = [
        AdminRoute(path: "/v1/ledger/accounts/{id}", scope: .opsRead, handler: account),
    ]

    static let queryParameters: Set<String> = ["direction", "limit", "cursor", "as_of_seq"]

    /// What one snapshot of the account holds.
    struct Snapshot: Sendable {
        let account: Account
        let balance: Balance
        let balanceAsOf: Balance?
        let history: AccountHistoryPage
    }

    @Sendable static func account(_ call: AdminCall) async throws -> Response {
        let parameters = try QueryParameters(call.request.uri.query, allowed: queryParameters)
        let text = parameters["direction"] ?? "forward"
        guard let direction = ScanDirection(rawValue: text) else {
            throw LarderError(.validationFailed, "direction \(JSONWriter.quoted(text)) is neither forward nor backward.")
        }
        let pageSizeMax = min(call.configuration.pageSizeMax, LedgerReader.historyEntriesPerPageMax)
        let limit = try parameters.limit(default: min(call.configuration.pageSizeDefault, pageSizeMax), max: pageSizeMax)
        let asOfSeq = try parameters.seq("as_of_seq")
        let id = try call.identifier("id"), cursor = try parameters.cursor(.seq), store = call.store
        let snapshot = try await offload {
            try store.read { view -> Snapshot? in
                guard let account = try view.ledger.account(id: id) else { return nil }
                return Snapshot(account: account, balance: try view.ledger.balance(of: id),
                                balanceAsOf: try asOfSeq.map { seq throws(LarderError) in try view.ledger.balance(of: id, asOfSeq: seq) },
                                history: try view.ledger.history(of: id, direction: direction, limit: limit, cursor: cursor))
            }
        }
        guard let snapshot else { throw LarderError(.notFound, "There is no account \(JSONWriter.quoted(id)).") }
        var recorded = AuditRoutes.filters(parameters)
        recorded.insert(("id", id), at: 0)
        try await call.recordForensicAccess(filters: recorded, resultCount: snapshot.history.entries.count)
        return Responses.json { o in
            o.object("account") { a in LedgerJSON.account(snapshot.account, to: &a) }
            o.object("balance") { b in LedgerJSON.balance(snapshot.balance, to: &b) }
            if let asOfSeq, let balance = snapshot.balanceAsOf {
                o.object("balance_as_of") { b in
                    b.field("seq", asOfSeq)
                    LedgerJSON.balance(balance, to: &b)
                }
            } else {
                o.field("balance_as_of", nil as String?)
            }
            o.array("history") { list in
                for entry in snapshot.history.entries { list.object { e in LedgerJSON.historyEntry(entry, to: &e) } }
            }
            o.field("next_cursor", snapshot.history.nextCursor)
        }
    }
}
