import Larder
@testable import LarderFleet
import Synchronization
import Testing

/// Retries, backoff and the breaker of an external dependency, on a manual clock (no server).
@Suite("fleet dependency policy")
struct DependencyPolicyTests {
    struct Transient: Error {}

    @Test func backoffDoublesFromOneSecondAndIsCapped() {
        let policy = RetryPolicy()
        #expect((1...8).map { policy.delay(afterAttempt: $0) }
                == [1, 2, 4, 8, 16, 30, 30, 30].map { Duration.seconds($0) })
        let fast = RetryPolicy(attemptsMax: 3, initialDelay: .milliseconds(100), delayMax: .milliseconds(250))
        #expect((1...4).map { fast.delay(afterAttempt: $0) } == [.milliseconds(100), .milliseconds(200), .milliseconds(250), .milliseconds(250)])
        #expect(policy.delay(afterAttempt: 10_000) == .seconds(30))
    }

    @Test func theBreakerOpensAfterRepeatedFailuresAndProbesOnce() {
        let clock = ManualFleetClock()
        let changes = Mutex<[DependencyBreaker.State]>([])
        let breaker = DependencyBreaker(name: "db", policy: .init(failuresToOpen: 3, probeInterval: .seconds(30)), clock: clock.clock,
                                        onChange: { state in changes.withLock { $0.append(state) } })
        for _ in 0..<2 { breaker.recordFailure() }
        #expect(breaker.permit() == .proceed)
        breaker.recordFailure()
        #expect(breaker.isOpen)
        #expect(breaker.permit() == .wait(.seconds(30)))
        advance(clock, .seconds(10))
        #expect(breaker.permit() == .wait(.seconds(20)))
        advance(clock, .seconds(20))
        #expect(breaker.permit() == .proceed)              // the probe
        #expect(breaker.permit() == .wait(.seconds(1)))    // nobody else while it is out
        breaker.recordFailure()                            // the probe failed: open again
        #expect(breaker.permit() == .wait(.seconds(30)))
        advance(clock, .seconds(30))
        #expect(breaker.permit() == .proceed)
        breaker.recordSuccess()
        #expect(!breaker.isOpen)
        #expect(breaker.permit() == .proceed)
        #expect(changes.withLock { $0 } == [.open(since: .zero), .halfOpen, .open(since: .seconds(30)), .halfOpen,
                                            .closed(consecutiveFailures: 0)])
    }

    @Test func aSuccessResetsTheFailureCount() {
        let breaker = DependencyBreaker(name: "db", policy: .init(failuresToOpen: 2), clock: ManualFleetClock().clock)
        breaker.recordFailure()
        breaker.recordSuccess()
        breaker.recordFailure()
        #expect(!breaker.isOpen)
        breaker.recordFailure()
        #expect(breaker.isOpen)
    }

    @Test func aGuardedCallRetriesTransientFailuresWithBackoffThenGivesUp() async throws {
        let clock = ManualFleetClock()
        let breaker = DependencyBreaker(name: "db", policy: .init(failuresToOpen: 10), clock: clock.clock)
        let retries = Mutex<[Int]>([])
        let call = GuardedCall(retry: RetryPolicy(attemptsMax: 4), breaker: breaker, clock: clock.clock,
                               pause: { duration in try? await clock.clock.sleep(duration); return false },
                               onRetry: { attempt, _, _ in retries.withLock { $0.append(attempt) } })
        let attempts = Mutex(0)
        do {
            _ = try await call.run { () async throws -> Int in
                attempts.withLock { $0 += 1 }
                throw Transient()
            }
            Issue.record("expected to give up")
        } catch let gaveUp as GuardedCall.GaveUp {
            #expect(gaveUp.attempts == 4)
            #expect(gaveUp.elapsed == .seconds(7))
            #expect(!gaveUp.breakerOpen)
        }
        #expect(attempts.withLock { $0 } == 4)
        #expect(clock.waits == [.seconds(1), .seconds(2), .seconds(4)])
        #expect(retries.withLock { $0 } == [1, 2, 3])

        // A success after failures returns the value and closes the count.
        let failuresLeft = Mutex(2)
        let value = try await call.run { () async throws -> Int in
            let fail = failuresLeft.withLock { left -> Bool in
                defer { left -= 1 }
                return left > 0
            }
            if fail { throw Transient() }
            return 42
        }
        #expect(value == 42)
        #expect(breaker.current == .closed(consecutiveFailures: 0))
    }

    @Test func aPermanentErrorIsNotRetried() async throws {
        let clock = ManualFleetClock()
        let breaker = DependencyBreaker(name: "db", clock: clock.clock)
        let call = GuardedCall(retry: RetryPolicy(), breaker: breaker, clock: clock.clock,
                               pause: { _ in false }, onRetry: { _, _, _ in })
        let attempts = Mutex(0)
        await #expect(throws: LarderError.self) {
            try await call.run { () async throws -> Int in
                attempts.withLock { $0 += 1 }
                throw LarderError(.conflict, "fork", retryable: false)
            }
        }
        #expect(attempts.withLock { $0 } == 1)
        #expect(clock.waits.isEmpty)
    }

    @Test func withoutAnAttemptLimitTheBreakerSpacesTheAttempts() async throws {
        let clock = ManualFleetClock()
        let breaker = DependencyBreaker(name: "db", policy: .init(failuresToOpen: 3, probeInterval: .seconds(30)), clock: clock.clock)
        let call = GuardedCall(retry: RetryPolicy(attemptsMax: nil), breaker: breaker, clock: clock.clock,
                               pause: { duration in try? await clock.clock.sleep(duration); return false },
                               onRetry: { _, _, _ in })
        let attempts = Mutex(0)
        let value = try await call.run { () async throws -> String in
            let attempt = attempts.withLock { count -> Int in
                count += 1
                return count
            }
            if attempt < 6 { throw Transient() }
            return "up"
        }
        #expect(value == "up")
        // 1, 2 s of backoff; the third failure opens the breaker: 4 s of backoff, then the rest of
        // the 30 s until the probe; the probe fails: 8 s, then 22 s until the next; that one fails: 16 s, 14 s.
        #expect(clock.waits == [1, 2, 4, 26, 8, 22, 16, 14].map { Duration.seconds($0) })
    }

    @Test func moreAttemptsThanTheBreakerAllowsWaitForItsProbes() async throws {
        let clock = ManualFleetClock()
        let breaker = DependencyBreaker(name: "db", policy: .init(failuresToOpen: 3, probeInterval: .seconds(30)), clock: clock.clock)
        let call = GuardedCall(retry: RetryPolicy(attemptsMax: 7), breaker: breaker, clock: clock.clock,
                               pause: { duration in try? await clock.clock.sleep(duration); return false },
                               onRetry: { _, _, _ in })
        do {
            _ = try await call.run { () async throws -> Int in throw Transient() }
            Issue.record("expected to give up")
        } catch let gaveUp as GuardedCall.GaveUp {
            #expect(gaveUp.attempts == 7)
            #expect(gaveUp.breakerOpen)
        }
        #expect(clock.waits == [1, 2, 4, 26, 8, 22, 16, 14, 30].map { Duration.seconds($0) })
    }

    @Test func aStopCutsAWaitShort() async throws {
        let stop = ShipStop()
        let clock = FleetClock(now: { .zero }, sleep: { duration in try await Task.sleep(for: duration) })
        let waiting = Task { await stop.pause(.seconds(3_600), clock: clock) }
        try await Task.sleep(for: .milliseconds(20))
        stop.request()
        #expect(await waiting.value)
        #expect(await stop.pause(.seconds(3_600), clock: clock))
        #expect(await ShipStop().pause(.zero, clock: .instant) == false)
    }

    private func advance(_ clock: ManualFleetClock, _ duration: Duration) {
        clock.advance(duration)
    }

    /// A batch waiting on a server that never answers ignores cancellation; the timeout must
    /// still return (and close what the attempt holds) instead of waiting for it forever.
    @Test(.timeLimit(.minutes(1))) func aBatchThatNeverAnswersIsAbandonedAtItsTimeout() async throws {
        let closed = Mutex(false)
        let never = ShipStop()   // never requested: the body waits on it, deaf to cancellation
        do {
            _ = try await withBatchTimeout(.milliseconds(20), onTimeout: { closed.withLock { $0 = true } }) { () async throws -> Int in
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    Task.detached { await never.wait(); continuation.resume() }
                }
                return 1
            }
            Issue.record("a batch that never answers must time out")
        } catch let error as LarderError {
            #expect(error.code == .storageUnavailable)
            #expect(error.retryable)
        }
        #expect(closed.withLock { $0 })
        never.request()
    }

    @Test func aBatchThatAnswersInTimeReturnsItsValue() async throws {
        let value = try await withBatchTimeout(.seconds(60), onTimeout: { Issue.record("no timeout expected") }) { 42 }
        #expect(value == 42)
    }
}
