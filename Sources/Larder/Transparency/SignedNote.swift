/// A C2SP signed note: a text ending in a newline, a blank line, then one or more signature lines
/// `— <key name> <base64(key ID ‖ signature)>`.
///
/// Parsing is strict (it refuses anything the specification does not allow, and bounds the size);
/// ``verify(with:)`` applies the specification's rules about known and unknown keys.
///
/// ```swift
/// let note = try SignedNote(parsing: text)
/// switch note.verify(with: [verifierKey]) {
/// case .verified(let signatures): …   // at least one signature by a known key, and none failed
/// case .invalidSignature(let bad): …  // a known key's signature does not verify: reject the note
/// case .noKnownSignature: …           // nothing this verifier can check: reject the note
/// }
/// ```
public struct SignedNote: Hashable, Sendable {
    /// The signed text, ending in a newline (the blank separator line is not part of it).
    public let text: String
    /// The signature lines, in order, including those of keys the reader does not know.
    public let signatures: [NoteSignature]

    /// A note's size at most, in bytes. The specification asks verifiers to accept at least 16
    /// signatures, and post-quantum ones take up to about 7 KB of base64 each.
    public static let noteBytesMax = 256 << 10
    /// Signature lines at most (the specification's minimum to accept is 16).
    public static let signaturesMax = 100

    /// A note from its parts.
    /// - throws: VALIDATION_FAILED when `text` is not a valid note text (see ``validate(text:)``)
    ///   or there are no signatures.
    public init(text: String, signatures: [NoteSignature]) throws(LarderError) {
        try Self.validate(text: text)
        guard !signatures.isEmpty, signatures.count <= Self.signaturesMax else {
            throw Self.malformed("a note has 1 to \(Self.signaturesMax) signatures, not \(signatures.count)")
        }
        self.text = text
        self.signatures = signatures
        guard serialized.utf8.count <= Self.noteBytesMax else {
            throw Self.malformed("the note exceeds \(Self.noteBytesMax) bytes")
        }
    }

    /// Parses a signed note.
    /// - throws: VALIDATION_FAILED for anything that is not a well-formed note: invalid UTF-8, a
    ///   control character other than newline, no blank line before the signatures, a malformed
    ///   signature line, more than ``signaturesMax`` signatures or ``noteBytesMax`` bytes.
    public init(parsing bytes: some Collection<UInt8>) throws(LarderError) {
        guard bytes.count <= Self.noteBytesMax else { throw Self.malformed("the note exceeds \(Self.noteBytesMax) bytes") }
        guard let note = String(validating: bytes, as: UTF8.self) else { throw Self.malformed("the note is not UTF-8") }
        try self.init(parsing: note)
    }

    /// Parses a signed note given as text; see ``init(parsing:)-(Collection<UInt8>)``.
    public init(parsing note: String) throws(LarderError) {
        let utf8 = Array(note.utf8)
        guard utf8.count <= Self.noteBytesMax else { throw Self.malformed("the note exceeds \(Self.noteBytesMax) bytes") }
        guard !utf8.contains(where: { $0 < 0x20 && $0 != 0x0A }) else {
            throw Self.malformed("the note holds a control character")
        }
        guard utf8.last == 0x0A else { throw Self.malformed("the note does not end in a newline") }
        // The text ends at the last blank line: signature lines are never empty.
        var split: Int?
        var index = utf8.count - 2
        while index >= 0 {
            if utf8[index] == 0x0A && utf8[index + 1] == 0x0A {
                split = index
                break
            }
            index -= 1
        }
        guard let split else { throw Self.malformed("no blank line separates the text from its signatures") }
        let text = String(decoding: utf8[...split], as: UTF8.self)
        let lines = utf8[(split + 2)...].split(separator: 0x0A, omittingEmptySubsequences: false).dropLast()
        guard !lines.isEmpty else { throw Self.malformed("the note has no signature") }
        guard lines.count <= Self.signaturesMax else {
            throw Self.malformed("the note has more than \(Self.signaturesMax) signatures")
        }
        var signatures: [NoteSignature] = []
        for line in lines { signatures.append(try NoteSignature(line: line)) }
        try self.init(text: text, signatures: signatures)
    }

    /// The note as sent: text, blank line, one line per signature.
    public var serialized: String {
        text + "\n" + signatures.map(\.line).joined()
    }

    /// What ``verify(with:)`` concluded.
    public enum Verification: Hashable, Sendable {
        /// Every signature by a known key verified, and there was at least one. The verified
        /// signatures, each once.
        case verified([NoteSignature])
        /// This signature names a known key (name and key ID) but does not verify: the note must
        /// be rejected.
        case invalidSignature(NoteSignature)
        /// No signature names a known key: the note must be rejected.
        case noKnownSignature
    }

