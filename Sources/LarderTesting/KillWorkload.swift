public import Larder

/// The writes of the kill -9 test: ledger posts, incidents and credit responses, each under its
/// own decisionID (which is also its requestID), so that the test can find every one afterwards
/// and replay it.
///
/// A child process (`larder-fixture chaos`) prints `BEGIN <operation>` before each write and
/// `ACK <kind> <id> <seq> [<detail>]` when it returns; the test kills the child at random
/// moments and checks the store against what was acknowledged.
public enum KillWorkload {
    /// The ledger of every account of the workload.
    public static let ledger = "credits.cents"
    /// The account every posted transfer debits.
    public static let issuingAccount = "chaos.goodwill"
    /// Customer credit accounts `chaos.cust-0.credits` … .
    public static let customerCount = 4

    public static func customerAccount(_ index: Int) -> String { "chaos.cust-\(index).credits" }

    /// One write of the workload, with everything needed to issue it again.
    public enum Operation: Sendable, Hashable {
        /// A transfer from the issuing account to a customer, id = decisionID.
        case post(id: String, customer: Int, amount: UInt64)
        /// An incident with id = decisionID.
        case incident(id: String, number: Int)
        /// A pre-approved credit response to an incident acknowledged earlier.
        case credit(id: String, incident: String, customer: Int, amount: UInt64)

        public var id: String {
            switch self {
            case .post(let id, _, _), .incident(let id, _), .credit(let id, _, _, _): id
            }
        }

        public var kind: String {
            switch self {
            case .post: "post"
            case .incident: "incident"
            case .credit: "credit"
            }
        }

        /// The `BEGIN` line's text after `BEGIN `.
        public var line: String {
            switch self {
            case .post(let id, let customer, let amount): "post \(id) \(customer) \(amount)"
            case .incident(let id, let number): "incident \(id) \(number)"
            case .credit(let id, let incident, let customer, let amount): "credit \(id) \(incident) \(customer) \(amount)"
            }
        }

        /// Parses ``line``.
        public init?(line: Substring) {
            let fields = line.split(separator: " ").map(String.init)
            switch fields.first {
            case "post" where fields.count == 4:
                guard let customer = Int(fields[2]), let amount = UInt64(fields[3]) else { return nil }
                self = .post(id: fields[1], customer: customer, amount: amount)
            case "incident" where fields.count == 3:
                guard let number = Int(fields[2]) else { return nil }
                self = .incident(id: fields[1], number: number)
            case "credit" where fields.count == 5:
                guard let customer = Int(fields[3]), let amount = UInt64(fields[4]) else { return nil }
                self = .credit(id: fields[1], incident: fields[2], customer: customer, amount: amount)
            default:
                return nil
            }
        }

        /// The context it is written under: its id is both the requestID and the decisionID.
        public var context: WriteContext {
            WriteContext(actor: ActorIdentity(id: "chaos-am", role: .accountManager), requestID: id, decisionID: id)
        }

        public var transfer: TransferRequest? {
            guard case .post(let id, let customer, let amount) = self else { return nil }
            return .transfer(id: id, debit: KillWorkload.issuingAccount, credit: KillWorkload.customerAccount(customer),
                             amount: amount)
        }

        public var report: IncidentReport? {
            guard case .incident(let id, let number) = self else { return nil }
            return IncidentReport(id: id, category: .delivery, severity: .p3, summary: "Van late, stop \(number)",
                                  source: "chaos", refs: [.order(id)])
        }

        public var response: IncidentResponse? {
            guard case .credit(_, _, let customer, let amount) = self else { return nil }
            return .credit(amountCents: amount, customerAccount: KillWorkload.customerAccount(customer),
                           basis: .preApproved(code: "late-delivery"))
        }
    }

    /// What a write returned: its kind, the audit seq, and for credits the response id.
    public struct Acknowledgement: Sendable, Hashable {
        public let kind: String
        public let id: String
        public let seq: UInt64
        public let detail: String?

        public init(kind: String, id: String, seq: UInt64, detail: String?) {
            self.kind = kind
            self.id = id
            self.seq = seq
            self.detail = detail
        }

        /// The `ACK` line's text after `ACK `.
        public var line: String { "\(kind) \(id) \(seq)" + (detail.map { " \($0)" } ?? "") }

        public init?(line: Substring) {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count >= 3, let seq = UInt64(fields[2]) else { return nil }
            self.init(kind: fields[0], id: fields[1], seq: seq, detail: fields.count > 3 ? fields[3] : nil)
        }
    }

    /// Creates the workload's accounts (each under a fixed decisionID, so every run may call it).
    public static func setUp(_ store: Store) throws {
        let accounts = [NewAccount(id: issuingAccount, ledger: ledger)]
            + (0..<customerCount).map { NewAccount(id: customerAccount($0), ledger: ledger, flags: .debitsMustNotExceedCredits) }
        for account in accounts {
            let context = WriteContext(actor: ActorIdentity(id: "chaos-setup", role: .admin), requestID: "setup-\(account.id)",
                                       decisionID: "setup-\(account.id)")
            try store.createAccount(account, context: context)
        }
    }

    /// Issues `operation` (blocking) and returns its outcome.
    public static func perform(_ operation: Operation, on store: Store) throws -> (replayed: Bool, ack: Acknowledgement) {
        switch operation {
        case .post:
            let outcome = try store.post(operation.transfer!, context: operation.context)
            return (outcome.isReplay, Acknowledgement(kind: operation.kind, id: operation.id, seq: outcome.auditSeq ?? 0, detail: nil))
        case .incident:
            let outcome = try store.recordIncident(operation.report!, context: operation.context)
            return (outcome.isReplay, Acknowledgement(kind: operation.kind, id: operation.id, seq: outcome.auditSeq ?? 0, detail: nil))
        case .credit(_, let incident, _, _):
            let outcome = try store.apply(operation.response!, to: incident, context: operation.context)
            return (outcome.isReplay, Acknowledgement(kind: operation.kind, id: operation.id, seq: outcome.auditSeq ?? 0,
                                                  detail: outcome.result.id))
        }
    }

    /// Issues a post or an incident through the async write path.
    public static func performAsync(_ operation: Operation, on store: Store) async throws -> Acknowledgement {
        switch operation {
        case .post:
            let transfer = operation.transfer!
            let outcome = try await store.write(operation.context, request: transfer) { txn in try txn.ledger.post(transfer) }
            return Acknowledgement(kind: operation.kind, id: operation.id, seq: outcome.auditSeq ?? 0, detail: nil)
        case .incident:
            let report = operation.report!
            let outcome = try await store.write(operation.context, request: report) { txn in try txn.incidents.record(report) }
            return Acknowledgement(kind: operation.kind, id: operation.id, seq: outcome.auditSeq ?? 0, detail: nil)
        case .credit:
            return try perform(operation, on: store).ack
        }
    }
}
