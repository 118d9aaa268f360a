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
/// - Everything else throws a ``StorageError`` carrying the code (``StorageError/code``):
///   map full, readers full, disk full, I/O errors, a corrupted or incompatible file, LMDB's
///   fatal state (`MDB_PANIC`), and `MDB_BAD_TXN` / `EINVAL`. The last two look like bugs but are
///   not: LMDB answers `MDB_BAD_TXN` to any use of a transaction after one of its calls failed
///   (a `MDB_MAP_FULL` put, say), and `EINVAL` to a call on an environment in a fatal state.
///
/// `MDB_NOTFOUND`, `MDB_KEYEXIST` and `MDB_MAP_RESIZED` are results that some callers handle
/// themselves; they test for them before calling this function.
@inline(__always)
func check(_ rc: Int32, _ operation: StaticString, file: StaticString = #fileID, line: UInt = #line) throws(StorageError) {
    if rc == MDB_SUCCESS { return }
    throw lmdbFailure(rc, operation, file: file, line: line)
}

/// Classifies a non-zero LMDB (or errno) code: returns the error to throw, or stops on bugs.
func lmdbFailure(_ rc: Int32, _ operation: StaticString, file: StaticString = #fileID, line: UInt = #line) -> StorageError {
    let text = String(cString: mdb_strerror(rc))
    switch rc {
    case MDB_BAD_DBI, MDB_BAD_VALSIZE, MDB_BAD_RSLOT:
        preconditionFailure("LMDB \(operation) failed with \(rc) (\(text)): a Larder bug", file: file, line: line)
    case MDB_BAD_TXN:
        return StorageError(.failed,
                            "LMDB refused \(operation): the transaction cannot be used after an earlier failure in it (MDB_BAD_TXN); nothing was written.",
                            phase: .write, code: rc, transactionRolledBack: true)
    case EINVAL:
        return StorageError(.failed, "LMDB rejected \(operation) (EINVAL: \(text)); nothing was written.",
                            phase: .write, code: rc, transactionRolledBack: true)
    case MDB_MAP_FULL:
        return StorageError(.exhausted, "The store's map is full at its configured maximum (\(operation)); nothing was written.",
                            phase: .write, code: rc, transactionRolledBack: true)
    case MDB_MAP_RESIZED:
        return StorageError(.exhausted, "Another process grew the store's map while \(operation) ran; try again.",
                            phase: .write, code: rc, retryAfterSeconds: 1, transactionRolledBack: true)
    case ENOSPC, EDQUOT:
        return StorageError(.exhausted, "The disk is full (\(operation): \(text)); nothing was written.",
                            phase: .commit, code: rc, transactionRolledBack: true)
    case MDB_READERS_FULL:
        return StorageError(.exhausted, "All reader slots are in use (\(operation)); raise readersMax or close readers.",
                            phase: .read, code: rc)
    case MDB_TXN_FULL, MDB_DBS_FULL, MDB_CURSOR_FULL, MDB_PAGE_FULL, MDB_TLS_FULL:
        return StorageError(.failed, "LMDB limit reached in \(operation): \(text); nothing was written.",
                            phase: .write, code: rc, transactionRolledBack: true)
    case MDB_PANIC:
        return StorageError(.restartRequired,
                            "LMDB reported a fatal error (MDB_PANIC) in \(operation): restart required. Close the store and open it again; nothing more is written through this instance.",
                            phase: .write, code: rc, transactionRolledBack: true)
    case MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_INVALID, MDB_VERSION_MISMATCH, MDB_INCOMPATIBLE:
        return StorageError(.damaged, "The store file is damaged or incompatible (\(operation): \(text)).",
                            phase: .write, code: rc, transactionRolledBack: true)
    case EACCES, EPERM, EROFS:
        return StorageError(.failed, "Permission denied (\(operation): \(text)).", phase: .open, code: rc)
    case ENOENT:
        return StorageError(.notFound, "No store there (\(operation): \(text)).", phase: .open, code: rc)
    case EIO:
        // LMDB reports a short write as EIO ("filesystem full?"); the writer and the open turn it
        // into a full disk when the file system is in fact full (see `diskFullAware`).
        return StorageError(.failed, "An I/O error in \(operation) (EIO: \(text)); nothing was written.",
                            phase: .write, code: rc, transactionRolledBack: true)
    default:
        // Anything else the operating system reports: an operating condition, not a bug.
        return StorageError(.failed, "LMDB \(operation) failed: \(text) (\(rc)).",
                            phase: .write, code: rc, transactionRolledBack: true)
    }
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

extension StorageError {
    /// This error, or "the disk is full" (``Kind/exhausted``) when it is an I/O error (LMDB's
    /// name for a short write) and the file system holding `path` has less than
    /// `diskFullThresholdBytes` free.
    func diskFullAware(path: String) -> StorageError {
        guard code == EIO,
              let free = freeBytes(onFileSystemOf: path), free < diskFullThresholdBytes else { return self }
        return StorageError(.exhausted, "The disk holding \(path) is full (\(free) bytes free): \(message)",
                            phase: phase, code: code, transactionRolledBack: transactionRolledBack)
    }

    /// A failure caused by an earlier one in the same transaction: the earlier failure, saying so.
    func causing(_ operation: StaticString) -> StorageError {
        var copy = self
        copy.message += " (A later \(operation) in the same transaction was refused because of it.)"
        return copy
    }
}
