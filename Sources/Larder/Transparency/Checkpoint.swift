/// A C2SP tlog-checkpoint: the signed statement "the log `origin` has `treeSize` leaves and this
/// Merkle root". Its body is the text of a ``SignedNote``:
///
/// ```text
/// kitchen.example/larder
/// 20852163
/// CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
/// ```
///
/// (origin, tree size in decimal, base64 root hash, then optional extension lines; every line
/// ends in a newline). Larder signs with the key whose name is the origin.
///
/// ```swift
/// let checkpoint = try Checkpoint(origin: key.name, treeSize: size, rootHash: root)
/// let note = try checkpoint.signed(by: key)                       // the text to publish
/// let (seen, _) = try Checkpoint.open(note, verifierKey: key.verifierKey)
/// ```
public struct Checkpoint: Hashable, Sendable {
    /// The log's identity; for Larder, the signing key's name.
    public let origin: String
    /// The number of leaves (audit records) the root covers.
    public let treeSize: UInt64
    /// The RFC 6962 root of the first `treeSize` leaves.
    public let rootHash: MerkleHash
    /// Opaque extension lines (not recommended by the specification; Larder writes none).
    public let extensions: [String]

    /// A checkpoint.
    /// - throws: VALIDATION_FAILED for an empty origin, or an origin or extension line that is
    ///   empty, holds a newline or another control character.
    public init(origin: String, treeSize: UInt64, rootHash: MerkleHash, extensions: [String] = []) throws(LarderError) {
        try Self.validate(line: origin, "origin")
        for line in extensions { try Self.validate(line: line, "extension line") }
        self.origin = origin
        self.treeSize = treeSize
        self.rootHash = rootHash
        self.extensions = extensions
    }

    /// Parses a checkpoint body (a note's text), strictly: at least three lines each ending in a
    /// newline, none empty, a decimal size without leading zeros that fits 64 bits, and the
    /// canonical base64 of a 32-byte root.
    /// - throws: VALIDATION_FAILED naming the problem.
    public init(body: String) throws(LarderError) {
        guard body.utf8.last == 0x0A else { throw Self.malformed("the body does not end in a newline") }
        let lines = body.utf8.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        guard lines.count >= 3 else { throw Self.malformed("a checkpoint has at least three lines") }
        let size = lines[1]
        guard !size.isEmpty, size.utf8.count <= 20, size.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              size == "0" || !size.hasPrefix("0"), let treeSize = UInt64(size) else {
            throw Self.malformed("the tree size \(JSONWriter.quoted(size)) is not a decimal without leading zeros")
        }
        guard let root = MerkleHash(base64: lines[2]) else {
            throw Self.malformed("the root hash is not the base64 of 32 bytes")
        }
        try self.init(origin: lines[0], treeSize: treeSize, rootHash: root, extensions: Array(lines[3...]))
    }

    /// The note text: origin, size, root, extension lines, each followed by a newline.
    public var body: String {
        ([origin, String(treeSize), rootHash.base64] + extensions).map { $0 + "\n" }.joined()
    }

    /// The checkpoint signed by `key`, as the signed note text to publish.
    /// - throws: VALIDATION_FAILED when the key's name is not the origin.
    public func signed(by key: NoteSigningKey) throws(LarderError) -> String {
        guard key.name.utf8.elementsEqual(origin.utf8) else {
            throw LarderError(.validationFailed,
                              "The checkpoint of \(JSONWriter.quoted(origin)) is signed with the key of its origin, not \(JSONWriter.quoted(key.name)).")
        }
        return try SignedNote(text: body, signatures: [key.sign(body)]).serialized
    }

    /// Why ``open(_:verifierKey:)`` refused a note.
    public enum Rejection: Error, Hashable, Sendable, CustomStringConvertible {
        /// The note or its checkpoint body is malformed.
        case malformed(String)
        /// A signature by the verifier key does not verify.
        case badSignature
        /// No signature by the verifier key (name and key ID) is on the note.
        case notSignedByKey
        /// The checkpoint's origin is not the verifier key's name.
        case wrongOrigin(String)

        public var description: String {
            switch self {
            case .malformed(let detail): "malformed checkpoint: \(detail)"
            case .badSignature: "bad signature: the checkpoint's signature by the verifier key does not verify"
            case .notSignedByKey: "bad signature: the checkpoint carries no signature by the verifier key"
            case .wrongOrigin(let origin): "wrong origin: the checkpoint is from \(JSONWriter.quoted(origin)), not the verifier key's log"
            }
        }
    }

    /// Parses a signed checkpoint note and checks it against `verifierKey`: signatures as C2SP
    /// signed-note requires, and the origin must be the key's name.
    /// - returns: the checkpoint and the parsed note.
    /// - throws: a ``Rejection``.
    public static func open(_ note: String, verifierKey: NoteVerifierKey) throws(Rejection) -> (Checkpoint, SignedNote) {
        let parsed: SignedNote
        let checkpoint: Checkpoint
        do {
            parsed = try SignedNote(parsing: note)
            checkpoint = try Checkpoint(body: parsed.text)
        } catch {
            throw .malformed(error.message)
        }
        switch parsed.verify(with: [verifierKey]) {
        case .verified: break
        case .invalidSignature: throw .badSignature
        case .noKnownSignature: throw .notSignedByKey
        }
        guard checkpoint.origin.utf8.elementsEqual(verifierKey.name.utf8) else { throw .wrongOrigin(checkpoint.origin) }
        return (checkpoint, parsed)
    }

    private static func validate(line: String, _ what: String) throws(LarderError) {
        guard !line.isEmpty else { throw malformed("the \(what) is empty") }
        guard !line.utf8.contains(where: { $0 < 0x20 }) else { throw malformed("the \(what) holds a control character") }
    }

    private static func malformed(_ detail: String) -> LarderError {
        LarderError(.validationFailed, "Malformed checkpoint: \(detail).")
    }
}
