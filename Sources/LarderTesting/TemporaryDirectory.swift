import Foundation

/// A fresh, empty directory under the system's temporary folder, removed when released.
///
/// ```swift
/// let directory = try TemporaryDirectory()
/// let store = try Store.open(at: directory.path("store"))
/// ```
public final class TemporaryDirectory: Sendable {
    /// The directory's absolute path.
    public let path: String

    public init(prefix: String = "larder-test") throws {
        let base = FileManager.default.temporaryDirectory.path
        let candidate = "\(base)/\(prefix)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: candidate, withIntermediateDirectories: true)
        path = candidate
    }

    /// A path inside the directory (not created).
    public func path(_ component: String) -> String { "\(path)/\(component)" }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}
