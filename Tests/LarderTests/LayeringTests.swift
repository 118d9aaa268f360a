import Foundation
import Testing

/// The layers, read from the sources: imports go down only (CLMDB → LarderStorage → Larder →
/// LarderAdmin, LarderFleet, LarderTesting → LarderCLI → larder), the storage core publishes nothing to an app
/// (`package`, never `public`) and knows nothing of HTTP, exit codes or JSON, Larder re-exports
/// nothing and knows none of its tools, and no test hook ships as SPI.
@Suite("Layering")
struct LayeringTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Each target and the project modules its sources may import.
    static let allowedImports: [String: Set<String>] = [
        "Sources/LarderStorage": ["CLMDB"],
        "Sources/Larder": ["LarderStorage"],
        "Sources/LarderAdmin": ["Larder"],
        "Sources/LarderTesting": ["Larder", "LarderStorage"],
        "Sources/LarderFleet": ["Larder"],
        "Sources/LarderCLI": ["Larder", "LarderAdmin", "LarderFleet"],
        "Tools/larder": ["LarderCLI"],
    ]
    static let projectModules: Set<String> = ["CLMDB", "LarderStorage", "Larder", "LarderAdmin", "LarderFleet", "LarderTesting", "LarderCLI"]

    /// The Swift files under `folder`, with their text.
    static func sources(_ folder: String) throws -> [(path: String, text: String)] {
        let base = root.appendingPathComponent(folder)
        guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { return [] }
        var files: [(String, String)] = []
        for case let url as URL in walker where url.pathExtension == "swift" {
            files.append((url.path.replacingOccurrences(of: root.path + "/", with: ""), try String(contentsOf: url, encoding: .utf8)))
        }
        return files.sorted { $0.0 < $1.0 }
    }

    /// Lines outside comments.
    static func code(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }
    }

    @Test func importsGoDownOnly() throws {
        for (folder, allowed) in Self.allowedImports {
            let files = try Self.sources(folder)
            #expect(!files.isEmpty, "\(folder) has no sources")
            for (path, text) in files {
                for line in Self.code(text) {
                    let words = line.split(separator: " ").map(String.init)
                    guard let index = words.firstIndex(of: "import"), index + 1 < words.count,
                          words[..<index].allSatisfy({ ["public", "package", "internal", "@_exported", "@testable"].contains($0) || $0.hasPrefix("@_spi") })
                    else { continue }
                    let module = words[index + 1]
                    if Self.projectModules.contains(module) {
                        #expect(allowed.contains(module), "\(path) imports \(module); \(folder) may import only \(allowed.sorted())")
                    }
                }
            }
        }
    }

    @Test func theStorageCorePublishesNothingAndKnowsNoToolOrWireFormat() throws {
        for (path, text) in try Self.sources("Sources/LarderStorage") {
            for line in Self.code(text) {
                #expect(!line.contains("public "), "\(path): \(line)")
                for word in ["LarderError", "httpStatus", "exitStatus", "jsonBody", "JSONWriter", "METHOD_NOT_ALLOWED", "RATE_LIMITED"] {
                    #expect(!line.contains(word), "\(path) mentions \(word): \(line)")
                }
            }
        }
    }

    @Test func larderReexportsNothingAndShipsNoTestHook() throws {
        for folder in ["Sources/Larder", "Sources/LarderAdmin", "Sources/LarderFleet", "Sources/LarderCLI"] {
            for (path, text) in try Self.sources(folder) {
                for line in Self.code(text) {
                    #expect(!line.contains("@_exported"), "\(path): \(line)")
                    #expect(!line.contains("@_spi"), "\(path): \(line)")
                    #expect(!line.contains("public import LarderStorage") && !line.contains("public import CLMDB"), "\(path): \(line)")
                }
            }
        }
    }

    /// Larder knows none of its tools: no HTTP status, exit status or tool event is defined there.
    @Test func larderKnowsNoneOfItsTools() throws {
        for (path, text) in try Self.sources("Sources/Larder") {
            for line in Self.code(text) {
                for word in ["httpStatus", "exitStatus", "FORENSIC_ACCESS", "BACKUP_TAKEN", "METHOD_NOT_ALLOWED", "import Hummingbird", "import ArgumentParser"] {
                    #expect(!line.contains(word), "\(path) mentions \(word): \(line)")
                }
            }
        }
    }

    /// The embedded product links no database client: only LarderFleet (and the tools and tests
    /// above it) may name postgres-nio, in its sources or in the manifest.
    @Test func onlyLarderFleetLinksPostgresNIO() throws {
        for folder in ["Sources/LarderStorage", "Sources/Larder", "Sources/LarderAdmin", "Sources/LarderTesting"] {
            for (path, text) in try Self.sources(folder) {
                for line in Self.code(text) {
                    #expect(!line.contains("import PostgresNIO"), "\(path): \(line)")
                }
            }
        }
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        // Each target's declaration runs from `.target(` (or another kind) to the next one; only
        // LarderFleet and the fleet tests may list the PostgresNIO product.
        let declarations = manifest.split(separator: try Regex(#"\.(target|testTarget|executableTarget|systemLibrary)\("#)).dropFirst()
        let users = declarations.filter { $0.contains("package: \"postgres-nio\"") }
            .compactMap { declaration in declaration.firstMatch(of: try! Regex(#"name: "([^"]+)""#))?.output[1].substring.map(String.init) }
        #expect(users.sorted() == ["LarderFleet", "LarderFleetTests"], "\(users)")
    }
}
