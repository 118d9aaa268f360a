public import Larder
import Crypto
import Foundation

/// The admin server's token file: loads, validates, saves, and creates tokens. `larder token
/// create` and `larder serve` both go through it.
///
/// ```json
/// {"tokens":[{"id":"auditor-1","secret_sha256":"9f86d0…","scopes":["audit:read"],"expires_at":"2027-01-01T00:00:00.000000Z"}]}
/// ```
///
/// ```swift
/// var file = try TokenFile.load(from: "/etc/larder/tokens.json")
/// let created = try file.createToken(id: "auditor-2", scopes: [.auditRead],
///                                    expiresAt: RFC3339.parse("2027-01-01T00:00:00Z")!)
/// try file.save(to: "/etc/larder/tokens.json")
/// print(created.secret)   // shown once; only its SHA-256 is in the file
/// ```
public struct TokenFile: Sendable, Hashable {
    public private(set) var tokens: [AdminToken]

    /// Tokens per file at most: authentication hashes against every one of them.
    public static let tokensMax = 1_000
    /// Largest token file read, in bytes.
    public static let fileBytesMax = 1 << 20

    /// A validated set of tokens.
    /// - throws: VALIDATION_FAILED for an invalid token, a duplicate id or too many tokens.
    public init(tokens: [AdminToken] = []) throws(LarderError) {
        self.tokens = tokens
        try validate()
    }

    /// Reads and validates a token file.
    /// - throws: NOT_FOUND when the file is missing; VALIDATION_FAILED when it is malformed.
    public static func load(from path: String) throws(LarderError) -> TokenFile {
        guard FileManager.default.fileExists(atPath: path) else {
            throw LarderError(.notFound, "There is no token file at \(path).", failurePoint: .open)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LarderError(.persistenceError, "The token file \(path) cannot be read.", failurePoint: .open)
        }
        return try TokenFile(json: Array(data))
    }

    /// Parses the JSON of a token file.
    public init(json bytes: [UInt8]) throws(LarderError) {
        guard bytes.count <= Self.fileBytesMax else {
            throw LarderError(.validationFailed, "A token file of \(bytes.count) bytes exceeds \(Self.fileBytesMax).")
        }
        let file: FileBody
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            file = try decoder.decode(FileBody.self, from: Data(bytes))
        } catch {
            throw LarderError(.validationFailed, "The token file is not valid: \(error).")
        }
        var tokens: [AdminToken] = []
        for entry in file.tokens {
            guard let hash = [UInt8](hexString: entry.secretSha256) else {
                throw LarderError(.validationFailed, "token \(entry.id): secret_sha256 is not hexadecimal.")
            }
            guard let expires = RFC3339.parse(entry.expiresAt) else {
                throw LarderError(.validationFailed, "token \(entry.id): expires_at \(JSONWriter.quoted(entry.expiresAt)) is not RFC 3339.")
            }
            let scopes = entry.scopes.map(TokenScope.init(rawValue:))
            guard Set(scopes).count == scopes.count else {
                throw LarderError(.validationFailed, "token \(entry.id) lists a scope twice.")
            }
            tokens.append(AdminToken(id: entry.id, secretSHA256: hash, scopes: Set(scopes), expiresAtMicros: expires))
        }
        try self.init(tokens: tokens)
    }

    /// Throws VALIDATION_FAILED unless every token is valid and ids are unique.
    public func validate() throws(LarderError) {
        guard tokens.count <= Self.tokensMax else {
            throw LarderError(.validationFailed, "\(tokens.count) tokens; at most \(Self.tokensMax).")
        }
        var seen = Set<String>()
        for token in tokens {
            try token.validate()
            guard seen.insert(token.id).inserted else {
                throw LarderError(.validationFailed, "token id \(JSONWriter.quoted(token.id)) appears twice.")
            }
        }
    }

    /// The file's JSON, deterministic: tokens in file order, scopes sorted.
    public var jsonText: String {
        var json = JSONWriter()
        json.object { o in
            o.array("tokens") { list in
                for token in tokens {
                    list.object { t in
                        t.field("id", token.id)
                        t.field("secret_sha256", token.secretSHA256.hexString)
                        t.array("scopes") { s in for scope in token.scopes.sorted() { s.value(scope.rawValue) } }
                        t.field("expires_at", RFC3339.format(token.expiresAtMicros))
                    }
                }
            }
        }
        return json.text + "\n"
    }

    /// Writes the file atomically (a temporary file renamed over it), readable by its owner only:
    /// a reader never sees half a file, and the hashes are not world-readable.
    public func save(to path: String) throws(LarderError) {
        try validate()
        let temporary = "\(path).tmp-\(ProcessInfo.processInfo.processIdentifier)"
        let created = FileManager.default.createFile(atPath: temporary, contents: Data(jsonText.utf8),
                                                     attributes: [.posixPermissions: 0o600])
        guard created, rename(temporary, path) == 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw LarderError(.persistenceError, "The token file \(path) cannot be written.", failurePoint: .persist)
        }
    }

    /// Adds a token with a fresh 32-byte secret from `generator` and returns the secret, which
    /// is not kept: only its SHA-256 goes into the file.
    /// - throws: VALIDATION_FAILED for an invalid or duplicate id or scope set.
    public mutating func createToken<G: RandomNumberGenerator>(
        id: String, scopes: Set<TokenScope>, expiresAt: UnixMicros, using generator: inout G
    ) throws(LarderError) -> CreatedToken {
        var secret = [UInt8](repeating: 0, count: 32)
        for index in secret.indices { secret[index] = UInt8.random(in: .min ... .max, using: &generator) }
        let token = AdminToken(id: id, secretSHA256: Array(SHA256.hash(data: secret)), scopes: scopes,
                               expiresAtMicros: expiresAt)
        var candidate = tokens
        candidate.append(token)
        self = try TokenFile(tokens: candidate)
        return CreatedToken(token: token, secret: Base64URL.encode(secret))
    }

    /// ``createToken(id:scopes:expiresAt:using:)`` with the system's cryptographic generator.
    public mutating func createToken(id: String, scopes: Set<TokenScope>, expiresAt: UnixMicros) throws(LarderError) -> CreatedToken {
        var generator = SystemRandomNumberGenerator()
        return try createToken(id: id, scopes: scopes, expiresAt: expiresAt, using: &generator)
    }

    /// Removes the token `id`; returns whether there was one.
    @discardableResult
    public mutating func removeToken(id: String) -> Bool {
        let before = tokens.count
        tokens.removeAll { $0.id == id }
        return tokens.count != before
    }

    /// The file's JSON shape, for decoding only (writing goes through ``jsonText``).
    private struct FileBody: Decodable {
        struct Entry: Decodable {
            let id: String
            let secretSha256: String
            let scopes: [String]
            let expiresAt: String
        }
        let tokens: [Entry]
    }
}
