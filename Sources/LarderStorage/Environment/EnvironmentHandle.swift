internal import CLMDB
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one owner of an `MDB_env*`. Transactions, the writer and ``Environment`` share
/// it; ``close()`` closes the handle once, and only after every user is done. An open that fails
/// closes what it opened itself, once, before any handle exists, so nothing is closed twice.
final class EnvironmentHandle: @unchecked Sendable {
    let env: OpaquePointer
    let path: String
    let limits: Environment.Limits
    let readOnly: Bool
    let keySizeBytesMax: Int
    /// Table name → DBI, as opened. Changed only under ``gate`` held exclusively (a table dropped
    /// by a schema migration is forgotten after its transaction committed).
    var tables: [String: MDB_dbi]
    /// Held shared by everything that touches the map; exclusive only to adopt a map size that
    /// another process set (see ``MapGate``).
    let gate = MapGate()
    /// Test-only fault injection; nil in production.
    let faults: LMDBFaults?
    /// Told when LMDB reports its fatal state (once).
    let observer: (@Sendable (StorageEvent) -> Void)?
    /// What this open created, so that a store whose creation fails later can be removed.
    let created: CreatedFiles
    private let closed = Atomic<Bool>(false)
    /// Set when LMDB reported MDB_PANIC: the environment is unusable until it is reopened.
    private let panicked = Atomic<Bool>(false)

    /// Paths open in this process. LMDB must not open one environment twice in a process: closing
    /// either would drop the other's POSIX locks.
    private static let openPaths = Mutex<Set<String>>([])

    /// Bytes reserved on disk for the first pages of a new store's data file, so that creating
    /// a store on a nearly full disk fails at open with a full disk (exhausted) rather than with a
    /// short write in its first commits.
    static let creationReserveBytes = 1 << 20

    private init(env: OpaquePointer, path: String, limits: Environment.Limits, readOnly: Bool, keySizeBytesMax: Int,
                 tables: [String: MDB_dbi], faults: LMDBFaults?, observer: (@Sendable (StorageEvent) -> Void)?,
                 created: CreatedFiles) {
        self.env = env
        self.path = path
        self.limits = limits
        self.readOnly = readOnly
        self.keySizeBytesMax = keySizeBytesMax
        self.tables = tables
        self.faults = faults
        self.observer = observer
        self.created = created
    }

    /// Opens the environment in `path` (creating it when `create` and missing) with its tables.
    ///
    /// The map is opened at `limits.mapSizeBytesMax` from the start: without `MDB_WRITEMAP` this
    /// costs address space only (the file grows with the data), and a map that never changes
    /// size can be read at any time without coordinating with a resize.
    static func open(path: String, limits: Environment.Limits, durability: Environment.Durability, readOnly: Bool, create: Bool,
                     tableNames: [String], existingTableNames: [String] = [], faults: LMDBFaults?,
                     observer: (@Sendable (StorageEvent) -> Void)?) throws(StorageError) -> EnvironmentHandle {
        try limits.validate()
        guard tableNames.count <= limits.tablesMax else {
            throw StorageError(.invalidArgument, "\(tableNames.count) tables declared, tablesMax is \(limits.tablesMax).",
                               phase: .open)
        }
        let (resolved, createdDirectories) = try prepareDirectory(path, create: create)
        let claimed = openPaths.withLock { $0.insert(resolved).inserted }
        guard claimed else {
            // Another open in this process owns the path (and whatever it is creating there).
            throw StorageError(.invalidArgument,
                               "The store at \(resolved) is already open in this process; share the open instance instead.",
                               phase: .open)
        }
        // Looked at only once the path is ours: no other open in this process is creating files.
        let created = CreatedFiles(directories: createdDirectories,
                                   data: !readOnly && !FileManager.default.fileExists(atPath: resolved + "/data.mdb"),
                                   lock: !FileManager.default.fileExists(atPath: resolved + "/lock.mdb"))
        var envPointer: OpaquePointer?
        var opened = false
        defer {
            if !opened {
                // The one place a failed open closes its environment: no handle owns it yet.
                if let envPointer { mdb_env_close(envPointer) }
                created.remove(in: resolved)
                _ = openPaths.withLock { $0.remove(resolved) }
            }
        }
        do throws(StorageError) {
            try reserveLockFile(resolved + "/lock.mdb", readersMax: limits.readersMax, faults: faults)
            try check(mdb_env_create(&envPointer), "mdb_env_create")
            guard let env = envPointer else { preconditionFailure("mdb_env_create returned no handle") }
            try check(mdb_env_set_maxreaders(env, UInt32(limits.readersMax)), "mdb_env_set_maxreaders")
            try check(mdb_env_set_maxdbs(env, MDB_dbi(limits.tablesMax)), "mdb_env_set_maxdbs")
            try check(mdb_env_set_mapsize(env, limits.mapSizeBytesMax), "mdb_env_set_mapsize")
            var flags = UInt32(MDB_NOTLS)
            if durability == .fastUnsafe { flags |= UInt32(MDB_NOSYNC) }
            if readOnly { flags |= UInt32(MDB_RDONLY) }
            let rc = faults?.fault(.open) ?? mdb_env_open(env, resolved, flags, 0o644)
            if rc != MDB_SUCCESS {
                throw lmdbFailure(rc, "mdb_env_open")
                    .with(message: "Cannot open the store at \(resolved): \(String(cString: mdb_strerror(rc))).")
            }
            if created.data {
                try reserveDataFile(env, path: resolved, bytes: Swift.min(creationReserveBytes, limits.mapSizeBytesMax),
                                    faults: faults)
            }
            // Reader slots of processes that died while reading would otherwise stay taken forever.
            var dead: Int32 = 0
            try check(mdb_reader_check(env, &dead), "mdb_reader_check")
            var tables = try openTables(env, tableNames, readOnly: readOnly, faults: faults)
            // Tables of an older schema, opened only to migrate from them: never created.
            for (name, dbi) in try openTables(env, existingTableNames, readOnly: true, faults: faults) { tables[name] = dbi }
            let handle = EnvironmentHandle(env: env, path: resolved, limits: limits, readOnly: readOnly,
                                           keySizeBytesMax: Int(mdb_env_get_maxkeysize(env)), tables: tables,
                                           faults: faults, observer: observer, created: created)
            opened = true
            return handle
        } catch {
            throw error.diskFullAware(path: resolved).at(.open)
        }
    }

