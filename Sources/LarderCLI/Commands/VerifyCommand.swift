import ArgumentParser
import Foundation
import Larder

/// `larder verify`: the chain, every index, every ledger balance and incident index.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify the audit chain, every index and every ledger balance.",
        discussion: "Opens the store read-only. Exits 0 when everything verifies, 1 with a report naming the first bad record otherwise.")

    @OptionGroup var location: StoreLocation

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func run() throws {
        let console = Console.current
        let store = try location.open(readOnly: true)
        defer { store.close() }
        let progress = ProgressReporter(console: console)
        let report = try store.verify { progress.report($0) }
        progress.finish()
        if json {
            console.print(Self.json(report))
        } else {
            console.print(Self.text(report, path: store.path))
        }
        if !report.isIntact { throw VerifyFailed(status: 1) }
    }

    static func text(_ report: VerifyReport, path: String) -> String {
        var lines: [String] = []
        if report.isIntact {
            lines.append("intact: \(path)")
        } else {
            let first = report.firstBrokenSeq.map { "seq \($0)" } ?? "a record outside the chain (\(report.problems.first?.table ?? "?"))"
            lines.append("BROKEN: \(path): first bad record at \(first)")
            for problem in report.problems { lines.append("  \(problem)") }
            if report.problemsOmitted > 0 { lines.append("  … and \(report.problemsOmitted) more") }
        }
        lines.append("  audit records: \(report.recordsChecked), index entries: \(report.indexEntriesChecked), other records: \(report.otherRecordsChecked)")
        lines.append("  chain head: seq \(report.head.seq) \(report.head.chainHash.hexString)")
        return lines.joined(separator: "\n")
    }

    static func json(_ report: VerifyReport) -> String {
        var json = JSONWriter()
        json.object { o in report.writeJSONFields(to: &o) }
        return json.text
    }
}

/// A progress bar on a terminal; plain lines (at most one per phase and 10 %) otherwise.
final class ProgressReporter: @unchecked Sendable {
    private let console: Console
    private var lastPhase = ""
    private var lastTenth = -1
    private var drawn = false

    init(console: Console) { self.console = console }

    func report(_ progress: VerifyProgress) {
        let fraction = progress.total > 0 ? min(1, Double(progress.done) / Double(progress.total)) : 1
        if console.isTerminal {
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            console.error("\r\u{1B}[2K[\(bar)] \(Int(fraction * 100))% \(progress.phase) \(progress.done)/\(progress.total)", newline: false)
            drawn = true
        } else {
            let tenth = Int(fraction * 10)
            if progress.phase != lastPhase || tenth > lastTenth {
                console.error("verify: \(progress.phase) \(progress.done)/\(progress.total)")
                lastPhase = progress.phase
                lastTenth = tenth
            }
        }
    }

    func finish() {
        if drawn { console.error("\r\u{1B}[2K", newline: false) }
    }
}
