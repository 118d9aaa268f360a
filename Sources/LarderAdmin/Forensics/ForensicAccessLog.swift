import Larder

/// Records each forensic read as a FORENSIC_ACCESS audit event: who (the token), what (the route
/// and its filters) and how much (the result count). The record's requestID is the server's id
/// for the request; the client's own id, if any, is only a payload field, so that a reader cannot
/// file the record into a business request's trail.
///
/// The record is written after the data is read and before any of it is sent; when it cannot be
/// written the read is refused with the store's error, so no forensic read goes unrecorded
/// (fail closed).
struct ForensicAccessLog: Sendable {
    let store: Store

    /// One read to record.
    struct Access: Sendable {
        let token: AdminToken
        /// Made by the server for this request.
        let requestID: String
        /// The client's valid `X-Request-ID`, if it sent one.
        let clientRequestID: String?
        /// The route template, e.g. `/v1/audit/{seq}`.
        let route: String
        /// The filters as given (name, value), in request order.
        let filters: [(String, String)]
        let resultCount: Int
    }

    /// - returns: the record's audit seq.
    @discardableResult
    func record(_ access: Access) async throws(LarderError) -> UInt64? {
        var payload = JSONWriter()
        payload.object { o in
            o.field("token_id", access.token.id)
            o.field("client_request_id", access.clientRequestID)
            o.field("route", access.route)
            o.object("filters") { f in
                for (name, value) in access.filters { f.field(name, value) }
            }
            o.field("result_count", access.resultCount)
        }
        let draft = AuditDraft(event: .forensicAccess, payload: payload.text)
        let context = WriteContext(actor: access.token.actor, requestID: access.requestID)
        do {
            return try await store.write(context) { txn in _ = try txn.appendAudit(draft) }.auditSeq
        } catch let error as LarderError {
            throw error.withRequestID(access.requestID)
        } catch {
            throw LarderError(.auditFailed, "The FORENSIC_ACCESS record could not be written: \(error); the read was refused.",
                              failurePoint: .auditWrite, requestID: access.requestID)
        }
    }
}