    deinit {
        // Only an environment nobody closed: `close()` is idempotent, so this never closes twice.
        close()
    }

    /// Closes the LMDB handle. Idempotent. Callers guarantee no transaction is running.
    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        mdb_env_close(env)
        _ = Self.openPaths.withLock { $0.remove(path) }
    }

    /// Closes the handle and removes the files this open created (a new store whose creation
    /// could not finish). Callers guarantee no transaction is running.
    func closeRemovingCreatedFiles() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        mdb_env_close(env)
        created.remove(in: path)
        _ = Self.openPaths.withLock { $0.remove(path) }
    }

    var isClosed: Bool { closed.load(ordering: .acquiring) }

    /// Whether LMDB reported MDB_PANIC: nothing more can be done with this handle but close it.
    var restartRequired: Bool { panicked.load(ordering: .acquiring) }

    /// The error for a failed LMDB call, noting LMDB's fatal state when it says so.
    func failure(_ rc: Int32, _ operation: StaticString) -> StorageError {
        let error = lmdbFailure(rc, operation)
        if rc == MDB_PANIC, !panicked.exchange(true, ordering: .acquiringAndReleasing) { observer?(.restartRequired(error)) }
        return error
    }

    /// The error for calls on a closed or failed environment.
    func unusableError() -> StorageError {
        if restartRequired {
            return StorageError(.restartRequired,
                                "The store at \(path) needs a restart: LMDB reported a fatal error (MDB_PANIC). Close it and open it again.",
                                phase: .write, code: MDB_PANIC)
        }
        return StorageError(.closed, "The store at \(path) is closed.", phase: .write)
    }

    @inline(__always)
    func validateKey(count: Int, table: String, phase: StorageError.Phase) throws(StorageError) {
        guard count > 0 else {
            throw StorageError(.invalidArgument, "An empty key is not allowed (table \(table)).", phase: phase)
        }
        guard count <= keySizeBytesMax else {
            throw StorageError(.invalidArgument,
                               "A key of \(count) bytes for table \(table) exceeds LMDB's maximum key size of \(keySizeBytesMax) bytes.",
                               phase: phase)
        }
    }

    // MARK: Transactions

    /// Begins a top-level transaction, adopting a map grown by another process when LMDB says so.
    /// The caller holds the gate shared.
    func beginTransaction(readOnly: Bool) throws(StorageError) -> OpaquePointer {
        guard !isClosed, !restartRequired else { throw unusableError() }
        var txn: OpaquePointer?
        let flags = readOnly ? UInt32(MDB_RDONLY) : 0
        func begin() -> Int32 {
            if let code = faults?.fault(readOnly ? .beginRead : .beginWrite) { return code }
            return mdb_txn_begin(env, nil, flags, &txn)
        }
        var rc = begin()
        if rc == MDB_MAP_RESIZED {
            // Another process (opened with a larger maximum) wrote beyond our map. Adopting its
            // size needs no transaction of ours active: step out of the gate, adopt, step back.
            gate.leaveShared()
            let adopted = adoptMapSize()
            gate.enterShared()
            guard adopted == MDB_SUCCESS else { throw failure(adopted, "mdb_env_set_mapsize") }
            guard !isClosed else { throw unusableError() }
            rc = begin()
        }
        guard rc == MDB_SUCCESS else { throw failure(rc, readOnly ? "mdb_txn_begin(read)" : "mdb_txn_begin(write)") }
        guard let txn else { preconditionFailure("mdb_txn_begin returned no transaction") }
        return txn
    }

    /// Takes the map size another process recorded (LMDB's answer to MDB_MAP_RESIZED), under the
    /// exclusive gate. The caller holds no transaction and not the gate.
    func adoptMapSize() -> Int32 {
        gate.exclusive {
            guard !isClosed else { return MDB_SUCCESS }
            return mdb_env_set_mapsize(env, 0)
        }
    }

    /// Commits `txn` (nested or top-level); on failure LMDB has freed it.
    func commit(_ txn: OpaquePointer, nested: Bool) -> Int32 {
        if let code = faults?.fault(nested ? .nestedCommit : .commit) {
            mdb_txn_abort(txn)
            return code
        }
        return mdb_txn_commit(txn)
    }

    // MARK: State

    /// Runs `body` with the gate held shared, unless this thread already holds it (inside a read
    /// or write closure), where entering again could deadlock behind a waiting adoption.
    func withMap<T>(_ body: () -> T) -> T {
        if TransactionScope.current != .none { return body() }
        gate.enterShared()
        defer { gate.leaveShared() }
        return body()
    }

    /// Reader slots taken right now, across every process, after clearing slots of dead ones.
    ///
    /// Not LMDB's `me_numreaders`, which is the highest slot ever used and never goes down.
    /// Counts the slots `mdb_reader_list` reports (one line per slot owned by a live process).
    func currentReaderCount() -> Int {
        var dead: Int32 = 0
        _ = mdb_reader_check(env, &dead)
        final class Counter { var slots = 0 }
        let counter = Counter()
        _ = withExtendedLifetime(counter) {
            mdb_reader_list(env, { message, context in
                guard let message, let context else { return 0 }
                // A slot's line starts with its pid (right-aligned); the header and the
                // "(no active readers)" line do not start with a digit.
                let first = UnsafePointer<CChar>(message)
                var offset = 0
                while first[offset] == 0x20 { offset += 1 }
                if first[offset] >= 0x30 && first[offset] <= 0x39 {
                    Unmanaged<Counter>.fromOpaque(context).takeUnretainedValue().slots += 1
                }
                return 0
            }, Unmanaged.passUnretained(counter).toOpaque())
        }
        return counter.slots
    }

    // MARK: Opening

    private static func openTables(_ env: OpaquePointer, _ names: [String], readOnly: Bool,
                                   faults: LMDBFaults?) throws(StorageError) -> [String: MDB_dbi] {
        var txn: OpaquePointer?
        try check(mdb_txn_begin(env, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &txn), "mdb_txn_begin(open tables)")
        guard let txn else { preconditionFailure("mdb_txn_begin returned no transaction") }
        var tables: [String: MDB_dbi] = [:]
        for name in names {
            var dbi = MDB_dbi()
            let rc = faults?.fault(.openTable, table: name) ?? mdb_dbi_open(txn, name, readOnly ? 0 : UInt32(MDB_CREATE), &dbi)
            if rc == MDB_NOTFOUND {
                // Read-only open of a store made before this table existed: the table stays absent.
                continue
            }
            guard rc == MDB_SUCCESS else {
                mdb_txn_abort(txn)
                throw lmdbFailure(rc, "mdb_dbi_open").with(message: "Cannot open table \(name): \(String(cString: mdb_strerror(rc))).")
            }
            tables[name] = dbi
        }
        try check(mdb_txn_commit(txn), "mdb_txn_commit(open tables)")
        return tables
    }

    /// Makes sure the blocks of `lock.mdb` exist before LMDB maps it: LMDB sizes a new lock file
    /// with `ftruncate` and then writes through a shared mapping, which on a full disk kills the
    /// process with SIGBUS instead of returning an error. With the blocks allocated here, a full
    /// disk is an ENOSPC we can report.
    private static func reserveLockFile(_ lockPath: String, readersMax: Int, faults: LMDBFaults?) throws(StorageError) {
        // LMDB's reader table on 64-bit builds: a 128-byte header, then one 64-byte slot per reader.
        let size = 64 * readersMax + 128
        let fd = Glibc.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        // A read-only directory or file: LMDB opens it its own way (or fails clearly).
        guard fd >= 0 else { return }
        defer { Glibc.close(fd) }
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else { return }
        var target = Int(end)
        // Growing a lock file another process has mapped would give this process reader slots
        // the other cannot see; LMDB itself only sizes it when it is the only user.
        if target < size && !lockedByAnotherProcess(fd) { target = size }
        guard target > 0 else { return }
        let rc = faults?.fault(.reserve, table: "lock.mdb") ?? posix_fallocate(fd, 0, off_t(target))
        try reserveCheck(rc, bytes: target, file: lockPath)
    }

    /// Allocates the first pages of a new data file, so that the store's first commits (its
    /// tables, schema and policy) cannot fail with a short write.
    private static func reserveDataFile(_ env: OpaquePointer, path: String, bytes: Int, faults: LMDBFaults?) throws(StorageError) {
        var fd: Int32 = -1
        guard mdb_env_get_fd(env, &fd) == MDB_SUCCESS, fd >= 0 else { return }
        let rc = faults?.fault(.reserve, table: "data.mdb") ?? posix_fallocate(fd, 0, off_t(bytes))
        try reserveCheck(rc, bytes: bytes, file: path + "/data.mdb")
    }

    private static func reserveCheck(_ rc: Int32, bytes: Int, file: String) throws(StorageError) {
        switch rc {
        case 0:
            return
        case EOPNOTSUPP, EINVAL, ENOSYS:
            // A file system that cannot preallocate: go on without the reservation.
            return
        case ENOSPC, EDQUOT:
            throw StorageError(.exhausted,
                               "The disk is full: cannot reserve \(bytes) bytes for \(file) (\(String(cString: strerror(rc)))). Free disk space and open again; nothing was created.",
                               phase: .open, code: rc)
        default:
            throw StorageError(.failed, "Cannot reserve \(bytes) bytes for \(file): \(String(cString: strerror(rc))) (\(rc)).",
                               phase: .open, code: rc)
        }
    }

    /// Whether another process holds LMDB's lock on `lock.mdb` (every process with the store
    /// open holds a lock on its first byte).
    static func lockedByAnotherProcess(_ fd: Int32) -> Bool {
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 0
        lock.l_len = 1
        guard fcntl(fd, F_GETLK, &lock) == 0 else { return true }
        return lock.l_type != Int16(F_UNLCK)
    }

    /// Resolves `path`, creating the directory (and missing parents) when `create`; returns the
    /// directories it created, deepest first.
    private static func prepareDirectory(_ path: String, create: Bool) throws(StorageError) -> (String, [String]) {
        guard !path.isEmpty else { throw StorageError(.invalidArgument, "The store path is empty.", phase: .open) }
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        var createdDirectories: [String] = []
        if !files.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard create else {
                throw StorageError(.notFound, "No store at \(path).", phase: .open)
            }
            var missing = path
            while !missing.isEmpty && missing != "/" && !files.fileExists(atPath: missing) {
                createdDirectories.append(missing)
                missing = (missing as NSString).deletingLastPathComponent
            }
            do {
                try files.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                for directory in createdDirectories { rmdir(directory) }
                let parent = (path as NSString).deletingLastPathComponent
                if let free = freeBytes(onFileSystemOf: parent.isEmpty ? "." : parent), free < diskFullThresholdBytes {
                    throw StorageError(.exhausted, "The disk is full: cannot create the store directory \(path).", phase: .open)
                }
                throw StorageError(.failed, "Cannot create the store directory \(path): \(error.localizedDescription)", phase: .open)
            }
        } else if !isDirectory.boolValue {
            throw StorageError(.invalidArgument, "\(path) is not a directory.", phase: .open)
        } else if !create, !files.fileExists(atPath: path + "/data.mdb") {
            throw StorageError(.notFound, "No store at \(path) (no data.mdb).", phase: .open)
        }
        guard let resolved = realpath(path, nil) else {
            throw StorageError(.failed, "Cannot resolve \(path): \(String(cString: strerror(errno))).", phase: .open)
        }
        defer { free(resolved) }
        let resolvedPath = String(cString: resolved)
        // The store's own directory under the name LMDB uses; its parents as given.
        if !createdDirectories.isEmpty { createdDirectories[0] = resolvedPath }
        return (resolvedPath, createdDirectories)
    }
}

/// The files and directories one open created: what to remove when creating a store fails.
struct CreatedFiles: Sendable {
    /// Deepest first.
    var directories: [String]
    var data: Bool
    var lock: Bool

    /// Removes what was created, unless another process opened the new store meanwhile.
    func remove(in path: String) {
        let lockPath = path + "/lock.mdb"
        let fd = Glibc.open(lockPath, O_RDWR | O_CLOEXEC)
        if fd >= 0 {
            let shared = EnvironmentHandle.lockedByAnotherProcess(fd)
            Glibc.close(fd)
            if shared { return }
        }
        if data { unlink(path + "/data.mdb") }
        if lock { unlink(lockPath) }
        // Only an empty directory goes: rmdir refuses anything else.
        for directory in directories { rmdir(directory) }
    }
}
