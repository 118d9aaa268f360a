public import Larder

extension LarderError.Code {
    /// The method is not allowed: the admin server is read-only (GET and HEAD only). A code of
    /// the admin server's own; a validation failure, never retryable.
    public static let methodNotAllowed = LarderError.Code(rawValue: "METHOD_NOT_ALLOWED")

    /// The HTTP status the admin server answers this code with.
    ///
    /// ```swift
    /// LarderError.Code.conflict.httpStatus            // 409
    /// LarderError.Code.storageUnavailable.httpStatus  // 503
    /// ```
    public var httpStatus: Int {
        switch self {
        case .validationFailed: 400
        case .authRequired: 401
        case .permissionDenied: 403
        case .notFound: 404
        case .methodNotAllowed: 405
        case .conflict: 409
        case .computeError: 422
        case .rateLimited: 429
        case .storageUnavailable: 503
        default: 500
        }
    }
}

extension LarderError {
    /// The HTTP status the admin server serves this error with (``LarderError/Code/httpStatus``).
    public var httpStatus: Int { code.httpStatus }
}

extension AuditEvent {
    /// One read of the admin server that returned data: who (the token), what (route and
    /// filters) and how much (the result count). Written before the data is sent.
    public static let forensicAccess: AuditEvent = "FORENSIC_ACCESS"
}
