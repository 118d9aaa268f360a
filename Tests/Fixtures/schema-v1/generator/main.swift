// Makes the schema-1 fixture store (see ../README.md): built against the schema-1 code, never
// against later code. It adds to a store the kitchen-day demo played, with a manual clock that
// starts before the demo's last record (so that record times go backward, as a wall clock can):
// pending transfers posted in part, in full and voided, a reversal of a post, linked batches, an
// incident whose refund failed, a cancellation, a report that names another incident, records
// like the admin server's FORENSIC_ACCESS and the tool's BACKUP_TAKEN, decisions before and after
// a purge (one decisionID reused after it was purged), a policy change and back, limits recorded
// and back. Then it copies the store with compaction and writes the answers of the compacted copy
// (StoreAnswers) and the requests whose decisions a retry must replay.
//
//   make-v1-fixture WORK_STORE FIXTURE_DIR ANSWERS_JSON REPLAYS_JSON
import Foundation
import Larder
import LarderTesting

let arguments = CommandLine.arguments
guard arguments.count == 5 else {
    FileHandle.standardError.write(Data("usage: make-v1-fixture WORK_STORE FIXTURE_DIR ANSWERS_JSON REPLAYS_JSON\n".utf8))
    exit(2)
}
let work = arguments[1], fixture = arguments[2], answersPath = arguments[3], replaysPath = arguments[4]

/// A request whose decision a retry must replay after the migration.
struct Replay: Codable {
    var kind: String
    var actorID: String
    var role: String
    var requestID: String
    var decisionID: String
    var transfer: TransferRequest?
    var transfers: [TransferRequest]?
    var account: NewAccount?
    var report: IncidentReport?
    var storedResult: String
    var auditSeq: UInt64?
}
var replays: [Replay] = []

let lastDemoTime = try { () -> Int64 in
    let store = try Store.open(at: work, options: Store.Options(readOnly: true))
    defer { store.close() }
    return try store.read { view in try view.audit.record(seq: try view.audit.head().seq)!.record.timeMicros }
}()
// 45 minutes before the demo's last record: the next records go back in time.
let clock = ManualClock(start: Date(unixMicros: lastDemoTime - 45 * 60 * 1_000_000))

var changedPolicy = FailurePolicy.default
changedPolicy.preApprovedCredits.append(PreApprovedCredit(code: "fixture-goodwill", amountCentsMax: 250))

let admin = ActorIdentity(id: "admin-fx", role: .admin)
let manager = ActorIdentity(id: "am-fx", role: .accountManager)
let system = ActorIdentity(id: "fx-system", role: .system)
func context(_ actor: ActorIdentity, _ request: String, decision: String? = nil, trace: String? = "fx-trace") -> WriteContext {
    WriteContext(actor: actor, requestID: "fx-\(request)", traceID: trace, decisionID: decision)
}
func tick(_ seconds: Double = 7) { clock.advance(seconds: seconds) }

@MainActor func note<R>(_ kind: String, _ ctx: WriteContext, _ outcome: WriteOutcome<R>, transfer: TransferRequest? = nil,
             transfers: [TransferRequest]? = nil, account: NewAccount? = nil, report: IncidentReport? = nil) {
    replays.append(Replay(kind: kind, actorID: ctx.actor.id, role: ctx.actor.role.rawValue, requestID: ctx.requestID,
                          decisionID: ctx.decisionID!, transfer: transfer, transfers: transfers, account: account, report: report,
                          storedResult: String(decoding: outcome.storedResult ?? [], as: UTF8.self), auditSeq: outcome.auditSeq))
}

