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
    private let finish: (StorageError?) -> Void
    /// False for a request that checks everything before it writes anything (a refusal leaves
    /// the transaction as it was): in a batch it runs in the batch's transaction directly, with no
    /// nested transaction of its own to begin and commit.
    let isolated: Bool

    init(isolated: Bool = true, run: @escaping (WriteTransaction) -> Bool, finish: @escaping (StorageError?) -> Void) {
        self.isolated = isolated
        self.body = run
        self.finish = finish
    }

    func run(_ txn: WriteTransaction) -> Bool {
        guard let body else { preconditionFailure("a write request ran after it was answered") }
        return body(txn)
    }

    func complete(_ error: StorageError?) {
        body = nil
        finish(error)
    }
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
    private let breakerPolicy: Environment.BreakerPolicy
    private let observer: (@Sendable (StorageEvent) -> Void)?
    private let condition = Condition()
    private var queue = WriteQueue<WriteRequest>()
    private var stopping = false
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)

    // Breaker and counters: touched on the writer thread, read under the condition's lock.
    private var consecutiveFailures = 0
    private var breakerOpenUntil: ContinuousClock.Instant?
    /// Set while the batch running is the breaker's probe.
    private var probing = false
    /// Set once a full queue was reported, until it drains below its limit.
    private var queueFullReported = false
    private var stats = Environment.WriterStatistics()

    init(handle: EnvironmentHandle, breakerPolicy: Environment.BreakerPolicy, observer: (@Sendable (StorageEvent) -> Void)?) {
        self.handle = handle
        self.breakerPolicy = breakerPolicy
        self.observer = observer
        let thread = Thread { [self] in self.loop() }
        thread.name = "larder.writer"
        self.thread = thread
        thread.start()
    }

    /// Queues a request. Throws ``StorageError/Kind/exhausted`` when the queue is at its depth
    /// limit, ``StorageError/Kind/closed`` when the writer is stopping.
    func submit(_ request: WriteRequest) throws(StorageError) {
        condition.lock()
        guard !stopping else {
            condition.unlock()
            throw StorageError(.closed, "The store is closing; the write was not started.", phase: .write)
        }
        let depth = handle.limits.writeQueueDepthMax
        guard queue.count < depth else {
            let report = !queueFullReported
            queueFullReported = true
            condition.unlock()
            if report { observer?(.writeQueueFull(depth: depth)) }
            throw StorageError(.exhausted, "The write queue is full (\(depth) waiting); try again shortly.",
                               phase: .write, retryAfterSeconds: 1)
        }
        queue.append(request)
        condition.broadcast()
        condition.unlock()
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

    var breakerState: Environment.BreakerState {
        condition.withLock { breakerOpenUntil == nil ? .closed : .open }
    }

    var statistics: Environment.WriterStatistics { condition.withLock { stats } }

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
            if queue.count < handle.limits.writeQueueDepthMax { queueFullReported = false }
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
        case broken(StorageError)
    }

    /// What became of one transaction.
    private enum TransactionResult {
        /// Durable on disk.
        case committed([RequestResult])
        /// No request had anything to keep; the transaction was aborted.
        case nothingToCommit([RequestResult])
        /// The transaction failed as a whole; nothing of it was written.
        case failed(StorageError, [RequestResult])
    }

    private func execute(_ batch: [WriteRequest]) {
        if let refusal = refusal(requests: batch.count) {
            for request in batch { request.complete(refusal) }
            return
        }
        let started = ContinuousClock.now
        // What each caller is told: nil lets the closure's own outcome stand.
        var answers = [StorageError?](repeating: nil, count: batch.count)
        var events: [StorageEvent] = []
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
            var kept = 0
            for (index, result) in results.enumerated() {
                settle(index, result)
                if case .kept = result { kept += 1 }
            }
            requestsCommitted += kept
            events.append(.committed(requests: kept, duration: ContinuousClock.now - started))
        case .nothingToCommit(let results):
            for (index, result) in results.enumerated() { settle(index, result) }
        case .failed(let error, let results):
            failedCommits += 1
            storageFailed = true
            events.append(.commitFailed(error, requests: batch.count))
            let retry = batch.count > 1 && !handle.restartRequired
            for (index, result) in results.enumerated() {
                switch result {
                case .kept, .notRun:
                    guard retry else {
                        answers[index] = error.rolledBack()
                        continue
                    }
                    // Its writes were lost with the batch (or it never ran): alone, it may fit.
                    let aloneStarted = ContinuousClock.now
                    switch run([batch[index]]) {
                    case .committed:
                        commits += 1
                        requestsCommitted += 1
                        answers[index] = nil
                        events.append(.committed(requests: 1, duration: ContinuousClock.now - aloneStarted))
                    case .nothingToCommit(let alone):
                        settle(index, alone[0])
                    case .failed(let aloneError, _):
                        failedCommits += 1
                        answers[index] = aloneError.rolledBack()
                        events.append(.commitFailed(aloneError, requests: 1))
                    }
                case .threw, .broken:
                    settle(index, result)
                }
            }
        }
        let elapsed = ContinuousClock.now - started
        events += record(commits: commits, requestsCommitted: requestsCommitted, failedCommits: failedCommits,
                         storageFailed: storageFailed, elapsed: elapsed)
        // Before the callers are answered: a caller that saw its write commit finds it counted.
        if let observer { for event in events { observer(event) } }
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
                if !request.isolated {
                    // Checked before writing: a refusal wrote nothing, so it needs no nested
                    // transaction to roll back. One that wrote and then failed breaks that promise:
                    // the batch is dropped and its requests run again alone.
                    let transaction = WriteTransaction(handle: handle, txn: parent)
                    results[index] = runRequest(request, in: transaction)
                    switch results[index] {
                    case .kept:
                        continue
                    case .threw where transaction.mutationCount == 0:
                        continue
                    case .threw, .broken, .notRun:
                        mdb_txn_abort(parent)
                        let error: StorageError = if case .broken(let broken) = results[index] { broken } else {
                            StorageError(.failed, "A write that checks before it writes failed after writing; its batch runs again request by request.",
                                         phase: .write)
                        }
                        results[index] = .notRun
                        return .failed(error, results)
                    }
                }
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
        runRequest(request, in: WriteTransaction(handle: handle, txn: txn))
    }

    private func runRequest(_ request: WriteRequest, in transaction: WriteTransaction) -> RequestResult {
        let ok = request.run(transaction)
        transaction.invalidate()
        // A storage failure decides, even when the closure caught it (or threw another error).
        if let broken = transaction.brokenBy { return .broken(broken.diskFullAware(path: handle.path)) }
        return ok ? .kept : .threw
    }

    // MARK: Breaker

    /// Why this batch of `requests` is refused without touching LMDB, if it is.
    private func refusal(requests: Int) -> StorageError? {
        if handle.restartRequired { return handle.unusableError() }
        let (refusal, event) = condition.withLock { () -> (StorageError?, StorageEvent?) in
            guard let until = breakerOpenUntil else { return (nil, nil) }
            let now = ContinuousClock.now
            if now >= until {
                // Half-open: let this batch through as the probe.
                probing = true
                return (nil, .breakerProbe)
            }
            let seconds = Int((until - now).components.seconds) + 1
            stats.breakerRefusals += requests
            return (StorageError(.paused,
                                 "Writes are paused after \(consecutiveFailures) consecutive storage failures; the next probe is in \(seconds) s.",
                                 phase: .write, retryAfterSeconds: seconds),
                    .breakerRefused(requests: requests))
        }
        if let event { observer?(event) }
        return refusal
    }

    /// Counts one batch: a commit closes the breaker; a batch in which the storage failed and
    /// nothing committed counts as one failure, however many requests it held. Returns the
    /// breaker's change, if any, to report once the lock is released.
    private func record(commits: Int, requestsCommitted: Int, failedCommits: Int, storageFailed: Bool,
                        elapsed: Duration) -> [StorageEvent] {
        condition.withLock { () -> [StorageEvent] in
            let wasProbe = probing
            probing = false
            stats.failedCommits += failedCommits
            if commits > 0 {
                let wasOpen = breakerOpenUntil != nil
                consecutiveFailures = 0
                breakerOpenUntil = nil
                stats.commits += commits
                stats.requestsCommitted += requestsCommitted
                stats.commitLatencyTotal += elapsed
                return wasOpen ? [.breakerClosed] : []
            } else if storageFailed {
                consecutiveFailures += 1
                if consecutiveFailures >= breakerPolicy.failuresToOpen {
                    let reopened = breakerOpenUntil != nil
                    breakerOpenUntil = ContinuousClock.now + .milliseconds(Int64(breakerPolicy.probeIntervalSeconds * 1_000))
                    // Report the opening, and each failed probe; not every failure past the threshold
                    // while no probe ran (there are none: the breaker refuses those batches).
                    if !reopened || wasProbe {
                        return [.breakerOpened(consecutiveFailures: consecutiveFailures,
                                               probeAfterSeconds: breakerPolicy.probeIntervalSeconds, reopened: reopened)]
                    }
                }
            }
            return []
        }
    }
}

extension Environment {
    /// What the writer has done since the environment opened.
    package struct WriterStatistics: Sendable, Hashable {
        /// LMDB transactions committed.
        package var commits = 0
        /// Write requests in those transactions (greater than `commits` when group commit batches).
        package var requestsCommitted = 0
        /// Transactions whose commit failed.
        package var failedCommits = 0
        /// Writes refused while the breaker was open.
        package var breakerRefusals = 0
        /// Time spent running and committing batches.
        package var commitLatencyTotal: Duration = .zero

        package init() {}
    }
}
