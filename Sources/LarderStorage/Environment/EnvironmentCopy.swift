import Foundation

enum EnvironmentCopy {
    /// Makes sure `destination` is an empty directory (creating it when missing), so a copy never
    /// overwrites a store.
    static func prepare(_ destination: String) throws(LarderError) {
        guard !destination.isEmpty else {
            throw LarderError(.validationFailed, "The copy destination is empty.")
        }
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        if !files.fileExists(atPath: destination, isDirectory: &isDirectory) {
            do {
                try files.createDirectory(atPath: destination, withIntermediateDirectories: true)
            } catch {
                throw LarderError(.persistenceError, "Cannot create \(destination): \(error.localizedDescription)",
                                  failurePoint: .persist)
            }
            return
        }
        guard isDirectory.boolValue else {
            throw LarderError(.validationFailed, "\(destination) exists and is not a directory.")
        }
        guard !files.fileExists(atPath: destination + "/data.mdb") else {
            throw LarderError(.validationFailed, "\(destination) already holds a store; choose an empty directory.")
        }
    }
}
