import Crypto
import Larder

/// Turns an `Authorization` header into a configured, unexpired token, or the contract's 401.
///
/// The presented secret is hashed and compared with every stored hash in constant time, and the
/// loop never stops early: how long a refusal takes says nothing about which bytes matched or
/// which token came close.
struct TokenAuthenticator: Sendable {
    let tokens: [AdminToken]

    /// Length of a presented secret: 32 bytes as unpadded base64url.
    static let secretCharacters = 43

    func authenticate(authorization: String?, nowMicros: UnixMicros) throws(LarderError) -> AdminToken {
        guard let authorization else {
            throw Self.refusal("An Authorization: Bearer token is required.")
        }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
              parts[1].utf8.count == Self.secretCharacters,
              let secret = Base64URL.decode(String(parts[1])), secret.count == 32 else {
            throw Self.refusal("The Authorization header is not a Bearer token of \(Self.secretCharacters) base64url characters.")
        }
        let presented = Array(SHA256.hash(data: secret))
        var match: AdminToken?
        for token in tokens where Self.constantTimeEqual(token.secretSHA256, presented) {
            match = token
        }
        guard let match else { throw Self.refusal("The token is not known.") }
        guard nowMicros < match.expiresAtMicros else {
            throw Self.refusal("The token \(match.id) expired at \(RFC3339.format(match.expiresAtMicros)).")
        }
        return match
    }

    /// Throws 403 PERMISSION_DENIED unless `token` carries `scope` (or `audit:read`, which sees
    /// every hash that `checkpoint:read` does, when `scope` is `checkpoint:read`).
    static func authorize(_ token: AdminToken, for scope: TokenScope) throws(LarderError) {
        let implied = scope == .checkpointRead && token.scopes.contains(.auditRead)
        guard token.scopes.contains(scope) || implied else {
            throw LarderError(.permissionDenied, "The token \(token.id) does not have the scope \(scope.rawValue).",
                              failurePoint: .authorization)
        }
    }

    /// Equal lengths are compared byte by byte with no early exit.
    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }

    private static func refusal(_ message: String) -> LarderError {
        LarderError(.authRequired, message, failurePoint: .authorization)
    }
}
