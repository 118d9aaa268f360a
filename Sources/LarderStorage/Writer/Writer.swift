internal import CLMDB
import Dispatch
import Foundation

/// One queued write: the closure to run in a transaction, and how to answer its caller.
final class WriteRequest: @unchecked Sendable {
    /// Runs the caller's closure; returns true when it succeeded (its writes should be kept).
    /// Called on the writer thread only; may be called again after a map growth. Released before
    /// the caller is answered: a synchronous caller's closure must not outlive its call.
    private var body: ((WriteTransaction) -> Bool)?
    /// Answers the caller once the outcome is durable (or failed). `nil` means: the closure's own
    /// result stands; an error means the commit failed and replaces it.
    private let finish: (LarderError?) -> Void

    init(run: @escaping (WriteTransaction) -> Bool, finish: @escaping (LarderError?) -> Void) {
        self.body = run
        self.finish = finish
    }

    func run(_ txn: WriteTransaction) -> Bool {
        guard let body else { preconditionFailure("a write request ran after it was answered") }
        return body(txn)
    }

    func complete(_ error: LarderError?) {
        body = nil
        finish(error)
    }
}

/// The circuit breaker of DESIGN.md section 5: after `failuresToOpen` consecutive storage
/// failures, writes fail fast with STORAGE_UNAVAILABLE; every `probeIntervalSeconds` one write
/// is let through as a probe, and the first success closes the breaker.
public struct BreakerPolicy: Sendable, Hashable {
    public var failuresToOpen: Int = 5
    public var probeIntervalSeconds: Double = 30
    public init(failuresToOpen: Int = 5, probeIntervalSeconds: Double = 30) {
        self.failuresToOpen = failuresToOpen
        self.probeIntervalSeconds = probeIntervalSeconds
    }
}

/// The state of the write breaker, for readiness checks and metrics.
public enum BreakerState: String, Sendable, Hashable {
    case closed, open
}

