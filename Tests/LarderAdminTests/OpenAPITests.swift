import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

/// docs/admin-openapi.yaml describes exactly the routes the router serves.
@Suite("OpenAPI document")
struct OpenAPITests {
    static let documentPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/admin-openapi.yaml").path

    /// The keys directly under `paths:` (indented two spaces, starting with `/`). Line-based on
    /// purpose: it needs no YAML package, and the document is written to keep paths this way.
    static func documentedPaths() throws -> Set<String> {
        let text = try String(contentsOfFile: documentPath, encoding: .utf8)
        var inPaths = false
        var paths = Set<String>()
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" "), !line.isEmpty { inPaths = line.hasPrefix("paths:") ; continue }
            guard inPaths, line.hasPrefix("  /"), !line.hasPrefix("   "), line.hasSuffix(":") else { continue }
            paths.insert(String(line.dropFirst(2).dropLast()))
        }
        return paths
    }

    @Test func theDocumentAndTheRouterListTheSamePaths() throws {
        let store = try AdminFixture()
        let routed = Set(store.server.buildRouter().routes.filter { $0.method == .get }.map(\.path.description))
        #expect(routed == Set(AdminServer.routerPaths))
        // The router's `**` (a tile path of several segments) is a `{tile_path}` in the document.
        let served = Set(AdminServer.routePaths)
        #expect(served.count == AdminServer.routerPaths.count)
        let documented = try Self.documentedPaths()
        #expect(documented == served, "only in the router: \(served.subtracting(documented)); only in the document: \(documented.subtracting(served))")
    }

    @Test func everyRouteAlsoAnswersHead() throws {
        let store = try AdminFixture()
        // autoGenerateHeadEndpoints adds HEAD when the responder is built.
        let router = store.server.buildRouter()
        _ = router.buildResponder()
        let head = Set(router.routes.filter { $0.method == .head }.map(\.path.description))
        #expect(head == Set(AdminServer.routerPaths))
    }

    @Test func theDocumentDescribesTheErrorBody() throws {
        let text = try String(contentsOfFile: Self.documentPath, encoding: .utf8)
        for field in ["error_code", "request_id", "failure_class", "failure_point", "transaction_rolled_back", "can_retry"] {
            #expect(text.contains(field), "\(field)")
        }
    }
}
