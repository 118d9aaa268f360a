import Foundation
import Larder

// The main job until the full command-line tool lands: open the store at the default path
// (creating it on first use) and print what it holds.
let path = CommandLine.arguments.dropFirst().first ?? ".larder/default"
do {
    let store = try Store.open(at: path)
    defer { store.close() }
    let info = store.info()
    let (head, records, decisions) = try store.read { view in
        (try view.audit.head(), try view.audit.count(), try view.decisions.count())
    }
    print("Larder store at \(info.path)")
    print("  map:       \(info.mapUsedBytes) bytes used of \(info.mapSizeBytes) (max \(info.mapSizeBytesMax))")
    print("  audit:     \(records) records, head seq \(head.seq), chain \(head.chainHash.hexString)")
    print("  decisions: \(decisions)")
    let report = try store.verify()
    print("  verify:    \(report.isIntact ? "intact" : "BROKEN at seq \(report.firstBrokenSeq.map(String.init) ?? "?")") (\(report.recordsChecked) records)")
} catch let error as LarderError {
    FileHandle.standardError.write(Data((error.jsonBody + "\n").utf8))
    exit(error.code.exitStatus)
}
