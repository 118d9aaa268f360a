import Foundation
import Larder

// Issue 2's main job: open the store at the default path and print what it holds.
let path = CommandLine.arguments.dropFirst().first ?? ".larder/default"
do {
    let environment = try Environment.open(at: path, tables: ["meta"])
    defer { environment.close() }
    let info = environment.info()
    print("Larder store at \(info.path)")
    print("  map: \(info.mapUsedBytes) bytes used of \(info.mapSizeBytes) (max \(info.mapSizeBytesMax))")
    for table in try environment.read({ try $0.allStatistics() }) {
        print("  table \(table.name): \(table.entries) entries")
    }
} catch let error as LarderError {
    FileHandle.standardError.write(Data((error.jsonBody + "\n").utf8))
    exit(error.code.exitStatus)
}
