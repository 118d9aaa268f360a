import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Larder
import LarderAdmin
import LarderTesting
import NIOCore
import Testing

@Suite("Token file")
struct TokenFileTests {
    @Test func createdTokensSaveAndLoadWithOnlyTheHashStored() throws {
        let directory = try TemporaryDirectory()
        var file = try TokenFile()
        let created = try file.createToken(id: "auditor-1", scopes: [.auditRead, .opsRead],
                                           expiresAt: try #require(RFC3339.parse("2027-01-01T00:00:00Z")))
        #expect(created.secret.count == 43)
        try file.save(to: directory.path("tokens.json"))
        let text = try String(contentsOfFile: directory.path("tokens.json"), encoding: .utf8)
        #expect(!text.contains(created.secret), "the secret is never written")
        #expect(text.contains("\"scopes\":[\"audit:read\",\"ops:read\"]"))
        #expect(text.contains("\"expires_at\":\"2027-01-01T00:00:00.000000Z\""))
        let loaded = try TokenFile.load(from: directory.path("tokens.json"))
        #expect(loaded == file)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.path("tokens.json"))
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test func twoCreatedSecretsDiffer() throws {
        var file = try TokenFile()
        let a = try file.createToken(id: "a", scopes: [.auditRead], expiresAt: .max)
        let b = try file.createToken(id: "b", scopes: [.auditRead], expiresAt: .max)
        #expect(a.secret != b.secret)
        #expect(a.token.secretSHA256 != b.token.secretSHA256)
    }

    @Test(arguments: [
        #"{"tokens":[{"id":"a","secret_sha256":"zz","scopes":["audit:read"],"expires_at":"2027-01-01T00:00:00Z"}]}"#,
        #"{"tokens":[{"id":"a","secret_sha256":"\#(String(repeating: "ab", count: 32))","scopes":["audit:write"],"expires_at":"2027-01-01T00:00:00Z"}]}"#,
        #"{"tokens":[{"id":"a","secret_sha256":"\#(String(repeating: "ab", count: 32))","scopes":[],"expires_at":"2027-01-01T00:00:00Z"}]}"#,
        #"{"tokens":[{"id":"a","secret_sha256":"\#(String(repeating: "ab", count: 32))","scopes":["audit:read"],"expires_at":"soon"}]}"#,
        #"{"tokens":[{"id":"a b","secret_sha256":"\#(String(repeating: "ab", count: 32))","scopes":["audit:read"],"expires_at":"2027-01-01T00:00:00Z"}]}"#,
        #"{"tokens":[{"id":"a","secret_sha256":"\#(String(repeating: "ab", count: 32))","scopes":["audit:read"],"expires_at":"2027-01-01T00:00:00Z"},{"id":"a","secret_sha256":"\#(String(repeating: "cd", count: 32))","scopes":["ops:read"],"expires_at":"2027-01-01T00:00:00Z"}]}"#,
        #"{"tokens":{}}"#,
    ])
    func invalidFilesAreRefused(json: String) throws {
        let error = try #require(throws: LarderError.self) { try TokenFile(json: Array(json.utf8)) }
        #expect(error.code == .validationFailed)
    }

    @Test func aValidHandWrittenFileLoads() throws {
        let secret = [UInt8](repeating: 7, count: 32)
        let hash = Array(SHA256.hash(data: secret)).hexString
        let json = #"{"tokens":[{"id":"ops-1","secret_sha256":"\#(hash)","scopes":["ops:read"],"expires_at":"2027-01-01T00:00:00+01:00"}]}"#
        let file = try TokenFile(json: Array(json.utf8))
        #expect(file.tokens.first?.scopes == [.opsRead])
        #expect(file.tokens.first?.expiresAtMicros == RFC3339.parse("2026-12-31T23:00:00Z"))
    }

    @Test func aMissingFileIsNotFound() throws {
        let error = try #require(throws: LarderError.self) { try TokenFile.load(from: "/nonexistent/tokens.json") }
        #expect(error.code == .notFound)
    }
}
