import Foundation

// Helpers for tests that run executables built beside the test bundle (multi-process tests, the
// `larder` tool end to end).

/// Where an executable built beside the test bundle lives (the test target depends on it, so
/// SwiftPM builds it first).
public func builtProductPath(_ name: String) -> String {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var directory = bundle.deletingLastPathComponent()
    // On Linux the test binary is `…/debug/LarderPackageTests.xctest`; executables sit beside it.
    while !FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path),
          directory.path != "/" {
        directory = directory.deletingLastPathComponent()
    }
    return directory.appendingPathComponent(name).path
}

/// Runs a process to completion; returns its exit status, standard output and standard error.
public func runProcess(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let outData = output.fileHandleForReading.readDataToEndOfFile()
    let errData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}
