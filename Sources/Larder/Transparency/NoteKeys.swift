import Crypto
import Foundation

/// A C2SP signed-note Ed25519 verifier key: what an auditor is given to check checkpoints,
/// written `NAME+<8 hex key ID>+<base64(0x01 ‖ 32-byte public key)>`.
///
/// ```swift
/// let key = try NoteVerifierKey(parsing: "kitchen.example/larder+1a2b3c4d+AU…")
/// let verdict = try SignedNote(parsing: note).verify(with: [key])
/// ```
public struct NoteVerifierKey: Hashable, Sendable, CustomStringConvertible {
    /// The key name (for Larder's checkpoints, also the checkpoint origin).
    public let name: String
    /// First four bytes, big-endian, of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key).
    public let keyID: UInt32
    /// The 32-byte Ed25519 public key (RFC 8032 encoding).
    public let publicKey: [UInt8]

    /// The signature type byte of Ed25519 in C2SP signed notes.
    public static let ed25519Type: UInt8 = 0x01

    /// The verifier key of `publicKey` under `name`.
    /// - throws: VALIDATION_FAILED for an invalid name or a key that is not 32 bytes of a valid Ed25519 point.
    public init(name: String, publicKey: [UInt8]) throws(LarderError) {
        try NoteKeyName.validate(name)
        guard publicKey.count == 32, (try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey)) != nil else {
            throw LarderError(.validationFailed, "An Ed25519 public key is 32 bytes.")
        }
        self.name = name
        self.publicKey = publicKey
        self.keyID = Self.keyID(name: name, publicKey: publicKey)
    }

    /// Parses `NAME+<8 hex>+<base64(0x01 ‖ key)>`, strictly: lowercase hex, canonical base64,
    /// and the key ID must be the one the name and key hash to.
    /// - throws: VALIDATION_FAILED naming what is wrong.
    public init(parsing text: String) throws(LarderError) {
        // The name holds no '+' and the ID is hex, so the first two '+' delimit the fields; the
        // base64 key may hold '+' itself.
        let parts = text.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw Self.invalid("it is not NAME+ID+KEY") }
        guard parts[1].utf8.count == 8, parts[1].utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }),
              let keyID = UInt32(parts[1], radix: 16) else {
            throw Self.invalid("the key ID is not 8 lowercase hexadecimal digits")
        }
        guard let encoded = StrictBase64.decode(parts[2]), encoded.count == 33, encoded[0] == Self.ed25519Type else {
            throw Self.invalid("the key is not base64 of 0x01 and a 32-byte Ed25519 key")
        }
        try self.init(name: String(parts[0]), publicKey: Array(encoded.dropFirst()))
        guard self.keyID == keyID else { throw Self.invalid("the key ID does not match the name and key") }
    }

    /// `NAME+<8 hex key ID>+<base64(0x01 ‖ public key)>`.
    public var description: String {
        "\(name)+\(Self.hex(keyID))+\(StrictBase64.encode([Self.ed25519Type] + publicKey))"
    }

    /// The key ID as 8 lowercase hexadecimal digits, as the verifier key writes it.
    public var keyIDHex: String { Self.hex(keyID) }

    /// Whether `signature` is this key's Ed25519 signature of `text` (its UTF-8 bytes).
    public func isValidSignature(_ signature: [UInt8], for text: String) -> Bool {
        guard signature.count == 64, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: Array(text.utf8))
    }

    /// SHA-256(name ‖ 0x0A ‖ 0x01 ‖ publicKey), first four bytes, big-endian.
    public static func keyID(name: String, publicKey: [UInt8]) -> UInt32 {
        var hasher = SHA256()
        hasher.update(data: Array(name.utf8))
        hasher.update(data: [0x0A, ed25519Type])
        hasher.update(data: publicKey)
        return hasher.finalize().prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    static func hex(_ keyID: UInt32) -> String {
        let digits = String(keyID, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    private static func invalid(_ detail: String) -> LarderError {
        LarderError(.validationFailed, "Not a verifier key: \(detail).")
    }
}

/// An Ed25519 signing key for C2SP signed notes, with its name: it signs Larder's checkpoints.
///
/// Its text form, kept in a file readable by its owner only, is
/// `PRIVATE+KEY+NAME+<8 hex key ID>+<base64(0x01 ‖ 32-byte seed)>`. Never keep it inside a store:
/// whoever can rewrite the store must not also be able to sign for it.
///
/// ```swift
/// let key = try NoteSigningKey.generate(name: "kitchen.example/larder")
/// try key.write(to: "/etc/larder/checkpoint.key")     // mode 0600; refuses to overwrite
/// print(key.verifierKey)                              // give this to auditors
/// let note = try checkpoint.signed(by: key)
/// ```
public struct NoteSigningKey: Sendable, CustomStringConvertible {
    public let name: String
    private let seed: [UInt8]
    /// The verifier key auditors check signatures with.
    public let verifierKey: NoteVerifierKey

    /// Bytes of a key file at most.
    public static let fileBytesMax = 4096

    /// A fresh key from the system's cryptographic generator.
    /// - throws: VALIDATION_FAILED for an invalid name.
    public static func generate(name: String) throws(LarderError) -> NoteSigningKey {
        try NoteSigningKey(name: name, seed: Array(Curve25519.Signing.PrivateKey().rawRepresentation))
    }

    /// The key of a 32-byte Ed25519 seed (RFC 8032 private key).
    /// - throws: VALIDATION_FAILED for an invalid name or seed length.
    public init(name: String, seed: [UInt8]) throws(LarderError) {
        guard seed.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
            throw LarderError(.validationFailed, "An Ed25519 seed is 32 bytes.")
        }
        self.name = name
        self.seed = seed
        self.verifierKey = try NoteVerifierKey(name: name, publicKey: Array(key.publicKey.rawRepresentation))
    }

    /// Parses `PRIVATE+KEY+NAME+<8 hex>+<base64(0x01 ‖ seed)>` (one trailing newline allowed).
    /// - throws: VALIDATION_FAILED when malformed or when the key ID does not match.
    public init(parsing text: String) throws(LarderError) {
        var text = Substring(text)
        if text.hasSuffix("\n") { text.removeLast() }
        let parts = text.split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY" else {
            throw LarderError(.validationFailed, "Not a signing key: it is not PRIVATE+KEY+NAME+ID+KEY.")
        }
        guard let encoded = StrictBase64.decode(parts[4]), encoded.count == 33, encoded[0] == NoteVerifierKey.ed25519Type else {
            throw LarderError(.validationFailed, "Not a signing key: the key is not base64 of 0x01 and a 32-byte Ed25519 seed.")
        }
        try self.init(name: String(parts[2]), seed: Array(encoded.dropFirst()))
        guard NoteVerifierKey.hex(verifierKey.keyID) == parts[3] else {
            throw LarderError(.validationFailed, "Not a signing key: the key ID does not match the name and key.")
        }
    }

    /// The secret text form, `PRIVATE+KEY+NAME+<8 hex>+<base64(0x01 ‖ seed)>`. Handle with care.
    public var privateKeyText: String {
        "PRIVATE+KEY+\(name)+\(NoteVerifierKey.hex(verifierKey.keyID))+\(StrictBase64.encode([NoteVerifierKey.ed25519Type] + seed))"
    }

    /// Names the key and its verifier key, never the secret.
    public var description: String { "NoteSigningKey(\(verifierKey))" }

    /// The Ed25519 signature of `text`'s UTF-8 bytes as a note signature line.
    /// - throws: VALIDATION_FAILED when `text` is not a valid note text; PERSISTENCE_ERROR if signing fails.
    public func sign(_ text: String) throws(LarderError) -> NoteSignature {
        try SignedNote.validate(text: text)
        let signature: [UInt8]
        do {
            signature = Array(try Curve25519.Signing.PrivateKey(rawRepresentation: seed).signature(for: Array(text.utf8)))
        } catch {
            throw LarderError(.persistenceError, "Ed25519 signing failed: \(error).", failureClass: .externalDependency)
        }
        return try NoteSignature(keyName: name, keyID: verifierKey.keyID, signature: signature)
    }

    /// Writes the key file: created with mode 0600, never over an existing file, flushed to disk.
    /// - throws: VALIDATION_FAILED when `path` exists; PERSISTENCE_ERROR when it cannot be written.
    public func write(to path: String) throws(LarderError) {
        try PrivateFile.createExclusively(at: path, contents: Array((privateKeyText + "\n").utf8))
    }

    /// Reads a key file, refusing one that anyone but its owner may read or write (mode must be
    /// 0600 or 0400), that is not a regular file, or that is larger than ``fileBytesMax``.
    /// - throws: NOT_FOUND when missing; VALIDATION_FAILED for loose permissions or a malformed
    ///   key; PERSISTENCE_ERROR when unreadable.
    public static func load(from path: String) throws(LarderError) -> NoteSigningKey {
        let bytes = try PrivateFile.contents(at: path, bytesMax: fileBytesMax, ownerOnly: true)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw LarderError(.validationFailed, "The signing key file \(path) is not text.")
        }
        return try NoteSigningKey(parsing: text)
    }
}
