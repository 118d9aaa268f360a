import Foundation
import Larder
import LarderTesting
import Testing

/// C2SP signed notes, verifier and signing keys, and checkpoints.
@Suite("Signed notes and checkpoints")
struct SignedNoteTests {
    static let name = "kitchen.example/larder"

    static func key(_ byte: UInt8 = 7, name: String = name) throws -> NoteSigningKey {
        try NoteSigningKey(name: name, seed: [UInt8](repeating: byte, count: 32))
    }

    @Test func verifierKeysHaveTheSignedNoteForm() throws {
        let key = try Self.key()
        let vkey = key.verifierKey
        let text = vkey.description
        let parts = text.split(separator: "+", maxSplits: 2)
        #expect(parts[0] == Self.name[...])
        #expect(parts[1].count == 8)
        // key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]
        let expected = AuditChain.sha256(Array(Self.name.utf8) + [0x0A, 0x01] + vkey.publicKey)
        #expect(parts[1] == Substring(Array(expected.prefix(4)).hexString))
        #expect(try NoteVerifierKey(parsing: text) == vkey)
        #expect(Data(base64Encoded: String(parts[2])).map { [UInt8]($0) } == [0x01] + vkey.publicKey)

        // Every truncation and every single-character change of the text is refused (the
        // name's own characters excepted: another name is another key with another ID).
        let bytes = Array(text.utf8)
        for length in 0..<bytes.count {
            #expect(throws: LarderError.self) { try NoteVerifierKey(parsing: String(decoding: bytes[..<length], as: UTF8.self)) }
        }
        for index in bytes.indices {
            var changed = bytes
            changed[index] = changed[index] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(throws: LarderError.self, "changed byte \(index)") {
                try NoteVerifierKey(parsing: String(decoding: changed, as: UTF8.self))
            }
        }
        #expect(throws: LarderError.self) { try NoteVerifierKey(parsing: text.uppercased()) }
    }

    @Test func keyNamesFollowTheSpecification() throws {
        for bad in ["", "a b", "a+b", "tab\there", "a\u{00A0}b", "a\u{2003}b", "line\nbreak", String(repeating: "n", count: 257)] {
            expectError(.validationFailed, "\(bad)") { try NoteKeyName.validate(bad) }
        }
        for good in ["a", "kitchen.example/larder", "ünïcode/名前", String(repeating: "n", count: 256)] {
            try NoteKeyName.validate(good)
        }
    }

    @Test func signingKeysRoundTripTheirTextAndNeverPrintTheSecret() throws {
        let key = try NoteSigningKey.generate(name: Self.name)
        let text = key.privateKeyText
        #expect(text.hasPrefix("PRIVATE+KEY+\(Self.name)+"))
        let again = try NoteSigningKey(parsing: text + "\n")
        #expect(again.verifierKey == key.verifierKey)
        #expect(!key.description.contains(text.split(separator: "+").last!))
        #expect(!"\(key)".contains("PRIVATE"))
        #expect(throws: LarderError.self) { try NoteSigningKey(parsing: text.replacingOccurrences(of: "PRIVATE+KEY", with: "PUBLIC+KEY")) }
        var wrongID = Array(text.utf8)
        let idStart = "PRIVATE+KEY+\(Self.name)+".utf8.count
        wrongID[idStart] = wrongID[idStart] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        #expect(throws: LarderError.self) { try NoteSigningKey(parsing: String(decoding: wrongID, as: UTF8.self)) }
    }

    /// The key file is created 0600, never over an existing file, and refused when others may read it.
    @Test func keyFilesArePrivate() throws {
        let directory = try TemporaryDirectory(prefix: "larder-keys")
        let path = directory.path("checkpoint.key")
        let key = try Self.key()
        try key.write(to: path)
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        #expect(try NoteSigningKey.load(from: path).verifierKey == key.verifierKey)
        expectError(.validationFailed) { try Self.key(8).write(to: path) }
        #expect(try NoteSigningKey.load(from: path).verifierKey == key.verifierKey, "the refused write changed the file")
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: path)
        expectError(.validationFailed) { try NoteSigningKey.load(from: path) }
        try FileManager.default.setAttributes([.posixPermissions: 0o400], ofItemAtPath: path)
        #expect(try NoteSigningKey.load(from: path).verifierKey == key.verifierKey)
        expectError(.notFound) { try NoteSigningKey.load(from: directory.path("missing.key")) }
        try FileManager.default.createDirectory(atPath: directory.path("dir.key"), withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        expectError(.validationFailed) { try NoteSigningKey.load(from: directory.path("dir.key")) }
    }