// 1. A policy change, pending transfers, linked batches, decisions.
do {
    let store = try Store.open(at: work, options: Store.Options(clock: clock, policy: changedPolicy))
    defer { store.close() }
    let stock = ["fx.stock.hub", "fx.stock.bin-a", "fx.stock.bin-b", "fx.stock.supplier"]
    for (index, id) in stock.enumerated() {
        let spec = NewAccount(id: id, ledger: "fx.stock.units", code: UInt16(30 + index),
                              flags: id == "fx.stock.supplier" ? [] : .debitsMustNotExceedCredits,
                              refs: [CorrelationRef("location", id.replacingOccurrences(of: "fx.stock.", with: ""))])
        let ctx = context(admin, "open-\(id)", decision: "fx-open-\(id)")
        note("account", ctx, try store.createAccount(spec, context: ctx), account: spec)
        tick(0.5)
    }
    let receive = TransferRequest.transfer(id: "fx-receive-1", debit: "fx.stock.supplier", credit: "fx.stock.hub", amount: 500,
                                           code: 1, refs: [.vendor("green-farm"), CorrelationRef("item", "tomato")])
    let receiveContext = context(system, "receive-1", decision: "fx-receive-1")
    note("transfer", receiveContext, try store.post(receive, context: receiveContext), transfer: receive)
    tick()
    // Pending moves: one posted in part, one voided, one posted in full, then the partial post reversed.
    try store.post(.pending(id: "fx-move-1", debit: "fx.stock.hub", credit: "fx.stock.bin-a", amount: 120, code: 2,
                            refs: [CorrelationRef("item", "tomato")]), context: context(manager, "move-1"))
    tick()
    try store.post(.pending(id: "fx-move-2", debit: "fx.stock.hub", credit: "fx.stock.bin-b", amount: 80, code: 2),
                   context: context(manager, "move-2"))
    // The same microsecond as the record before.
    try store.post(.pending(id: "fx-move-3", debit: "fx.stock.hub", credit: "fx.stock.bin-b", amount: 40, code: 2),
                   context: context(manager, "move-3"))
    tick()
    let postPart = TransferRequest.post(id: "fx-move-1.post", pending: "fx-move-1", amount: 100, refs: [CorrelationRef("item", "tomato")])
    let postContext = context(manager, "move-1-post", decision: "fx-move-1-post")
    note("transfer", postContext, try store.post(postPart, context: postContext), transfer: postPart)
    tick()
    try store.post(.void(id: "fx-move-2.void", pending: "fx-move-2"), context: context(manager, "move-2-void"))
    tick()
    try store.post(.post(id: "fx-move-3.post", pending: "fx-move-3"), context: context(manager, "move-3-post"))
    tick()
    try store.post(.reversal(id: "fx-move-1.post.rev", of: "fx-move-1.post", refs: [CorrelationRef("item", "tomato")]),
                   context: context(admin, "move-1-reverse"))
    tick()
    let linked = [TransferRequest.transfer(id: "fx-linked-1", debit: "fx.stock.supplier", credit: "fx.stock.hub", amount: 30),
                  .transfer(id: "fx-linked-2", debit: "fx.stock.hub", credit: "fx.stock.bin-a", amount: 20),
                  .pending(id: "fx-linked-3", debit: "fx.stock.bin-a", credit: "fx.stock.bin-b", amount: 5)]
    let linkedContext = context(system, "linked-1", decision: "fx-linked-1")
    note("linked", linkedContext, try store.postLinked(linked, context: linkedContext), transfers: linked)
    tick()
    // A linked batch that fails writes nothing.
    _ = try store.postLinked([.transfer(id: "fx-linked-4", debit: "fx.stock.bin-b", credit: "fx.stock.hub", amount: 1),
                              .transfer(id: "fx-linked-5", debit: "fx.stock.bin-b", credit: "fx.stock.hub", amount: 1_000_000)],
                             context: context(system, "linked-2"))
    tick()
    // The clock goes back again, by ten minutes.
    clock.advance(seconds: -600)
    try store.write(context(system, "note-1")) { txn in
        try txn.appendAudit(AuditDraft(event: "FIXTURE_NOTE", refs: [CorrelationRef("item", "tomato"), .order("fx-o-1")],
                                       failureCategory: "supply", responseType: "delay", reasonCode: "fx-reason",
                                       payload: #"{"note":"clock went back","n":1}"#))
    }
    tick()
}

// 2. Incidents: a failed refund, a cancellation, a report naming another incident, an open P0.
var incidentIDs: [String] = []
do {
    let store = try Store.open(at: work, options: Store.Options(clock: clock, policy: changedPolicy))
    defer { store.close() }
    let report = IncidentReport(category: .orderingSystem, severity: .p1, summary: "Ordering API returned 500s for 12 minutes",
                                source: "fx-monitor", refs: [CorrelationRef("service", "ordering-api")])
    let reportContext = context(system, "ordering-report", decision: "fx-ordering-report")
    let outcome = try store.recordIncident(report, context: reportContext)
    note("incident", reportContext, outcome, report: report)
    let ordering = outcome.result
    incidentIDs.append(ordering.id)
    tick()
    try store.transition(ordering.id, to: .acknowledged, expectedVersion: 1, context: context(manager, "ordering-ack"))
    tick()
    try store.apply(.credit(amountCents: 500, customerAccount: "cust-ana.credits", basis: .rule(id: "ordering-outage")),
                    to: ordering.id, responseID: "outage-credit-ana", context: context(system, "ordering-credit"))
    tick()
    try store.apply(.credit(amountCents: 200, customerAccount: "cust-ben.credits", basis: .preApproved(code: "fixture-goodwill")),
                    to: ordering.id, responseID: "goodwill-ben", context: context(manager, "ordering-goodwill"))
    tick()
    let refund = try store.apply(.refund(billingTransaction: "bill-fx-ben-9", amountCents: 950), to: ordering.id,
                                 reasonCode: "double-charge", responseID: "refund-ben", context: context(admin, "ordering-refund")).result
    tick()
    try store.recordRefundOutcome(refund.refundID!, status: .failed, detail: "psp-declined-fx", context: context(system, "ordering-refund-outcome"))
    tick()
    try store.apply(.delay(revisedTimeMicros: clock.now().unixMicros + 3_600_000_000, subject: .order("fx-o-1")), to: ordering.id,
                    context: context(manager, "ordering-delay"))
    tick()
    let followUp = try store.recordIncident(
        IncidentReport(id: "fx-follow-up", category: .humanProcess, severity: .p3, summary: "Runbook missed the ordering outage",
                       source: "fx-review", refs: [.incident(ordering.id)]),
        context: context(manager, "follow-up-report")).result
    incidentIDs.append(followUp.id)
    tick()
    try store.transition(ordering.id, to: .contained, context: context(manager, "ordering-contain"))
    tick()
    let transitionContext = context(admin, "ordering-resolve", decision: "fx-ordering-resolve")
    try store.transition(ordering.id, to: .resolved, reasonCode: "fixed-upstream", context: transitionContext)
    tick()
    let flood = try store.recordIncident(
        IncidentReport(category: .forceMajeure, severity: .p0, summary: "Flood at the hub", source: "fx-facilities",
                       refs: [CorrelationRef("location", "hub"), .cycle("fx-week-48")]),
        context: context(system, "flood-report")).result
    incidentIDs.append(flood.id)
    tick()
    try store.apply(.cancellation(cycle: "fx-week-48"), to: flood.id, reasonCode: "site-closed",
                    context: context(admin, "flood-cancel", decision: "fx-flood-cancel"))
    tick()
    // Left open and unacknowledged: overdue 15 minutes after it was recorded.
    let stuck = try store.recordIncident(
        IncidentReport(category: .kitchenProduction, severity: .p0, summary: "Blast chiller alarm", source: "fx-sensor"),
        context: context(system, "chiller-report")).result
    incidentIDs.append(stuck.id)
    tick()
    // Records the admin server and the tool write through the public API.
    try store.write(WriteContext(actor: ActorIdentity(id: "token:fx-auditor", role: .system), requestID: "admin-fx-0001")) { txn in
        try txn.appendAudit(AuditDraft(event: "FORENSIC_ACCESS",
                                       payload: #"{"token_id":"fx-auditor","client_request_id":null,"route":"/v1/audit","filters":{"ref":"incident:fx-follow-up","limit":"50"},"result_count":2}"#))
    }
    tick()
    try store.write(WriteContext(actor: ActorIdentity(id: "larder-backup", role: .system), requestID: "backup.fx")) { txn in
        try txn.appendAudit(AuditDraft(event: "BACKUP_TAKEN",
                                       payload: #"{"destination":"/var/backups/fx","head_seq":1,"head_hash":"00","records":1,"compacted":true}"#))
    }
    tick()
}

// 3. Three days later: a purge, a decisionID reused after its purge, limits recorded.
do {
    clock.advance(seconds: 3 * 86_400)
    let store = try Store.open(at: work, options: Store.Options(clock: clock, policy: changedPolicy))
    defer { store.close() }
    try store.purgeDecisions(olderThanDays: 2, context: context(admin, "purge-1"))
    tick()
    // The id of a purged decision names a new request now.
    let again = TransferRequest.transfer(id: "fx-receive-2", debit: "fx.stock.supplier", credit: "fx.stock.hub", amount: 60, code: 1)
    let againContext = context(system, "receive-2", decision: "fx-receive-1")
    note("transfer", againContext, try store.post(again, context: againContext), transfer: again)
    tick()
    let late = TransferRequest.transfer(id: "fx-issue-1", debit: "fx.stock.bin-a", credit: "fx.stock.supplier", amount: 15, code: 3)
    let lateContext = context(manager, "issue-1", decision: "fx-issue-1")
    note("transfer", lateContext, try store.post(late, context: lateContext), transfer: late)
    tick()
}
do {
    var limits = Limits()
    limits.mapSizeBytesMax = 1 << 30
    limits.readersMax = 64
    let store = try Store.open(at: work, options: Store.Options(limits: limits, clock: clock, policy: changedPolicy))
    defer { store.close() }
    tick()
    try store.post(.transfer(id: "fx-issue-2", debit: "fx.stock.bin-b", credit: "fx.stock.supplier", amount: 3),
                   context: context(manager, "issue-2", trace: nil))
    tick()
}
do {
    // Back to the default policy and limits: both recorded again.
    let store = try Store.open(at: work, options: Store.Options(clock: clock))
    defer { store.close() }
    tick()
    try store.transition(incidentIDs[0], to: .closed, postmortemRef: "pm-fx-ordering", context: context(admin, "ordering-close"))
    tick()
}

// 4. A compacted copy, its answers and the replays.
try FileManager.default.createDirectory(atPath: fixture, withIntermediateDirectories: true)
do {
    let store = try Store.open(at: work, options: Store.Options(readOnly: true))
    try store.copy(to: fixture, compact: true)
    store.close()
}
let answers: String = try {
    let store = try Store.open(at: fixture, options: Store.Options(readOnly: true))
    defer { store.close() }
    let report = try store.verify()
    guard report.isIntact else { fatalError("the fixture does not verify: \(report.problems)") }
    return try StoreAnswers.collect(store)
}()
try? FileManager.default.removeItem(atPath: fixture + "/lock.mdb")
try answers.write(toFile: answersPath, atomically: true, encoding: .utf8)
let encoder = JSONEncoder()
encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
try encoder.encode(replays).write(to: URL(fileURLWithPath: replaysPath))
print("fixture at \(fixture); \(replays.count) replays")
