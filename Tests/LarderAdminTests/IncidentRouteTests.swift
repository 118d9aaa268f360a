import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Synchronization
import Testing

/// An admin fixture with a customer credit account and helpers to record incidents.
struct IncidentAdminFixture {
    let admin: AdminFixture
    var store: Store { admin.store }
    var clock: ManualClock { admin.clock }

    static let detector = ActorIdentity(id: "dispatch-monitor", role: .system)
    static let manager = ActorIdentity(id: "am-17", role: .accountManager)
    static let supervisor = ActorIdentity(id: "admin-1", role: .admin)

    init(options: Store.Options = Store.Options()) throws {
        admin = try AdminFixture(options: options)
        try admin.store.write(WriteContext(actor: Self.supervisor, requestID: "setup")) { txn in
            try txn.ledger.createAccount(NewAccount(id: "cust-17.credits", ledger: "credits.cents", flags: .debitsMustNotExceedCredits))
        }
    }

    func record(_ category: IncidentCategory, _ severity: Severity, summary: String = "Van broke down on route 4") throws -> Incident {
        try store.recordIncident(IncidentReport(category: category, severity: severity, summary: summary, source: "dispatch-monitor",
                                                refs: [.order("4411")]),
                                 context: WriteContext(actor: Self.detector, requestID: UUID().uuidString)).result
    }

    func transition(_ id: String, to state: IncidentState) throws {
        try store.transition(id, to: state, context: WriteContext(actor: Self.manager, requestID: UUID().uuidString))
    }

    func request(_ uri: String, secret: String? = nil) async throws -> TestResponse {
        try await admin.request(uri, secret: secret ?? admin.opsSecret)
    }
}

/// `/v1/incidents` and `/v1/incidents/{id}`.
@Suite("Incident routes")
struct IncidentRouteTests {
    typealias Object = [String: Any]

    func incidents(_ response: TestResponse) throws -> [Object] {
        try #require(try response.json()["incidents"] as? [Object])
    }

    func ids(_ response: TestResponse) throws -> [String] {
        try incidents(response).map { try #require($0["id"] as? String) }
    }

    /// 12 incidents a minute apart: every category, every severity, a third acknowledged.
    func seedTwelve(_ fixture: IncidentAdminFixture) throws -> [Incident] {
        var recorded: [Incident] = []
        for index in 0..<12 {
            fixture.clock.advance(seconds: 60)
            let incident = try fixture.record(IncidentCategory.allCases[index % 6], Severity.allCases[index % 4])
            if index % 3 == 0 { try fixture.transition(incident.id, to: .acknowledged) }
            recorded.append(incident)
        }
        return recorded
    }

    @Test func pagesReturnEveryIncidentExactlyOnceNewestFirst() async throws {
        let fixture = try IncidentAdminFixture()
        let recorded = try seedTwelve(fixture)
        var seen: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let before = try fixture.admin.auditCount()
            let uri = "/v1/incidents?limit=5" + (cursor.map { "&cursor=\($0)" } ?? "")
            let response = try await fixture.request(uri)
            #expect(response.status == .ok)
            #expect(try fixture.admin.auditCount() == before + 1, "each page is one FORENSIC_ACCESS record")
            seen += try ids(response)
            cursor = try response.json()["next_cursor"] as? String
            pages += 1
        } while cursor != nil && pages < 10
        #expect(pages == 3)
        #expect(seen == recorded.reversed().map(\.id))
    }

    @Test func filtersByStateCategorySeverityAndTime() async throws {
        let fixture = try IncidentAdminFixture()
        let recorded = try seedTwelve(fixture)
        let acknowledged = try incidents(try await fixture.request("/v1/incidents?state=acknowledged"))
        #expect(acknowledged.count == 4)
        #expect(acknowledged.allSatisfy { $0["state"] as? String == "acknowledged" })
        let delivery = try incidents(try await fixture.request("/v1/incidents?category=delivery"))
        #expect(delivery.count == 2)
        #expect(delivery.allSatisfy { $0["category"] as? String == "delivery" })
        let kitchen = try ids(try await fixture.request("/v1/incidents?category=kitchenProduction&severity=P1"))
        #expect(kitchen == [recorded[1].id])
        let openP0 = try incidents(try await fixture.request("/v1/incidents?state=open&severity=P0"))
        #expect(openP0.count == 2)
        #expect(openP0.allSatisfy { $0["severity"] as? String == "P0" && $0["state"] as? String == "open" })
        // Created a minute apart: [3rd, 6th) holds the 3rd, 4th and 5th.
        let since = RFC3339.format(recorded[2].createdAtMicros), until = RFC3339.format(recorded[5].createdAtMicros)
        let window = try await fixture.request("/v1/incidents?since=\(since)&until=\(until)")
        #expect(try ids(window) == [recorded[4].id, recorded[3].id, recorded[2].id])
        let onlySince = try await fixture.request("/v1/incidents?since=\(since)&state=open")
        #expect(try incidents(onlySince).allSatisfy { $0["state"] as? String == "open" })
        #expect(try ids(onlySince).count == 7, "the 3rd to the 12th, less the 4th, 7th and 10th (acknowledged)")
    }

