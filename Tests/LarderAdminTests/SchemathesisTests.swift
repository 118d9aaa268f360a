import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

/// schemathesis (property-based OpenAPI testing) against a live server over a seeded store:
/// every check it has, a fixed seed and a bounded number of examples, and no failure allowed.
///
/// Runs when a schemathesis 4 executable is found: `$LARDER_SCHEMATHESIS`, else the virtual
/// environment `Tools/install-test-tools.sh` makes in `.build/test-tools`, else `schemathesis` on the PATH.
/// Otherwise the test is skipped and says why.
@Suite("schemathesis")
struct SchemathesisTests {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The seed and the examples per operation: about 1,000 requests, 10 to 20 seconds here.
    static let seed = 16
    static let examplesPerOperation = 50

    static let executable: String? = {
        var candidates: [String] = []
        if let given = ProcessInfo.processInfo.environment["LARDER_SCHEMATHESIS"], !given.isEmpty { candidates.append(given) }
        candidates.append(packageRoot.appendingPathComponent(".build/test-tools/bin/schemathesis").path)
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            candidates.append("\(directory)/schemathesis")
        }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            print("schemathesis: skipped — no schemathesis executable (set LARDER_SCHEMATHESIS, or run Tools/setup.sh --tests, which installs it into .build/test-tools)")
            return nil
        }
        // The flags used below are schemathesis 4's; 3.x spells several of them differently.
        let version = (try? runProcess(found, ["--version"]))?.output ?? ""
        guard version.contains("version 4.") else {
            print("schemathesis: skipped — \(found) is not schemathesis 4 (\(version.trimmingCharacters(in: .whitespacesAndNewlines)))")
            return nil
        }
        return found
    }()

    @Test(.enabled(if: executable != nil, "schemathesis 4 is not installed"))
    func theServerConformsToItsOpenAPIDocument() async throws {
        let executable = try #require(Self.executable)
        var configuration = AdminConfiguration()
        // Enough budget that schemathesis tests the routes, not the budget (its 429s are
        // covered by RequestCostTests); readiness that does not depend on this machine's disk.
        configuration.budgetUnitsPerWindowMax = 1_000_000
        configuration.readinessDiskFreeFractionMin = 0
        configuration.readinessReaderUseFractionMax = 1
        configuration.readinessMapUseFractionMax = 1
        // The transparency routes answer with a checkpoint and proofs, not only 404.
        let signingKey = try NoteSigningKey.generate(name: "schemathesis.test/larder")
        configuration.checkpointKey = signingKey.verifierKey
        let fixture = try AdminFixture(configuration: configuration)
        try seed(fixture)
        try await fixture.store.signCheckpoint(with: signingKey)
        var tokens = fixture.tokens
        var random = SeededGenerator(seed: UInt64(Self.seed))
        let secret = try tokens.createToken(id: "schemathesis", scopes: [.auditRead, .opsRead],
                                            expiresAt: fixture.clock.now().unixMicros + 86_400_000_000, using: &random).secret
        let server = try AdminServer(store: fixture.store, tokens: tokens, configuration: configuration)
        let before = try fixture.store.read { view in try view.audit.head().seq }

        let outcome = try await server.makeApplication().test(.live) { client in
            try await Self.run(executable, port: try #require(client.port), secret: secret)
        }
        #expect(outcome.status == 0, "schemathesis found failures (seed \(Self.seed)):\n\(outcome.output)")
        #expect(outcome.output.contains("passed"), "\(outcome.output)")
        // Its summary, so a passing run still says how much it tried.
        for line in outcome.output.split(separator: "\n") where line.contains("generated") || line.contains("Seed:") {
            print("schemathesis: \(line.trimmingCharacters(in: .whitespaces))")
        }

        // Whatever it sent, the store changed only by FORENSIC_ACCESS records, and still verifies.
        var events: [String: Int] = [:]
        var cursor: String?
        repeat {
            let page = try fixture.store.read { view in
                try view.audit.records(fromSeq: before + 1, limit: AuditLog.recordsPerPageMax, cursor: cursor)
            }
            for entry in page.records { events[entry.record.event.rawValue, default: 0] += 1 }
            cursor = page.nextCursor
        } while cursor != nil
        #expect(Set(events.keys).isSubset(of: [AuditEvent.forensicAccess.rawValue]), "\(events)")
        print("schemathesis: \(events[AuditEvent.forensicAccess.rawValue] ?? 0) FORENSIC_ACCESS records, nothing else")
        #expect(try fixture.store.verify().isIntact)
    }

    /// Records of every kind the routes serve: audit records, a ledger account with history, an
    /// incident with compensation proposals, a decision.
    func seed(_ fixture: AdminFixture) throws {
        try fixture.seed(300, requestID: "seed")
        let admin = WriteContext(actor: ActorIdentity(id: "admin-1", role: .admin), requestID: "setup")
        try fixture.store.write(admin) { txn in
            try txn.ledger.createAccount(NewAccount(id: "kitchen.packs", ledger: "packs"))
            try txn.ledger.createAccount(NewAccount(id: "cust-17.packs", ledger: "packs", flags: .debitsMustNotExceedCredits))
        }
        _ = try fixture.store.post(.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 10), context: admin)
        let incident = try fixture.store.recordIncident(
            IncidentReport(category: .delivery, severity: .p2, summary: "Van late", source: "dispatch", refs: [.order("4411")]),
            context: WriteContext(actor: ActorIdentity(id: "monitor", role: .system), requestID: "inc")).result
        // A proposal decided and one waiting, so the incident route and the cost report carry both.
        try fixture.store.write(admin) { txn in
            try txn.ledger.createAccount(NewAccount(id: "cust-17.credits", ledger: "credits.cents", flags: .debitsMustNotExceedCredits))
        }
        for (id, cents) in [("applied", UInt64(400)), ("waiting", 2_500)] {
            _ = try fixture.store.proposeCompensation(
                .mixed(credit: CompensationCredit(customerAccount: "cust-17.credits", value: .amount(cents: cents), basis: .preApproved(code: "late-delivery")),
                       refund: CompensationRefund(billingTransaction: "bill-1", value: .percentage(percent: 50, ofCents: 2_598, capCents: 1_000))),
                for: incident.id, reasonCode: "late", proposalID: id,
                context: WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: "p-\(id)"))
        }
        _ = try fixture.store.approveCompensation("\(incident.id).applied", reasonCode: "late", context: admin)
        let decided = WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: "req-9", decisionID: "credit-4411")
        _ = try fixture.store.write(decided, request: CreditRequest(order: "4411", amount: 5)) { txn in
            try txn.appendAudit(AuditDraft(event: .opCreditGranted, refs: [.order("4411")]))
            return "granted"
        }
    }

    /// Runs schemathesis against the server on `port`; its output goes to a file (a pipe could
    /// fill and stall it), read back when it exits.
    static func run(_ executable: String, port: Int, secret: String) async throws -> (status: Int32, output: String) {
        let directory = try TemporaryDirectory(prefix: "larder-schemathesis")
        let log = directory.path("schemathesis.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "run", packageRoot.appendingPathComponent("docs/admin-openapi.yaml").path,
            "--url", "http://127.0.0.1:\(port)",
            "--header", "Authorization: Bearer \(secret)",
            "--seed", String(seed), "--max-examples", String(examplesPerOperation),
            "--phases", "examples,coverage,fuzzing", "--workers", "1",
            "--generation-database", "none", "--request-timeout", "20", "--no-color",
        ]
        // Its working files (.hypothesis, reports) go to the temporary directory, not the checkout.
        process.currentDirectoryURL = URL(fileURLWithPath: directory.path)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return (status, output)
    }
}
