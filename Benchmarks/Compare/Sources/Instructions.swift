internal import CCallgrind
import Foundation
import Larder
#if canImport(Glibc)
import Glibc
#endif

// Instruction counts. perf cannot count instructions on this VM, so they come from valgrind's
// callgrind, which counts every instruction of every thread of the process and does not depend on
// how busy the machine is. `--phase` runs chosen phases of one contestant after an import of
// `--scale` transfers; each phase sits between callgrind client requests (start + zero, then a
// dump labelled with the workload), so under
//
//   valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=DIR/cg.out \
//       .build/release/larder-compare --phase single-nosync --contestant raw-lmdb --scale 10000
//
// the import runs uninstrumented and DIR/cg.out.N holds each phase's count alone ("totals:").
// `--instructions` does exactly that for every single-threaded phase and contestant, and for the
// C program, and divides by the operations each phase reports.

/// One JSON line per phase on stdout: what `--instructions` divides the counts by.
struct PhaseLine: Codable {
    let contestant: String
    let workload: String
    let status: String
    let operations: Int
    let seconds: Double
}

/// `--phase` mode: a fresh store, the bulk import of `--scale` transfers (not instrumented), then
/// each requested phase between callgrind requests. Never touches Swift concurrency unless the
/// concurrent phase is asked for (which then cannot run under valgrind).
func runPhases(_ phases: [Workload], settings: Settings) {
    guard let key = settings.phaseContestant, let kind = ContestantKind(rawValue: key) else {
        fail("--contestant takes one of \(ContestantKind.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    guard kind != .cLMDB else {
        fail("the C program is its own process: run it under valgrind directly (Benchmarks/Compare/c/raw_lmdb.c), or use --instructions")
    }
    guard let scale = settings.scales.first else { fail("--phase needs --scale N") }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("larder-compare-phase-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    do {
        let contestant = try kind.make(directory: directory + "/store", settings: settings)
        defer { contestant.close() }
        let plan = makePlan(scale: scale, settings: settings, bulkExtra: settings.bulkExtra)
        if contestant.support(.bulk) == .measured {
            progress("\(contestant.name): importing \(scale) transfers (not instrumented)…")
            _ = try contestant.run(.bulk, plan)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for workload in Workload.allCases where phases.contains(workload) {
            let support = contestant.support(workload)
            guard support == .measured else {
                let status = support == .notImplemented ? "n/a (not implemented yet)" : "not applicable"
                let line = PhaseLine(contestant: contestant.name, workload: workload.rawValue, status: status, operations: 0, seconds: 0)
                print(String(decoding: try encoder.encode(line), as: UTF8.self))
                continue
            }
            try contestant.prepare(for: workload)
            var phasePlan = plan
            if workload == .bulk { phasePlan.bulkRange = scale..<(scale + settings.bulkExtra) }
            larder_callgrind_start()
            let measurement = try contestant.run(workload, phasePlan)
            larder_callgrind_dump(workload.rawValue)
            let line = PhaseLine(contestant: contestant.name, workload: workload.rawValue, status: "measured",
                                 operations: measurement.operations, seconds: measurement.seconds)
            print(String(decoding: try encoder.encode(line), as: UTF8.self))
            fflush(nil)
            progress("  \(contestant.name) · \(workload.rawValue): \(measurement.operations) ops in \(String(format: "%.3f", measurement.seconds)) s")
        }
    } catch {
        fail("\(error)")
    }
}

/// Runs each contestant's single-threaded phases under callgrind (one valgrind process per
/// contestant and scale) and returns instructions per phase.
func runInstructions(settings: Settings, kinds: [ContestantKind]) -> [InstructionRow] {
    guard let valgrind = which("valgrind") else {
        progress("valgrind is not installed: no instruction counts")
        return []
    }
    var executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    // Valgrind 3.19 gives up on the DWARF 5 debug info of Swift 6 release binaries ("Possibly
    // corrupted debuginfo file"): run a copy without it (the counts need no symbols).
    let stripped = FileManager.default.temporaryDirectory.appendingPathComponent("larder-compare-nodebug-\(getpid())").path
    if let strip = which("strip"), runProcess(strip, ["--strip-debug", "-o", stripped, executable], input: nil,
                                              log: stripped + ".log") != nil {
        executable = stripped
    }
    defer { try? FileManager.default.removeItem(atPath: stripped) }
    let scales = settings.instructionScales ?? [settings.scales.min()!]
    // Fewer operations than the timed rounds: callgrind runs ~50× slower, and the counts are exact.
    let counts = ["--ops", "200", "--nosync-ops", "1000", "--point-reads", "10000", "--scans", "10", "--bulk-extra", "2000",
                  "--budget-seconds", "86400", "--concurrent-ops", "64"]
    var rows: [InstructionRow] = []
    for scale in scales {
        for kind in kinds where kind != .sqliteGroup {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("larder-compare-callgrind-\(getpid())-\(kind.rawValue)-\(scale)").path
            try? FileManager.default.removeItem(atPath: directory)
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let valgrindArguments = ["--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=\(directory)/cg.out"]
            progress("callgrind: \(kind.displayName) at \(scale) records…")
            let started = ContinuousClock.now
            var operations: [String: Int] = [:]
            if kind == .cLMDB {
                guard let binary = settings.resolvedCBinary else { continue }
                var child = settings
                child.singleOps = 200
                child.noSyncOps = 1_000
                child.concurrentOps = 64
                let plan = makePlan(scale: scale, settings: child, bulkExtra: 2_000)
                // The import, then each measured phase between start and dump.
                var script = "bulk 0 \(scale) \(settings.batchCount)\n"
                var measured: [Workload] = []
                for workload in settings.instructionPhases {
                    let command: String
                    switch workload {
                    case .bulk: command = "bulk \(scale) 2000 \(settings.batchCount)"
                    case .single: command = "single \(plan.singleRange.lowerBound) \(plan.singleRange.count) 86400000"
                    case .singleNoSync: command = "nosync \(plan.noSyncRange.lowerBound) \(plan.noSyncRange.count) 86400000"
                    default: continue
                    }
                    script += "start\n\(command)\ndump \(workload.rawValue)\n"
                    measured.append(workload)
                }
                script += "quit\n"
                guard let output = runProcess(valgrind, valgrindArguments + [binary, directory + "/store"], input: script,
                                              log: directory + "/../larder-compare-callgrind-\(kind.rawValue)-\(scale).log") else { continue }
                let replies = output.split(separator: "\n").filter { $0.hasPrefix("ok ") }.map { $0.split(separator: " ") }
                // Replies with figures: the import, then one per measured phase.
                for (workload, reply) in zip(measured, replies.dropFirst()) where reply.count > 1 {
                    operations[workload.rawValue] = Int(reply[1])
                }
            } else {
                let arguments = [executable, "--phase", settings.instructionPhases.map(\.key).joined(separator: ","),
                                 "--contestant", kind.rawValue, "--scale", "\(scale)"] + counts
                guard let output = runProcess(valgrind, valgrindArguments + arguments, input: nil,
                                              log: directory + "/../larder-compare-callgrind-\(kind.rawValue)-\(scale).log") else { continue }
                for line in output.split(separator: "\n") {
                    guard let phase = try? JSONDecoder().decode(PhaseLine.self, from: Data(line.utf8)), phase.status == "measured" else { continue }
                    operations[phase.workload] = phase.operations
                }
            }
            for (label, instructions) in callgrindDumps(in: directory) {
                guard let ops = operations[label] else { continue }
                rows.append(InstructionRow(scale: scale, workload: label, contestant: kind.displayName, operations: ops, instructions: instructions))
            }
            progress("callgrind: \(kind.displayName) at \(scale) done in \(Int((ContinuousClock.now - started).seconds)) s")
        }
    }
    return rows
}

/// Each dump's label ("desc: Trigger: Client Request: LABEL") and instruction total ("totals: N",
/// the sum of the dump's cost lines). Not "summary:": after a zero with a second thread alive
/// (Larder's writer) callgrind 3.19 writes a wrapped-around negative summary, while the totals
/// line stays the sum of what was counted.
func callgrindDumps(in directory: String) -> [(label: String, instructions: UInt64)] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
    var dumps: [(String, UInt64)] = []
    for name in names where name.hasPrefix("cg.out.") {
        guard let text = try? String(contentsOfFile: directory + "/" + name, encoding: .utf8) else { continue }
        var label: String?, total: UInt64?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("desc: Trigger: Client Request: ") { label = String(line.dropFirst("desc: Trigger: Client Request: ".count)) }
            if line.hasPrefix("totals: ") { total = UInt64(line.dropFirst("totals: ".count)) }
        }
        if let label, let total { dumps.append((label, total)) }
    }
    return dumps
}

