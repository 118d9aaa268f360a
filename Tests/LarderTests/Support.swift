import Foundation
import Larder
import LarderStorage
import LarderTesting

/// A new store holds two records: its schema (seq 1) and the policy in force (seq 2).
let initialRecords = 2

/// A request to note something about an order: the stand-in domain operation of these tests.
struct NoteRequest: FingerprintedRequest, Equatable {
    static let operationName = "test.note"
    var order: String
    var amount: Int
}

/// The result such a note returns.
struct NoteResult: Codable, Sendable, Equatable {
    var order: String
    var seq: UInt64
    var message: String
}

extension WriteContext {
    static func test(_ requestID: String, decisionID: String? = nil, actor: String = "am-17",
                     role: Role = .accountManager) -> WriteContext {
        WriteContext(actor: ActorIdentity(id: actor, role: role), requestID: requestID, traceID: "trace-\(requestID)",
                     decisionID: decisionID)
    }
}

extension StoreTransaction {
    /// Writes a domain row (into meta, standing in for a domain table) and its audit record.
    @discardableResult
    func note(_ request: NoteRequest) throws -> NoteResult {
        try rawPutForTesting(table: "meta", key: Array("note.\(request.order)".utf8), value: Array(String(request.amount).utf8))
        let entry = try appendAudit(AuditDraft(event: "ORDER_NOTED", refs: [.order(request.order)],
                                               payload: "{\"amount\":\(request.amount)}"))
        return NoteResult(order: request.order, seq: entry.seq, message: "noted \(request.amount)")
    }
}

extension Store {
    func noteValue(_ order: String) throws -> String? {
        try environmentForTesting.rawGet(table: "meta", key: Array("note.\(order)".utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    func auditCount() throws -> Int { try read { try $0.audit.count() } }
}

/// The `index` table's key of an entry of one of its views (docs/FORMAT.md section 5.1): the
/// view's prefix byte, then the entry's key.
enum IndexKey {
    static let request: UInt8 = 0x01, ref: UInt8 = 0x02, time: UInt8 = 0x03, incident: UInt8 = 0x04, compensation: UInt8 = 0x05

    static func of<K: OrderedKey>(_ prefix: UInt8, _ key: K) -> [UInt8] { [prefix] + key.encodedKey }
}
