internal import CLMDB
#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// The one function every LMDB return code goes through.
///
/// - `MDB_SUCCESS` returns.
/// - Codes that can only mean a bug in Larder (a bad transaction or DBI handle, a bad value size
///   that validation should have caught, a bad reader slot) stop the process with a clear
///   message: carrying on could write garbage.
/// - Operating conditions throw a ``LarderError``: map full, readers full, disk full, I/O errors,
///   a corrupted or incompatible file.
///
/// `MDB_NOTFOUND`, `MDB_KEYEXIST`, `MDB_MAP_FULL` and `MDB_MAP_RESIZED` are results that some
/// callers handle themselves; they test for them before calling this function.
@inline(__always)
func check(_ rc: Int32, _ operation: StaticString, file: StaticString = #fileID, line: UInt = #line) throws(LarderError) {
    if rc == MDB_SUCCESS { return }
    throw lmdbFailure(rc, operation, file: file, line: line)
}

/// Classifies a non-zero LMDB (or errno) code: returns the error to throw, or stops on bugs.
func lmdbFailure(_ rc: Int32, _ operation: StaticString, file: StaticString = #fileID, line: UInt = #line) -> LarderError {
    let text = String(cString: mdb_strerror(rc))
    switch rc {
    case MDB_BAD_TXN, MDB_BAD_DBI, MDB_BAD_VALSIZE, MDB_BAD_RSLOT, EINVAL:
        preconditionFailure("LMDB \(operation) failed with \(rc) (\(text)): a Larder bug", file: file, line: line)
    case MDB_MAP_FULL:
        return LarderError(.storageUnavailable, "The store's map is full at its configured maximum (\(operation)).",
                           failurePoint: .persist, transactionRolledBack: true)
    case ENOSPC, EDQUOT:
        return LarderError(.storageUnavailable, "The disk is full (\(operation): \(text)).",
                           failurePoint: .commit, transactionRolledBack: true)
    case MDB_READERS_FULL:
        return LarderError(.storageUnavailable,
                           "All reader slots are in use (\(operation)); raise readersMax or close readers.",
                           failurePoint: .read)
    case MDB_TXN_FULL, MDB_DBS_FULL, MDB_CURSOR_FULL, MDB_PAGE_FULL, MDB_TLS_FULL:
        return LarderError(.persistenceError, "LMDB limit reached in \(operation): \(text).",
                           failurePoint: .persist, transactionRolledBack: true)
    case MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_PANIC, MDB_INVALID, MDB_VERSION_MISMATCH, MDB_INCOMPATIBLE:
        return LarderError(.persistenceError, "The store file is damaged or incompatible (\(operation): \(text)).",
                           failureClass: .dataInconsistency, failurePoint: .persist, transactionRolledBack: true)
    case EACCES, EPERM, EROFS:
        return LarderError(.persistenceError, "Permission denied (\(operation): \(text)).", failurePoint: .open)
    case ENOENT:
        return LarderError(.notFound, "No store there (\(operation): \(text)).", failurePoint: .open)
    default:
        // EIO and anything else the operating system reports: an operating condition, not a bug.
        return LarderError(.persistenceError, "LMDB \(operation) failed: \(text) (\(rc)).",
                           failurePoint: .persist, transactionRolledBack: true)
    }
}
