internal import CLMDB
import Dispatch
import Foundation

/// One queued write: the closure to run in a transaction, and how to answer its caller.
final class WriteRequest: @unchecked Sendable {
    /// Runs the caller's closure; returns true when it succeeded (its writes should be kept).
    /// Called on the writer thread only; called again only when its group-commit batch failed as
    /// a whole and it is retried alone. Released before the caller is answered: a synchronous
    /// caller's closure must not outlive its call.
    private var body: ((WriteTransaction) -> Bool)?
    /// Answers the caller once the outcome is durable (or failed). `nil` means: the closure's own
    /// result stands; an error (a storage failure in its transaction, a failed commit) replaces it.
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

/// The write breaker (docs/ARCHITECTURE.md section 9): after `failuresToOpen` consecutive storage
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
///
/// A request whose transaction saw an LMDB failure fails with that failure, even when its closure
/// caught the error and returned normally. When the batch's transaction fails as a whole (its
/// commit runs out of map or disk, an LMDB limit), the requests whose writes were lost run again
/// one by one, each in its own transaction, so that only a request that does not fit fails.
final class Writer: @unchecked Sendable {
    private let handle: EnvironmentHandle
    private let breakerPolicy: BreakerPolicy
    private let condition = Condition()
    private var queue = WriteQueue<WriteRequest>()
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
        guard queue.count < handle.limits.writeQueueDepthMax else {
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

    /// Requests waiting for the writer (not counting the batch it is running).
    var queuedCount: Int { condition.withLock { queue.count } }

    // MARK: The writer thread

    private func loop() {
        TransactionScope.set(.write)
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty && stopping {
                condition.unlock()
                break
            }
            let batch = queue.removeFirst(upTo: handle.limits.writeBatchCountMax)
            condition.unlock()
            execute(batch)
        }
        stopped.signal()
    }

    /// What became of one request in one transaction.
    private enum RequestResult {
        /// Not run: the transaction failed before its turn.
        case notRun
        /// Its closure succeeded; its writes are in the transaction.
        case kept
        /// Its closure threw; it holds its own error and nothing of it is kept.
        case threw
        /// LMDB failed a call of its transaction: it fails with that error.
        case broken(LarderError)
    }

    /// What became of one transaction.
    private enum TransactionResult {
        /// Durable on disk.
        case committed([RequestResult])
        /// No request had anything to keep; the transaction was aborted.
        case nothingToCommit([RequestResult])
        /// The transaction failed as a whole; nothing of it was written.
        case failed(LarderError, [RequestResult])
    }

    private func execute(_ batch: [WriteRequest]) {
        if let refusal = refusal() {
            for request in batch { request.complete(refusal) }
            return
        }
        let started = ContinuousClock.now
        // What each caller is told: nil lets the closure's own outcome stand.
        var answers = [LarderError?](repeating: nil, count: batch.count)
        var commits = 0, requestsCommitted = 0, failedCommits = 0
        var storageFailed = false

        func settle(_ index: Int, _ result: RequestResult) {
            switch result {
            case .kept, .threw: answers[index] = nil
            case .broken(let error):
                answers[index] = error.rolledBack()
                storageFailed = true
            case .notRun: preconditionFailure("a request was left unanswered")
            }
        }

        switch run(batch) {
        case .committed(let results):
            commits += 1
            for (index, result) in results.enumerated() {
                settle(index, result)
                if case .kept = result { requestsCommitted += 1 }
            }
        case .nothingToCommit(let results):
            for (index, result) in results.enumerated() { settle(index, result) }
        case .failed(let error, let results):
            failedCommits += 1
            storageFailed = true
            let retry = batch.count > 1 && !handle.restartRequired
            for (index, result) in results.enumerated() {
                switch result {
                case .kept, .notRun:
                    guard retry else {
                        answers[index] = error.rolledBack()
                        continue
                    }
                    // Its writes were lost with the batch (or it never ran): alone, it may fit.
                    switch run([batch[index]]) {
                    case .committed:
                        commits += 1
                        requestsCommitted += 1
                        answers[index] = nil
                    case .nothingToCommit(let alone):
                        settle(index, alone[0])
                    case .failed(let aloneError, _):
                        failedCommits += 1
                        answers[index] = aloneError.rolledBack()
                    }
                case .threw, .broken:
                    settle(index, result)
                }
            }
        }
        let elapsed = ContinuousClock.now - started
        record(commits: commits, requestsCommitted: requestsCommitted, failedCommits: failedCommits,
               storageFailed: storageFailed, elapsed: elapsed)
        for (request, answer) in zip(batch, answers) { request.complete(answer) }
    }

