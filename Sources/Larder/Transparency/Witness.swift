/// Where a witness reads a log: its latest signed checkpoint and consistency proofs. The HTTP
/// client implements it over the admin server's routes; tests inject fakes.
public protocol CheckpointSource: Sendable {
    /// The latest signed checkpoint note, as published.
    /// - throws: a ``LarderError`` when it cannot be fetched.
    func latestCheckpoint() async throws(LarderError) -> String

    /// The consistency proof from the tree of `oldSize` leaves to the tree of `newSize` leaves
    /// (0 < oldSize < newSize).
    /// - throws: a ``LarderError`` when it cannot be fetched.
    func consistencyProof(from oldSize: UInt64, to newSize: UInt64) async throws(LarderError) -> [MerkleHash]
}

/// Why a witness refused a checkpoint. Every case means "do not trust this log's new state";
/// the fork cases are evidence that the log (or someone holding its key) rewrote history.
public enum WitnessRejection: Error, Hashable, Sendable, CustomStringConvertible {
    /// The note or its checkpoint body is malformed.
    case malformed(String)
    /// The note carries no valid signature by the log's verifier key.
    case badSignature(String)
    /// The checkpoint names another log than the verifier key's.
    case wrongOrigin(String)
    /// The tree is smaller than the one saved: history was removed.
    case shrinkingTree(savedSize: UInt64, fetchedSize: UInt64)
    /// Same size, another root: two histories signed with the same key.
    case forkSameSize(size: UInt64, savedRoot: MerkleHash, fetchedRoot: MerkleHash)
    /// The log's consistency proof from the saved tree to the new one does not verify: the new
    /// tree does not extend the saved one.
    case forkInconsistent(savedSize: UInt64, fetchedSize: UInt64)

    public var description: String {
        switch self {
        case .malformed(let detail): "malformed checkpoint: \(detail)"
        case .badSignature(let detail): "bad signature: \(detail)"
        case .wrongOrigin(let origin): "wrong origin: the checkpoint is from \(JSONWriter.quoted(origin)), not the verifier key's log"
        case let .shrinkingTree(saved, fetched):
            "shrinking tree: the log now has \(fetched) records, fewer than the \(saved) of the checkpoint saved earlier"
        case let .forkSameSize(size, saved, fetched):
            "fork: at tree size \(size) the log now signs root \(fetched.hexString), but signed \(saved.hexString) before"
        case let .forkInconsistent(saved, fetched):
            "fork: the consistency proof from tree size \(saved) to \(fetched) does not verify; the new tree does not extend the saved one"
        }
    }
}

/// What a witness accepted.
public enum WitnessAcceptance: Hashable, Sendable {
    /// No checkpoint was saved: the first one is trusted on first use.
    case first(Checkpoint)
    /// The log grew consistently from `saved` to `fetched`.
    case grew(saved: Checkpoint, fetched: Checkpoint)
    /// The same tree as saved (same size and root).
    case unchanged(Checkpoint)

    /// The checkpoint now saved.
    public var current: Checkpoint {
        switch self {
        case .first(let checkpoint), .unchanged(let checkpoint): checkpoint
        case .grew(_, let fetched): fetched
        }
    }
}

/// A witness of one Larder log: it remembers the last checkpoint it verified (in a state file)
/// and accepts a new one only when it is signed by the log's key and extends the remembered tree.
///
/// ```swift
/// let witness = Witness(verifierKey: try NoteVerifierKey(parsing: vkey), statePath: "/var/lib/witness/kitchen")
/// switch try await witness.observe(source) {
/// case .success(let accepted): print("ok, tree size \(accepted.current.treeSize)")
/// case .failure(let rejection): print("REJECTED: \(rejection)"); exit(1)
/// }
/// ```
public struct Witness: Sendable {
    /// The log's verifier key; its name is the checkpoint origin.
    public let verifierKey: NoteVerifierKey
    /// The state file: the last accepted signed checkpoint note, mode 0600.
    public let statePath: String

    public init(verifierKey: NoteVerifierKey, statePath: String) {
        self.verifierKey = verifierKey
        self.statePath = statePath
    }

    /// Decides on `fetchedNote` given the `saved` checkpoint (nil: none yet) and, when the tree
    /// grew from a non-empty saved one, the log's consistency `proof`. Pure: no I/O.
    ///
    /// Rules, in order: the note must be a well-formed checkpoint signed by the verifier key with
    /// its origin; with nothing saved it is accepted; a smaller tree is rejected (shrinking); the
    /// same size must have the same root (else a fork); a larger tree must be proven consistent
    /// with the saved one (else a fork). An empty saved tree is extended by any tree.
    public func decide(saved: Checkpoint?, fetchedNote: String, proof: [MerkleHash]) -> Result<WitnessAcceptance, WitnessRejection> {
        Self.open(fetchedNote, verifierKey).flatMap { fetched in Self.decide(saved: saved, fetched: fetched, proof: proof) }
    }

