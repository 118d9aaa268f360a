import Synchronization

/// A request to stop shipping, e.g. from SIGINT or SIGTERM: the shipper finishes the batch it is
/// committing, then returns instead of starting another or waiting any longer.
///
/// ```swift
/// let stop = ShipStop()
/// async let summary = shipper.run(stop: stop)
/// stop.request()            // from a signal handler
/// ```
public final class ShipStop: Sendable {
    private struct State {
        var requested = false
        var nextID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public var isRequested: Bool { state.withLock { $0.requested } }

    /// Asks every waiting and future ``wait()`` to return. Idempotent.
    public func request() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.requested = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when a stop is requested or the task is cancelled.
    func wait() async {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.requested || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }

    /// Sleeps `duration` on `clock`, or less when a stop is requested; returns whether it was.
    func pause(_ duration: Duration, clock: FleetClock) async -> Bool {
        if isRequested { return true }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                do { try await clock.sleep(duration) } catch { return true }
                return false
            }
            group.addTask {
                await self.wait()
                return true
            }
            let first = await group.next() ?? true
            group.cancelAll()
            return first || isRequested || Task.isCancelled
        }
    }
}