/// The single writer: a dedicated thread that takes queued write requests, runs them in one LMDB
/// write transaction (each in a nested transaction when there are several, so one request's
/// failure rolls back only itself), commits once, and only then answers every caller.
final class Writer: @unchecked Sendable {
    private let handle: EnvironmentHandle
    private let breakerPolicy: BreakerPolicy
    private let condition = Condition()
    private var queue: [WriteRequest] = []
    private var queueHead = 0
    private var stopping = false
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)

    // Breaker and counters: touched on the writer thread, read under the condition's lock.
    private var consecutiveFailures = 0
    private var breakerOpenUntil: ContinuousClock.Instant?
    private var stats = WriterStatistics()

    init(handle: EnvironmentHandle, breakerPolicy: BreakerPolicy) {
        self.handle = handle
        self.breakerPolicy = breakerPolicy
        let thread = Thread { [self] in self.loop() }
        thread.name = "larder.writer"
        self.thread = thread
        thread.start()
    }

    /// Queues a request. Throws STORAGE_UNAVAILABLE when the queue is at its depth limit or the
    /// writer is stopping.
    func submit(_ request: WriteRequest) throws(LarderError) {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else {
            throw LarderError(.storageUnavailable, "The store is closing; the write was not started.",
                              failurePoint: .persist, retryable: false)
        }
        guard queue.count - queueHead < handle.limits.writeQueueDepthMax else {
            throw LarderError(.storageUnavailable,
                              "The write queue is full (\(handle.limits.writeQueueDepthMax) waiting); try again shortly.",
                              failurePoint: .persist, retryAfterSeconds: 1)
        }
        queue.append(request)
        condition.broadcast()
    }

    /// Finishes what is queued, then stops the thread and waits for it.
    func stop() {
        condition.withLock {
            stopping = true
            condition.broadcast()
        }
        if thread != nil {
            stopped.wait()
            thread = nil
        }
    }

    var breakerState: BreakerState {
        condition.withLock { breakerOpenUntil == nil ? .closed : .open }
    }

    var statistics: WriterStatistics { condition.withLock { stats } }

    // MARK: The writer thread

    private func loop() {
        TransactionScope.set(.write)
        while true {
            condition.lock()
            while queueHead == queue.count && !stopping { condition.wait() }
            if queueHead == queue.count && stopping {
                condition.unlock()
                break
            }
            let end = Swift.min(queue.count, queueHead + handle.limits.writeBatchCountMax)
            let batch = Array(queue[queueHead..<end])
            queueHead = end
            if queueHead == queue.count {
                queue.removeAll(keepingCapacity: true)
                queueHead = 0
            }
            condition.unlock()
            execute(batch)
        }
        stopped.signal()
    }

    private func execute(_ batch: [WriteRequest]) {
        if let refusal = breakerRefusal() {
            for request in batch { request.complete(refusal) }
            return
        }
        let started = ContinuousClock.now
        let outcome = commit(batch)
        let elapsed = ContinuousClock.now - started
        recordOutcome(outcome, batchCount: batch.count, elapsed: elapsed)
        for request in batch {
            switch outcome {
            case .committed, .abandoned:
                // A request whose closure failed already holds its own error.
                request.complete(nil)
            case .failed(let error):
                request.complete(error)
            }
        }
    }

    private enum BatchOutcome {
        /// Durable on disk.
        case committed
        /// Every closure failed on its own; nothing to commit, the storage is fine.
        case abandoned
        /// The storage failed; nothing of the batch was written.
        case failed(LarderError)
    }

    /// Runs and commits a batch, growing the map and retrying on MDB_MAP_FULL.
    private func commit(_ batch: [WriteRequest]) -> BatchOutcome {
        while true {
            switch attempt(batch) {
            case .done(let outcome):
                return outcome
            case .mapFull:
                do {
                    if try handle.growMap() { continue }
                    return .failed(LarderError(
                        .storageUnavailable,
                        "The store's map is full at its configured maximum of \(handle.limits.mapSizeBytesMax) bytes; nothing was written.",
                        failurePoint: .persist, transactionRolledBack: true))
                } catch {
                    return .failed(error.rolledBack())
                }
            }
        }
    }

    private enum Attempt {
        case done(BatchOutcome)
        case mapFull
    }

    private func attempt(_ batch: [WriteRequest]) -> Attempt {
        handle.gate.enterShared()
        defer { handle.gate.leaveShared() }
        let parent: OpaquePointer
        do {
            parent = try handle.beginTransaction(parent: nil, readOnly: false)
        } catch {
            return .done(.failed(error))
        }
        var anySucceeded = false
        if batch.count == 1 {
            // A batch of one needs no nested transaction: the parent is the request's own.
            let txn = WriteTransaction(handle: handle, txn: parent)
            let ok = batch[0].run(txn)
            txn.invalidate()
            if txn.hitMapFull {
                mdb_txn_abort(parent)
                return .mapFull
            }
            anySucceeded = ok && txn.brokenBy == nil
        } else {
            for request in batch {
                var child: OpaquePointer?
                let rc = mdb_txn_begin(handle.env, parent, 0, &child)
                if rc == MDB_MAP_FULL {
                    mdb_txn_abort(parent)
                    return .mapFull
                }
                guard rc == MDB_SUCCESS, let child else {
                    mdb_txn_abort(parent)
                    return .done(.failed(lmdbFailure(rc, "mdb_txn_begin(nested)")))
                }
                let txn = WriteTransaction(handle: handle, txn: child)
                let ok = request.run(txn)
                txn.invalidate()
                if txn.hitMapFull {
                    mdb_txn_abort(child)
                    mdb_txn_abort(parent)
                    return .mapFull
                }
                if ok && txn.brokenBy == nil {
                    let rc = mdb_txn_commit(child)
                    if rc == MDB_MAP_FULL {
                        mdb_txn_abort(parent)
                        return .mapFull
                    }
                    if rc != MDB_SUCCESS {
                        mdb_txn_abort(parent)
                        return .done(.failed(lmdbFailure(rc, "mdb_txn_commit(nested)")))
                    }
                    anySucceeded = true
                } else {
                    mdb_txn_abort(child)
                }
            }
        }
        guard anySucceeded else {
            mdb_txn_abort(parent)
            return .done(.abandoned)
        }
        let rc = mdb_txn_commit(parent)
        if rc == MDB_MAP_FULL { return .mapFull }
        if rc != MDB_SUCCESS { return .done(.failed(lmdbFailure(rc, "mdb_txn_commit").rolledBack())) }
        return .done(.committed)
    }

    // MARK: Breaker

    private func breakerRefusal() -> LarderError? {
        condition.withLock {
            guard let until = breakerOpenUntil else { return nil }
            let now = ContinuousClock.now
            if now >= until {
                // Half-open: let this batch through as the probe.
                return nil
            }
            let seconds = Int((until - now).components.seconds) + 1
            stats.breakerRefusals += 1
            return LarderError(.storageUnavailable,
                               "Writes are paused after \(consecutiveFailures) consecutive storage failures; the next probe is in \(seconds) s.",
                               failurePoint: .persist, retryAfterSeconds: seconds)
        }
    }

    private func recordOutcome(_ outcome: BatchOutcome, batchCount: Int, elapsed: Duration) {
        condition.withLock {
            switch outcome {
            case .committed:
                consecutiveFailures = 0
                breakerOpenUntil = nil
                stats.commits += 1
                stats.requestsCommitted += batchCount
                stats.commitLatencyTotal += elapsed
                stats.commitLatencies.record(elapsed)
            case .abandoned:
                break
            case .failed(let error):
                stats.failedCommits += 1
                guard error.code == .storageUnavailable || error.code == .persistenceError else { return }
                consecutiveFailures += 1
                if consecutiveFailures >= breakerPolicy.failuresToOpen {
                    breakerOpenUntil = ContinuousClock.now + .milliseconds(Int64(breakerPolicy.probeIntervalSeconds * 1_000))
                }
            }
        }
    }
}

/// What the writer has done since the environment opened.
public struct WriterStatistics: Sendable, Hashable {
    /// LMDB transactions committed.
    public var commits = 0
    /// Write requests in those transactions (greater than `commits` when group commit batches).
    public var requestsCommitted = 0
    /// Batches whose commit failed.
    public var failedCommits = 0
    /// Writes refused while the breaker was open.
    public var breakerRefusals = 0
    /// Time spent running and committing batches.
    public var commitLatencyTotal: Duration = .zero
    /// Commit latencies by bucket.
    public var commitLatencies = LatencyHistogram()

    public init() {}
}

/// A fixed-bucket latency histogram (Prometheus style: cumulative upper bounds in seconds).
public struct LatencyHistogram: Sendable, Hashable {
    /// Upper bounds in seconds.
    public static let boundsSeconds: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
    /// Count per bucket (non-cumulative); the last entry counts values above every bound.
    public private(set) var counts = [Int](repeating: 0, count: LatencyHistogram.boundsSeconds.count + 1)
    public private(set) var count = 0
    public private(set) var sumSeconds = 0.0

    public init() {}

    public mutating func record(_ duration: Duration) {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let index = Self.boundsSeconds.firstIndex { seconds <= $0 } ?? Self.boundsSeconds.count
        counts[index] += 1
        count += 1
        sumSeconds += seconds
    }
}
