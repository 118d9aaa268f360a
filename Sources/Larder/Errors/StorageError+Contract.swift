import LarderStorage

extension LarderError {
    /// The contract's error for a failure of the storage core: the kind decides the code, where
    /// it happened decides the failure point, and LMDB's (or the system's) raw code is kept in
    /// ``storageCode``.
    init(_ storage: StorageError) {
        let code: Code
        var failureClass: FailureClass?
        var retryable: Bool?
        switch storage.kind {
        case .invalidArgument: code = .validationFailed
        case .notFound: code = .notFound
        case .readOnly: code = .permissionDenied
        case .exhausted, .paused: code = .storageUnavailable
        case .closed:
            // Retrying the same instance cannot help: the application closed it.
            code = .storageUnavailable
            retryable = false
        case .restartRequired:
            code = .persistenceError
            retryable = false
        case .damaged:
            code = .persistenceError
            failureClass = .dataInconsistency
        case .failed: code = .persistenceError
        }
        let point: FailurePoint = switch storage.phase {
        case .open: .open
        case .read: storage.kind == .invalidArgument ? .validation : .read
        case .write, .copy: storage.kind == .invalidArgument ? .validation : .persist
        case .commit: .commit
        }
        self.init(code, storage.message, failureClass: failureClass, failurePoint: point,
                  transactionRolledBack: storage.transactionRolledBack, retryable: retryable,
                  retryAfterSeconds: storage.retryAfterSeconds, storageCode: storage.code)
    }

    /// `error` in the contract's terms: a storage failure mapped, anything else as it is.
    static func contract(_ error: any Error) -> any Error {
        if let storage = error as? StorageError { return LarderError(storage) }
        return error
    }
}
