import Foundation
import Larder
import LarderStorage
import LarderTesting
import Testing

/// docs/FORMAT.md is enough to verify the chain without Larder: Tools/verify_audit_chain.py
/// (Python, standard library only) reads the LMDB file through mdb_dump and recomputes every hash.
@Suite("Independent verifier")
struct IndependentVerifierTests {
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tools/verify_audit_chain.py").path

    static var python: String? {
        ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @Test func thePythonVerifierAgreesWithTheStore() throws {
        guard let python = Self.python else {
            Issue.record("python3 is needed for the independent verifier test")
            return
        }
        let temporary = try TemporaryStore()
        let store = temporary.store
        try store.write(.test("setup")) { txn in
            try txn.ledger.createAccount(NewAccount(id: "a", ledger: "packs"))
            try txn.ledger.createAccount(NewAccount(id: "b", ledger: "packs"))
        }
        for index in 0..<30 {
            try store.post(.transfer(id: "t-\(index)", debit: "a", credit: "b", amount: UInt64(index + 1), refs: [.order("o\(index)")]),
                           context: .test("req-\(index)", decisionID: "d-\(index)"))
        }
        let head = try store.read { try $0.audit.head() }
        let healthy = try runProcess(python, [Self.script, temporary.path])
        #expect(healthy.status == 0, "\(healthy.output) \(healthy.error)")
        #expect(healthy.output.contains("OK \(head.seq) records, head \(head.seq) \(head.chainHash.hexString)"))

        // One flipped byte in one record: both verifiers name that record.
        var value = try #require(try store.environmentForTesting.rawGet(table: "audit", key: UInt64(12).encodedKey))
        value[20] ^= 0x40
        try store.environmentForTesting.rawPut(table: "audit", key: UInt64(12).encodedKey, value: value)
        #expect(try store.verify().firstBrokenSeq == 12)
        let broken = try runProcess(python, [Self.script, temporary.path])
        #expect(broken.status == 1)
        #expect(broken.output.contains("BROKEN at seq 12"))
    }
}
