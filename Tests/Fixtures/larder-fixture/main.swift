// A second process for the multi-process tests: writes audit records into, or reads the head of,
// a store that the test process has open at the same time.
//
//   larder-fixture write PATH COUNT ACTOR [PAD]  — COUNT writes of one audit record each, with PAD
//                                                 bytes of payload padding (to grow the map)
//   larder-fixture head PATH                — opens read-only, prints "HEAD <seq> <records>"
import Foundation
import Larder

struct FixtureNote: FingerprintedRequest {
    static let operationName = "fixture.note"
    let index: Int
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: larder-fixture write PATH COUNT ACTOR | head PATH\n".utf8))
    exit(2)
}
do {
    switch arguments[1] {
    case "write":
        let store = try Store.open(at: arguments[2])
        let count = Int(arguments[3]) ?? 0
        let actor = ActorIdentity(id: arguments[4], role: .system)
        let pad = arguments.count > 5 ? String(repeating: "p", count: Int(arguments[5]) ?? 0) : ""
        for index in 0..<count {
            let context = WriteContext(actor: actor, requestID: "\(arguments[4])-\(index)")
            try store.write(context) { txn in
                try txn.appendAudit(AuditDraft(event: "FIXTURE_NOTE", refs: [CorrelationRef("writer", arguments[4])],
                                               payload: "{\"pad\":\"\(pad)\"}"))
            }
        }
        store.close()
        print("WROTE \(count)")
    case "head":
        let store = try Store.open(at: arguments[2], options: .init(readOnly: true))
        let (head, count) = try store.read { view in (try view.audit.head(), try view.audit.count()) }
        print("HEAD \(head.seq) \(count)")
        store.close()
    default:
        exit(2)
    }
} catch let error as LarderError {
    FileHandle.standardError.write(Data((error.jsonBody + "\n").utf8))
    exit(error.code.exitStatus)
}
