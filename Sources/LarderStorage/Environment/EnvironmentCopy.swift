import Foundation

enum EnvironmentCopy {
    /// Makes sure `destination` is an empty directory (creating it when missing), so a copy never
    /// overwrites a store.
    static func prepare(_ destination: String) throws(StorageError) {
        guard !destination.isEmpty else {
            throw StorageError(.invalidArgument, "The copy destination is empty.", phase: .copy)
        }
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        if !files.fileExists(atPath: destination, isDirectory: &isDirectory) {
            do {
                try files.createDirectory(atPath: destination, withIntermediateDirectories: true)
            } catch {
                throw StorageError(.failed, "Cannot create \(destination): \(error.localizedDescription)", phase: .copy)
            }
            return
        }
        guard isDirectory.boolValue else {
            throw StorageError(.invalidArgument, "\(destination) exists and is not a directory.", phase: .copy)
        }
        guard !files.fileExists(atPath: destination + "/data.mdb") else {
            throw StorageError(.invalidArgument, "\(destination) already holds a store; choose an empty directory.", phase: .copy)
        }
    }
}
