import Foundation
import Synchronization

/// Where the tool writes: standard output and error by default, a buffer in tests.
///
/// Commands print through ``Console/current`` so that tests can run them in-process and read
/// what they printed.
public final class Console: Sendable {
    /// The console of the running command.
    @TaskLocal public static var current = Console()

    private let captured = Mutex<(out: String, err: String)>(("", ""))
    private let isCapturing: Bool
    /// Whether standard error is a terminal (progress bars) — false when capturing.
    public let isTerminal: Bool

    /// The process's standard output and error.
    public init() {
        isCapturing = false
        isTerminal = isatty(STDERR_FILENO) != 0
    }

    private init(capturing: Void) {
        isCapturing = true
        isTerminal = false
    }

    /// A console that keeps everything printed, for tests.
    public static func capturing() -> Console { Console(capturing: ()) }

    /// What was printed to standard output (capturing consoles only).
    public var output: String { captured.withLock { $0.out } }
    /// What was printed to standard error (capturing consoles only).
    public var errorOutput: String { captured.withLock { $0.err } }

    public func print(_ line: String = "") {
        write(line + "\n")
    }

    public func write(_ text: String) {
        if isCapturing {
            captured.withLock { $0.out += text }
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }

    public func error(_ text: String, newline: Bool = true) {
        let text = newline ? text + "\n" : text
        if isCapturing {
            captured.withLock { $0.err += text }
        } else {
            FileHandle.standardError.write(Data(text.utf8))
        }
    }
}
