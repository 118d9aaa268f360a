import Foundation
import Larder
import LarderCLI
import LarderTesting
import Testing

/// `larder key create`: a private key file (0600, never overwritten) and the verifier key on
/// standard output, alone, so that `> vkey.txt` captures it.
@Suite("larder key")
struct KeyCommandTests {
    @Test func createWritesAPrivateKeyAndPrintsItsVerifierKey() async throws {
        let directory = try TemporaryDirectory(prefix: "larder-key")
        let path = directory.path("checkpoint.key")
        let created = await larder("key", "create", "--name", "kitchen.example/larder", "--out", path)
        #expect(created.status == 0, "\(created.err)")
        let printed = created.out.trimmingCharacters(in: .newlines)
        #expect(!printed.contains("\n"))
        let verifierKey = try NoteVerifierKey(parsing: printed)
        #expect(verifierKey.name == "kitchen.example/larder")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        let key = try NoteSigningKey.load(from: path)
        #expect(key.verifierKey == verifierKey)
        #expect(!created.out.contains("PRIVATE") && !created.err.contains("PRIVATE"))

        // Never over an existing key; a name with a space or a plus is refused and writes nothing.
        let again = await larder("key", "create", "--name", "kitchen.example/larder", "--out", path)
        #expect(again.status == 2)
        #expect(try NoteSigningKey.load(from: path).verifierKey == verifierKey)
        let badName = directory.path("bad.key")
        #expect(await larder("key", "create", "--name", "kitchen example", "--out", badName).status == 2)
        #expect(await larder("key", "create", "--name", "a+b", "--out", badName).status == 2)
        #expect(!FileManager.default.fileExists(atPath: badName))
        #expect(await larder("key", "create", "--name", "x").status == 64)
    }
}
