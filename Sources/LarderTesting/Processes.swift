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

/// Runs blocking work (waiting for a child process, reading its pipes) on a thread of its own
/// and suspends until it is done.
///
/// Swift Testing runs tests on Swift's cooperative pool, which has one thread per core (two on a
/// two-core machine). A test that blocks one of them for seconds — a kill -9 loop, a child that
/// fills a disk — starves every async test that shares the pool, such as a live admin server
/// whose handlers then answer late. Keep `#expect` outside `body`: Swift Testing attributes
/// expectations through the test's task, which this thread does not have.
public func onOwnThread<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.name = "larder.test.blocking"
        thread.start()
    }
}

/// ``runProcess(_:_:)`` for async tests: the wait happens on a thread of its own (see
/// ``onOwnThread(_:)``), never on the cooperative pool.
public func runProcess(_ path: String, _ arguments: [String]) async throws -> (status: Int32, output: String, error: String) {
    try await onOwnThread { try runProcess(path, arguments) }
}
