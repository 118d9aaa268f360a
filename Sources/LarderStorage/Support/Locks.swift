#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with a condition variable: the primitive under the resize gate and the writer queue.
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

/// Transactions (shared) versus changing the map size (exclusive).
///
/// LMDB requires that no transaction of this process is active while `mdb_env_set_mapsize` runs,
/// because the map may move. Every transaction holds the gate shared; growing the map (by the
/// writer) or adopting a size grown by another process holds it exclusive. An exclusive request
/// blocks new shared entries so that a stream of readers cannot starve it; resizes are rare and
/// brief, so readers are effectively never blocked.
final class ResizeGate: @unchecked Sendable {
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
        precondition(sharedCount > 0, "ResizeGate: leaveShared without enterShared")
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
/// the resize gate or the single writer) into a clear precondition failure.
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
