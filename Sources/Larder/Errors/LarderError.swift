/// The one error type of Larder's API: the store, the admin server and the `larder` tool all
/// report failures with it, and render it the same way (``jsonBody``).
///
/// Match on the code:
/// ```swift
/// do {
///     try store.write(context) { txn in … }
/// } catch let error as LarderError where error.code == .conflict {
///     // refresh and retry
/// }
/// // or: catch LarderError.Code.conflict { … }
/// ```
///
/// The contract — the codes, their failure classes and retryability, and the JSON body
/// ``jsonBody`` — is Larder's; each tool maps it for its own audience (the admin server to HTTP
/// statuses, the `larder` tool to exit statuses). A failure of the storage core underneath is
/// mapped into this contract where it crosses into Larder, keeping its raw code in
/// ``storageCode``. docs/ARCHITECTURE.md section 6 has the contract's table.
public struct LarderError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as a stable, machine-readable code.
    public var code: Code
    /// A human-readable sentence; it names the offending value where there is one.
    public var message: String
    /// The canonical failure class (validation, persistence, audit, …).
    public var failureClass: FailureClass
    /// Where in the operation the failure happened, e.g. `validation`, `commit`, `audit_write`.
    public var failurePoint: FailurePoint
    /// Whether a transaction was open and was rolled back. Every Larder failure leaves nothing
    /// written; this says whether there was something to roll back.
    public var transactionRolledBack: Bool
    /// Whether the same request may succeed later without changes (after a refresh for CONFLICT).
    public var retryable: Bool
    /// For retryable capacity errors: when to try again, in seconds.
    public var retryAfterSeconds: Int?
    /// The request this failure belongs to, when one is known.
    public var requestID: String?
    /// The raw return code of the LMDB call (an `MDB_*` code or an `errno` value such as `EIO`
    /// or `ENOSPC`) that caused this failure, when one did. For programs; the message is for
    /// people. When a call failed only because an earlier call in the same transaction had
    /// failed (LMDB's `MDB_BAD_TXN`), this is the earlier call's code.
    public var storageCode: Int32?

    public init(
        _ code: Code,
        _ message: String,
        failureClass: FailureClass? = nil,
        failurePoint: FailurePoint = .validation,
        transactionRolledBack: Bool = false,
        retryable: Bool? = nil,
        retryAfterSeconds: Int? = nil,
        requestID: String? = nil,
        storageCode: Int32? = nil
    ) {
        self.code = code
        self.message = message
        self.failureClass = failureClass ?? code.defaultFailureClass
        self.failurePoint = failurePoint
        self.transactionRolledBack = transactionRolledBack
        self.retryable = retryable ?? code.isRetryable
        self.retryAfterSeconds = retryAfterSeconds ?? code.defaultRetryAfterSeconds
        self.requestID = requestID
        self.storageCode = storageCode
    }

    public var description: String {
        var text = "\(code.rawValue): \(message)"
        if let requestID { text += " (request \(requestID))" }
        return text
    }

    /// A copy that names the request, unless one is named already.
    public func withRequestID(_ requestID: String?) -> LarderError {
        var copy = self
        if copy.requestID == nil { copy.requestID = requestID }
        return copy
    }

    /// A copy that records whether a transaction was rolled back.
    public func rolledBack(_ value: Bool = true) -> LarderError {
        var copy = self
        copy.transactionRolledBack = value
        return copy
    }
}

extension LarderError {
    /// The error codes of the contract (the README's Errors table lists them). A struct rather than an enum so that adding a code later is not a source break
    /// for clients that switch over them, and so that a tool can add a code of its own (the admin
    /// server's `METHOD_NOT_ALLOWED`).
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// Bad input; nothing written.
        public static let validationFailed = Code(rawValue: "VALIDATION_FAILED")
        /// Missing, malformed or expired token.
        public static let authRequired = Code(rawValue: "AUTH_REQUIRED")
        /// The role or token scope does not allow it.
        public static let permissionDenied = Code(rawValue: "PERMISSION_DENIED")
        /// No such record or route.
        public static let notFound = Code(rawValue: "NOT_FOUND")
        /// Stale version, illegal transition, or a decisionID reused with another request.
        public static let conflict = Code(rawValue: "CONFLICT")
        /// Amount overflow or a balance rule violated.
        public static let computeError = Code(rawValue: "COMPUTE_ERROR")
        /// A caller's request budget is spent (the admin server's per-token budget).
        public static let rateLimited = Code(rawValue: "RATE_LIMITED")
        /// LMDB failed; the transaction was rolled back.
        public static let persistenceError = Code(rawValue: "PERSISTENCE_ERROR")
        /// The audit record could not be written; the transaction was rolled back.
        public static let auditFailed = Code(rawValue: "AUDIT_FAILED")
        /// Disk or map full, or the write breaker is open.
        public static let storageUnavailable = Code(rawValue: "STORAGE_UNAVAILABLE")

