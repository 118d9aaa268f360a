public import Larder

/// One configured token: only the SHA-256 of its secret is kept, never the secret.
public struct AdminToken: Sendable, Hashable {
    /// Names the token in audit records (`token:<id>`) and in the budget; not a secret.
    public var id: String
    /// SHA-256 of the 32 secret bytes (the base64url text a client presents, decoded).
    public var secretSHA256: [UInt8]
    public var scopes: Set<TokenScope>
    /// The token is refused from this instant on.
    public var expiresAtMicros: UnixMicros

    public init(id: String, secretSHA256: [UInt8], scopes: Set<TokenScope>, expiresAtMicros: UnixMicros) {
        self.id = id
        self.secretSHA256 = secretSHA256
        self.scopes = scopes
        self.expiresAtMicros = expiresAtMicros
    }

    /// Token ids are identifiers of at most this many bytes, so that `token:<id>` is a valid actor id.
    public static let idBytesMax = 64

    /// The audit actor of this token's reads.
    public var actor: ActorIdentity { ActorIdentity(id: "token:\(id)", role: .system) }

    /// Throws VALIDATION_FAILED for an id, hash or scope set that the server must not accept.
    public func validate() throws(LarderError) {
        try WriteContext.validateIdentifier(id, field: "token id")
        guard id.utf8.count <= Self.idBytesMax else {
            throw LarderError(.validationFailed, "token id \(JSONWriter.quoted(id)) is longer than \(Self.idBytesMax) bytes.")
        }
        guard secretSHA256.count == 32 else {
            throw LarderError(.validationFailed, "token \(id): secret_sha256 must be 32 bytes (64 hex digits).")
        }
        guard !scopes.isEmpty else {
            throw LarderError(.validationFailed, "token \(id) has no scopes.")
        }
        for scope in scopes where !TokenScope.all.contains(scope) {
            throw LarderError(.validationFailed,
                              "token \(id): unknown scope \(JSONWriter.quoted(scope.rawValue)); known: \(TokenScope.all.map(\.rawValue).joined(separator: ", ")).")
        }
    }
}

/// A token just created: the secret is shown once and is not stored anywhere.
public struct CreatedToken: Sendable {
    public let token: AdminToken
    /// The bearer secret: 32 random bytes as unpadded base64url (43 characters).
    public let secret: String
}
