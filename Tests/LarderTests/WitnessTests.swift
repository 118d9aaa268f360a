import Foundation
import Larder
import LarderTesting
import Testing

/// A log as a witness sees it: a tree, a key, and the checkpoint it publishes.
struct FakeLog: CheckpointSource {
    var tree = InMemoryMerkleTileStorage()
    let key: NoteSigningKey
    /// Set to serve a note other than the current checkpoint.
    var servedNote: String?
    /// Set to serve a proof other than the true one.
    var servedProof: [MerkleHash]?

    init(key: NoteSigningKey, entries: Range<Int>, salt: String = "") throws {
        self.key = key
        for index in entries { try tree.appendLeaf(.leaf(Array("\(salt)record \(index)".utf8))) }
    }

    mutating func append(_ entries: Range<Int>, salt: String = "") throws {
        for index in entries { try tree.appendLeaf(.leaf(Array("\(salt)record \(index)".utf8))) }
    }

    func note() throws(LarderError) -> String {
        try Checkpoint(origin: key.name, treeSize: tree.treeSize, rootHash: tree.reader.rootHash(treeSize: tree.treeSize)).signed(by: key)
    }

    func latestCheckpoint() async throws(LarderError) -> String {
        if let servedNote { return servedNote }
        return try note()
    }

    func consistencyProof(from oldSize: UInt64, to newSize: UInt64) async throws(LarderError) -> [MerkleHash] {
        if let servedProof { return servedProof }
        return try tree.reader.consistencyProof(from: oldSize, to: newSize)
    }
}

@Suite("Witness")
struct WitnessTests {
    let directory: TemporaryDirectory
    let key: NoteSigningKey
    let witness: Witness

    init() throws {
        directory = try TemporaryDirectory(prefix: "larder-witness")
        key = try NoteSigningKey(name: "kitchen.example/larder", seed: [UInt8](repeating: 3, count: 32))
        witness = Witness(verifierKey: key.verifierKey, statePath: directory.path("state"))
    }

    func savedNote() throws -> String { try String(contentsOfFile: witness.statePath, encoding: .utf8) }

