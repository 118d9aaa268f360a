import Foundation
public import Larder

/// Everything a store answers through Larder's public read API, as one JSON document: every
/// audit record as exported, every page of every audit query (by seq, request, ref and time),
/// every account with its balances (now and as of every seq that matters) and history pages,
/// every transfer and resolution, every incident with its detail and listings, refunds,
/// cancelled cycles, compensation proposals and their listings, stock counts and decisions.
///
/// The schema-1 fixture (`Tests/Fixtures/schema-v1`) was made by the schema-1 code with this same
/// file, and its answers were committed beside it; the migration test opens a copy with today's
/// code and checks that the answers are the same. It uses public API only, so that it compiles
/// against both.
///
/// ```swift
/// let json = try StoreAnswers.collect(store, throughSeq: 212)
/// ```
public enum StoreAnswers {
    /// The answers about the records with seq ≤ `throughSeq` (all when nil), as pretty-printed
    /// JSON with sorted keys.
    ///
    /// - throws: whatever the store's reads throw.
    public static func collect(_ store: Store, throughSeq: UInt64? = nil) throws -> String {
        let head = try store.read { view in try view.audit.head() }
        let last = throughSeq ?? head.seq
        var document: [String: Any] = [:]

        // The records, and what they mention.
        var records: [AuditEntry] = []
        var cursor: String?
        repeat {
            let page = try store.read { view in try view.audit.records(fromSeq: 1, limit: 1_000, cursor: cursor) }
            records += page.records.filter { $0.seq <= last }
            cursor = page.nextCursor.flatMap { UInt64($0) }.map { $0 <= last ? String($0) : nil } ?? nil
        } while cursor != nil
        document["records"] = records.map(\.jsonText)
        document["head_seq"] = last
        document["head_chain_hash"] = records.last.map { hex($0.chainHash) } ?? ""

        var requestIDs = Set<String>(), refs = Set<CorrelationRef>(), decisionIDs = Set<String>()
        var times = Set<Int64>()
        for entry in records {
            requestIDs.insert(entry.record.requestID)
            refs.formUnion(entry.record.refs)
            if let id = entry.record.decisionID { decisionIDs.insert(id) }
            times.insert(entry.record.timeMicros)
        }

        // Audit queries.
        document["by_seq_forward"] = try pages(limit: 37) { limit, cursor in
            let page = try store.read { view in try view.audit.records(fromSeq: 1, limit: limit, cursor: cursor) }
            return (page.records.filter { $0.seq <= last }.map { $0.seq as Any }, page.records.last.map { $0.seq >= last } == true ? nil : page.nextCursor)
        }
        document["by_seq_backward"] = try pages(limit: 41) { limit, cursor in
            let page = try store.read { view in try view.audit.records(fromSeq: last, limit: limit, direction: .backward, cursor: cursor) }
            return (page.records.map { $0.seq as Any }, page.nextCursor)
        }
        var byRequest: [String: Any] = [:]
        for id in requestIDs.sorted() {
            byRequest[id] = try pages(limit: 2) { limit, cursor in
                let page = try store.read { view in try view.audit.records(requestID: id, limit: limit, cursor: cursor) }
                return (page.records.map { $0.seq as Any }, page.nextCursor)
            }
        }
        document["by_request"] = byRequest
        var byRef: [String: Any] = [:]
        for ref in refs.sorted() {
            byRef[ref.description] = try pages(limit: 3) { limit, cursor in
                let page = try store.read { view in try view.audit.records(ref: ref, limit: limit, cursor: cursor) }
                return (page.records.map { $0.seq as Any }, page.nextCursor)
            }
        }
        document["by_ref"] = byRef
        let sortedTimes = times.sorted()
        var windows: [(Int64, Int64)] = sortedTimes.map { ($0, $0 + 1) }
        if let first = sortedTimes.first, let final = sortedTimes.last {
            windows.append((first, final + 1))
            windows.append((first - 1, first))
            windows.append((Int64.min, Int64.max))
        }
        // Windows between every 7th time and the time 13 places later, and their halves.
        for index in stride(from: 0, to: sortedTimes.count, by: 7) {
            let later = sortedTimes[min(index + 13, sortedTimes.count - 1)]
            windows.append((sortedTimes[index], later))
            windows.append((sortedTimes[index] + 1, later + 1))
            windows.append((sortedTimes[index] - 1_000_000, sortedTimes[index] + (later - sortedTimes[index]) / 2))
        }
        var byTime: [Any] = []
        for (since, until) in windows {
            let answer = try pages(limit: 4) { limit, cursor in
                let page = try store.read { view in try view.audit.records(since: since, until: until, limit: limit, cursor: cursor) }
                return (page.records.filter { $0.seq <= last }.map { $0.seq as Any }, page.nextCursor)
            }
            byTime.append(["since": String(since), "until": String(until), "pages": answer])
        }
        document["by_time"] = byTime

        // Ledger.
        var accountIDs = Set<String>()
        var listing: [Any] = []
        var after: String?
        while true {
            let page = try store.read { view in try view.ledger.accounts(after: after, limit: 7) }
            listing.append(page.map(\.id))
            accountIDs.formUnion(page.map(\.id))
            guard page.count == 7, let next = page.last?.id else { break }
            after = next
        }
        document["account_listing"] = listing
        for ref in refs where ref.kind == "account" { accountIDs.insert(ref.id) }
        var accounts: [String: Any] = [:]
        for id in accountIDs.sorted() {
            var answer: [String: Any] = [:]
            guard let account = try store.read({ view in try view.ledger.account(id: id) }) else {
                accounts[id] = NSNull()
                continue
            }
            answer["account"] = try json(account)
            answer["balance"] = try json(try store.read { view in try view.ledger.balance(of: id) })
            var seqs: [Any] = []
            let forward = try pages(limit: 3) { limit, cursor in
                let page = try store.read { view in try view.ledger.history(of: id, limit: limit, cursor: cursor) }
                seqs += page.entries.map { $0.seq as Any }
                return (try page.entries.map { try json($0) }, page.nextCursor)
            }
            answer["history_forward"] = forward
            answer["history_backward"] = try pages(limit: 5) { limit, cursor in
                let page = try store.read { view in try view.ledger.history(of: id, direction: .backward, limit: limit, cursor: cursor) }
                return (try page.entries.map { try json($0) }, page.nextCursor)
            }
            var probes = Set<UInt64>([0, 1, last, UInt64.max])
            for case let seq as UInt64 in seqs { probes.formUnion([seq - 1, seq, seq + 1]) }
            var asOf: [String: Any] = [:]
            for seq in probes.sorted() {
                asOf[String(seq)] = try json(try store.read { view in try view.ledger.balance(of: id, asOfSeq: seq) })
            }
            answer["balance_as_of"] = asOf
            accounts[id] = answer
        }
        document["accounts"] = accounts
        var transfers: [String: Any] = [:]
        for ref in refs where ref.kind == "transfer" {
            let (transfer, resolution) = try store.read { view in
                (try view.ledger.transfer(id: ref.id), try view.ledger.resolution(of: ref.id))
            }
            transfers[ref.id] = ["transfer": try transfer.map { try json($0) } ?? NSNull(),
                                 "resolution": try resolution.map { try json($0) } ?? NSNull()]
        }
        document["transfers"] = transfers

        // Incidents.
        var incidentIDs = Set<String>()
        var incidents: [String: Any] = [:]
        var refundIDs = Set<String>()
        for ref in refs where ref.kind == "incident" { incidentIDs.insert(ref.id) }
        for id in incidentIDs.sorted() {
            guard let detail = try store.read({ view in try view.incidents.detail(id: id) }) else {
                incidents[id] = NSNull()
                continue
            }
            for response in detail.incident.responses { if let refund = response.refundID { refundIDs.insert(refund) } }
            incidents[id] = ["incident": try json(detail.incident),
                             "trail": detail.trail.map { $0.seq as Any },
                             "transfers": detail.transfers.map { $0.id as Any },
                             "refunds": try detail.refunds.map { try json($0) }]
        }
        document["incidents"] = incidents
        var filters: [(IncidentState?, IncidentCategory?, Severity?)] = [(nil, nil, nil)]
        filters += IncidentState.allCases.map { ($0, nil, nil) }
        filters += IncidentCategory.allCases.map { (nil, $0, nil) }
        filters += Severity.allCases.map { (nil, nil, $0) }
        filters += [(.closed, .kitchenProduction, nil), (.resolved, nil, .p1), (nil, .delivery, .p1), (.open, .supply, .p3)]
        let createdTimes = try incidentIDs.sorted().compactMap { id in
            try store.read { view in try view.incidents.incident(id: id)?.createdAtMicros }
        }.sorted()
        var bounds: [(Int64?, Int64?)] = [(nil, nil)]
        if createdTimes.count >= 3 {
            let middle = createdTimes[createdTimes.count / 2]
            bounds += [(middle, nil), (nil, middle), (createdTimes[1], middle + 1), (createdTimes[0] - 1, createdTimes[0])]
        }
        var listings: [Any] = []
        for (state, category, severity) in filters {
            for (since, until) in bounds {
                let answer = try pages(limit: 2) { limit, cursor in
                    let page = try store.read { view in
                        try view.incidents.incidents(state: state, category: category, severity: severity, since: since,
                                                     until: until, limit: limit, cursor: cursor)
                    }
                    return (page.incidents.map { $0.id as Any }, page.nextCursor)
                }
                listings.append(["state": state?.rawValue ?? "", "category": category?.rawValue ?? "",
                                 "severity": severity?.rawValue ?? "", "since": since.map { String($0) } ?? "",
                                 "until": until.map { String($0) } ?? "", "pages": answer])
            }
        }
        document["incident_listings"] = listings
        var overdue: [String: Any] = [:]
        for time in createdTimes + createdTimes.map({ $0 + 20 * 60_000_000 }) + createdTimes.map({ $0 + 30 * 3_600_000_000 }) {
            overdue[String(time)] = try store.read { view in try view.incidents.overdue(atMicros: time) }.map { $0.id as Any }
        }
        document["overdue"] = overdue
        var refunds: [String: Any] = [:]
        for id in refundIDs.sorted() {
            refunds[id] = try store.read { view in try view.incidents.refund(id: id) }.map { try json($0) } ?? NSNull()
        }
        document["refunds"] = refunds
        var cycles: [String: Any] = [:]
        for ref in refs where ref.kind == "cycle" {
            cycles[ref.id] = try store.read { view in try view.incidents.cancellation(ofCycle: ref.id) } ?? NSNull()
        }
        document["cycles"] = cycles

        // Compensation proposals and stock counts.
        var proposals: [String: Any] = [:]
        for ref in refs where ref.kind == "proposal" {
            proposals[ref.id] = try store.read { view in try view.compensation.proposal(id: ref.id) }.map { try json($0) } ?? NSNull()
        }
        document["proposals"] = proposals
        var proposalsByIncident: [String: Any] = [:]
        for id in incidentIDs.sorted() {
            proposalsByIncident[id] = try store.read { view in try view.compensation.proposals(incident: id) }.map { $0.id as Any }
        }
        document["proposals_by_incident"] = proposalsByIncident
        var proposalListings: [String: Any] = [:]
        for state in [nil] + ProposalState.allCases.map(Optional.some) {
            proposalListings[state?.rawValue ?? "all"] = try pages(limit: 2) { limit, cursor in
                let page = try store.read { view in try view.compensation.proposals(state: state, limit: limit, cursor: cursor) }
                return (page.proposals.map { $0.id as Any }, page.nextCursor)
            }
        }
        document["proposal_listings"] = proposalListings
        var counts: [String: Any] = [:]
        for ref in refs where ref.kind == "stock_count" {
            counts[ref.id] = try store.read { view in try view.stock.count(id: ref.id) }.map { try json($0) } ?? NSNull()
        }
        document["stock_counts"] = counts

        // Decisions.
        var decisions: [String: Any] = [:]
        for id in decisionIDs.sorted() {
            guard let decision = try store.read({ view in try view.decisions.decision(id: id) }) else {
                decisions[id] = NSNull()
                continue
            }
            decisions[id] = ["operation": decision.operation, "fingerprint": hex(decision.fingerprint),
                             "time": String(decision.timeMicros), "audit_seq": decision.auditSeq,
                             "result": String(decoding: decision.result, as: UTF8.self)]
        }
        document["decisions"] = decisions

        let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Follows a paged query from its first page to its last: each page's items and cursor.
    private static func pages(limit: Int, _ page: (Int, String?) throws -> ([Any], String?)) throws -> [Any] {
        var result: [Any] = []
        var cursor: String?
        repeat {
            let (items, next) = try page(limit, cursor)
            result.append(["items": items, "next": next.map { $0 as Any } ?? NSNull()])
            cursor = next
        } while cursor != nil && result.count < 10_000
        return result
    }

    /// A Codable value as a JSON object (sorted keys), for embedding.
    private static func json<T: Encodable>(_ value: T) throws -> Any {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try JSONSerialization.jsonObject(with: try encoder.encode(value), options: [.fragmentsAllowed])
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