    @Test func anIncidentRendersEveryField() async throws {
        let fixture = try IncidentAdminFixture()
        let incident = try fixture.record(.delivery, .p2, summary: "Route 4 \"van\" broke down")
        let body = try #require(try incidents(try await fixture.request("/v1/incidents")).first)
        #expect(body["id"] as? String == incident.id)
        #expect(body["category"] as? String == "delivery")
        #expect(body["severity"] as? String == "P2")
        #expect(body["state"] as? String == "open")
        #expect(body["version"] as? Int == 1)
        #expect(body["summary"] as? String == "Route 4 \"van\" broke down")
        #expect(body["source"] as? String == "dispatch-monitor")
        #expect(body["refs"] as? [[String: String]] == [["kind": "order", "id": "4411"]])
        #expect(body["reported_by"] as? [String: String] == ["id": "dispatch-monitor", "role": "system"])
        #expect(body["created_at"] as? String == RFC3339.format(incident.createdAtMicros))
        #expect(body["updated_at"] as? String == RFC3339.format(incident.updatedAtMicros))
        #expect(body["acknowledged_at"] is NSNull)
        #expect(body["acknowledge_by"] as? String == RFC3339.format(incident.createdAtMicros + 4 * 3_600_000_000))
        #expect(body["overdue"] as? Bool == false)
        #expect(body["postmortem_ref"] is NSNull)
        #expect((body["responses"] as? [Any])?.isEmpty == true)
    }