    @Test func checkpointsSignAndOpen() throws {
        let key = try Self.key()
        let root = MerkleHash.leaf([1, 2, 3])
        let checkpoint = try Checkpoint(origin: Self.name, treeSize: 20_852_163, rootHash: root)
        #expect(checkpoint.body == "\(Self.name)\n20852163\n\(root.base64)\n")
        let note = try checkpoint.signed(by: key)
        #expect(note.hasPrefix(checkpoint.body + "\n\u{2014} \(Self.name) "))
        #expect(note.hasSuffix("\n"))
        let (opened, parsed) = try Checkpoint.open(note, verifierKey: key.verifierKey)
        #expect(opened == checkpoint)
        #expect(parsed.signatures.count == 1 && parsed.signatures[0].signature.count == 64)
        #expect(parsed.serialized == note)

        // Another key, or a key of another name, cannot sign for this origin.
        #expect(throws: LarderError.self) { try checkpoint.signed(by: try Self.key(name: "other.example/log")) }
        #expect(throws: Checkpoint.Rejection.notSignedByKey) { try Checkpoint.open(note, verifierKey: try Self.key(8).verifierKey) }
        // One changed character of the body: the signature no longer verifies.
        let tampered = note.replacingOccurrences(of: "\n20852163\n", with: "\n20852164\n")
        #expect(throws: Checkpoint.Rejection.badSignature) { try Checkpoint.open(tampered, verifierKey: key.verifierKey) }
        // A checkpoint of another origin, signed by a key of that name, is not this log's.
        let otherKey = try Self.key(7, name: "other.example/log")
        let otherNote = try Checkpoint(origin: "other.example/log", treeSize: 1, rootHash: root).signed(by: otherKey)
        #expect(throws: Checkpoint.Rejection.notSignedByKey) { try Checkpoint.open(otherNote, verifierKey: key.verifierKey) }
        let mislabeled = try SignedNote(text: Checkpoint(origin: "other.example/log", treeSize: 1, rootHash: root).body,
                                        signatures: [key.sign(Checkpoint(origin: "other.example/log", treeSize: 1, rootHash: root).body)])
        #expect(throws: Checkpoint.Rejection.wrongOrigin("other.example/log")) {
            try Checkpoint.open(mislabeled.serialized, verifierKey: key.verifierKey)
        }
    }

    @Test func checkpointBodiesParseStrictly() throws {
        let root = MerkleHash.leaf([1]).base64
        let good = "origin\n5\n\(root)\n"
        #expect(try Checkpoint(body: good).treeSize == 5)
        #expect(try Checkpoint(body: "origin\n0\n\(root)\nextension one\nextension two\n").extensions == ["extension one", "extension two"])
        #expect(try Checkpoint(body: "origin\n18446744073709551615\n\(root)\n").treeSize == .max)
        for bad in ["origin\n5\n\(root)", "origin\n5\n", "\n5\n\(root)\n", "origin\n05\n\(root)\n", "origin\n+5\n\(root)\n",
                    "origin\n\n\(root)\n", "origin\n5 \n\(root)\n", "origin\n18446744073709551616\n\(root)\n",
                    "origin\n5\n\(root.dropLast())\n", "origin\n5\n\(MerkleHash.leaf([1]).hexString)\n",
                    "origin\n5\n\(root)\n\n", "origin\n5\n\(root)\next\n\n", "origin\n5\n\(root)\n\n\n",
                    "origin\n5\n\(Data(repeating: 1, count: 31).base64EncodedString())\n", "origin\r\n5\n\(root)\n"] {
            expectError(.validationFailed, "\(bad.debugDescription)") { try Checkpoint(body: bad) }
        }
    }

    /// Syntax: what C2SP signed-note forbids is refused before any signature is looked at.
    @Test func notesParseStrictly() throws {
        let key = try Self.key()
        let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
        let signature = try key.sign(text)
        let note = try SignedNote(text: text, signatures: [signature]).serialized
        #expect(try SignedNote(parsing: note).verify(with: [key.verifierKey]) == .verified([signature]))
        #expect(try SignedNote(parsing: Array(note.utf8)).text == text)
        let line = signature.line
        let bad = [
            text, text + "\n", String(note.dropLast()), "\u{01}" + note, text + "\n" + line + "Unexpected line.\n",
            text + "\n" + "\u{2014} Bad Name " + line.split(separator: " ").last!,
            text + "\n" + "-- " + line.dropFirst(2), text + "\n" + line.replacingOccurrences(of: " \(Self.name) ", with: "  \(Self.name) "),
            text + "\n" + line.replacingOccurrences(of: "=\n", with: "\n"),
            text + "\n" + line.replacingOccurrences(of: "\n", with: " \n"),
            text + "\n" + "\u{2014} \(Self.name) AAAA\n",   // 3 bytes: no room for a key ID and a signature
            text + "\n" + String(repeating: line, count: SignedNote.signaturesMax + 1),
            text + "\r\n" + line,
            String(repeating: "a", count: SignedNote.noteBytesMax) + "\n\n" + line,
        ]
        for message in bad {
            expectError(.validationFailed, "\(message.prefix(200).debugDescription)") { try SignedNote(parsing: message) }
        }
        expectError(.validationFailed) { try SignedNote(parsing: [0xFF] + Array(note.utf8)) }
        // Empty lines inside the text are allowed: the last blank line separates.
        let spaced = "first\n\nthird\n"
        let spacedNote = try SignedNote(text: spaced, signatures: [key.sign(spaced)]).serialized
        #expect(try SignedNote(parsing: spacedNote).text == spaced)
        #expect(try SignedNote(parsing: spacedNote).verify(with: [key.verifierKey]) != .noKnownSignature)
    }

    /// Semantics: unknown keys are ignored (even with the same name, or the same ID); a known
    /// key's failing signature rejects the note; at least one must verify.
    @Test func signaturesAreCheckedAsTheSpecificationSays() throws {
        let key = try Self.key()
        let sameName = try Self.key(9)                               // same name, other key ID
        let text = "a note\n"
        let good = try key.sign(text)
        let unknown = try sameName.sign(text)
        let sameIDOtherName = try NoteSignature(keyName: "other.example", keyID: good.keyID, signature: good.signature)
        var badBytes = good.signature
        badBytes[10] ^= 1
        let bad = try NoteSignature(keyName: good.keyName, keyID: good.keyID, signature: badBytes)
        func verify(_ signatures: [NoteSignature], _ keys: [NoteVerifierKey] = [key.verifierKey]) throws -> SignedNote.Verification {
            try SignedNote(parsing: SignedNote(text: text, signatures: signatures).serialized).verify(with: keys)
        }
        #expect(try verify([unknown, sameIDOtherName, good]) == .verified([good]))
        #expect(try verify([good, good]) == .verified([good]))
        #expect(try verify([unknown, sameIDOtherName]) == .noKnownSignature)
        #expect(try verify([good, bad]) == .invalidSignature(bad))
        #expect(try verify([bad, good]) == .invalidSignature(bad))
        #expect(try verify([good], []) == .noKnownSignature)
        #expect(try verify([good, unknown], [key.verifierKey, sameName.verifierKey]) == .verified([good, unknown]))
        // A signature of the right length but not Ed25519-shaped, and one too short, fail too.
        let short = try NoteSignature(keyName: good.keyName, keyID: good.keyID, signature: Array(good.signature.prefix(63)))
        #expect(try verify([short]) == .invalidSignature(short))
    }
}
