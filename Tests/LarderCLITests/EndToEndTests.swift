import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LarderTesting
import Testing

/// The built `larder` binary, end to end on a temporary store: demo, verify, audit, token,
/// then `serve` answering over a loopback socket.
@Suite("larder binary end to end")
struct EndToEndTests {
    static var binary: String { builtProductPath("larder") }

    func run(_ arguments: [String]) async throws -> (status: Int32, out: String, err: String) {
        let binary = Self.binary
        let result = try await onOwnThread { try runProcess(binary, arguments) }
        return (result.status, result.output, result.error)
    }

    @Test func theBinaryPlaysVerifiesAndServes() async throws {
        let directory = try TemporaryDirectory(prefix: "larder-e2e")
        let db = directory.path("db")
        let demo = try await run(["demo", "--no-serve", "--db", db])
        #expect(demo.status == 0, "\(demo.err)")
        #expect(demo.out.contains("chain verified: yes"))
        #expect(try await run(["verify", "--db", db]).status == 0)
        #expect(try await run(["verify", "--db", directory.path("missing")]).status == 4)
        #expect(try await run(["audit", "--db", db, "--from-seq", "x"]).status == 64)
        let help = try await run(["--help"])
        for command in ["demo", "serve", "verify", "audit", "incidents", "ledger", "backup", "stats", "token"] {
            #expect(help.out.contains(command))
        }
        let tokens = directory.path("tokens.json")
        let token = try await run(["token", "create", "--scopes", "audit:read,ops:read", "--expires", "1h", "--tokens", tokens])
        #expect(token.status == 0)
        let secret = try #require(token.out.split(separator: "\n").last.map(String.init))

        // serve on a free port: it prints the port it bound.
        let server = Process()
        server.executableURL = URL(fileURLWithPath: Self.binary)
        server.arguments = ["serve", "--db", db, "--port", "0", "--tokens", tokens]
        let serverOut = Pipe()
        server.standardOutput = serverOut
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { if server.isRunning { server.terminate() } }
        let port = try await Self.boundPort(from: serverOut.fileHandleForReading)
        let base = "http://127.0.0.1:\(port)"
        #expect(try await Self.get("\(base)/healthz").status == 200)
        #expect(try await Self.get("\(base)/v1/audit?from_seq=1&limit=5").status == 401)
        let page = try await Self.get("\(base)/v1/audit?from_seq=1&limit=5", bearer: secret)
        #expect(page.status == 200)
        #expect(page.body.contains("\"records\""))
        server.terminate()
        try await onOwnThread { server.waitUntilExit() }
        // The forensic read was recorded in the store.
        let audit = try await run(["audit", "--db", db, "--format", "ndjson", "--limit", "100000"])
        #expect(audit.out.contains("FORENSIC_ACCESS"))
    }

    /// Reads the server's "serving … on http://host:PORT" line (bounded wait).
    static func boundPort(from handle: FileHandle) async throws -> Int {
        var buffer = ""
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let data = handle.availableData
            if data.isEmpty { try await Task.sleep(for: .milliseconds(50)); continue }
            buffer += String(decoding: data, as: UTF8.self)
            if let range = buffer.range(of: #"http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                let text = buffer[range]
                if let port = Int(text.split(separator: ":").last ?? "") { return port }
            }
        }
        throw CancellationError()
    }

    static func get(_ url: String, bearer: String? = nil) async throws -> (status: Int, body: String) {
        var request = URLRequest(url: URL(string: url)!)
        request.timeoutInterval = 10
        if let bearer { request.setValue("Bearer \(bearer)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}