    /// Overdue is judged by the store's clock: open incidents past their deadline, newest first.
    @Test func overdueFollowsTheStoreClock() async throws {
        let fixture = try IncidentAdminFixture()
        let p0 = try fixture.record(.orderingSystem, .p0)
        fixture.clock.advance(seconds: 10 * 60)
        let p1 = try fixture.record(.supply, .p1)
        let p3 = try fixture.record(.humanProcess, .p3)
        #expect(try ids(try await fixture.request("/v1/incidents?overdue=true")).isEmpty)
        fixture.clock.advance(seconds: 6 * 60)   // P0 past its 15 minutes
        #expect(try ids(try await fixture.request("/v1/incidents?overdue=true")) == [p0.id])
        let all = try incidents(try await fixture.request("/v1/incidents"))
        #expect(all.map { $0["overdue"] as? Bool } == [false, false, true], "p3, p1, p0")
        fixture.clock.advance(seconds: 60 * 60)  // P1 past its hour too
        #expect(try ids(try await fixture.request("/v1/incidents?overdue=true")) == [p1.id, p0.id])
        #expect(try ids(try await fixture.request("/v1/incidents?overdue=true&severity=P1")) == [p1.id])
        #expect(try ids(try await fixture.request("/v1/incidents?overdue=true&category=orderingSystem")) == [p0.id])
        #expect(try ids(try await fixture.request("/v1/incidents?overdue=true&state=open")) == [p1.id, p0.id])

        // Paged one at a time, each overdue incident comes exactly once.
        let first = try await fixture.request("/v1/incidents?overdue=true&limit=1")
        let cursor = try #require(try first.json()["next_cursor"] as? String)
        let second = try await fixture.request("/v1/incidents?overdue=true&limit=1&cursor=\(cursor)")
        #expect(try ids(first) + ids(second) == [p1.id, p0.id])
        let access = try #require(try fixture.admin.lastRecord())
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(access.payload.utf8)) as? Object)
        #expect((payload["filters"] as? [String: String])?["overdue_at"] == RFC3339.format(fixture.clock.now().unixMicros))

        try fixture.transition(p0.id, to: .acknowledged)
        #expect(try ids(try await fixture.request("/v1/incidents?overdue=true")) == [p1.id])
        #expect(!(try ids(try await fixture.request("/v1/incidents?overdue=true")).contains(p3.id)))
    }

    /// After a credit, a refund request and the credit's reversal: the incident, its whole
    /// trail (rendered as /v1/audit renders it), both transfers and the refund request.
    @Test func oneIncidentWithItsTrailTransfersAndRefunds() async throws {
        let fixture = try IncidentAdminFixture()
        let store = fixture.store
        let incident = try fixture.record(.delivery, .p1)
        fixture.clock.advance(seconds: 20 * 60)
        try fixture.transition(incident.id, to: .acknowledged)
        let credit = try await store.apply(.credit(amountCents: 500, customerAccount: "cust-17.credits", basis: .preApproved(code: "late-delivery")),
                                     to: incident.id, responseID: "credit-4411",
                                     context: WriteContext(actor: IncidentAdminFixture.manager, requestID: "credit")).result
        let refund = try await store.apply(.refund(billingTransaction: "bill-77", amountCents: 1_299), to: incident.id, reasonCode: "meal-inedible",
                                     responseID: "refund-bill-77",
                                     context: WriteContext(actor: IncidentAdminFixture.supervisor, requestID: "refund")).result
        let transferID = try #require(credit.transferID)
        try await store.post(.reversal(id: "\(transferID).rev", of: transferID, refs: [.incident(incident.id)]),
                       context: WriteContext(actor: IncidentAdminFixture.supervisor, requestID: "reverse"))

        let before = try fixture.admin.auditCount()
        let response = try await fixture.request("/v1/incidents/\(incident.id)")
        #expect(response.status == .ok)
        let body = try response.json()
        let served = try #require(body["incident"] as? Object)
        #expect(served["id"] as? String == incident.id)
        #expect(served["state"] as? String == "acknowledged")
        #expect(served["acknowledged_at"] as? String != nil)
        let responses = try #require(served["responses"] as? [Object])
        #expect(responses.map { $0["type"] as? String } == ["credit", "refund"])
        #expect(responses[0]["id"] as? String == credit.id)
        #expect(responses[0]["actor"] as? [String: String] == ["id": "am-17", "role": "accountManager"])
        #expect(responses[0]["transfer_id"] as? String == transferID)
        #expect(responses[0]["refund_id"] is NSNull)
        #expect(responses[0]["audit_seq"] as? Int == Int(credit.auditSeq))
        let creditDetails = try #require(responses[0]["details"] as? Object)
        #expect(creditDetails["amount_cents"] as? Int == 500)
        #expect(creditDetails["customer_account"] as? String == "cust-17.credits")
        #expect(creditDetails["basis"] as? [String: String] == ["type": "preApproved", "code": "late-delivery"])
        #expect(responses[1]["reason_code"] as? String == "meal-inedible")
        #expect(responses[1]["refund_id"] as? String == refund.refundID)
        let refundDetails = try #require(responses[1]["details"] as? Object)
        #expect(refundDetails["billing_transaction"] as? String == "bill-77")
        #expect(refundDetails["amount_cents"] as? Int == 1_299)

        let detail = try #require(try store.read { view in try view.incidents.detail(id: incident.id) })
        let trail = try #require(body["trail"] as? [Object])
        #expect(trail.map { $0["seq"] as? Int } == detail.trail.map { Int($0.seq) })
        for entry in detail.trail {
            #expect(response.text.contains(entry.jsonText), "seq \(entry.seq) is rendered as /v1/audit renders it")
        }
        let events = trail.compactMap { $0["event"] as? String }
        for event in ["OP_FAILURE_RECORDED", "INCIDENT_STATE_CHANGED", "OP_CREDIT_GRANTED", "LEDGER_TRANSFER_POSTED",
                      "OP_REFUND_ISSUED", "LEDGER_TRANSFER_REVERSED"] {
            #expect(events.contains(event), "\(event) missing from \(events)")
        }

        let transfers = try #require(body["transfers"] as? [Object])
        #expect(transfers.map { $0["kind"] as? String } == ["single", "reversal"])
        #expect(transfers[0]["id"] as? String == transferID)
        #expect(transfers[0]["credit_account"] as? String == "cust-17.credits")
        #expect(transfers[0]["amount"] as? Int == 500)
        #expect(transfers[1]["target"] as? String == transferID)
        let refunds = try #require(body["refunds"] as? [Object])
        #expect(refunds.count == 1)
        #expect(refunds[0]["id"] as? String == refund.refundID)
        #expect(refunds[0]["incident_id"] as? String == incident.id)
        #expect(refunds[0]["billing_transaction"] as? String == "bill-77")
        #expect(refunds[0]["amount_cents"] as? Int == 1_299)
        #expect(refunds[0]["status"] as? String == "requested")
        #expect(refunds[0]["outcome_seq"] is NSNull)

        #expect(try fixture.admin.auditCount() == before + 1)
        let access = try #require(try fixture.admin.lastRecord())
        #expect(access.event == .forensicAccess)
        #expect(access.actor.id == "token:operator")
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(access.payload.utf8)) as? Object)
        #expect(payload["route"] as? String == "/v1/incidents/{id}")
        #expect(payload["filters"] as? [String: String] == ["id": incident.id])
        #expect(payload["result_count"] as? Int == 1)
    }

    @Test func aListingIsRecordedWithTokenRouteFiltersAndCount() async throws {
        let fixture = try IncidentAdminFixture()
        _ = try seedTwelve(fixture)
        let response = try await fixture.admin.request("/v1/incidents?category=supply&limit=1", secret: fixture.admin.opsSecret,
                                                       headers: [.requestID: "inc-review-1"])
        #expect(response.status == .ok)
        let access = try #require(try fixture.admin.lastRecord())
        #expect(access.event == .forensicAccess)
        #expect(access.requestID == response.headers[.requestID])
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(access.payload.utf8)) as? Object)
        #expect(payload["token_id"] as? String == "operator")
        #expect(payload["route"] as? String == "/v1/incidents")
        #expect(payload["filters"] as? [String: String] == ["category": "supply", "limit": "1"])
        #expect(payload["result_count"] as? Int == 1)
    }

    @Test func aMissingIncidentIs404AndRecordsNothing() async throws {
        let fixture = try IncidentAdminFixture()
        let before = try fixture.admin.auditCount()
        let response = try await fixture.request("/v1/incidents/inc-404")
        #expect(response.status == .notFound)
        #expect(try response.errorCode() == "NOT_FOUND")
        #expect(try fixture.admin.auditCount() == before)
    }

    @Test(arguments: ["/v1/incidents?state=pending", "/v1/incidents?state=Open", "/v1/incidents?category=Delivery",
                      "/v1/incidents?category=weather", "/v1/incidents?severity=p0", "/v1/incidents?severity=P4",
                      "/v1/incidents?since=yesterday", "/v1/incidents?until=2026-13-01T00:00:00Z",
                      "/v1/incidents?overdue=yes", "/v1/incidents?overdue=false",
                      "/v1/incidents?limit=0", "/v1/incidents?limit=501", "/v1/incidents?cursor=nonsense",
                      "/v1/incidents?colour=red", "/v1/incidents?state=open&state=closed", "/v1/incidents/inc-1?state=open",
                      "/v1/incidents/bad%20id"])
    func badFiltersAre400(uri: String) async throws {
        let fixture = try IncidentAdminFixture()
        _ = try fixture.record(.delivery, .p2)
        let before = try fixture.admin.auditCount()
        let response = try await fixture.request(uri)
        #expect(response.status == .badRequest)
        #expect(try response.errorCode() == "VALIDATION_FAILED")
        #expect(try fixture.admin.auditCount() == before, "a refused query records nothing")
    }

    @Test func anAuditOnlyTokenIs403() async throws {
        let fixture = try IncidentAdminFixture()
        let incident = try fixture.record(.delivery, .p2)
        let before = try fixture.admin.auditCount()
        for uri in ["/v1/incidents", "/v1/incidents/\(incident.id)"] {
            let response = try await fixture.request(uri, secret: fixture.admin.auditSecret)
            #expect(response.status == .forbidden, "\(uri)")
            #expect(try response.errorCode() == "PERMISSION_DENIED")
            #expect(!response.text.contains(incident.id))
        }
        #expect(try await fixture.admin.request("/v1/incidents").status == .unauthorized)
        #expect(try fixture.admin.auditCount() == before)
    }

    /// With the audit append failing, the incident reads are refused and send no data.
    @Test func whenTheRecordCannotBeWrittenTheReadIsRefused() async throws {
        let failing = Mutex(false)
        var options = Store.Options()
        options.auditFaultInjection = AuditFaultInjection { _ throws(LarderError) in
            if failing.withLock({ $0 }) { throw LarderError(.persistenceError, "injected audit fault") }
        }
        let fixture = try IncidentAdminFixture(options: options)
        let incident = try fixture.record(.delivery, .p2, summary: "secret-summary")
        let before = try fixture.admin.auditCount()
        failing.withLock { $0 = true }
        for uri in ["/v1/incidents", "/v1/incidents?state=open&overdue=true", "/v1/incidents/\(incident.id)"] {
            let response = try await fixture.admin.request(uri, secret: fixture.admin.opsSecret, headers: [.requestID: "req-closed"])
            #expect(response.status == .internalServerError, "\(uri)")
            let body = try response.json()
            #expect(body["error_code"] as? String == "AUDIT_FAILED")
            #expect(body["request_id"] as? String == response.headers[.requestID])
            #expect(body["incidents"] == nil && body["incident"] == nil)
            #expect(!response.text.contains("secret-summary"), "no incident data leaks into the refusal")
        }
        #expect(try fixture.admin.auditCount() == before)
    }
}
