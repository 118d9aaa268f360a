internal import CLMDB
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one owner of an `MDB_env*`. Transactions, the writer and the public ``Environment`` share
/// it; ``close()`` closes the handle once, and only after every user is done.
final class EnvironmentHandle: @unchecked Sendable {
    let env: OpaquePointer
    let path: String
    let limits: Limits
    let readOnly: Bool
    let keySizeBytesMax: Int
    /// Table name → DBI. Written once while opening, read-only after.
    private(set) var tables: [String: MDB_dbi] = [:]
    let gate = ResizeGate()
    private let closed = Atomic<Bool>(false)

    /// Paths open in this process. LMDB must not open one environment twice in a process: closing
    /// either would drop the other's POSIX locks.
    private static let openPaths = Mutex<Set<String>>([])

    init(path: String, limits: Limits, durability: Durability, readOnly: Bool, create: Bool,
         tableNames: [String]) throws(LarderError) {
        try limits.validate()
        let resolved = try Self.prepareDirectory(path, create: create)
        let claimed = Self.openPaths.withLock { $0.insert(resolved).inserted }
        guard claimed else {
            throw LarderError(.validationFailed,
                              "The store at \(resolved) is already open in this process; share the open instance instead.",
                              failurePoint: .open)
        }
        var envPointer: OpaquePointer?
        var ok = false
        defer {
            if !ok {
                if let envPointer { mdb_env_close(envPointer) }
                _ = Self.openPaths.withLock { $0.remove(resolved) }
            }
        }
        try check(mdb_env_create(&envPointer), "mdb_env_create")
        guard let env = envPointer else { preconditionFailure("mdb_env_create returned no handle") }
        try check(mdb_env_set_maxreaders(env, UInt32(limits.readersMax)), "mdb_env_set_maxreaders")
        try check(mdb_env_set_maxdbs(env, MDB_dbi(limits.tablesMax)), "mdb_env_set_maxdbs")
        try check(mdb_env_set_mapsize(env, limits.mapSizeBytesInitial), "mdb_env_set_mapsize")
        var flags = UInt32(MDB_NOTLS)
        if durability == .fastUnsafe { flags |= UInt32(MDB_NOSYNC) }
        if readOnly { flags |= UInt32(MDB_RDONLY) }
        let rc = mdb_env_open(env, resolved, flags, 0o644)
        if rc != MDB_SUCCESS {
            throw lmdbFailure(rc, "mdb_env_open").with(message: "Cannot open the store at \(resolved): \(String(cString: mdb_strerror(rc))).")
        }
        // Reader slots of processes that died while reading would otherwise stay taken forever.
        var dead: Int32 = 0
        try check(mdb_reader_check(env, &dead), "mdb_reader_check")

        self.env = env
        self.path = resolved
        self.limits = limits
        self.readOnly = readOnly
        self.keySizeBytesMax = Int(mdb_env_get_maxkeysize(env))
        guard tableNames.count <= limits.tablesMax else {
            throw LarderError(.validationFailed, "\(tableNames.count) tables declared, tablesMax is \(limits.tablesMax).",
                              failurePoint: .open)
        }
        try openTables(tableNames)
        ok = true
    }

    deinit {
        close()
    }

    /// Closes the LMDB handle. Idempotent. Callers guarantee no transaction is running.
    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        mdb_env_close(env)
        _ = Self.openPaths.withLock { $0.remove(path) }
    }

    var isClosed: Bool { closed.load(ordering: .acquiring) }

    func validateKey(_ key: [UInt8], table: String) throws(LarderError) {
        guard !key.isEmpty else {
            throw LarderError(.validationFailed, "An empty key is not allowed (table \(table)).")
        }
        guard key.count <= keySizeBytesMax else {
            throw LarderError(.validationFailed,
                              "A key of \(key.count) bytes for table \(table) exceeds LMDB's maximum key size of \(keySizeBytesMax) bytes.")
        }
    }

    // MARK: Transactions

    /// Begins a transaction, adopting a map grown by another process when LMDB says so.
    func beginTransaction(parent: OpaquePointer?, readOnly: Bool) throws(LarderError) -> OpaquePointer {
        var txn: OpaquePointer?
        let flags = readOnly ? UInt32(MDB_RDONLY) : 0
        var rc = mdb_txn_begin(env, parent, flags, &txn)
        if rc == MDB_MAP_RESIZED {
            // Another process grew the map. Adopting it needs no transaction of ours active; our
            // caller holds the gate shared, so step out, adopt under the exclusive gate, step back.
            gate.leaveShared()
            gate.exclusive { _ = mdb_env_set_mapsize(env, 0) }
            gate.enterShared()
            rc = mdb_txn_begin(env, parent, flags, &txn)
        }
        try check(rc, readOnly ? "mdb_txn_begin(read)" : "mdb_txn_begin(write)")
        guard let txn else { preconditionFailure("mdb_txn_begin returned no transaction") }
        return txn
    }

    // MARK: Map size

    var mapSizeBytes: Int {
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        return info.me_mapsize
    }

    /// Doubles the map, up to the maximum. Returns false when it is already at the maximum.
    /// The caller holds no transaction.
    func growMap() throws(LarderError) -> Bool {
        try gate.exclusive { () throws(LarderError) -> Bool in
            let current = mapSizeBytes
            guard current < limits.mapSizeBytesMax else { return false }
            let next = Swift.min(Swift.max(current * 2, current + (1 << 20)), limits.mapSizeBytesMax)
            try check(mdb_env_set_mapsize(env, next), "mdb_env_set_mapsize")
            return true
        }
    }

    // MARK: Opening

    private func openTables(_ names: [String]) throws(LarderError) {
        gate.enterShared()
        defer { gate.leaveShared() }
        let txn = try beginTransaction(parent: nil, readOnly: readOnly)
        var committed = false
        defer { if !committed { mdb_txn_abort(txn) } }
        for name in names {
            var dbi = MDB_dbi()
            let rc = mdb_dbi_open(txn, name, readOnly ? 0 : UInt32(MDB_CREATE), &dbi)
            if rc == MDB_NOTFOUND {
                // Read-only open of a store made before this table existed: the table stays absent.
                continue
            }
            try check(rc, "mdb_dbi_open")
            tables[name] = dbi
        }
        committed = true
        try check(mdb_txn_commit(txn), "mdb_txn_commit(open tables)")
    }

    private static func prepareDirectory(_ path: String, create: Bool) throws(LarderError) -> String {
        guard !path.isEmpty else { throw LarderError(.validationFailed, "The store path is empty.", failurePoint: .open) }
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        if !files.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard create else {
                throw LarderError(.notFound, "No store at \(path).", failurePoint: .open)
            }
            do {
                try files.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw LarderError(.persistenceError, "Cannot create the store directory \(path): \(error.localizedDescription)",
                                  failurePoint: .open)
            }
        } else if !isDirectory.boolValue {
            throw LarderError(.validationFailed, "\(path) is not a directory.", failurePoint: .open)
        } else if !create, !files.fileExists(atPath: path + "/data.mdb") {
            throw LarderError(.notFound, "No store at \(path) (no data.mdb).", failurePoint: .open)
        }
        guard let resolved = realpath(path, nil) else {
            throw LarderError(.persistenceError, "Cannot resolve \(path): \(String(cString: strerror(errno))).", failurePoint: .open)
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

extension LarderError {
    func with(message: String) -> LarderError {
        var copy = self
        copy.message = message
        return copy
    }
}
