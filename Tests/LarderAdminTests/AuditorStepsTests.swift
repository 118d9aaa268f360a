import Foundation
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import Testing

/// The README's "Auditing a box from outside": its two shell blocks, run as written (curl and
/// Tools/verify_checkpoint.py) against a live server, with records and a new checkpoint between
/// the visits; then the same steps against a box whose history was rewritten must fail.
@Suite("README auditor steps")
struct AuditorStepsTests {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let key = try! NoteSigningKey(parsing: "PRIVATE+KEY+larder.test/vectors+cd12f106+AXTpgPw1XUECJ5u4p5MDtx6dWmByotxvjNkzMJeFfE/e")

    /// The shell block after `<!-- auditor-steps: NAME -->` in README.md.
    static func block(_ name: String) throws -> String {
        let readme = try String(contentsOfFile: packageRoot.appendingPathComponent("README.md").path, encoding: .utf8)
        let marker = "<!-- auditor-steps: \(name) -->\n```sh\n"
        guard let start = readme.range(of: marker), let end = readme.range(of: "\n```", range: start.upperBound..<readme.endIndex) else {
            throw CancellationError()
        }
        return String(readme[start.upperBound..<end.lowerBound])
    }

    static let tools: String? = {
        for tool in ["curl", "python3"] {
            let found = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
                .contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
            if !found { return "\(tool) is not on the PATH (Tools/setup.sh installs curl)" }
        }
        return nil
    }()

    /// Runs `script` with bash in `directory` (the verifier's path made absolute), stopping at
    /// the first failing command.
    static func run(_ script: String, in directory: String, environment: [String: String]) async throws -> (status: Int32, output: String) {
        let tool = packageRoot.appendingPathComponent("Tools/verify_checkpoint.py").path
        let body = script.replacingOccurrences(of: "python3 Tools/verify_checkpoint.py", with: "python3 \(tool)")
        let log = directory + "/steps.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-euo", "pipefail", "-c", body]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    static func box(history: String, records: Int = 300) throws -> (TemporaryStore, AdminServer, String) {
        let temporary = try TemporaryStore(options: Store.Options(durability: .fastUnsafe))
        try append(temporary.store, records, history: history)
        try temporary.store.signCheckpoint(with: key)
        var tokens = try TokenFile()
        var random = SeededGenerator(seed: 42)
        let secret = try tokens.createToken(id: "auditor", scopes: [.auditRead],
                                            expiresAt: temporary.clock.now().unixMicros + 86_400_000_000, using: &random).secret
        var configuration = AdminConfiguration()
        configuration.port = 0
        configuration.checkpointKey = key.verifierKey
        return (temporary, try AdminServer(store: temporary.store, tokens: tokens, configuration: configuration), secret)
    }

    static func append(_ store: Store, _ count: Int, history: String) throws {
        try store.write(WriteContext(actor: ActorIdentity(id: "am-17", role: .accountManager), requestID: "orders")) { txn in
            for index in 0..<count {
                try txn.appendAudit(AuditDraft(event: "ORDER_NOTED", payload: "{\"history\":\"\(history)\",\"n\":\(index)}"))
            }
        }
    }

    @Test(.enabled(if: tools == nil, "\(tools ?? "")"))
    func anAuditorWithCurlAndPythonChecksInclusionAndConsistency() async throws {
        let first = try Self.block("first visit"), later = try Self.block("later visit")
        #expect(first.contains("verify_checkpoint.py inclusion") && later.contains("verify_checkpoint.py consistency"))
        let directory = try TemporaryDirectory(prefix: "larder-auditor")
        let (temporary, server, secret) = try Self.box(history: "real")
        try await server.makeApplication().test(.live) { client in
            let environment = ["BOX": "http://127.0.0.1:\(try #require(client.port))", "SECRET": secret,
                               "VKEY": Self.key.verifierKey.description]
            let visit = try await Self.run(first, in: directory.path, environment: environment)
            #expect(visit.status == 0, "\(visit.output)")
            #expect(visit.output.components(separatedBy: "OK").count - 1 == 2, "\(visit.output)")

            // The box goes on, and signs again.
            try Self.append(temporary.store, 120, history: "real")
            try await temporary.store.signCheckpoint(with: Self.key)
            let again = try await Self.run(later, in: directory.path, environment: environment)
            #expect(again.status == 0, "\(again.output)")
            #expect(again.output.contains("OK"), "\(again.output)")
        }

        // The box replaced by a longer, rewritten history under the same key: the later visit fails.
        // (The store is kept: dropping the TemporaryStore would close it under the server.)
        let (forgedStore, forged, forgedSecret) = try Self.box(history: "rewritten", records: 600)
        defer { withExtendedLifetime(forgedStore) {} }
        try await forged.makeApplication().test(.live) { client in
            let environment = ["BOX": "http://127.0.0.1:\(try #require(client.port))", "SECRET": forgedSecret,
                               "VKEY": Self.key.verifierKey.description]
            let caught = try await Self.run(later, in: directory.path, environment: environment)
            #expect(caught.status != 0, "\(caught.output)")
            #expect(caught.output.contains("FAILED"), "\(caught.output)")
        }
    }
}
