/// A failure of the storage core: what kind of failure, a sentence for people, and the raw code
/// LMDB or the operating system returned, for programs.
///
/// The storage core says what went wrong and nothing more: it has no error codes for clients,
/// no HTTP status and no exit status. The layer above maps each kind into its own error contract
/// (Larder maps it to `LarderError`).
///
/// ```swift
/// do {
///     try environment.write { txn in try txn.put(items, 1, [0x01]) }
/// } catch let error as StorageError where error.kind == .exhausted {
///     // map or disk full: try again later, or raise the limit
/// }
/// ```
package struct StorageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, in terms a caller can act on.
    package enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A bad argument: invalid limits, an empty or oversized key or value, a path that is not
        /// a directory or is already open in this process, a copy destination that holds a store.
        case invalidArgument
        /// No store at the path (read-only or non-creating opens), or no such table.
        case notFound
        /// A write on an environment opened read-only.
        case readOnly
        /// A resource ran out that may come back: the map or the disk is full, every reader
        /// slot is taken, the write queue is at its depth, another process grew the map.
        case exhausted
        /// Writes are paused by the breaker after repeated storage failures.
        case paused
        /// The environment is closed, or closing.
        case closed
        /// LMDB reported a fatal error (`MDB_PANIC`): nothing more works until the environment
        /// is closed and opened again.
        case restartRequired
        /// The file is damaged or incompatible, or a stored key or value does not decode.
        case damaged
        /// Any other failure of LMDB or the operating system: an I/O error, permissions, an LMDB
        /// limit, a transaction that cannot go on after an earlier failure in it.
        case failed
    }

    /// Where in the life of the environment it happened.
    package enum Phase: String, Sendable, Hashable, CaseIterable {
        /// Opening the environment and its tables.
        case open
        /// A read (in a read transaction, or a read inside a write).
        case read
        /// Beginning a write transaction, a put or a delete, or queueing a write.
        case write
        /// Committing a write transaction.
        case commit
        /// Copying the environment.
        case copy
    }

    package var kind: Kind
    /// A sentence for people; it names the operation and the value where there is one.
    package var message: String
    /// The LMDB return code (`MDB_*`) or `errno` value (`EIO`, `ENOSPC`, …) of the call that
    /// failed, when there was one. When a call failed only because an earlier call in the same
    /// transaction had failed (`MDB_BAD_TXN`), this is the earlier call's code.
    package var code: Int32?
    package var phase: Phase
    /// For ``Kind/exhausted`` and ``Kind/paused``: when to try again, in seconds, when known.
    package var retryAfterSeconds: Int?
    /// Whether a write transaction was open and was rolled back (nothing of it was kept).
    package var transactionRolledBack: Bool

    package init(_ kind: Kind, _ message: String, phase: Phase, code: Int32? = nil, retryAfterSeconds: Int? = nil,
                 transactionRolledBack: Bool = false) {
        self.kind = kind
        self.message = message
        self.phase = phase
        self.code = code
        self.retryAfterSeconds = retryAfterSeconds
        self.transactionRolledBack = transactionRolledBack
    }

    package var description: String {
        var text = "\(kind.rawValue) (\(phase.rawValue)): \(message)"
        if let code { text += " [code \(code)]" }
        return text
    }

    /// A copy that records whether a transaction was rolled back.
    package func rolledBack(_ value: Bool = true) -> StorageError {
        var copy = self
        copy.transactionRolledBack = value
        return copy
    }

    /// A copy with another message.
    func with(message: String) -> StorageError {
        var copy = self
        copy.message = message
        return copy
    }

    /// This error, said to have happened in `phase`.
    func at(_ phase: Phase) -> StorageError {
        var copy = self
        copy.phase = phase
        return copy
    }

    /// A key or value that does not decode: the stored bytes are not what they claim to be.
    package static func malformed(_ detail: String) -> StorageError {
        StorageError(.damaged, "A stored value could not be decoded: \(detail).", phase: .read)
    }
}