        /// Every code of Larder's contract, in the contract's order. Tools may add codes of their
        /// own (the admin server adds `METHOD_NOT_ALLOWED`); those are not listed here.
        public static let allCases: [Code] = [
            .validationFailed, .authRequired, .permissionDenied, .notFound,
            .conflict, .computeError, .rateLimited, .persistenceError, .auditFailed, .storageUnavailable,
        ]

        public var description: String { rawValue }

        /// Lets `catch LarderError.Code.conflict { … }` match any error carrying this code.
        public static func ~= (code: Code, error: any Error) -> Bool {
            (error as? LarderError)?.code == code
        }

        /// Whether a client may retry the same request (CONFLICT only after a refresh).
        public var isRetryable: Bool {
            switch self {
            case .conflict, .rateLimited, .storageUnavailable: true
            default: false
            }
        }

        /// The `Retry-After` hint for capacity errors.
        public var defaultRetryAfterSeconds: Int? {
            switch self {
            case .storageUnavailable: 30
            case .rateLimited: 60
            default: nil
            }
        }

        /// The failure class a code belongs to unless the thrower says otherwise. A code a tool
        /// adds is a persistence failure here: its thrower names the class it belongs to.
        public var defaultFailureClass: FailureClass {
            switch self {
            case .validationFailed, .authRequired, .permissionDenied, .rateLimited:
                .validation
            case .notFound: .dataInconsistency
            case .conflict, .persistenceError, .storageUnavailable: .persistence
            case .computeError: .compute
            case .auditFailed: .audit
            default: .persistence
            }
        }
    }

    /// The canonical failure classes of the failure policy.
    public enum FailureClass: String, Hashable, Sendable, CaseIterable {
        case validation = "Validation Failure"
        case dataInconsistency = "Data Inconsistency"
        case compute = "Compute Failure"
        case persistence = "Persistence Failure"
        case externalDependency = "External Dependency Failure"
        case audit = "Audit Failure"
    }

    /// Where an operation failed: before compute (validation), during compute, at persist, at the
    /// audit write, or at commit. Open-ended so domain stores can be more precise.
    public struct FailurePoint: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }

        public static let validation: FailurePoint = "validation"
        public static let authorization: FailurePoint = "authorization"
        public static let compute: FailurePoint = "compute"
        public static let persist: FailurePoint = "persist"
        public static let auditWrite: FailurePoint = "audit_write"
        public static let commit: FailurePoint = "commit"
        public static let read: FailurePoint = "read"
        public static let open: FailurePoint = "open"
    }
}

extension LarderError {
    /// The JSON error body of the contract, byte for byte the same wherever it is rendered:
    /// `{"success":false,"error_code":…,"message":…,"request_id":…,"details":{…}}`.
    /// Keys come in a fixed order; `request_id` is `null` when unknown and `retry_after_seconds`
    /// appears only when set.
    public var jsonBody: String {
        var json = JSONWriter()
        json.object { body in
            body.field("success", false)
            body.field("error_code", code.rawValue)
            body.field("message", message)
            body.field("request_id", requestID)
            body.object("details") { details in
                details.field("failure_class", failureClass.rawValue)
                details.field("failure_point", failurePoint.rawValue)
                details.field("transaction_rolled_back", transactionRolledBack)
                details.field("can_retry", retryable)
                if let retryAfterSeconds { details.field("retry_after_seconds", retryAfterSeconds) }
            }
        }
        return json.text
    }
}