    @Test func acceptsTheFirstThenConsistentGrowthAndSavesIt() async throws {
        var log = try FakeLog(key: key, entries: 0..<10)
        #expect(try await witness.observe(log) == .success(.first(try Checkpoint.open(try log.note(), verifierKey: key.verifierKey).0)))
        #expect(try savedNote() == (try log.note()))
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: witness.statePath)[.posixPermissions] as? Int)
        #expect(mode == 0o600)

        let first = try #require(try witness.loadState())
        try log.append(10..<300)
        let verdict = try await witness.observe(log)
        guard case .success(.grew(let saved, let fetched)) = verdict else {
            Issue.record("expected growth, got \(verdict)")
            return
        }
        #expect(saved == first && fetched.treeSize == 300)
        #expect(try savedNote() == (try log.note()))
        #expect(try await witness.observe(log) == .success(.unchanged(fetched)))
        // No temporary files are left beside the state.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["state"])
    }

    @Test func anEmptyLogIsExtendedByAnyTree() async throws {
        var log = try FakeLog(key: key, entries: 0..<0)
        _ = try await witness.observe(log)
        #expect(try witness.loadState()?.treeSize == 0)
        try log.append(0..<5)
        guard case .success(.grew) = try await witness.observe(log) else {
            Issue.record("growth from the empty tree was refused")
            return
        }
    }

    /// A store replaced by another history signed with the same key: caught whether the new
    /// history is longer (the consistency proof fails), as long (another root) or shorter.
    @Test func forksAndShrinkingTreesAreRejectedAndNotSaved() async throws {
        let honest = try FakeLog(key: key, entries: 0..<100)
        _ = try await witness.observe(honest)
        let saved = try savedNote()

        var forked = try FakeLog(key: key, entries: 0..<50)
        try forked.append(50..<200, salt: "rewritten ")
        #expect(try await witness.observe(forked) == .failure(.forkInconsistent(savedSize: 100, fetchedSize: 200)))

        let sameSize = try FakeLog(key: key, entries: 0..<100, salt: "rewritten ")
        let verdict = try await witness.observe(sameSize)
        guard case .failure(.forkSameSize(size: 100, _, _)) = verdict else {
            Issue.record("expected a same-size fork, got \(verdict)")
            return
        }
        #expect(try await witness.observe(try FakeLog(key: key, entries: 0..<99)) == .failure(.shrinkingTree(savedSize: 100, fetchedSize: 99)))

        // An honest-looking larger checkpoint with a proof that does not hold.
        var lying = try FakeLog(key: key, entries: 0..<150)
        lying.servedProof = try honest.tree.reader.consistencyProof(from: 50, to: 100)
        #expect(try await witness.observe(lying) == .failure(.forkInconsistent(savedSize: 100, fetchedSize: 150)))
        lying.servedProof = []
        #expect(try await witness.observe(lying) == .failure(.forkInconsistent(savedSize: 100, fetchedSize: 150)))

        #expect(try savedNote() == saved, "a rejection changed the state")
        // The descriptions say why, for the command's output.
        #expect(WitnessRejection.forkInconsistent(savedSize: 100, fetchedSize: 200).description.hasPrefix("fork:"))
        #expect(WitnessRejection.shrinkingTree(savedSize: 100, fetchedSize: 99).description.hasPrefix("shrinking tree:"))
    }

    @Test func badSignaturesAndOtherLogsAreRejected() async throws {
        var log = try FakeLog(key: key, entries: 0..<10)
        _ = try await witness.observe(log)
        let saved = try savedNote()
        try log.append(10..<20)

        // Signed by another key under the same name: not this log's key.
        let impostor = try FakeLog(key: try NoteSigningKey(name: key.name, seed: [UInt8](repeating: 4, count: 32)), entries: 0..<20)
        guard case .failure(.badSignature) = try await witness.observe(impostor) else {
            Issue.record("a checkpoint signed by another key was not rejected")
            return
        }
        // The log's note with its size changed after signing.
        var tampered = log
        tampered.servedNote = try log.note().replacingOccurrences(of: "\n20\n", with: "\n21\n")
        guard case .failure(.badSignature) = try await witness.observe(tampered) else {
            Issue.record("a tampered checkpoint was not rejected")
            return
        }
        // The right key signing a checkpoint of another origin.
        var otherOrigin = log
        let body = try Checkpoint(origin: "other.example/log", treeSize: 20, rootHash: log.tree.reader.rootHash(treeSize: 20)).body
        otherOrigin.servedNote = try SignedNote(text: body, signatures: [key.sign(body)]).serialized
        #expect(try await witness.observe(otherOrigin) == .failure(.wrongOrigin("other.example/log")))
        var garbage = log
        garbage.servedNote = "not a note"
        guard case .failure(.malformed) = try await witness.observe(garbage) else {
            Issue.record("garbage was not rejected as malformed")
            return
        }
        #expect(try savedNote() == saved)
    }

    /// The state is the witness's memory of one log: a state file of another log, or an edited
    /// one, is an error, not a fresh start.
    @Test func aStateFileOfAnotherLogIsRefused() async throws {
        let otherKey = try NoteSigningKey(name: "other.example/log", seed: [UInt8](repeating: 5, count: 32))
        let other = try FakeLog(key: otherKey, entries: 0..<3)
        try Data(try other.note().utf8).write(to: URL(fileURLWithPath: witness.statePath))
        await expectError(.validationFailed) { try await witness.observe(try FakeLog(key: key, entries: 0..<3)) }
        let own = try FakeLog(key: key, entries: 0..<3)
        try Data(try own.note().replacingOccurrences(of: "\n3\n", with: "\n4\n").utf8).write(to: URL(fileURLWithPath: witness.statePath))
        expectError(.validationFailed) { try witness.loadState() }
    }

    /// `decide` alone, without files: what the command and the tests of other layers build on.
    @Test func decideIsPure() throws {
        let log = try FakeLog(key: key, entries: 0..<8)
        let note = try log.note()
        let checkpoint = try Checkpoint.open(note, verifierKey: key.verifierKey).0
        #expect(witness.decide(saved: nil, fetchedNote: note, proof: []) == .success(.first(checkpoint)))
        let older = try Checkpoint(origin: key.name, treeSize: 3, rootHash: log.tree.reader.rootHash(treeSize: 3))
        let proof = try log.tree.reader.consistencyProof(from: 3, to: 8)
        #expect(witness.decide(saved: older, fetchedNote: note, proof: proof) == .success(.grew(saved: older, fetched: checkpoint)))
        #expect(witness.decide(saved: older, fetchedNote: note, proof: Array(proof.dropLast()))
                == .failure(.forkInconsistent(savedSize: 3, fetchedSize: 8)))
        #expect(!FileManager.default.fileExists(atPath: witness.statePath))
    }
}
