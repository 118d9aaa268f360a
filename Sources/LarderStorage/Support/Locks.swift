#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with a condition variable: the primitive under the map gate and the writer queue.
/// One owner; destroyed in `deinit` (nothing can be waiting then, since waiters hold a reference).
final class Condition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
        precondition(pthread_cond_init(condition, nil) == 0, "pthread_cond_init failed")
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    /// Waits; the caller holds the lock and re-checks its predicate after waking.
    func wait() { pthread_cond_wait(condition, mutex) }
    func broadcast() { pthread_cond_broadcast(condition) }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// Everything that touches the map (shared) versus adopting a new map size (exclusive).
///
/// Larder opens the map at its maximum and never resizes it itself. Only when another process,
/// opened with a larger maximum, has written beyond this process's map does LMDB answer
/// `MDB_MAP_RESIZED`, and this process must adopt the new size with `mdb_env_set_mapsize`, which
/// LMDB allows only while no transaction of the process is active, because the map may move.
/// So every transaction, `mdb_env_info`, `mdb_env_stat` and `mdb_env_copy2` holds the gate
/// shared, and adopting holds it exclusive. An exclusive request blocks new shared entries so
/// that a stream of readers cannot starve it; adoptions are rare and brief.
final class MapGate: @unchecked Sendable {
    private let condition = Condition()
    private var sharedCount = 0
    private var exclusiveWaiting = 0
    private var exclusiveHeld = false

    func enterShared() {
        condition.lock()
        while exclusiveHeld || exclusiveWaiting > 0 { condition.wait() }
        sharedCount += 1
        condition.unlock()
    }

    func leaveShared() {
        condition.lock()
        precondition(sharedCount > 0, "MapGate: leaveShared without enterShared")
        sharedCount -= 1
        if sharedCount == 0 { condition.broadcast() }
        condition.unlock()
    }

    func exclusive<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        condition.lock()
        exclusiveWaiting += 1
        while exclusiveHeld || sharedCount > 0 { condition.wait() }
        exclusiveWaiting -= 1
        exclusiveHeld = true
        condition.unlock()
        defer {
            condition.lock()
            exclusiveHeld = false
            condition.broadcast()
            condition.unlock()
        }
        return try body()
    }
}

/// What the current thread is inside of, to turn re-entrant use (which would deadlock against
/// the map gate or the single writer) into a clear precondition failure.
enum TransactionScope {
    case none, read, write

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    static var current: TransactionScope {
        switch Int(bitPattern: pthread_getspecific(key)) {
        case 1: .read
        case 2: .write
        default: .none
        }
    }

    static func set(_ scope: TransactionScope) {
        let tag: Int = switch scope {
        case .none: 0
        case .read: 1
        case .write: 2
        }
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: tag))
    }
}