    /// Checks the signatures against `keys`, as C2SP signed-note requires: a signature whose key
    /// name and key ID both match a known key is verified (every such signature, duplicates too);
    /// any failure rejects the whole note; signatures of unknown keys — even sharing a name or an
    /// ID, but not both, with a known key — are ignored; at least one must verify.
    public func verify(with keys: [NoteVerifierKey]) -> Verification {
        var verified: [NoteSignature] = []
        for signature in signatures {
            // Names compare as bytes, as the key ID hashes them (String == would equate
            // canonically equivalent spellings).
            let known = keys.filter { $0.keyID == signature.keyID && $0.name.utf8.elementsEqual(signature.keyName.utf8) }
            guard !known.isEmpty else { continue }
            // Two known keys with the same name and ID are indistinguishable: either may have signed.
            guard known.contains(where: { $0.isValidSignature(signature.signature, for: text) }) else {
                return .invalidSignature(signature)
            }
            if !verified.contains(signature) { verified.append(signature) }
        }
        return verified.isEmpty ? .noKnownSignature : .verified(verified)
    }

    /// Checks that `text` can be signed: non-empty, ends in a newline, no control character other
    /// than newline (UTF-8 validity comes with `String`).
    /// - throws: VALIDATION_FAILED naming the problem.
    public static func validate(text: String) throws(LarderError) {
        guard text.utf8.last == 0x0A else { throw malformed("a note text ends in a newline") }
        guard !text.utf8.contains(where: { $0 < 0x20 && $0 != 0x0A }) else {
            throw malformed("a note text holds no control character but newline")
        }
    }

    static func malformed(_ detail: String) -> LarderError {
        LarderError(.validationFailed, "Malformed signed note: \(detail).")
    }
}

/// One signature line of a ``SignedNote``.
public struct NoteSignature: Hashable, Sendable {
    /// The signer's key name.
    public let keyName: String
    /// The key ID: the first four bytes of the signature's base64 payload, big-endian.
    public let keyID: UInt32
    /// The signature proper (64 bytes for Ed25519), without the key ID.
    public let signature: [UInt8]

    /// A signature line's parts.
    /// - throws: VALIDATION_FAILED for an invalid key name or an empty signature.
    public init(keyName: String, keyID: UInt32, signature: [UInt8]) throws(LarderError) {
        try NoteKeyName.validate(keyName)
        guard !signature.isEmpty else { throw SignedNote.malformed("a signature is empty") }
        self.keyName = keyName
        self.keyID = keyID
        self.signature = signature
    }

    /// Parses one line, without its newline: `— <key name> <base64>`.
    init(line: ArraySlice<UInt8>) throws(LarderError) {
        // Bytes, not Characters: a combining mark after a space must not merge with it.
        let prefix: [UInt8] = [0xE2, 0x80, 0x94, 0x20]  // U+2014 EM DASH, space
        guard line.starts(with: prefix) else {
            throw SignedNote.malformed("a signature line does not start with an em dash and a space")
        }
        let fields = line.dropFirst(prefix.count).split(separator: 0x20, omittingEmptySubsequences: false)
        guard fields.count == 2 else { throw SignedNote.malformed("a signature line is not `— name signature`") }
        guard let payload = StrictBase64.decode(String(decoding: fields[1], as: UTF8.self)), payload.count > 4 else {
            throw SignedNote.malformed("a signature is not base64 of a key ID and a signature")
        }
        let keyID = payload.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        try self.init(keyName: String(decoding: fields[0], as: UTF8.self), keyID: keyID, signature: Array(payload.dropFirst(4)))
    }

    /// The line as written in a note, newline included.
    public var line: String {
        var payload = ByteWriter(capacity: 4 + signature.count)
        payload.write(keyID)
        payload.write(raw: signature)
        return "\u{2014} \(keyName) \(StrictBase64.encode(payload.bytes))\n"
    }
}

/// Key names of C2SP signed notes.
public enum NoteKeyName {
    /// Bytes in a key name at most (Larder's limit; the specification sets none).
    public static let bytesMax = 256

    /// Checks a key name: non-empty, at most ``bytesMax`` bytes, no Unicode space, no `+`, no
    /// control character (it must fit on a note line).
    /// - throws: VALIDATION_FAILED naming the problem.
    public static func validate(_ name: String) throws(LarderError) {
        guard !name.isEmpty, name.utf8.count <= bytesMax else {
            throw LarderError(.validationFailed, "A key name is 1 to \(bytesMax) bytes, not \(name.utf8.count).")
        }
        for scalar in name.unicodeScalars where scalar == "+" || scalar.properties.isWhitespace || scalar.value < 0x20
            || (0x7F...0x9F).contains(scalar.value) {
            throw LarderError(.validationFailed,
                              "The key name \(JSONWriter.quoted(name)) holds U+\(String(scalar.value, radix: 16, uppercase: true)); a key name has no space, plus sign or control character.")
        }
    }
}
