public import Larder

extension LarderError.Code {
    /// The process exit status the `larder` tool exits with for this code (0 is success; 1 is
    /// `verify` finding damage; 64 a usage error).
    ///
    /// | code | status |
    /// |---|---|
    /// | VALIDATION_FAILED | 2 |
    /// | AUTH_REQUIRED, PERMISSION_DENIED | 3 |
    /// | NOT_FOUND | 4 |
    /// | CONFLICT | 5 |
    /// | COMPUTE_ERROR | 6 |
    /// | AUDIT_FAILED | 7 |
    /// | STORAGE_UNAVAILABLE | 8 |
    /// | anything else (PERSISTENCE_ERROR) | 9 |
    public var exitStatus: Int32 {
        switch self {
        case .validationFailed: 2
        case .authRequired, .permissionDenied: 3
        case .notFound: 4
        case .conflict: 5
        case .computeError: 6
        case .auditFailed: 7
        case .storageUnavailable: 8
        default: 9
        }
    }
}

extension AuditEvent {
    /// `larder backup` took a verified, compacting copy of the store (destination, head seq and
    /// hash, record count).
    public static let backupTaken: AuditEvent = "BACKUP_TAKEN"
}
