internal import CLMDB
#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// The one function every LMDB return code goes through.
///
/// - `MDB_SUCCESS` returns.
/// - Codes that can only mean a bug in Larder (a bad DBI handle, a value size that validation
///   should have caught, a bad reader slot) stop the process with a clear message: carrying on
///   could write garbage.
/// - Everything else throws a ``LarderError`` carrying the code (``LarderError/storageCode``):
///   map full, readers full, disk full, I/O errors, a corrupted or incompatible file, LMDB's
///   fatal state (`MDB_PANIC`), and `MDB_BAD_TXN` / `EINVAL`. The last two look like bugs but are
///   not: LMDB answers `MDB_BAD_TXN` to any use of a transaction after one of its calls failed
///   (a `MDB_MAP_FULL` put, say), and `EINVAL` to a call on an environment in a fatal state.
///
/// `MDB_NOTFOUND`, `MDB_KEYEXIST` and `MDB_MAP_RESIZED` are results that some callers handle
/// themselves; they test for them before calling this function.
@inline(__always)
func check(_ rc: Int32, _ operation: StaticString, file: StaticString = #fileID, line: UInt = #line) throws(LarderError) {
    if rc == MDB_SUCCESS { return }
    throw lmdbFailure(rc, operation, file: file, line: line)
}

/// Classifies a non-zero LMDB (or errno) code: returns the error to throw, or stops on bugs.
func lmdbFailure(_ rc: Int32, _ operation: StaticString, file: StaticString = #fileID, line: UInt = #line) -> LarderError {
    let text = String(cString: mdb_strerror(rc))
    var error: LarderError
    switch rc {
    case MDB_BAD_DBI, MDB_BAD_VALSIZE, MDB_BAD_RSLOT:
        preconditionFailure("LMDB \(operation) failed with \(rc) (\(text)): a Larder bug", file: file, line: line)
    case MDB_BAD_TXN:
        error = LarderError(.persistenceError,
                            "LMDB refused \(operation): the transaction cannot be used after an earlier failure in it (MDB_BAD_TXN); nothing was written.",
                            failurePoint: .persist, transactionRolledBack: true)
    case EINVAL:
        error = LarderError(.persistenceError, "LMDB rejected \(operation) (EINVAL: \(text)); nothing was written.",
                            failurePoint: .persist, transactionRolledBack: true)
    case MDB_MAP_FULL:
        error = LarderError(.storageUnavailable, "The store's map is full at its configured maximum (\(operation)); nothing was written.",
                            failurePoint: .persist, transactionRolledBack: true)
    case MDB_MAP_RESIZED:
        error = LarderError(.storageUnavailable,
                            "Another process grew the store's map while \(operation) ran; try again.",
                            failurePoint: .persist, transactionRolledBack: true, retryAfterSeconds: 1)
    case ENOSPC, EDQUOT:
        error = LarderError(.storageUnavailable, "The disk is full (\(operation): \(text)); nothing was written.",
                            failurePoint: .commit, transactionRolledBack: true)
    case MDB_READERS_FULL:
        error = LarderError(.storageUnavailable,
                            "All reader slots are in use (\(operation)); raise readersMax or close readers.",
                            failurePoint: .read)
    case MDB_TXN_FULL, MDB_DBS_FULL, MDB_CURSOR_FULL, MDB_PAGE_FULL, MDB_TLS_FULL:
        error = LarderError(.persistenceError, "LMDB limit reached in \(operation): \(text); nothing was written.",
                            failurePoint: .persist, transactionRolledBack: true)
    case MDB_PANIC:
        error = LarderError(.persistenceError,
                            "LMDB reported a fatal error (MDB_PANIC) in \(operation): restart required. Close the store and open it again; nothing more is written through this instance.",
                            failurePoint: .persist, transactionRolledBack: true, retryable: false)
    case MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_INVALID, MDB_VERSION_MISMATCH, MDB_INCOMPATIBLE:
        error = LarderError(.persistenceError, "The store file is damaged or incompatible (\(operation): \(text)).",
                            failureClass: .dataInconsistency, failurePoint: .persist, transactionRolledBack: true)
    case EACCES, EPERM, EROFS:
        error = LarderError(.persistenceError, "Permission denied (\(operation): \(text)).", failurePoint: .open)
    case ENOENT:
        error = LarderError(.notFound, "No store there (\(operation): \(text)).", failurePoint: .open)
    case EIO:
        // LMDB reports a short write as EIO ("filesystem full?"); the writer and the open turn it
        // into STORAGE_UNAVAILABLE when the file system is in fact full (see `diskFullAware`).
        error = LarderError(.persistenceError, "An I/O error in \(operation) (EIO: \(text)); nothing was written.",
                            failurePoint: .persist, transactionRolledBack: true)
    default:
        // Anything else the operating system reports: an operating condition, not a bug.
        error = LarderError(.persistenceError, "LMDB \(operation) failed: \(text) (\(rc)).",
                            failurePoint: .persist, transactionRolledBack: true)
    }
    error.storageCode = rc
    return error
}

/// Free bytes an unprivileged writer may still use on the file system holding `path`, or nil
/// when `statvfs` fails.
func freeBytes(onFileSystemOf path: String) -> Int? {
    var stats = statvfs()
    guard statvfs(path, &stats) == 0 else { return nil }
    return Int(stats.f_bavail) * Int(stats.f_frsize)
}

/// Below this many free bytes, an I/O error on a write is taken for a full disk. LMDB reports
/// a short write as EIO, and a short write is what a nearly full file system produces.
let diskFullThresholdBytes = 1 << 20

extension LarderError {
    /// This error, or STORAGE_UNAVAILABLE ("the disk is full") when it is an I/O error (LMDB's
    /// name for a short write) and the file system holding `path` has less than
    /// `diskFullThresholdBytes` free.
    func diskFullAware(path: String) -> LarderError {
        guard storageCode == EIO,
              let free = freeBytes(onFileSystemOf: path), free < diskFullThresholdBytes else { return self }
        var copy = LarderError(.storageUnavailable,
                               "The disk holding \(path) is full (\(free) bytes free): \(message)",
                               failurePoint: failurePoint, transactionRolledBack: transactionRolledBack)
        copy.storageCode = storageCode
        copy.requestID = requestID
        return copy
    }

    /// A failure caused by an earlier one in the same transaction: the earlier failure, saying so.
    func causing(_ operation: StaticString) -> LarderError {
        var copy = self
        copy.message += " (A later \(operation) in the same transaction was refused because of it.)"
        return copy
    }
}