/// Runs a process to completion; returns its stdout, or nil (with its stderr kept in `log`) when it fails.
func runProcess(_ path: String, _ arguments: [String], input: String?, log: String) -> String? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    process.standardError = FileHandle(forWritingAtPath: log)
    let stdin = Pipe()
    process.standardInput = stdin
    do { try process.run() } catch {
        progress("cannot run \(path): \(error)")
        return nil
    }
    if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
    try? stdin.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        progress("\(path) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus); see \(log)")
        return nil
    }
    try? FileManager.default.removeItem(atPath: log)
    return String(decoding: data, as: UTF8.self)
}

func which(_ tool: String) -> String? {
    for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let path = "\(directory)/\(tool)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

// MARK: --check-rows

/// Proves the lean rows are Larder's bytes: against ``ReferenceRows`` (Larder's own encoders),
/// against Larder's decoder, and against the C program's rows; and that the lean decoders and
/// the chain verifier read them back.
func checkRows(_ settings: Settings) -> Bool {
    var failures = 0
    func check(_ condition: Bool, _ what: @autoclosure () -> String) {
        if !condition {
            failures += 1
            progress("MISMATCH: \(what())")
        }
    }
    let samples = [0, 1, 5, 9, 10, 11, 99, 100, 101, 990, 999, 1_000, 12_345, 99_999, 999_999, 1_000_017, 123_456_789]
    let builder = LeanRowBuilder()
    let previous = (0..<32).map { UInt8($0 * 7 & 0xFF) }
    var c: CContestant?
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("larder-compare-check-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    if let binary = settings.resolvedCBinary {
        c = try? CContestant(directory: directory, binary: binary)
        if c == nil { progress("cannot start \(binary)") }
    } else {
        progress("no C program (bash Benchmarks/Compare/c/build.sh): checking against Larder's encoders only")
    }
    var compared = 0
    for index in samples {
        for importBatchStart in [nil, index - index % 1_000] {
            let spec = TransferSpec(index: index)
            let seq = UInt64(index) + 7
            let time: Int64 = 1_763_900_000_000_000 + Int64(index)
            let reference = ReferenceRows(spec, seq: seq, timeMicros: time, previousChain: previous, importBatchStart: importBatchStart)
            previous.withUnsafeBytes { chain in
                builder.build(LeanSpec(index: index), seq: seq, timeMicros: time, previousChain: chain, importBatchStart: importBatchStart)
            }
            let what = "transfer \(index)\(importBatchStart.map { " (import batch \($0))" } ?? "")"
            check(Array(builder.auditValue) == reference.auditValue, "\(what): audit value")
            check(Array(builder.chainHash) == reference.chainHash, "\(what): chain hash")
            check(Array(builder.transferValue) == reference.transferValue, "\(what): transfer value")
            check(Array(builder.decisionValue) == reference.decisionValue, "\(what): decision value")
            // Larder's own decoder reads the lean record.
            if let record = try? AuditRecord.decode(Array(builder.record)) {
                check(record.seq == seq && record.requestID == (importBatchStart.map { "import-\($0)" } ?? spec.requestID)
                      && record.refs.count == 3, "\(what): Larder's decoder")
            } else {
                check(false, "\(what): Larder's decoder rejects the lean record")
            }
            // The lean decoders.
            if let transfer = try? DecodedTransfer.decode(builder.transferValue) {
                check(transfer.debitAccount == spec.debitAccount && transfer.creditAccount == spec.creditAccount
                      && transfer.amount == spec.amount && transfer.auditSeq == seq && transfer.timeMicros == time,
                      "\(what): decoded transfer")
            } else {
                check(false, "\(what): the lean transfer decoder rejects the row")
            }
            check((try? DecodedTransfer.amountInPlace(builder.transferValue)) == spec.amount, "\(what): amount in place")
            if let record = try? DecodedAuditRecord.decode(auditValue: builder.auditValue) {
                check(record.seq == seq && record.decisionID == (importBatchStart == nil ? spec.decisionID : nil)
                      && record.refs.map(\.id) == [spec.debitAccount, spec.creditAccount].sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) } + [spec.id],
                      "\(what): decoded audit record")
            } else {
                check(false, "\(what): the lean audit decoder rejects the row")
            }
            var tally = AuditViewTally()
            try? tally.visit(auditValue: builder.auditValue)
            check(tally.records == 1 && tally.transfersPosted == 1 && tally.seqSum == seq && tally.latestMicros == time, "\(what): view tally")
            // The C program, chained after 32 zero bytes.
            if let c {
                builder.build(LeanSpec(index: index), seq: seq, timeMicros: time, previousChain: LeanRowBuilder.genesis,
                              importBatchStart: importBatchStart)
                let mode = importBatchStart.map { "import:\($0)" } ?? "decision"
                if let reply = try? c.exchange("rows \(index) \(seq) \(time) \(mode)") {
                    let parts = reply.split(separator: " ")
                    check(parts.count == 6 && String(parts[1]) == hex(builder.auditValue) && String(parts[3]) == hex(builder.transferValue)
                          && String(parts[5]) == (builder.decisionValue.isEmpty ? "-" : hex(builder.decisionValue)), "\(what): C rows")
                } else {
                    check(false, "\(what): no answer from the C program")
                }
            }
            compared += 1
        }
    }
    c?.close()
    // The chain verifier accepts a chain of lean rows and rejects a changed byte.
    var values: [[UInt8]] = []
    var chain = Array(LeanRowBuilder.genesis)
    for index in 0..<50 {
        chain.withUnsafeBytes { previous in
            builder.build(LeanSpec(index: index), seq: UInt64(index + 1), timeMicros: 1_763_900_000_000_000, previousChain: previous,
                          importBatchStart: index < 25 ? 0 : nil)
        }
        values.append(Array(builder.auditValue))
        chain = Array(builder.chainHash)
    }
    var verifier = LeanChainVerifier()
    check(values.allSatisfy { value in value.withUnsafeBytes { verifier.check($0) } }, "the chain verifier rejects a good chain")
    verifier.deallocate()
    values[20][30] ^= 1
    var tampered = LeanChainVerifier()
    check(!values.allSatisfy { value in value.withUnsafeBytes { tampered.check($0) } }, "the chain verifier accepts a changed byte")
    tampered.deallocate()
    progress(failures == 0 ? "rows identical for \(compared) cases (Larder's encoders\(c == nil ? "" : ", the C program")); decoders and chain check agree"
             : "\(failures) mismatches")
    return failures == 0
}

func hex(_ bytes: UnsafeRawBufferPointer) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
}
