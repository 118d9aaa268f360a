import Foundation

/// The C program of Benchmarks/Compare/c (`raw_lmdb`), driven over a pipe: the floor the Swift raw
/// contestant is held to (within 1.5×) on the write paths, with the same puts, bytes and hashes.
/// It runs bulk import and the one-writer paths (durable and without sync); its process measures
/// its own time and I/O, and the harness records them like any other contestant's.
final class CContestant: Contestant {
    let name = "C LMDB"
    let directory: String
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var pending = Data()

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Where `bash Benchmarks/Compare/c/build.sh` puts the binary, relative to the package root.
    static let defaultBinary = ".build-c/raw_lmdb"

    init(directory: String, binary: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [directory]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    func support(_ workload: Workload) -> Support {
        switch workload {
        case .bulk, .single, .singleNoSync: .measured
        default: .notApplicable
        }
    }

    func run(_ workload: Workload, _ plan: Plan) throws -> Measurement {
        let budgetMilliseconds = Int(plan.budget.seconds * 1_000)
        switch workload {
        case .bulk:
            return try send("bulk \(plan.bulkRange.lowerBound) \(plan.bulkRange.count) \(plan.batchCount)",
                            unit: "batch of \(plan.batchCount)")
        case .single:
            return try send("single \(plan.singleRange.lowerBound) \(plan.singleRange.count) \(budgetMilliseconds)", unit: "op")
        case .singleNoSync:
            return try send("nosync \(plan.noSyncRange.lowerBound) \(plan.noSyncRange.count) \(budgetMilliseconds)", unit: "op")
        default:
            preconditionFailure("not applicable")
        }
    }

    /// Sends one command; parses "ok OPS NANOS P50NS P99NS WCHAR WRITE_BYTES COMMITS". The
    /// latencies come back as their two percentiles, kept as two samples that give the same
    /// p50 and p99 under the harness's nearest-rank percentile.
    private func send(_ command: String, unit: String) throws -> Measurement {
        let fields = try exchange(command).split(separator: " ")
        guard fields.count == 8, fields[0] == "ok", let ops = Int(fields[1]), let nanos = Int64(fields[2]),
              let p50 = Int64(fields[3]), let p99 = Int64(fields[4]), let wchar = UInt64(fields[5]),
              let writeBytes = UInt64(fields[6]), let commits = Int(fields[7]) else {
            throw Failure(description: "raw_lmdb answered \(fields.joined(separator: " ")) to \(command)")
        }
        return Measurement(operations: ops, elapsed: .nanoseconds(nanos), latenciesNanoseconds: [p50, p99], unit: unit,
                           commits: commits, io: IOCounters(wcharBytes: wchar, writeBytes: writeBytes))
    }

    /// Writes one line, reads one line back.
    func exchange(_ line: String) throws -> String {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
        while true {
            if let newline = pending.firstIndex(of: 0x0A) {
                let reply = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return reply
            }
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw Failure(description: "raw_lmdb exited during \(line)") }
            pending.append(chunk)
        }
    }

    func close() {
        input.fileHandleForWriting.write(Data("quit\n".utf8))
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
