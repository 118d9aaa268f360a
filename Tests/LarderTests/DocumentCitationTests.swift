import Foundation
import Testing

/// The project stands alone: every document its code, tests, tools and docs cite is in the
/// repository. Design notes, build notes and style guides kept outside it must not be cited
/// (the reasons they gave belong in docs/ARCHITECTURE.md, FORMAT.md or OPERATIONS.md).
@Suite("Document citations")
struct DocumentCitationTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// What is scanned: the project's own sources, tests, tools, benchmarks and documents.
    static let roots = ["Sources", "Tests", "Tools", "docs", "Benchmarks", ".ci",
                        "README.md", "BENCHMARKS.md", "Package.swift"]
    static let extensions: Set<String> = ["swift", "md", "py", "sh", "h", "modulemap", "yaml", "yml", "json", "txt", ""]

    /// Documents outside the repository that were cited before (spelt in pieces, so that this
    /// file does not cite them itself).
    static let outsideDocuments = ["DESIGN" + ".md", "BUILD" + "-NOTES", "STYLE" + ".md", "../" + "shared/", "/work/" + "shared"]
    /// The word seed followed by a section number or by "document": the outside starting documents.
    static let seedCitation = try! NSRegularExpression(pattern: "\\b[Ss]eed (document|[A-Z][0-9])")
    /// A path under docs/ ending in .md or .yaml, from anywhere.
    static let docsPath = try! NSRegularExpression(pattern: "\\bdocs/[A-Za-z0-9_-]+\\.(md|yaml)\\b")
    /// A bare Markdown file name in capitals, such as the format or the policy document.
    static let bareDocument = try! NSRegularExpression(pattern: "(?<![A-Za-z0-9_/.-])[A-Z][A-Z0-9_-]+\\.md\\b")
    /// A relative link of a Markdown document: `](path)` or `](path#anchor)`.
    static let markdownLink = try! NSRegularExpression(pattern: "\\]\\(([^)#\\s]+)(#[^)\\s]*)?\\)")

    struct Text {
        let path: String
        let text: String
    }

    static func texts() throws -> [Text] {
        var texts: [Text] = []
        let fileManager = FileManager.default
        for root in roots {
            let url = repository.appendingPathComponent(root)
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: url.path, isDirectory: &isDirectory) else { continue }
            var files: [URL] = []
            if isDirectory.boolValue {
                let walker = fileManager.enumerator(at: url, includingPropertiesForKeys: [.isRegularFileKey],
                                                    options: [.skipsHiddenFiles])
                while let file = walker?.nextObject() as? URL {
                    if (try? file.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true { files.append(file) }
                }
            } else {
                files = [url]
            }
            for file in files where extensions.contains(file.pathExtension) {
                guard let text = try? String(contentsOf: file, encoding: .utf8) else { continue }
                texts.append(Text(path: String(file.path.dropFirst(repository.path.count + 1)), text: text))
            }
        }
        return texts
    }

    static func matches(_ expression: NSRegularExpression, in text: String, group: Int = 0) -> [String] {
        expression.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { match in
            Range(match.range(at: group), in: text).map { String(text[$0]) }
        }
    }

    @Test func nothingCitesADocumentOutsideTheRepository() throws {
        let texts = try Self.texts()
        #expect(texts.count > 50, "the scan found only \(texts.count) files under \(Self.repository.path)")
        for text in texts {
            for name in Self.outsideDocuments where text.text.contains(name) {
                Issue.record("\(text.path) cites \(name), which is not in the repository; cite docs/ARCHITECTURE.md, FORMAT.md or OPERATIONS.md")
            }
            for citation in Self.matches(Self.seedCitation, in: text.text) {
                Issue.record("\(text.path) cites \"\(citation)\", a document outside the repository")
            }
        }
    }

    @Test func everyCitedDocumentExists() throws {
        let texts = try Self.texts()
        let documentNames = Set(texts.map { URL(fileURLWithPath: $0.path).lastPathComponent })
        for text in texts {
            for path in Set(Self.matches(Self.docsPath, in: text.text))
            where !FileManager.default.fileExists(atPath: Self.repository.appendingPathComponent(path).path) {
                Issue.record("\(text.path) cites \(path), which does not exist")
            }
            for name in Set(Self.matches(Self.bareDocument, in: text.text)) where !documentNames.contains(name) {
                Issue.record("\(text.path) cites \(name), which is not in the repository")
            }
        }
    }

    @Test func everyRelativeLinkOfADocumentResolves() throws {
        for text in try Self.texts() where text.path.hasSuffix(".md") {
            let folder = Self.repository.appendingPathComponent(text.path).deletingLastPathComponent()
            for target in Set(Self.matches(Self.markdownLink, in: text.text, group: 1))
            where !target.contains(":") && !FileManager.default.fileExists(atPath: folder.appendingPathComponent(target).path) {
                Issue.record("\(text.path) links to \(target), which does not exist")
            }
        }
    }
}