    /// One observation: loads the saved checkpoint, fetches the latest one (and a consistency
    /// proof when the tree grew), decides, and on acceptance saves the new checkpoint atomically
    /// (a new file renamed over the old, mode 0600). A rejection leaves the state file as it was.
    /// - returns: the acceptance or the rejection; a rejection is a verdict, not an error.
    /// - throws: a ``LarderError`` when the state cannot be read or written, or the source fails.
    public func observe(_ source: some CheckpointSource) async throws(LarderError) -> Result<WitnessAcceptance, WitnessRejection> {
        let saved = try loadState()
        let note = try await source.latestCheckpoint()
        let fetched: Checkpoint
        switch Self.open(note, verifierKey) {
        case .success(let checkpoint): fetched = checkpoint
        case .failure(let rejection): return .failure(rejection)
        }
        var proof: [MerkleHash] = []
        if let saved, saved.treeSize > 0, fetched.treeSize > saved.treeSize {
            proof = try await source.consistencyProof(from: saved.treeSize, to: fetched.treeSize)
        }
        let verdict = Self.decide(saved: saved, fetched: fetched, proof: proof)
        switch verdict {
        case .success(.first), .success(.grew):
            try PrivateFile.replaceAtomically(at: statePath, contents: Array(note.utf8))
        case .success(.unchanged), .failure:
            break
        }
        return verdict
    }

    /// The decision on a checkpoint whose note already verified.
    private static func decide(saved: Checkpoint?, fetched: Checkpoint, proof: [MerkleHash]) -> Result<WitnessAcceptance, WitnessRejection> {
        guard let saved else { return .success(.first(fetched)) }
        if fetched.treeSize < saved.treeSize {
            return .failure(.shrinkingTree(savedSize: saved.treeSize, fetchedSize: fetched.treeSize))
        }
        if fetched.treeSize == saved.treeSize {
            guard fetched.rootHash == saved.rootHash else {
                return .failure(.forkSameSize(size: saved.treeSize, savedRoot: saved.rootHash, fetchedRoot: fetched.rootHash))
            }
            return .success(.unchanged(fetched))
        }
        guard MerkleProof.verifyConsistency(oldSize: saved.treeSize, newSize: fetched.treeSize,
                                            oldRoot: saved.rootHash, newRoot: fetched.rootHash, proof: proof) else {
            return .failure(.forkInconsistent(savedSize: saved.treeSize, fetchedSize: fetched.treeSize))
        }
        return .success(.grew(saved: saved, fetched: fetched))
    }

    /// The checkpoint in the state file, re-verified with the verifier key (so a state file of
    /// another log, or an edited one, is refused rather than trusted); nil when there is none.
    /// - throws: VALIDATION_FAILED when the file holds no checkpoint of this log; PERSISTENCE_ERROR
    ///   when it cannot be read.
    public func loadState() throws(LarderError) -> Checkpoint? {
        let bytes: [UInt8]
        do {
            bytes = try PrivateFile.contents(at: statePath, bytesMax: SignedNote.noteBytesMax, ownerOnly: false)
        } catch where error.code == .notFound {
            return nil
        }
        guard let note = String(validating: bytes, as: UTF8.self) else {
            throw LarderError(.validationFailed, "The witness state \(statePath) is not text.")
        }
        switch Self.open(note, verifierKey) {
        case .success(let checkpoint): return checkpoint
        case .failure(let rejection):
            throw LarderError(.validationFailed,
                              "The witness state \(statePath) is not a checkpoint of \(JSONWriter.quoted(verifierKey.name)): \(rejection).")
        }
    }

    private static func open(_ note: String, _ key: NoteVerifierKey) -> Result<Checkpoint, WitnessRejection> {
        do {
            return .success(try Checkpoint.open(note, verifierKey: key).0)
        } catch {
            switch error {
            case .malformed(let detail): return .failure(.malformed(detail))
            case .badSignature: return .failure(.badSignature("the checkpoint's signature by the verifier key does not verify"))
            case .notSignedByKey: return .failure(.badSignature("the checkpoint carries no signature by the verifier key"))
            case .wrongOrigin(let origin): return .failure(.wrongOrigin(origin))
            }
        }
    }
}