    /// Runs the requests in one write transaction and commits it when any of them kept writes.
    private func run(_ batch: [WriteRequest]) -> TransactionResult {
        handle.gate.enterShared()
        defer { handle.gate.leaveShared() }
        var results = [RequestResult](repeating: .notRun, count: batch.count)
        let parent: OpaquePointer
        do {
            parent = try handle.beginTransaction(readOnly: false)
        } catch {
            return .failed(error, results)
        }
        if batch.count == 1 {
            // A batch of one needs no nested transaction: the parent is the request's own.
            results[0] = runRequest(batch[0], in: parent)
        } else {
            for (index, request) in batch.enumerated() {
                var child: OpaquePointer?
                let rc = mdb_txn_begin(handle.env, parent, 0, &child)
                guard rc == MDB_SUCCESS, let child else {
                    mdb_txn_abort(parent)
                    return .failed(handle.failure(rc, "mdb_txn_begin(nested)"), results)
                }
                results[index] = runRequest(request, in: child)
                guard case .kept = results[index] else {
                    mdb_txn_abort(child)
                    continue
                }
                let committed = handle.commit(child, nested: true)
                guard committed == MDB_SUCCESS else {
                    mdb_txn_abort(parent)
                    return .failed(handle.failure(committed, "mdb_txn_commit(nested)"), results)
                }
            }
        }
        guard results.contains(where: { if case .kept = $0 { true } else { false } }) else {
            mdb_txn_abort(parent)
            return .nothingToCommit(results)
        }
        let rc = handle.commit(parent, nested: false)
        guard rc == MDB_SUCCESS else {
            return .failed(handle.failure(rc, "mdb_txn_commit").diskFullAware(path: handle.path), results)
        }
        return .committed(results)
    }

    /// Runs one request's closure in `txn` (which stays open for the caller to commit or abort).
    private func runRequest(_ request: WriteRequest, in txn: OpaquePointer) -> RequestResult {
        let transaction = WriteTransaction(handle: handle, txn: txn)
        let ok = request.run(transaction)
        transaction.invalidate()
        // A storage failure decides, even when the closure caught it (or threw another error).
        if let broken = transaction.brokenBy { return .broken(broken.diskFullAware(path: handle.path)) }
        return ok ? .kept : .threw
    }

    // MARK: Breaker

    /// Why this batch is refused without touching LMDB, if it is.
    private func refusal() -> LarderError? {
        if handle.restartRequired { return handle.unusableError() }
        return condition.withLock {
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

    /// Counts one batch: a commit closes the breaker; a batch in which the storage failed and
    /// nothing committed counts as one failure, however many requests it held.
    private func record(commits: Int, requestsCommitted: Int, failedCommits: Int, storageFailed: Bool, elapsed: Duration) {
        condition.withLock {
            stats.failedCommits += failedCommits
            if commits > 0 {
                consecutiveFailures = 0
                breakerOpenUntil = nil
                stats.commits += commits
                stats.requestsCommitted += requestsCommitted
                stats.commitLatencyTotal += elapsed
                stats.commitLatencies.record(elapsed)
            } else if storageFailed {
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
