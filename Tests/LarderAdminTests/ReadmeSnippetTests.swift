import Foundation
import Larder
import LarderTesting
import Testing

/// The README's Swift blocks compile as written and together (ReadmeSnippets.swift is made from
/// them by Tools/readme_snippets.py and compiled with this target), they do what their comments
/// say when run against a fresh directory, and the compiled file is what the script makes of the
/// README now, so the two cannot drift apart.
@Suite("README snippets")
struct ReadmeSnippetTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let script = repository.appendingPathComponent("Tools/readme_snippets.py").path
    static let generated = repository.appendingPathComponent("Tests/LarderAdminTests/ReadmeSnippets.swift")

    static var python: String? {
        ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @Test(.enabled(if: python != nil, "python3 is not installed: Tools/readme_snippets.py cannot re-run"))
    func theCompiledSnippetsAreTheReadmes() throws {
        let made = try runProcess(try #require(Self.python), [Self.script, "--stdout"])
        try #require(made.status == 0, "Tools/readme_snippets.py failed: \(made.error)")
        let committed = try String(contentsOf: Self.generated, encoding: .utf8)
        #expect(made.output == committed,
                "README.md's Swift blocks changed: run `python3 Tools/readme_snippets.py` and commit Tests/LarderAdminTests/ReadmeSnippets.swift")
    }

    @Test func theSnippetsRunAndDoWhatTheySay() async throws {
        let directory = try TemporaryDirectory(prefix: "larder-readme")
        try await readmeSnippets(readmeDirectory: directory.path, runCompileOnlyBlocks: false)

        // The snippets leave their store behind (closed: nothing holds it any more).
        let store = try Store.open(at: directory.path("larder"))
        defer { store.close() }
        #expect(try store.verify().isIntact)

        // "Use it from Swift" and "Retries": one note, decided once; the replay and the
        // conflicting request wrote nothing.
        let notes = try store.read { view in try view.audit.records(requestID: "req-8812", limit: 10) }
        #expect(notes.records.map(\.record.event) == ["ORDER_NOTED"])
        let decision = try #require(try store.read { view in try view.decisions.decision(id: "note-order-4411") })
        #expect(decision.operation == "kitchen.note")
        #expect(String(decoding: decision.result, as: UTF8.self) == "\"noted\"")
        #expect(decision.auditSeq == notes.records.first?.seq)

        // "Ledgers", "Incidents" and "Compensation": 9 packs; the goodwill credit reversed, the
        // incident's 500¢ credit kept, and the approved proposal's 1,000¢ (50 % of 2,400¢, capped)
        // posted on top.
        #expect(try store.read { view in try view.ledger.balance(of: "cust-17.packs") }.net == 9)
        #expect(try store.read { view in try view.ledger.balance(of: "cust-17.credits") }.net == 1_500)
        let incidents = try store.read { view in try view.incidents.incidents(limit: 10) }.incidents
        let incident = try #require(incidents.first)
        #expect(incidents.count == 1)
        #expect(incident.state == .acknowledged)
        #expect(incident.responses.map(\.id) == ["\(incident.id).credit-order-4411", "\(incident.id).cold-meal-4411.credit"])
        let approvals = try store.read { view in try view.audit.records(requestID: "req-11", limit: 10) }
        #expect(approvals.records.map(\.record.event).contains("COMPENSATION_APPROVED"))
        let managerTrail = try store.read { view in try view.audit.records(requestID: "req-10", limit: 100) }
        #expect(managerTrail.records.map(\.record.event).contains("STOCK_COUNTED"))

        // The incident snippet's claim: the same call again answers .replayed and credits nothing.
        let manager = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: "req-10")
        // `await`: in an async test the async form is the one to call (it is the blocking one until
        // the domain API has async forms, hence a warning until then).
        let retry = try await store.apply(.credit(amountCents: 500, customerAccount: "cust-17.credits",
                                                  basis: .preApproved(code: "late-delivery")),
                                          to: incident.id, responseID: "credit-order-4411", context: manager)
        #expect(retry.kind == .replayed)
        #expect(retry.result == incident.responses.first)
        #expect(try store.read { view in try view.ledger.balance(of: "cust-17.credits") }.net == 1_500)

        // "Opening a store": the import store exists, with the limits it was opened with recorded.
        let scratch = try Store.open(at: directory.path("import-scratch"), options: Store.Options(readOnly: true))
        defer { scratch.close() }
        #expect(try scratch.recordedStoreLimits() == RecordedLimits(mapSizeBytesMax: 1 << 30, readersMax: 126))
    }
}
