import Larder
import Synchronization

/// The server-wide cap on expensive requests (verify, export) running at once, whatever their
/// tokens: the per-token budget bounds how often one token asks, this bounds how much of the
/// box's two cores the admin server can take from the kitchen's writes at any moment.
///
/// A request that finds every slot taken is refused at once with 429 RATE_LIMITED and
/// `Retry-After: 1` rather than queued: a queue would hold connections and memory for requests
/// whose clients may be gone, and the client's retry is as good as a queue position.
final class ExpensiveRequests: Sendable {
    let slotsMax: Int
    private let running = Mutex(0)

    init(slotsMax: Int) {
        precondition(slotsMax > 0, "validated by AdminConfiguration")
        self.slotsMax = slotsMax
    }

    /// A taken slot. Released once, by ``release()`` or, if the holder is dropped unused (a
    /// HEAD answer never streams its body), when it is freed.
    final class Lease: Sendable {
        private let owner: ExpensiveRequests
        private let released = Atomic(false)

        fileprivate init(owner: ExpensiveRequests) { self.owner = owner }

        func release() {
            guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
            owner.running.withLock { $0 -= 1 }
        }

        deinit { release() }
    }

    /// Takes a slot, or throws 429 RATE_LIMITED with `Retry-After: 1` when none is free.
    func acquire(route: String) throws(LarderError) -> Lease {
        let taken = running.withLock { running -> Bool in
            guard running < slotsMax else { return false }
            running += 1
            return true
        }
        guard taken else {
            throw LarderError(.rateLimited,
                              "The server is already running \(slotsMax) expensive request(s) (verify, export); \(route) was not started. Retry after 1 s.",
                              failurePoint: .authorization, retryAfterSeconds: 1)
        }
        return Lease(owner: self)
    }

    /// Slots in use now.
    var inUse: Int { running.withLock { $0 } }
}

/// Single-flight verification: while a verify runs, further callers wait for its report instead
/// of starting another pass over the whole store. A caller that joins late gets a report on the
/// store as it was when that pass began, which is what any caller gets from a pass that takes
/// time; each caller's read is still recorded and charged on its own.
///
/// The pass itself cannot be cancelled part-way (`Store.verify()` runs to its end), so sharing
/// it is what keeps N clients from costing N passes; it runs at most once at a time and holds
/// one ``ExpensiveRequests`` slot while it runs.
final class SharedVerify: Sendable {
    private struct Flight {
        let id: Int
        let task: Task<VerifyReport, any Error>
        var callers: Int
    }

    private let state = Mutex<(next: Int, flight: Flight?)>((0, nil))

    /// The running pass's report, starting one with `run` (holding a slot taken from `slots`)
    /// when none is running.
    /// - throws: 429 RATE_LIMITED when a pass must start and no slot is free; what `run` throws.
    func report(slots: ExpensiveRequests, route: String,
                run: @escaping @Sendable () async throws -> VerifyReport) async throws -> VerifyReport {
        let task: Task<VerifyReport, any Error> = try state.withLock { (state) throws(LarderError) -> Task<VerifyReport, any Error> in
            if var flight = state.flight {
                flight.callers += 1
                state.flight = flight
                return flight.task
            }
            let lease = try slots.acquire(route: route)
            state.next += 1
            let id = state.next
            let task = Task<VerifyReport, any Error> {
                defer {
                    lease.release()
                    self.finish(id)
                }
                return try await run()
            }
            state.flight = Flight(id: id, task: task, callers: 1)
            return task
        }
        return try await task.value
    }

    /// Forgets flight `id` once its pass ended, so the next caller starts a fresh one.
    private func finish(_ id: Int) {
        state.withLock { state in
            if state.flight?.id == id { state.flight = nil }
        }
    }

    /// Callers of the running pass (0 when none runs): lets tests wait until callers have joined.
    var callers: Int { state.withLock { $0.flight?.callers ?? 0 } }
}
